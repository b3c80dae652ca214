"""Fine-tuning a tiny random-weight BERT end to end: loss, model folder, resume, seeds, CLI.

The data are 20 (query, positive) pairs over the tiny tokenizer's vocabulary plus a
random-text corpus as negative pool; negatives are mined with BM25 (and the hashing
encoder where dense mining is the point), so everything runs offline in seconds.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets", reason="datasets not installed: pip install -e '.[train]'")
pytest.importorskip("accelerate", reason="accelerate not installed: pip install -e '.[train]'")

from clirun import run_cli  # noqa: E402
from models import WORDS, build_tiny_encoder, corpus  # noqa: E402
from optional import skip_without_extra  # noqa: E402
from shortlist.errors import InvalidInputError  # noqa: E402
from shortlist.rerank.registry import load_reranker  # noqa: E402
from shortlist.train import TrainConfig, TrainResult, train_reranker  # noqa: E402
from shortlist.train.data import passage_id  # noqa: E402
from shortlist.train.negatives import Group  # noqa: E402


def _pairs(n: int = 20, seed: int = 1) -> list[dict[str, str]]:
    rng = random.Random(seed)
    content, fillers = WORDS[20:], WORDS[:20]
    out = []
    for i in range(n):
        topic = rng.sample(content, 3)
        words = topic + [rng.choice(fillers) for _ in range(5)]
        rng.shuffle(words)
        out.append({"id": f"q{i}", "query": " ".join(topic), "positive": " ".join(words)})
    return out


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-data")
    pairs = _write_jsonl(root / "pairs.jsonl", _pairs())
    pool = _write_jsonl(
        root / "corpus.jsonl", [{"id": f"c{i}", "text": t} for i, t in enumerate(corpus(200))]
    )
    return {"pairs": pairs, "corpus": pool, "init": build_tiny_encoder(root / "init")}


def _config(data: dict[str, Path], out: Path, **changes: Any) -> TrainConfig:
    params: dict[str, Any] = dict(
        train=data["pairs"],
        corpus=data["corpus"],
        out=out,
        init=str(data["init"]),
        negatives_bm25=5,
        negatives_dense=0,
        max_length=48,
        batch_groups=4,
        lr=3e-3,
        max_steps=40,
        save_every=20,
        eval_every=20,
        dev=data["pairs"],
        export_int8=False,
    )
    params.update(changes)
    return TrainConfig(**params)


@pytest.fixture(scope="module")
def trained(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train_reranker(_config(data, tmp_path_factory.mktemp("run") / "model"))


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def _checkpoints(out: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*"))


def _groups(out: Path) -> list[Group]:
    (path,) = (out / "work").glob("groups-*.jsonl")
    return [Group.from_dict(json.loads(line)) for line in path.read_text().splitlines()]


def _texts(data: dict[str, Path]) -> dict[str, str]:
    """Passage id -> text of the training pairs and the corpus."""
    out = {passage_id(r["positive"]): r["positive"] for r in _pairs()}
    for line in data["corpus"].read_text().splitlines():
        record = json.loads(line)
        out[record["id"]] = record["text"]
    return out


def test_loss_falls(trained: TrainResult) -> None:
    assert len(trained.losses) == 40
    assert np.mean(trained.losses[-5:]) < np.mean(trained.losses[:5]) - 0.3


def test_groups_have_mined_negatives_and_never_a_positive(trained: TrainResult) -> None:
    groups = _groups(trained.out)
    assert len(groups) == trained.num_groups == 20
    positives = {g.query_id: g.positive_id for g in groups}
    for g in groups:
        assert len(g.negative_ids) == len(set(g.negative_ids)) == 5
        assert positives[g.query_id] not in g.negative_ids


def test_saved_model_loads_and_ranks_positives_first(
    trained: TrainResult, data: dict[str, Path]
) -> None:
    out = trained.out
    config = json.loads((out / "config.json").read_text())
    assert config["num_labels"] == 1 if "num_labels" in config else len(config["id2label"]) == 1
    assert config["id2label"] == {"0": "relevance"}
    reranker = load_reranker(f"cross-encoder:{out}")
    first = 0
    groups = _groups(out)
    texts = _texts(data)
    for g in groups:
        ranking = reranker.rerank(g.query, g.texts(texts))
        first += ranking.hits[0].index == 0
    assert first >= 0.7 * len(groups)


def test_dev_evaluation_keeps_the_best_step(trained: TrainResult) -> None:
    assert sorted(trained.evals) == [0, 20, 40]
    main = {step: m["ndcg@10"] for step, m in trained.evals.items()}
    assert trained.best_step == max(main, key=lambda s: (main[s], -s))
    assert main[40] > main[0]
    best_ckpt = trained.out / "checkpoints" / f"checkpoint-{trained.best_step}"
    if best_ckpt.is_dir():  # the root holds the best step's weights
        assert _same_weights(trained.out, best_ckpt)


def test_model_card_records_data_parameters_and_metrics(trained: TrainResult) -> None:
    card = (trained.out / "README.md").read_text()
    manifest = json.loads((trained.out / "training.json").read_text())
    from shortlist.train.data import sha256_file

    assert manifest["train"]["counts"] == {
        "queries": 20,
        "pairs": 20,
        "passages": 220,
        "groups": 20,
    }
    digests = {s["role"]: s["sha256"] for s in manifest["train"]["sources"]}
    assert digests["pairs"] == sha256_file(manifest["train"]["sources"][0]["path"])
    assert len(digests["pairs"]) == 64 and digests["pairs"] in card
    assert manifest["parameters"]["lr"] == 3e-3 and '"lr": 0.003' in card
    assert "ndcg@10" in card and "first stage" in card


def test_checkpoints_are_complete_and_pruned(trained: TrainResult) -> None:
    assert _checkpoints(trained.out) == [20, 40]
    for step in (20, 40):
        folder = trained.out / "checkpoints" / f"checkpoint-{step}"
        for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"):
            assert (folder / name).is_file(), (step, name)


def test_resume_ends_with_the_weights_of_the_uninterrupted_run(
    data: dict[str, Path], trained: TrainResult, tmp_path: Path
) -> None:
    out = tmp_path / "interrupted"
    shutil.copytree(trained.out, out)
    # Interrupted after the step-20 checkpoint: the later one never got written.
    shutil.rmtree(out / "checkpoints" / "checkpoint-40")
    resumed = train_reranker(_config(data, out, resume=True))
    assert resumed.losses == trained.losses
    assert resumed.evals == trained.evals
    assert _same_weights(
        out / "checkpoints" / "checkpoint-40", trained.out / "checkpoints" / "checkpoint-40"
    )


def test_resuming_a_finished_run_changes_nothing(
    data: dict[str, Path], trained: TrainResult, tmp_path: Path
) -> None:
    out = tmp_path / "finished"
    shutil.copytree(trained.out, out)
    again = train_reranker(_config(data, out, resume=True))
    assert (again.steps, again.losses, again.evals) == (40, trained.losses, trained.evals)
    assert again.best_step == trained.best_step
    assert _same_weights(out, trained.out)


def test_same_seed_same_loss_curve_other_seed_other_curve(
    data: dict[str, Path], tmp_path: Path
) -> None:
    def run(name: str, seed: int) -> TrainResult:
        config = _config(data, tmp_path / name, seed=seed, max_steps=4, dev=None, save_every=0)
        return train_reranker(config)

    first, second, other = run("a", 0), run("b", 0), run("c", 7)
    assert first.losses == second.losses
    assert _same_weights(tmp_path / "a", tmp_path / "b")
    assert other.losses != first.losses


def test_existing_output_needs_resume_or_overwrite(
    trained: TrainResult, data: dict[str, Path]
) -> None:
    with pytest.raises(InvalidInputError, match="--resume.*--overwrite"):
        train_reranker(_config(data, trained.out))


def test_resume_refuses_changed_parameters(
    data: dict[str, Path], trained: TrainResult, tmp_path: Path
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(trained.out, out)
    with pytest.raises(InvalidInputError, match="lr: 0.003 -> 0.001"):
        train_reranker(_config(data, out, resume=True, lr=1e-3))


class _FakeTeacher:
    """Scores a pair by word overlap with the query: a teacher with known preferences."""

    name = "fake"

    def score_pairs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.array([len(set(q.split()) & set(p.split())) for q, p in pairs], dtype=float)


def test_margin_mse_distillation_with_dense_negatives(
    data: dict[str, Path], tmp_path: Path
) -> None:
    config = _config(
        data,
        tmp_path / "distilled",
        loss="both",
        teacher="fake",
        negatives_bm25=2,
        negatives_dense=2,
        encoder="hashing",
        max_steps=20,
        eval_every=0,
        save_every=0,
        dev=None,
    )
    result = train_reranker(config, load_teacher=lambda spec: _FakeTeacher())
    assert np.mean(result.losses[-4:]) < np.mean(result.losses[:4])
    (cached,) = (tmp_path / "distilled" / "work").glob("teacher-*.npy")
    scores = np.load(cached)
    assert scores.shape == (20, 5)
    assert (scores[:, 0] == 3).all()  # every positive holds its 3 query words
    assert (tmp_path / "distilled" / "model.safetensors").is_file()


def test_distillation_needs_a_teacher(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="--teacher"):
        _config(data, tmp_path / "x", loss="margin-mse")


def test_cli_end_to_end(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cli-model"
    result = run_cli(
        "train-reranker",
        str(data["pairs"]),
        "--out",
        str(out),
        "--corpus",
        str(data["corpus"]),
        "--init",
        str(data["init"]),
        "--no-dense-negatives",
        "--max-steps",
        "4",
        "--max-length",
        "48",
        "--batch-groups",
        "4",
        "--no-onnx",
    )
    assert result.exit_code == 0, result.stderr
    assert f"trained 4 steps on 20 groups -> {out}" in result.stdout
    assert "mining hard negatives" in result.stderr
    assert "'loss'" not in result.stdout + result.stderr  # no per-step log dicts
    card = (out / "README.md").read_text()
    assert f"shortlist train-reranker {data['pairs']} --out {out}" in card
    assert "--max-length 48 --batch-groups 4 --max-steps 4 --no-onnx\n" in card
    assert "--resume" not in card and "--lr" not in card
    assert load_reranker(f"cross-encoder:{out}").rerank("cat dog", ["cat", "dog"]).hits


def test_progress_bar_without_per_step_log_lines(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(data, tmp_path / "bar", max_steps=3, dev=None, show_progress=True)
    train_reranker(config)
    captured = capsys.readouterr()
    assert "3/3" in captured.err  # the bar reached the last step
    assert "'loss'" not in captured.out + captured.err


def test_cli_bad_input_is_one_line_naming_file_and_line(
    data: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positive": "p"}\n{"query": "q2"}\n', encoding="utf-8")
    result = run_cli("train-reranker", str(bad), "--out", str(tmp_path / "o"), "--quiet")
    assert result.exit_code != 0
    assert f"{bad}:2:" in result.stderr and '"positive"' in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_int8_onnx_is_shipped_and_used_without_export(
    data: dict[str, Path], tmp_path: Path
) -> None:
    skip_without_extra("onnx")
    out = tmp_path / "onnx-model"
    result = train_reranker(
        _config(data, out, max_steps=10, dev=None, export_int8=True, save_every=0)
    )
    assert result.onnx_int8 == out / "onnx" / "model_int8.onnx"
    assert result.onnx_int8.is_file()
    empty_cache = tmp_path / "cache"
    int8 = load_reranker(f"cross-encoder:{out}?backend=onnx-int8", cache_dir=empty_cache)
    fp32 = load_reranker(f"cross-encoder:{out}")
    assert not empty_cache.exists() or not any(empty_cache.rglob("*.onnx"))
    texts = _texts(data)
    pairs = [(g.query, t) for g in _groups(out)[:5] for t in g.texts(texts)]
    a, b = int8.score_pairs(pairs), fp32.score_pairs(pairs)  # type: ignore[attr-defined]
    assert np.corrcoef(a, b)[0, 1] > 0.9


def test_beir_folder_with_train_and_dev_splits(data: dict[str, Path], tmp_path: Path) -> None:
    from shortlist.evaluate.beir import write_beir
    from shortlist.types import Document

    records = _pairs()
    docs = [Document(id=f"d{i}", text=r["positive"]) for i, r in enumerate(records)]
    docs += [Document(id=f"c{i}", text=t) for i, t in enumerate(corpus(100))]
    queries = {r["id"]: r["query"] for r in records}
    train = {f"q{i}": {f"d{i}": 1} for i in range(15)}
    root = write_beir(tmp_path / "beir", docs, queries, train, split="train")
    dev = "".join(f"q{i}\td{i}\t1\n" for i in range(15, 20))
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" + dev, encoding="utf-8")
    config = _config(data, tmp_path / "m", train=root, corpus=None, dev=None, max_steps=4)
    result = train_reranker(config)
    assert result.num_groups == 15 and sorted(result.evals) == [0, 4]
    manifest = json.loads((tmp_path / "m" / "training.json").read_text())
    assert manifest["train"]["counts"]["passages"] == 120
    assert manifest["dev"]["counts"] == {"queries": 5, "pairs": 5, "passages": 120}
    roles = [s["role"] for s in manifest["dev"]["sources"]]
    assert roles == ["corpus", "queries", "qrels/dev"]


def test_missing_train_extra_is_named_before_any_work(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from shortlist.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[train\]'"):
        train_reranker(_config(data, tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_teacher_scale_must_be_positive(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="teacher_scale"):
        _config(data, tmp_path / "x", loss="both", teacher="bi-encoder", teacher_scale=0)


def test_device_names_the_way_to_pick_a_gpu() -> None:
    from shortlist.train.loop import resolve_device

    assert resolve_device("cpu") == "cpu"
    with pytest.raises(InvalidInputError, match="CUDA_VISIBLE_DEVICES"):
        resolve_device("cuda:1")


def test_resume_skips_a_checkpoint_whose_save_did_not_finish(tmp_path: Path) -> None:
    from shortlist.train.loop import latest_checkpoint

    root = tmp_path / "checkpoints"
    for step in (20, 40, 100):
        (root / f"checkpoint-{step}").mkdir(parents=True)
    for step in (20, 40):  # transformers writes trainer_state.json last
        (root / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (root / "checkpoint-x").mkdir()
    assert latest_checkpoint(tmp_path) == root / "checkpoint-40"
    assert latest_checkpoint(tmp_path / "none") is None

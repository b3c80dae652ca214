"""`shortlist tune`: cached first-stage runs, cross-validation that never peeks, and a
pipeline file that runs exactly what was scored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from clirun import run_cli
from shortlist.errors import InvalidInputError
from shortlist.evaluate.metrics import evaluate
from shortlist.evaluate.tune import (
    Setting,
    Table,
    TuneGrid,
    cross_validate,
    make_folds,
    run_tune,
    select_best,
)
from shortlist.pipeline import Pipeline
from shortlist.pipeline_file import PipelineConfig
from shortlist.retrieve.stages import FirstStageSpec
from shortlist.store.index import Index
from tiny_beir import write_tiny_beir


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_beir(tmp_path_factory.mktemp("tune") / "data")


@pytest.fixture(scope="module")
def loaded(dataset: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from shortlist.evaluate.beir import load_beir

    data = load_beir(dataset)
    index = Index.create(tmp_path_factory.mktemp("ix") / "i", data.corpus, encoder="hashing:32")
    queries = {q: t for q, t in sorted(data.queries.items()) if q in data.qrels}
    return index, queries, data.qrels


SMALL = TuneGrid(
    k1s=(0.9, 1.5), bs=(0.4, 0.9), weights=(0.3, 0.7), rrf_ks=(10, 60), depth=20, ks=(20,)
)


# ---- folds and selection ----------------------------------------------------------------------

def _library_ndcg10(pipeline: Pipeline, queries: dict[str, str], qrels: Any) -> float:
    """Mean nDCG@10 of `pipeline` run by the library (documents ranked by best passage)."""
    run: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        ranking = pipeline.run(text, top_n=None)
        run[qid] = {}
        for i, h in enumerate(ranking):
            run[qid].setdefault(h.doc_id, float(len(ranking) - i))
    library = evaluate({q: qrels[q] for q in queries}, run, ["ndcg@10"])["ndcg@10"]
    return sum(library.values()) / len(library)

def test_folds_partition_deterministically() -> None:
    ids = [f"q{i}" for i in range(23)]
    folds = make_folds(ids, 5, seed=3)
    assert sorted(q for f in folds for q in f) == sorted(ids)
    assert sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]
    assert make_folds(list(reversed(ids)), 5, seed=3) == folds
    assert make_folds(ids, 5, seed=4) != folds
    with pytest.raises(InvalidInputError, match="--folds"):
        make_folds(ids, 1)
    with pytest.raises(InvalidInputError, match="more than the 23 queries"):
        make_folds(ids, 24)


def _toy_table() -> Table:
    a = Setting(FirstStageSpec("bm25"), 10)
    b = Setting(FirstStageSpec("dense"), 10)
    return {
        a: {"q1": 1.0, "q2": 0.0, "q3": 1.0, "q4": 0.0},
        b: {"q1": 0.0, "q2": 1.0, "q3": 0.0, "q4": 1.0},
    }


def test_select_best_by_mean_with_ties_to_the_first() -> None:
    table = _toy_table()
    a, b = list(table)
    assert select_best(table, ["q1", "q3"]) == a
    assert select_best(table, ["q2"]) == b
    assert select_best(table, ["q1", "q2"]) == a  # a tie keeps the earlier setting


def test_cross_validation_never_shows_a_query_to_its_own_fold() -> None:
    table = _toy_table()
    seen: list[set[str]] = []

    def spy(t: Table, queries: Sequence[str]) -> Setting:
        seen.append(set(queries))
        return select_best(t, queries)

    folds = make_folds(["q1", "q2", "q3", "q4"], 2, seed=0)
    a, b = list(table)
    result = cross_validate(table, folds, metric="m", baselines={"a": a}, select=spy)
    assert len(seen) == 3  # one per fold, then the final choice on everything
    for fold, shown in zip(folds, seen, strict=False):
        assert shown.isdisjoint(fold) and shown | set(fold) == {"q1", "q2", "q3", "q4"}
    assert seen[-1] == {"q1", "q2", "q3", "q4"}
    for f in result.folds:
        assert set(f.train).isdisjoint(f.test)
        assert f.test_score == pytest.approx(sum(table[f.chosen][q] for q in f.test) / len(f.test))
    # the held-out mean is over every query's held-out score
    per_query = [table[f.chosen][q] for f in result.folds for q in f.test]
    assert result.out_of_sample["tuned"] == pytest.approx(sum(per_query) / 4)


def test_run_tune_never_peeks_on_real_scores(loaded) -> None:  # type: ignore[no-untyped-def]
    index, queries, qrels = loaded
    calls: list[tuple[str, ...]] = []

    def spy(t: Table, qs: Sequence[str]) -> Setting:
        calls.append(tuple(qs))
        return select_best(t, qs)

    result = run_tune(index, queries, qrels, SMALL, n_folds=3, select=spy)
    # per fold: the whole grid, then the rival grid (single first stages); then the final
    assert len(calls) == 2 * 3 + 1 and set(calls[-1]) == set(queries)
    for i, fold in enumerate(result.folds):
        for shown in calls[2 * i : 2 * i + 2]:
            assert not set(fold.test) & set(shown) and set(fold.train) == set(shown)
        rival, held_out = fold.rivals["tuned single"]
        assert rival.first.mode != "hybrid"
    assert "tuned single" in result.out_of_sample


def test_tune_is_deterministic_and_the_file_runs_what_was_scored(loaded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index, queries, qrels = loaded
    first = run_tune(index, queries, qrels, SMALL, n_folds=3, seed=1)
    second = run_tune(index, queries, qrels, SMALL, n_folds=3, seed=1)
    assert first == second
    # the default pipeline and both single first stages are in the grid
    # default, BM25 at the index's k1/b, BM25 x 4 (k1, b), dense, hybrid x 4 x (4 RRF + 6)
    assert first.n_settings == 1 + 1 + 4 + 1 + 4 * (2 * 2 + 3 * 2)
    assert first.baselines["default"].first.mode == "hybrid"
    assert first.baselines["single"].first.mode in ("bm25", "dense")

    path = tmp_path / "shortlist.toml"
    first.final.config(top_n=10).save(path)
    config = PipelineConfig.load(path)
    pipeline = Pipeline.from_config(config, index)
    assert _library_ndcg10(pipeline, queries, qrels) == pytest.approx(first.final_score)


def test_tune_cli_writes_a_file_that_search_runs(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "shortlist.toml"
    args = [
        "tune", str(dataset), "--model", "hashing:32", "--cache-dir", str(tmp_path / "c"),
        "--folds", "3", "--k1", "1.2", "--b", "0.75", "--weights", "0.3,0.7",
        "--out", str(out), "--json", str(tmp_path / "t.json"),
    ]  # fmt: skip
    r = run_cli(*args)
    assert r.exit_code == 0, r.stderr
    assert "fold" in r.stdout and "held-out" in r.stdout and "out of sample" in r.stdout
    assert "better single" in r.stdout and "out-of-sample gain over default" in r.stdout
    assert "out-of-sample gain over tuned single (chosen per fold)" in r.stdout
    assert len([line for line in r.stdout.splitlines() if line[:1].isdigit()]) == 3
    config = PipelineConfig.load(out)
    assert config.notes["folds"] == 3 and "tuned" in config.notes["out_of_sample"]
    assert out.read_text().startswith("# written by shortlist tune")
    data = json.loads((tmp_path / "t.json").read_text())
    assert len(data["folds"]) == 3 and set(data["gain"]) == {"default", "single", "tuned single"}
    again = run_cli(*args)
    assert again.stdout == r.stdout  # deterministic
    index_dir = next((tmp_path / "c").glob("index-*"))
    s = run_cli("search", "apt install", "--index", str(index_dir), "--pipeline-file", str(out))
    assert s.exit_code == 0, s.stderr


def test_tune_cli_bad_input(dataset: Path, tmp_path: Path) -> None:
    r = run_cli("tune", str(dataset), "--fusions", "rrf,max", "--cache-dir", str(tmp_path))
    assert r.exit_code == 2 and "max" in r.stderr and "zscore" in r.stderr
    r = run_cli("tune", str(dataset), "--weights", "0,1", "--cache-dir", str(tmp_path))
    assert r.exit_code == 2 and "between 0 and 1" in r.stderr
    r = run_cli("tune", str(dataset), "--rerank", "nonsense:x", "--cache-dir", str(tmp_path))
    assert r.exit_code == 2 and "nonsense" in r.stderr


def test_tune_with_a_reranker_searches_k(loaded) -> None:  # type: ignore[no-untyped-def]
    index, queries, qrels = loaded
    grid = TuneGrid(
        k1s=(1.2,), bs=(0.75,), methods=("rrf",), weights=(0.5,), rrf_ks=(60,), depth=20,
        ks=(5, 10), rerankers=("bi-encoder:hashing:32",),
    )  # fmt: skip
    result = run_tune(index, queries, qrels, grid, n_folds=2)
    assert {f.chosen.k for f in result.folds} <= {5, 10}
    assert result.final.reranker == "bi-encoder:hashing:32"
    config = result.final.config(top_n=10)
    pipeline = Pipeline.from_config(config, index)
    assert _library_ndcg10(pipeline, queries, qrels) == pytest.approx(result.final_score)

"""The OpenVINO backend against torch on tiny BERT models built here (no download)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino", reason="openvino not installed: pip install -e '.[openvino]'")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from shortlist.errors import ModelLoadError  # noqa: E402
from shortlist.runtime.openvino import (  # noqa: E402
    OpenVINOBackend,
    default_calibration_pairs,
)

WORDS = [f"w{i}" for i in range(60)]


def _tokenizer(path: Path) -> object:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tok = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    tok.save_pretrained(path)
    return tok


def _tiny_bert(path: Path, seed: int = 0) -> object:
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = transformers.BertForSequenceClassification(config).eval()
    model.save_pretrained(path)
    return model


def _synthetic_pairs(n: int, rng: random.Random) -> list[tuple[str, str, float]]:
    """(query, passage, relevance): relevance = share of passage words that are "on topic"
    (in the first half of the vocabulary), a bag-of-words signal a tiny model learns in
    a few dozen steps, so its scores spread out and have a ranking to keep."""
    out = []
    half = len(WORDS) // 2
    for _ in range(n):
        q = rng.sample(WORDS[:half], 3)
        on = rng.randint(0, 8)
        p = rng.sample(WORDS[:half], on) + rng.sample(WORDS[half:], 8 - on)
        rng.shuffle(p)
        out.append((" ".join(q), " ".join(p), on / 8))
    return out


def _torch_logits(model: object, enc: dict) -> np.ndarray:
    with torch.no_grad():
        out = model(**{k: torch.as_tensor(v) for k, v in enc.items()})  # type: ignore[operator]
    return out.logits.numpy()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-bert")
    _tokenizer(path)
    _tiny_bert(path)
    return path


def test_fp32_agrees_with_torch_on_any_shape(tiny_dir: Path, tmp_path: Path) -> None:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_dir).eval()
    backend = OpenVINOBackend(tiny_dir, int8=False, cache_dir=tmp_path, num_threads=1)
    rng = np.random.default_rng(0)
    for batch, seq in [(1, 5), (3, 17), (4, 40)]:
        ids = rng.integers(5, 65, size=(batch, seq))
        mask = np.ones_like(ids)
        mask[0, seq // 2 :] = 0  # padding in the first row
        types = np.zeros_like(ids)
        types[:, seq // 3 :] = 1
        got = backend.run(ids, mask, types)
        want = _torch_logits(
            model, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        assert got.shape == (batch, 1)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    # token_type_ids=None means zeros
    ids = rng.integers(5, 65, size=(2, 9))
    np.testing.assert_allclose(
        backend.run(ids, np.ones_like(ids), None),
        _torch_logits(model, {"input_ids": ids, "attention_mask": np.ones_like(ids)}),
        atol=1e-4,
        rtol=0,
    )


def test_disk_cache_is_reused_and_complete(tiny_dir: Path, tmp_path: Path) -> None:
    OpenVINOBackend(tiny_dir, cache_dir=tmp_path)
    entries = [p for p in tmp_path.iterdir()]
    assert len(entries) == 1 and entries[0].name.startswith("openvino-fp32-")
    assert {p.name for p in entries[0].iterdir()} == {"model.xml", "model.bin"}
    mtime = (entries[0] / "model.bin").stat().st_mtime_ns
    OpenVINOBackend(tiny_dir, cache_dir=tmp_path)  # second load reads the cache
    assert [p for p in tmp_path.iterdir()] == entries
    assert (entries[0] / "model.bin").stat().st_mtime_ns == mtime


def test_not_a_model_folder_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="config.json"):
        OpenVINOBackend(tmp_path)


def test_default_calibration_pairs_are_real_text() -> None:
    pairs = default_calibration_pairs()
    assert len(pairs) >= 200
    assert all(q and len(p.split()) >= 20 for q, p in pairs)


def _fine_tuned(path: Path) -> list[tuple[str, str, float]]:
    """A tiny BERT trained briefly to score word overlap, so int8 has a ranking to keep."""
    tok = _tokenizer(path)
    model = _tiny_bert(path, seed=1)
    model.train()  # type: ignore[attr-defined]
    rng = random.Random(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)  # type: ignore[attr-defined]
    for _ in range(40):
        batch = _synthetic_pairs(32, rng)
        enc = tok([q for q, _, _ in batch], [p for _, p, _ in batch], padding=True,  # type: ignore[operator]
                  return_tensors="pt")
        target = torch.tensor([r for _, _, r in batch]).unsqueeze(1)
        loss = torch.nn.functional.mse_loss(model(**enc).logits, target * 4 - 2)  # type: ignore[operator]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()  # type: ignore[attr-defined]
    model.save_pretrained(path)  # type: ignore[attr-defined]
    return _synthetic_pairs(150, rng)


@pytest.mark.slow
def test_int8_keeps_the_ranking_of_a_trained_model(tmp_path: Path) -> None:
    from scipy.stats import spearmanr

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    calibration = _fine_tuned(model_dir)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    test = _synthetic_pairs(120, random.Random(7))
    enc = tok([q for q, _, _ in test], [p for _, p, _ in test], padding=True, return_tensors="np")
    fp32 = OpenVINOBackend(model_dir, cache_dir=tmp_path / "cache")
    int8 = OpenVINOBackend(
        model_dir,
        int8=True,
        cache_dir=tmp_path / "cache",
        calibration_pairs=[(q, p) for q, p, _ in calibration],
    )
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    a, b = fp32.run(*args)[:, 0], int8.run(*args)[:, 0]
    # the model learned the task (otherwise the correlation below says nothing)
    assert spearmanr(a, [r for _, _, r in test]).statistic > 0.8
    assert spearmanr(a, b).statistic >= 0.98
    assert not np.allclose(a, b, atol=1e-6)  # it really is a different (quantized) model


def test_openvino_backend_through_the_registry_agrees_with_torch(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    from models import build_tiny_cross_encoder
    from shortlist.rerank.registry import load_reranker

    folder = build_tiny_cross_encoder(tmp_path / "m", "bert", 1)
    docs = ["the cat sat on the mat", "stock markets fell sharply", "a cat and a dog"] * 3
    torch_r = load_reranker(f"cross-encoder:{folder}?backend=torch", cache_dir=tmp_path / "c")
    ov_r = load_reranker(f"cross-encoder:{folder}?backend=openvino", cache_dir=tmp_path / "c")
    a = torch_r.rerank("cat", docs)
    b = ov_r.rerank("cat", docs)
    raw_a = {h.index: h.raw_score for h in a}
    raw_b = {h.index: h.raw_score for h in b}
    assert max(abs(raw_a[i] - raw_b[i]) for i in raw_a) <= 1e-4

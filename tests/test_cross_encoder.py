"""CrossEncoderReranker on tiny random-weight (and briefly trained) models, offline."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from models import ARCHITECTURES, WORDS, build_tiny_cross_encoder, corpus  # noqa: E402
from optional import BACKEND_EXTRA, EXTRA_MODULES, backend_param, needs_extra  # noqa: E402
from shortlist.errors import (  # noqa: E402
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    SpecError,
)
from shortlist.rerank.base import PairScorer, Reranker, RerankOptions  # noqa: E402
from shortlist.rerank.cross_encoder import CrossEncoderReranker  # noqa: E402
from shortlist.rerank.windows import aggregate_windows  # noqa: E402
from shortlist.runtime import BACKENDS  # noqa: E402
from shortlist.runtime.models import pack_batches  # noqa: E402
from shortlist.types import Document, Hit  # noqa: E402

PAIRS = list(zip(corpus(12, seed=1), corpus(12, seed=2), strict=True))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    root = tmp_path_factory.mktemp("tiny-cross-encoders")
    return {
        (arch, labels): build_tiny_cross_encoder(root / f"{arch}-{labels}", arch, labels)
        for arch in ARCHITECTURES
        for labels in (1, 2)
    }


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def bert(tiny_models: dict[tuple[str, int], Path]) -> Path:
    return tiny_models[("bert", 1)]


# --- agreement with sentence-transformers --------------------------------------------------


@pytest.mark.parametrize("backend", [backend_param("torch"), backend_param("onnx")])
@pytest.mark.parametrize("labels", [1, 2])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_raw_scores_match_sentence_transformers(
    tiny_models: dict[tuple[str, int], Path], onnx_cache: Path, arch: str, labels: int, backend: str
) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    path = tiny_models[(arch, labels)]
    reference = CrossEncoder(str(path), activation_fn=torch.nn.Identity()).predict(PAIRS)
    if labels == 2:
        reference = reference[:, 1] - reference[:, 0]
    reranker = CrossEncoderReranker(str(path), backend=backend, cache_dir=onnx_cache)
    scores = reranker.score_pairs(PAIRS)
    assert scores.shape == (len(PAIRS),)
    assert np.abs(scores - reference).max() <= 1e-4
    assert np.std(scores) > 0  # not a constant function


def test_two_label_calibration_is_softmax_of_logits(
    tiny_models: dict[tuple[str, int], Path],
) -> None:
    reranker = CrossEncoderReranker(str(tiny_models[("electra", 2)]))
    logits, owner = reranker.window_logits(PAIRS[:5])
    assert owner.tolist() == [0, 1, 2, 3, 4]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = e[:, 1] / e.sum(axis=1)
    ranking = reranker.rerank(PAIRS[0][0], [p for _, p in PAIRS[:5]])
    # every pair has the same query here only for position 0, so score pairs directly
    raw = reranker.score_pairs(PAIRS[:5])
    assert np.allclose(raw, logits[:, 1] - logits[:, 0], atol=1e-6)
    assert np.allclose(reranker.calibrate(raw), expected, atol=1e-6)
    assert reranker.calibration == "softmax"
    assert all(0.0 <= h.score <= 1.0 and h.score == h.calibrated_score for h in ranking)


# --- int8 keeps the ranking ----------------------------------------------------------------


RELEVANT = sorted(set(WORDS[20:40]))  # "python", "module", "error", "index", ...
OTHER = sorted(set(WORDS) - set(RELEVANT))


def _graded_pairs(rng: random.Random, n: int) -> tuple[list[tuple[str, str]], list[float]]:
    """Synthetic pairs whose relevance is the number of RELEVANT words in the passage."""
    pairs, labels = [], []
    for _ in range(n):
        k = rng.randint(0, 4)
        passage = rng.sample(RELEVANT, k) + rng.sample(OTHER, rng.randint(3, 8))
        rng.shuffle(passage)
        pairs.append((" ".join(rng.sample(WORDS, 3)), " ".join(passage)))
        labels.append(k / 4)
    return pairs, labels


@pytest.fixture(scope="session")
def trained_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT trained for a few dozen steps so that its scores spread (graded labels)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = build_tiny_cross_encoder(
        tmp_path_factory.mktemp("trained") / "bert", "bert", 1, max_positions=256
    )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder))
    rng = random.Random(0)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(45):
        pairs, labels = _graded_pairs(rng, 16)
        batch = tokenizer(
            [q for q, _ in pairs], [p for _, p in pairs], padding=True, return_tensors="pt"
        )
        logits = model(**batch).logits.squeeze(-1)
        loss = torch.nn.functional.mse_loss(logits, torch.tensor(labels) * 8 - 4)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize("backend", [backend_param("onnx-int8"), backend_param("torch-int8")])
def test_int8_keeps_the_ranking(trained_bert: Path, onnx_cache: Path, backend: str) -> None:
    from scipy.stats import spearmanr

    pairs, labels = _graded_pairs(random.Random(1), 80)
    fp32 = CrossEncoderReranker(str(trained_bert)).score_pairs(pairs)
    assert spearmanr(fp32, labels).statistic > 0.8  # the model learnt the task: scores spread
    int8 = CrossEncoderReranker(str(trained_bert), backend=backend, cache_dir=onnx_cache)
    assert spearmanr(int8.score_pairs(pairs), fp32).statistic >= 0.98


# --- batching ------------------------------------------------------------------------------


def test_pack_batches_by_hand() -> None:
    lengths = [5, 3, 9, 3, 4]
    batches = pack_batches(lengths, 12)
    # shortest first: [1, 3] (2*3=6), + 4 -> 3*4=12 fits, + 0 -> 4*5=20 > 12
    assert [b.tolist() for b in batches] == [[1, 3, 4], [0], [2]]
    # input order: [0, 1] (2*5=10), + 2 -> 3*9 > 12; [2]; + 3 -> 2*9 > 12; [3, 4] (2*4=8)
    assert [b.tolist() for b in pack_batches(lengths, 12, sort=False)] == [[0, 1], [2], [3, 4]]
    assert [b.tolist() for b in pack_batches([20, 1], 10)] == [[1], [0]]  # oversize row alone
    assert pack_batches([], 10) == []


class RecordingBackend:
    """Wraps a backend and records the shape of every batch it runs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.shapes: list[tuple[int, int]] = []

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.inner.input_names)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: Any) -> Any:
        self.shapes.append(input_ids.shape)
        return self.inner.run(input_ids, attention_mask, token_type_ids)


@pytest.fixture(scope="session")
def bert512(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(
        tmp_path_factory.mktemp("b512") / "bert", "bert", 1, max_positions=512
    )


def test_budget_bounds_200_candidates_of_512_tokens(bert512: Path) -> None:
    rng = random.Random(3)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 700))) for _ in range(200)]
    reranker = CrossEncoderReranker(str(bert512), batch_tokens=4096)
    spy = RecordingBackend(reranker._backend)
    reranker._backend = spy
    ranking = reranker.rerank("python module error", docs)
    assert len(ranking) == 200
    assert max(rows * width for rows, width in spy.shapes) <= 4096
    assert max(width for _, width in spy.shapes) == 512
    assert sum(rows for rows, _ in spy.shapes) >= 200  # long documents made extra windows
    # every batch is padded only to its own longest row: some batches are narrower
    assert min(width for _, width in spy.shapes) < 512


def test_order_preserved_across_batches_and_budgets(bert: Path) -> None:
    small = CrossEncoderReranker(str(bert), batch_tokens=128)
    large = CrossEncoderReranker(str(bert), batch_tokens=100_000, sort_by_length=False)
    a, b = small.score_pairs(PAIRS), large.score_pairs(PAIRS)
    assert np.allclose(a, b, atol=1e-5)
    perm = list(reversed(range(len(PAIRS))))
    assert np.allclose(small.score_pairs([PAIRS[i] for i in perm]), a[perm], atol=1e-5)


# --- the Reranker contract -----------------------------------------------------------------


def test_is_a_reranker_and_pair_scorer(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert), name="cross-encoder:tiny")
    assert isinstance(reranker, Reranker)
    assert isinstance(reranker, PairScorer)
    assert reranker.name == "cross-encoder:tiny"
    assert CrossEncoderReranker(str(bert)).name == f"cross-encoder:{bert}"


def test_ranking_contract(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert))
    docs = [p for _, p in PAIRS[:6]]
    ranking = reranker.rerank("python module", docs)
    raw = reranker.score_pairs([("python module", d) for d in docs])
    assert sorted(h.index for h in ranking) == list(range(6))
    assert [h.rank for h in ranking] == [1, 2, 3, 4, 5, 6]
    for hit in ranking:
        assert hit.raw_score == pytest.approx(raw[hit.index])
        assert hit.calibrated_score == pytest.approx(1 / (1 + np.exp(-raw[hit.index])))
        assert hit.text == docs[hit.index]
        assert hit.window is None
    assert [h.score for h in ranking] == sorted((h.score for h in ranking), reverse=True)
    assert "rerank" in ranking.timings_ms


def test_ties_are_broken_by_input_position(bert: Path) -> None:
    ranking = CrossEncoderReranker(str(bert)).rerank("cat", ["same text"] * 4 + ["dog"])
    tied = [h.index for h in ranking if h.text == "same text"]
    assert tied == [0, 1, 2, 3]


def test_empty_top_n_and_bad_top_n(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert))
    assert len(reranker.rerank("q", [])) == 0
    assert reranker.score_pairs([]).shape == (0,)
    assert len(reranker.rerank("q", ["a", "b"], top_n=10)) == 2
    assert len(reranker.rerank("q", ["a", "b"], top_n=0)) == 0
    assert reranker.rerank("q", ["a b", "c"], top_n=1)[0].rank == 1
    with pytest.raises(InvalidInputError):
        reranker.rerank("q", ["a"], top_n=-1)


def test_inputs_not_mutated_and_first_stage_kept(bert: Path) -> None:
    hits = [
        Hit(id=f"d{i}", score=10.0 - i, rank=i + 1, text=t) for i, (_, t) in enumerate(PAIRS[:4])
    ]
    docs = [Document(id="x", text="a cat", title="Cats")]
    before_hits, before_docs = list(hits), list(docs)
    reranker = CrossEncoderReranker(str(bert))
    ranking = reranker.rerank("cat", hits)
    reranker.rerank("cat", docs)
    assert hits == before_hits and docs == before_docs
    for hit in ranking:
        assert hit.first_stage_rank == hits[hit.index].rank
        assert hit.first_stage_score == hits[hit.index].score


# --- long documents ------------------------------------------------------------------------


class NeedleBackend:
    """Scores a window by how many times a given token id occurs in it."""

    input_names = ("input_ids", "attention_mask")

    def __init__(self, needle: int) -> None:
        self.needle = needle

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: Any) -> Any:
        return (
            ((input_ids == self.needle) & (attention_mask == 1))
            .sum(1, keepdims=True)
            .astype(np.float32)
        )


def _filler(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(["tree", "river", "bread", "train"]) for _ in range(n))


def test_long_document_window_with_the_relevant_text_wins(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert), max_length=64, window_stride=8)
    needle = reranker._tokenizer.convert_tokens_to_ids("apple")
    reranker._backend = NeedleBackend(needle)
    long_doc = _filler(150, 0) + " apple apple " + _filler(40, 1)  # needle late in the text
    short_doc = "apple tree"
    encoded = reranker.encode(["cat"], [long_doc])
    assert len(encoded.input_ids) > 3 and max(len(x) for x in encoded.input_ids) <= 64
    with_needle = [w for w, ids in enumerate(encoded.input_ids) if needle in ids]
    ranking = reranker.rerank("cat", [short_doc, long_doc, _filler(300, 2)])
    assert ranking[0].index == 1 and ranking[0].raw_score == 2.0
    assert ranking[0].window == with_needle[0] and ranking[0].window > 0
    assert ranking[1].index == 0 and ranking[1].window is None  # fits one window
    assert ranking[2].raw_score == 0.0 and ranking[2].window == 0  # all windows tie: first


def test_windows_cover_the_whole_passage_with_overlap(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert), max_length=32, window_stride=4)
    tokenizer = reranker._tokenizer
    doc = " ".join(f"{c}" for c in "abcdefghijklmnopqrstuvwxyz" * 3)
    encoded = reranker.encode(["cat dog"], [doc])
    sep = tokenizer.sep_token_id
    parts = []
    for ids in encoded.input_ids:
        first_sep = ids.index(sep)
        parts.append(ids[first_sep + 1 : -1])
        assert ids[: first_sep + 1] == tokenizer("cat dog")["input_ids"]  # query in every window
    joined = parts[0] + [t for p in parts[1:] for t in p[4:]]  # drop the 4-token overlaps
    assert joined == tokenizer(doc, add_special_tokens=False)["input_ids"]
    for a, b in zip(parts, parts[1:], strict=False):
        assert a[-4:] == b[:4]


def test_aggregates(bert: Path) -> None:
    scores = np.array([1.0, 5.0, 2.0, 7.0, 3.0, 3.0])
    owner = np.array([0, 0, 0, 1, 2, 2])
    got, win = aggregate_windows(scores, owner, 3, "max")
    assert got.tolist() == [5.0, 7.0, 3.0] and win == [1, None, 0]
    got, win = aggregate_windows(scores, owner, 3, "mean")
    assert got.tolist() == pytest.approx([8 / 3, 7.0, 3.0]) and win == [None, None, None]
    got, win = aggregate_windows(scores, owner, 3, "first")
    assert got.tolist() == [1.0, 7.0, 3.0] and win == [0, None, 0]
    with pytest.raises(InvalidInputError, match="max, mean, first"):
        CrossEncoderReranker(str(bert), aggregate="median")


def test_long_query_is_truncated_to_half_of_max_length(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert), max_length=64)
    query = " ".join(random.Random(0).choice(WORDS) for _ in range(200))
    encoded = reranker.encode([query], [_filler(100, 3)])
    sep = reranker._tokenizer.sep_token_id
    for ids in encoded.input_ids:
        assert len(ids) <= 64
        assert ids.index(sep) - 1 == 32  # [CLS] + 32 query tokens
    assert np.isfinite(reranker.score_pairs([(query, "tree")])).all()


def test_trained_model_finds_the_relevant_window(trained_bert: Path) -> None:
    reranker = CrossEncoderReranker(str(trained_bert), max_length=48, window_stride=8)
    long_doc = _filler(80, 4) + " python error index " + _filler(60, 5)
    ranking = reranker.rerank("python error index", [_filler(140, 6), long_doc])
    assert ranking[0].index == 1
    best = ranking[0].window
    assert best is not None and best > 0
    window_ids = reranker.encode(["python error index"], [long_doc]).input_ids[best]
    text = reranker._tokenizer.decode(window_ids)
    assert text.count("python") == 2 and "error" in text  # query + relevant text


# --- defaults, errors, cache ---------------------------------------------------------------


def test_default_max_length(tiny_models: dict[tuple[str, int], Path]) -> None:
    assert CrossEncoderReranker(str(tiny_models[("bert", 1)])).max_length == 128
    # RoBERTa-style positions start after the padding index: 130 - 2
    assert CrossEncoderReranker(str(tiny_models[("xlm-roberta", 1)])).max_length == 128


def test_bad_options(bert: Path) -> None:
    with pytest.raises(SpecError) as err:
        CrossEncoderReranker(str(bert), backend="tensorrt")
    for key in BACKENDS:
        assert key in str(err.value)
    with pytest.raises(InvalidInputError, match="batch_tokens"):
        CrossEncoderReranker(str(bert), batch_tokens=16)
    with pytest.raises(InvalidInputError, match="window_stride"):
        CrossEncoderReranker(str(bert), max_length=64, window_stride=40)


def test_missing_model_offline_says_how_to_provide_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError) as err:
        CrossEncoderReranker("shortlist-test/no-such-cross-encoder")
    message = str(err.value)
    assert "shortlist-test/no-such-cross-encoder" in message
    assert "--local-dir" in message and "HF_HUB_OFFLINE" in message
    with pytest.raises(ModelLoadError, match="does not exist"):
        CrossEncoderReranker(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        CrossEncoderReranker(str(tmp_path / "empty"))


@needs_extra("onnx")
def test_onnx_export_is_cached_and_keyed_by_weights(
    tiny_models: dict[tuple[str, int], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shortlist.runtime import onnx as onnx_backend

    path = tiny_models[("bert", 2)]
    first = CrossEncoderReranker(str(path), backend="onnx", cache_dir=tmp_path)
    artifacts = sorted((tmp_path / "onnx").iterdir())
    assert len(artifacts) == 1 and (artifacts[0] / "model.onnx").is_file()
    assert not [p for p in (tmp_path / "onnx").iterdir() if p.name.startswith(".tmp")]

    def no_export(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("re-exported a cached model")

    monkeypatch.setattr(onnx_backend, "_export", no_export)
    second = CrossEncoderReranker(str(path), backend="onnx", cache_dir=tmp_path)
    assert np.array_equal(first.score_pairs(PAIRS), second.score_pairs(PAIRS))
    # other weights, other key: the export runs (and here, fails loudly)
    with pytest.raises(AssertionError, match="re-exported"):
        CrossEncoderReranker(str(tiny_models[("bert", 1)]), backend="onnx", cache_dir=tmp_path)


@pytest.mark.parametrize(("backend", "extra"), sorted(BACKEND_EXTRA.items()))
def test_backend_without_its_extra_names_the_extra(
    bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, extra: str
) -> None:
    for module in EXTRA_MODULES[extra]:
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(MissingDependencyError, match=rf"pip install -e '\.\[{extra}\]'"):
        CrossEncoderReranker(str(bert), backend=backend, cache_dir=tmp_path)


# --- server plan: the pairs a batching server scores ---------------------------------------


def test_plan_without_options_reproduces_rerank(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert), max_length=32, window_stride=4)
    texts = [_filler(5, 0), _filler(80, 1), "apple tree", ""]
    plan = reranker.plan("cat dog", texts)
    assert plan.n_documents == 4 and sorted(set(plan.owner)) == [0, 1, 2, 3]
    assert plan.tokens == tuple(len(w.input_ids) for w in plan.units)
    assert plan.owner.count(1) > 1  # the long text is windowed in the plan
    direct = reranker.rerank("cat dog", texts)
    finished = reranker.finish(plan, reranker.score_units(plan.units), texts, None)
    assert [(h.index, h.raw_score, h.window) for h in finished] == [
        (h.index, h.raw_score, h.window) for h in direct
    ]
    by_index = {h.index: h.raw_score for h in direct}
    assert reranker.score_pairs([("cat dog", t) for t in texts]).tolist() == [
        by_index[i] for i in range(4)
    ]


def test_plan_max_tokens_per_doc_keeps_the_first_tokens(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert), max_length=32, window_stride=4)
    tok = reranker._tokenizer
    long_text, short_text = _filler(50, 3), "apple tree"
    cut_texts = reranker.cut_texts("cat", [long_text, short_text], max_tokens_per_doc=7)
    cut = cut_texts[0]
    assert long_text.startswith(cut)
    assert tok(cut, add_special_tokens=False)["input_ids"] == (
        tok(long_text, add_special_tokens=False)["input_ids"][:7]
    )
    assert cut_texts[1] == short_text  # shorter than the limit: unchanged
    with pytest.raises(InvalidInputError, match="max_tokens_per_doc must be >= 1"):
        reranker.plan("cat", [long_text], RerankOptions(max_tokens_per_doc=0))


def test_plan_max_chunks_per_doc_keeps_the_first_windows(bert: Path) -> None:
    reranker = CrossEncoderReranker(str(bert), max_length=32, window_stride=4)
    text = _filler(200, 4)
    assert len(reranker.encode(["cat dog"], [text]).input_ids) > 3
    for chunks in (1, 2, 3):
        plan = reranker.plan("cat dog", [text], RerankOptions(max_chunks_per_doc=chunks))
        kept = [w.input_ids for w in plan.units]
        full = reranker.encode(["cat dog"], [text]).input_ids
        assert kept == full[:chunks]  # exactly the first `chunks` windows, token for token

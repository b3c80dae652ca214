"""none, bi-encoder, cascade and cached rerankers: the contract and their own behaviour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rerank_fakes import BagOfWordsEncoder, OverlapScorer
from reranker_contract import check_reranker_contract
from shortlist.errors import InvalidInputError
from shortlist.rerank.base import PairScorer, Reranker
from shortlist.rerank.bi_encoder import BiEncoderReranker, VectorSource
from shortlist.rerank.cache import (
    CachedReranker,
    CachedScore,
    MemoryScoreCache,
    SQLiteScoreCache,
    cache_key,
)
from shortlist.rerank.cascade import CascadeReranker
from shortlist.rerank.passthrough import NoRerank
from shortlist.types import Hit, Passage


def _bi() -> BiEncoderReranker:
    return BiEncoderReranker("fake", encoder=BagOfWordsEncoder())


CONTRACT_CASES = {
    "none": lambda: NoRerank(),
    "bi-encoder": _bi,
    "cascade": lambda: CascadeReranker(NoRerank(), 3, _bi()),
    "cascade-keeps-all": lambda: CascadeReranker(_bi(), 50, OverlapScorer()),
    "cached-memory": lambda: CachedReranker(_bi(), MemoryScoreCache()),
    "cached-overlap": lambda: CachedReranker(OverlapScorer(), MemoryScoreCache(max_entries=3)),
}


@pytest.mark.parametrize("case", sorted(CONTRACT_CASES))
def test_contract(case: str) -> None:
    reranker = CONTRACT_CASES[case]()
    keeps = reranker.keep if isinstance(reranker, CascadeReranker) else None
    check_reranker_contract(reranker, keeps=keeps)


def test_contract_for_sqlite_cache(tmp_path: Path) -> None:
    cache = SQLiteScoreCache(tmp_path / "scores.sqlite")
    check_reranker_contract(CachedReranker(_bi(), cache))
    cache.close()


# --- none ------------------------------------------------------------------------------


def test_none_keeps_input_order_with_reciprocal_rank_calibration() -> None:
    hits = [Hit(id=x, score=s, rank=r) for r, (x, s) in enumerate([("a", 9.0), ("b", 3.5),
                                                                     ("c", 7.0)], start=1)]
    ranking = NoRerank().rerank("q", hits)
    assert ranking.ids == ["a", "b", "c"]
    assert [h.raw_score for h in ranking] == [9.0, 3.5, 7.0]
    assert [h.calibrated_score for h in ranking] == [1.0, 0.5, pytest.approx(1 / 3)]
    plain = NoRerank().rerank("q", ["x", "y"], top_n=1)
    assert [(h.id, h.raw_score, h.score) for h in plain] == [("0", 1.0, 1.0)]


# --- bi-encoder ------------------------------------------------------------------------


def test_bi_encoder_scores_are_cosines() -> None:
    reranker = _bi()
    ranking = reranker.rerank("red apple", ["green pear", "red apple", "apple"])
    assert [h.index for h in ranking] == [1, 2, 0]
    by_index = {h.index: h for h in ranking}
    assert by_index[1].raw_score == pytest.approx(1.0)
    assert by_index[2].raw_score == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    assert by_index[0].raw_score == pytest.approx(0.0, abs=1e-6)
    assert by_index[0].calibrated_score == pytest.approx(0.5, abs=1e-6)  # (cos + 1) / 2


def test_bi_encoder_is_a_pair_scorer_agreeing_with_rerank() -> None:
    reranker = _bi()
    assert isinstance(reranker, PairScorer)
    pairs = [("red apple", "red apple"), ("red apple", "apple"), ("pear", "red apple")]
    np.testing.assert_allclose(reranker.score_pairs(pairs), [1.0, 1 / np.sqrt(2), 0.0],
                               atol=1e-6)
    assert reranker.score_pairs([]).shape == (0,)


class FakeIndex:
    def __init__(self, encoder: BagOfWordsEncoder, texts: Mapping[str, str],
                 identity: Mapping[str, Any] | None = None) -> None:
        self._ids = list(texts)
        self._vectors = encoder.encode(list(texts.values()))
        self._identity = identity if identity is not None else encoder.identity
        self._encoder = encoder
        self.asked: list[str] = []

    @property
    def encoder_spec(self) -> str | None:
        return "fake-index-encoder"

    def load_encoder(self) -> BagOfWordsEncoder:
        return self._encoder

    def embed_query(self, text: str) -> np.ndarray:
        return self._encoder.encode([text])[0]

    @property
    def encoder_identity(self) -> Mapping[str, Any] | None:
        return self._identity

    def vectors_for(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        self.asked.extend(ids)
        out = np.zeros((len(ids), self._vectors.shape[1]), dtype=np.float32)
        found = np.zeros(len(ids), dtype=bool)
        for row, i in enumerate(ids):
            if i in self._ids:
                out[row] = self._vectors[self._ids.index(i)]
                found[row] = True
        return out, found


def test_bi_encoder_reuses_stored_vectors_of_the_same_encoder() -> None:
    indexed = BagOfWordsEncoder()
    index = FakeIndex(indexed, {"p0": "red apple", "p1": "green pear"})
    encoder = BagOfWordsEncoder()
    reranker = BiEncoderReranker("fake", encoder=encoder).bind_vectors(index)
    assert isinstance(index, VectorSource)
    candidates = [Passage(id="p0", doc_id="d0", text="red apple"),
                  Passage(id="p1", doc_id="d1", text="green pear"),
                  Passage(id="p9", doc_id="d9", text="apple"), "red"]
    ranking = reranker.rerank("red apple", candidates)
    # the index embedded the query; only the unknown passage and the string were encoded
    assert encoder.encoded == ["apple", "red"]
    assert indexed.encoded[-1] == "red apple"
    assert index.asked == ["p0", "p1", "p9"]
    assert [h.index for h in ranking] == [0, 2, 3, 1]
    fresh = BiEncoderReranker("fake", encoder=BagOfWordsEncoder()).rerank("red apple", candidates)
    np.testing.assert_allclose([h.raw_score for h in ranking], [h.raw_score for h in fresh],
                               atol=1e-6)


def test_bi_encoder_ignores_vectors_of_another_encoder() -> None:
    index = FakeIndex(BagOfWordsEncoder(), {"p0": "red apple"}, identity={"name": "other"})
    encoder = BagOfWordsEncoder()
    reranker = BiEncoderReranker("fake", encoder=encoder, vector_source=index)
    reranker.rerank("q", [Passage(id="p0", doc_id="d0", text="red apple")])
    assert index.asked == []
    assert encoder.encoded == ["q", "red apple"]


def test_bi_encoder_rejects_vectors_of_the_wrong_shape() -> None:
    class Broken(FakeIndex):
        def vectors_for(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
            return np.zeros((len(ids), 3)), np.ones(len(ids), dtype=bool)

    enc = BagOfWordsEncoder()
    reranker = BiEncoderReranker("fake", encoder=enc, vector_source=Broken(enc, {"p": "x"}))
    with pytest.raises(InvalidInputError, match="do not fit"):
        reranker.rerank("q", [Passage(id="p", doc_id="p", text="x")])


# --- cascade ---------------------------------------------------------------------------


def test_cascade_keeps_m_for_the_second_stage_and_maps_indices_back() -> None:
    second = OverlapScorer()
    texts = ["apple pie", "banana", "apple apple tart", "cherry apple", "apple"]
    # first stage: none keeps the first 3 in input order; second orders them by overlap
    cascade = CascadeReranker(NoRerank(), 3, second)
    ranking = cascade.rerank("apple tart", texts, top_n=2)
    assert len(second.scored) == 3  # the expensive stage saw only M candidates
    assert [h.index for h in ranking] == [2, 0]
    assert ranking.ids == ["2", "0"]
    assert set(ranking.timings_ms) == {"rerank.first", "rerank.second", "rerank"}
    assert ranking.timings_ms["rerank"] >= ranking.timings_ms["rerank.second"]


def test_cascade_rejects_non_positive_keep() -> None:
    with pytest.raises(InvalidInputError, match="at least 1"):
        CascadeReranker(NoRerank(), 0, NoRerank())


# --- cache -----------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        return MemoryScoreCache()
    return SQLiteScoreCache(tmp_path / "c" / "scores.sqlite")


def test_cached_rerank_only_scores_new_pairs(cache: Any) -> None:
    inner = OverlapScorer()
    reranker = CachedReranker(inner, cache)
    first = reranker.rerank("apple tart", ["apple", "tart apple", "pear"])
    assert len(inner.scored) == 3
    again = reranker.rerank("apple tart", ["pear", "apple", "fig", "tart apple"])
    assert inner.scored[3:] == [("apple tart", "fig")]
    assert [h.index for h in again] == [3, 1, 0, 2]
    by_text = {h.text: (h.raw_score, h.calibrated_score) for h in first}
    for h in again:
        if h.text in by_text:
            assert (h.raw_score, h.calibrated_score) == by_text[h.text]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.size) == (3, 4, 4)
    assert stats.hit_rate == pytest.approx(3 / 7)


def test_cached_score_pairs_and_rerank_use_separate_keys(cache: Any) -> None:
    inner = OverlapScorer()
    reranker = CachedReranker(inner, cache)
    np.testing.assert_array_equal(reranker.score_pairs([("a b", "a"), ("a b", "a b")]), [1, 2])
    np.testing.assert_array_equal(reranker.score_pairs([("a b", "a b"), ("a", "c")]), [2, 0])
    assert len(inner.scored) == 3
    reranker.rerank("a b", ["a"])  # same pair, but a rerank entry also needs calibration
    assert len(inner.scored) == 4


def test_sqlite_cache_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    first = SQLiteScoreCache(path)
    first.put_many({"k": CachedScore(1.5, 0.8, 2)})
    first.close()
    again = SQLiteScoreCache(path)
    assert again.get_many(["k", "missing"]) == [CachedScore(1.5, 0.8, 2), None]
    again.close()


def test_memory_cache_evicts_least_recently_used() -> None:
    cache = MemoryScoreCache(max_entries=2)
    cache.put_many({"a": CachedScore(1.0), "b": CachedScore(2.0)})
    cache.get_many(["a"])  # a is now more recent than b
    cache.put_many({"c": CachedScore(3.0)})
    assert cache.get_many(["a", "b", "c"]) == [CachedScore(1.0), None, CachedScore(3.0)]


def test_cache_key_separates_model_query_and_text() -> None:
    base = cache_key("m", "rerank", "q", "t")
    assert len(base) == 64
    assert len({base, cache_key("m2", "rerank", "q", "t"), cache_key("m", "pair", "q", "t"),
                cache_key("m", "rerank", "qt", ""), cache_key("m", "rerank", "q", "t ")}) == 5


def test_identity_attribute_keys_the_cache() -> None:
    class Versioned(OverlapScorer):
        identity = {"weights": "abc"}

    cache = MemoryScoreCache()
    CachedReranker(Versioned(), cache).rerank("q", ["q"])
    other = Versioned()
    other.identity = {"weights": "def"}  # type: ignore[misc]
    CachedReranker(other, cache).rerank("q", ["q"])
    assert len(other.scored) == 1  # different weights: not served from the cache


def test_cache_refuses_rerankers_that_do_not_score_pairs() -> None:
    assert not isinstance(NoRerank(), PairScorer)
    assert isinstance(NoRerank(), Reranker)
    with pytest.raises(InvalidInputError, match="cannot be cached"):
        CachedReranker(NoRerank(), MemoryScoreCache())


def test_bi_encoder_score_pairs_encodes_each_distinct_text_once() -> None:
    encoder = BagOfWordsEncoder()
    reranker = BiEncoderReranker("fake", encoder=encoder)
    pairs = [("red", "red apple"), ("pear", "green pear"), ("red", "green pear"),
             ("pear", "red apple")]  # fmt: skip
    scores = reranker.score_pairs(pairs)
    assert sorted(encoder.encoded) == sorted(["red", "pear", "red apple", "green pear"])
    fresh = BiEncoderReranker("fake", encoder=BagOfWordsEncoder())
    for (q, t), s in zip(pairs, scores, strict=True):
        assert s == pytest.approx(fresh.score_pairs([(q, t)])[0], abs=1e-6)


def test_run_reranker_uses_the_executor_for_every_planned_stage() -> None:
    from shortlist.rerank.base import (
        PlannedReranker,
        ScoringPlan,
        local_executor,
        run_reranker,
    )
    from shortlist.rerank.cascade import CascadeReranker

    first = BiEncoderReranker("hashing:32", name="cheap")
    second = BiEncoderReranker("hashing:64", name="fine")
    cascade = CascadeReranker(first, 3, second)
    texts = ["red apple pie", "green pear", "apple tart", "stock market", "apple"]
    calls: list[tuple[str, int]] = []

    def executor(stage: PlannedReranker, plan: ScoringPlan) -> np.ndarray:
        calls.append((stage.name, len(plan.units)))
        return local_executor(stage, plan)

    got = run_reranker(cascade, "apple", texts, 2, executor=executor)
    want = cascade.rerank("apple", texts, 2)
    assert calls == [("cheap", 1 + 5), ("fine", 1 + 3)]  # the query, then each candidate
    assert [(h.index, h.score) for h in got] == [(h.index, h.score) for h in want]

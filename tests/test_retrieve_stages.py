"""First-stage retrievers over the local store: the shared contract, fusion on rows, wrappers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retriever_contract import CONTRACT_DOCUMENTS, check_retriever_contract
from shortlist.errors import InvalidInputError
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.retrieve.stages import (
    BM25Retriever,
    DenseRetriever,
    HybridRetriever,
    RowHits,
    first_stage,
    fuse_rows,
)
from shortlist.retrieve.store import PassageStore
from shortlist.store.index import Index
from shortlist.types import Document


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.create(tmp_path_factory.mktemp("store") / "i", CONTRACT_DOCUMENTS,
                        encoder="hashing:64")


def test_the_local_index_is_a_passage_store(store: Index) -> None:
    assert isinstance(store, PassageStore)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_retriever_contract(store: Index, mode: str) -> None:
    check_retriever_contract(first_stage(store, mode))


@pytest.mark.parametrize("method", ["rrf", "weighted_sum"])
def test_hybrid_contract_for_each_fusion(store: Index, method: str) -> None:
    config = HybridConfig(method=method, depth=10)
    check_retriever_contract(HybridRetriever(BM25Retriever(store), DenseRetriever(store), config))


def test_fusion_ties_break_by_numeric_row() -> None:
    # Row 9 and row 10 fuse to the same RRF score; string order would put "10" first.
    left = RowHits(np.asarray([9, 10], dtype=np.int64), np.asarray([2.0, 1.0], np.float32))
    right = RowHits(np.asarray([10, 9], dtype=np.int64), np.asarray([2.0, 1.0], np.float32))
    config = HybridConfig(method="rrf", weights=(0.5, 0.5))
    rows, scores = fuse_rows(config, [left, right], k=2, query="q")
    assert rows.tolist() == [9, 10]
    assert scores[0] == scores[1]


def test_hybrid_weights_follow_the_query_length(store: Index) -> None:
    """A new index fuses with the default long-query weights: a long query is fused with
    (0.9, 0.1), a short one with (0.3, 0.7), exactly as fixed-weight configs would."""
    from shortlist.retrieve.hybrid import DEFAULT_HYBRID

    assert store.hybrid == DEFAULT_HYBRID
    short = "programming language"
    long = " ".join(["programming language python snake garden"] * 10)  # 50 words
    for query, weights in ((short, DEFAULT_HYBRID.weights), (long, DEFAULT_HYBRID.long_weights)):
        assert weights is not None
        fixed = HybridConfig(DEFAULT_HYBRID.method, weights=weights)
        expected = HybridRetriever(BM25Retriever(store), DenseRetriever(store), fixed)
        got = first_stage(store, "hybrid").run(query, k=6)
        want = expected.run(query, k=6)
        assert got.ids == want.ids
        assert [h.score for h in got] == [h.score for h in want]


def test_index_search_is_the_stage(store: Index) -> None:
    for mode in ("bm25", "dense", "hybrid"):
        wrapped = store.search("programming language", k=4, mode=mode)
        staged = first_stage(store, mode).run("programming language", k=4)
        assert wrapped.ids == staged.ids
        assert [h.score for h in wrapped] == [h.score for h in staged]
        assert set(wrapped.timings_ms) >= {"retrieve", "total"}
    hybrid = store.search("programming language", k=4, mode="hybrid").timings_ms
    assert {"retrieve.bm25", "retrieve.encode", "retrieve.dense", "retrieve.fusion"} <= set(hybrid)


def test_stages_are_frozen_and_named(store: Index) -> None:
    stage = BM25Retriever(store)
    assert stage.name == "bm25"
    with pytest.raises(AttributeError):
        stage.store = store  # type: ignore[misc]
    assert first_stage(store, "hybrid").name == "hybrid"


def test_dense_needs_vectors_and_modes_are_checked(tmp_path: Path) -> None:
    sparse = Index.create(tmp_path / "s", [Document("a", "alpha beta")], dense=False)
    with pytest.raises(InvalidInputError, match="no dense vectors"):
        DenseRetriever(sparse)
    with pytest.raises(InvalidInputError, match="unknown mode"):
        first_stage(sparse, "sparse")
    check_ranking = BM25Retriever(sparse).run("alpha", k=3)
    assert check_ranking.ids and check_ranking[0].doc_id == "a"


def test_best_per_document_collapses_passages(tmp_path: Path) -> None:
    from shortlist.corpus.chunking import Chunker

    long = Document("long", " ".join(f"alpha word{i}." for i in range(400)))
    index = Index.create(tmp_path / "d", [long, Document("b", "alpha")], encoder="hashing:32",
                         chunker=Chunker(size=64, overlap=0))
    assert index.num_passages > 2
    ranking = first_stage(index, "bm25", by="document").run("alpha", k=2)
    assert sorted(h.doc_id for h in ranking) == ["b", "long"]
    assert [h.rank for h in ranking] == [1, 2]


def test_index_embeds_a_query_once_and_keeps_a_bounded_memo(
    store: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shortlist.store.index as index_module

    fresh = Index.open(store.path)
    first = fresh.embed_query("lighthouse lamp")
    assert fresh.embed_query("lighthouse lamp") is first
    assert not first.flags.writeable
    np.testing.assert_allclose(first, fresh.encoder.encode(["lighthouse lamp"])[0])
    monkeypatch.setattr(index_module, "QUERY_MEMO", 2)
    fresh.embed_query("a")
    fresh.embed_query("b")
    assert fresh.embed_query("lighthouse lamp") is not first  # evicted, embedded again

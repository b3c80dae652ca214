"""The LangChain and LlamaIndex adapters. Each block skips when its framework is absent.

Rerankers are fakes (`OverlapScorer`: raw = query words found in the text, calibrated =
sigmoid(raw - 1)) or the model-free `bi-encoder:hashing:64`, so nothing loads a model.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from shortlist.errors import InvalidInputError, MissingDependencyError, SpecError
from shortlist.pipeline import Pipeline
from shortlist.rerank.base import Candidate, build_ranking, calibrate, candidate_text
from shortlist.rerank.registry import load_reranker
from shortlist.retrieve.stages import first_stage
from shortlist.store.index import Index
from shortlist.types import Document, Ranking

QUERY = "red apple pie"
TEXTS = [
    "a green pear",  # 0 query words
    "red apple pie recipe",  # 3
    "apple tart",  # 1
    "red wine",  # 1
    "pie and apple and red",  # 3
]
# Sorted by raw score, ties by input position.
EXPECTED_ORDER = [1, 4, 2, 3, 0]


class OverlapScorer:
    """Raw score = how many query words the text holds; calibrated = sigmoid(raw - 1)."""

    name = "overlap"

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        words = query.lower().split()
        raw = [float(sum(w in candidate_text(d).lower().split() for w in words)) for d in documents]
        cal = calibrate(np.asarray(raw) - 1.0, "sigmoid")
        return build_ranking(query, documents, raw, cal, top_n)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _without(monkeypatch: pytest.MonkeyPatch, framework: str, adapter: str) -> None:
    """Make `framework` unimportable and forget `adapter`, as on a machine without the extra."""
    for name in [m for m in sys.modules if m == framework or m.startswith(framework + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, framework, None)
    monkeypatch.delitem(sys.modules, adapter, raising=False)


def test_import_shortlist_imports_no_framework() -> None:
    code = (
        "import sys, shortlist, shortlist.integrations, shortlist.pipeline, "
        "shortlist.rerank.registry, shortlist.store.index\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('langchain', 'llama_index')))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- LangChain


@pytest.fixture
def lc() -> ModuleType:
    pytest.importorskip("langchain_core", reason="langchain-core is not installed")
    return importlib.import_module("shortlist.integrations.langchain")


def lc_docs() -> list[Any]:
    from langchain_core.documents import Document as LCDocument

    return [
        LCDocument(page_content=t, metadata={"source": f"s{i}", "tags": ["x"]}, id=f"id{i}")
        for i, t in enumerate(TEXTS)
    ]


def test_langchain_compressor_order_scores_and_metadata(lc: ModuleType) -> None:
    docs = lc_docs()
    out = lc.ShortlistRerank(reranker=OverlapScorer(), top_n=3).compress_documents(docs, QUERY)
    assert [d.page_content for d in out] == [TEXTS[i] for i in EXPECTED_ORDER[:3]]
    assert [d.metadata["first_stage_index"] for d in out] == EXPECTED_ORDER[:3]
    assert [d.metadata["raw_score"] for d in out] == [3.0, 3.0, 1.0]
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx(
        [sig(2.0), sig(2.0), sig(0.0)]
    )
    # the input's own metadata and id are kept
    assert [d.metadata["source"] for d in out] == ["s1", "s4", "s2"]
    assert [d.id for d in out] == ["id1", "id4", "id2"]


def test_langchain_compressor_matches_reranker_directly(lc: ModuleType) -> None:
    docs = lc_docs()
    reranker = load_reranker("bi-encoder:hashing:64")
    direct = reranker.rerank(QUERY, TEXTS, top_n=4)
    for compressor in (
        lc.ShortlistRerank(reranker=reranker, top_n=4),
        lc.ShortlistRerank(spec="bi-encoder:hashing:64", top_n=4),
    ):
        out = compressor.compress_documents(docs, QUERY)
        assert [d.metadata["first_stage_index"] for d in out] == [h.index for h in direct]
        assert [d.metadata["relevance_score"] for d in out] == [
            h.calibrated_score for h in direct
        ]
        assert [d.metadata["raw_score"] for d in out] == [h.raw_score for h in direct]


def test_langchain_compressor_threshold_and_top_n(lc: ModuleType) -> None:
    docs = lc_docs()
    # sigmoid(raw - 1) >= 0.5 keeps raw >= 1: everything but "a green pear"
    keep = lc.ShortlistRerank(reranker=OverlapScorer(), top_n=10, score_threshold=0.5)
    assert [d.metadata["first_stage_index"] for d in keep.compress_documents(docs, QUERY)] == [
        1,
        4,
        2,
        3,
    ]
    strict = lc.ShortlistRerank(reranker=OverlapScorer(), top_n=10, score_threshold=0.9)
    assert strict.compress_documents(docs, QUERY) == []  # best is sigmoid(2) = 0.88
    one = lc.ShortlistRerank(reranker=OverlapScorer(), top_n=1)
    assert [d.page_content for d in one.compress_documents(docs, QUERY)] == [TEXTS[1]]
    assert one.compress_documents([], QUERY) == []


def test_langchain_compressor_never_mutates_inputs(lc: ModuleType) -> None:
    docs = lc_docs()
    before = copy.deepcopy(docs)
    order = list(docs)
    out = lc.ShortlistRerank(reranker=OverlapScorer(), top_n=5).compress_documents(docs, QUERY)
    assert docs == before
    assert docs == order and all(a is b for a, b in zip(docs, order, strict=True))
    assert all("relevance_score" not in d.metadata for d in docs)
    assert all(o is not d for o in out for d in docs)


def test_langchain_compressor_async_matches_sync(lc: ModuleType) -> None:
    docs = lc_docs()
    compressor = lc.ShortlistRerank(reranker=OverlapScorer(), top_n=3)
    got = asyncio.run(compressor.acompress_documents(docs, QUERY))
    assert list(got) == list(compressor.compress_documents(docs, QUERY))


def test_langchain_spec_is_checked_early_and_loaded_once(
    lc: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shortlist.integrations import _common

    built: list[str] = []

    def fake_load(spec: str) -> OverlapScorer:
        built.append(spec)
        return OverlapScorer()

    monkeypatch.setattr(_common, "load_reranker", fake_load)
    compressor = lc.ShortlistRerank(spec="cross-encoder:/nowhere/model", top_n=2)
    assert built == []  # no model loaded at construction
    compressor.compress_documents(lc_docs(), QUERY)
    compressor.compress_documents(lc_docs(), QUERY)
    assert built == ["cross-encoder:/nowhere/model"]
    with pytest.raises(SpecError, match="unknown reranker kind"):
        lc.ShortlistRerank(spec="no-such-kind")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one of reranker= .* or spec="),
        ({"reranker": OverlapScorer(), "spec": "bi-encoder"}, "exactly one of"),
        ({"reranker": "bi-encoder"}, "must be a shortlist Reranker"),
        ({"spec": "bi-encoder", "top_n": 0}, "top_n must be >= 1"),
        ({"spec": "bi-encoder", "score_threshold": 1.5}, r"calibrated scores in \[0, 1\]"),
    ],
)
def test_langchain_compressor_bad_settings(
    lc: ModuleType, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        lc.ShortlistRerank(**kwargs)


@pytest.fixture
def index(tmp_path: Path) -> Index:
    docs = [
        Document("apple", "red apple pie with cinnamon", metadata={"lang": "en"}),
        Document("pear", "green pear and apple compote", metadata={"lang": "en"}),
        Document("wine", "red wine from the valley", metadata={"lang": "fr"}),
        Document("tart", "apple tart recipe", metadata={"lang": "fr"}),
        Document("bread", "bread and butter", metadata={"lang": "en"}),
    ]
    return Index.create(tmp_path / "idx", docs, encoder="hashing:32")


def test_langchain_retriever_first_stage_only(lc: ModuleType, index: Index) -> None:
    retriever = lc.ShortlistRetriever(index=index, k=4, top_n=3, mode="bm25")
    got = retriever.invoke(QUERY)
    want = index.search(QUERY, k=3, mode="bm25")
    assert len(got) == 3
    assert [d.page_content for d in got] == [h.text for h in want]
    assert [d.id for d in got] == want.ids
    for rank, (doc, hit) in enumerate(zip(got, want, strict=True), start=1):
        assert doc.metadata["id"] == hit.id
        assert doc.metadata["doc_id"] == hit.doc_id
        assert doc.metadata["score"] == hit.score
        assert doc.metadata["rank"] == rank
        assert doc.metadata["first_stage_rank"] == rank
        assert doc.metadata["lang"] == hit.metadata["lang"]
        assert "raw_score" not in doc.metadata


def test_langchain_retriever_with_reranker_matches_pipeline(lc: ModuleType, index: Index) -> None:
    retriever = lc.ShortlistRetriever(
        index=index, reranker=OverlapScorer(), k=5, top_n=2, mode="hybrid"
    )
    got = retriever.invoke(QUERY)
    want = Pipeline(first_stage(index, "hybrid"), OverlapScorer(), k=5, top_n=2).run(QUERY)
    assert [d.id for d in got] == want.ids
    assert [d.metadata["first_stage_rank"] for d in got] == [h.first_stage_rank for h in want]
    assert [d.metadata["raw_score"] for d in got] == [h.raw_score for h in want]
    assert [d.metadata["score"] for d in got] == [h.calibrated_score for h in want]
    assert [d.metadata["rank"] for d in got] == [1, 2]
    # "red apple pie with cinnamon" holds all three query words
    assert got[0].metadata["doc_id"] == "apple" and got[0].metadata["raw_score"] == 3.0


def test_langchain_retriever_filter_threshold_and_default_mode(
    lc: ModuleType, index: Index, tmp_path: Path
) -> None:
    fr = lc.ShortlistRetriever(index=index, k=5, top_n=5, filter={"lang": "fr"}).invoke(QUERY)
    assert {d.metadata["doc_id"] for d in fr} == {"wine", "tart"}
    strict = lc.ShortlistRetriever(
        index=index, reranker=OverlapScorer(), k=5, top_n=5, score_threshold=0.8
    )
    # only raw >= 2 passes: sigmoid(1) = 0.73 < 0.8 <= sigmoid(2) = 0.88
    assert [d.metadata["doc_id"] for d in strict.invoke(QUERY)] == ["apple"]
    bm25_only = Index.create(tmp_path / "b", [Document("a", "red apple")], dense=False)
    found = lc.ShortlistRetriever(index=bm25_only).invoke("apple")
    assert [(d.id, d.metadata["doc_id"]) for d in found] == [("a#0", "a")]
    with pytest.raises(InvalidInputError, match="score_threshold needs a reranker"):
        lc.ShortlistRetriever(index=index, score_threshold=0.5)
    with pytest.raises(InvalidInputError, match="must be a shortlist Index"):
        lc.ShortlistRetriever(index="path/to/index")


def test_langchain_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "langchain_core", "shortlist.integrations.langchain")
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[langchain\]'"):
        importlib.import_module("shortlist.integrations.langchain")


# ---------------------------------------------------------------- LlamaIndex


@pytest.fixture
def li() -> ModuleType:
    pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")
    return importlib.import_module("shortlist.integrations.llamaindex")


def li_nodes() -> list[Any]:
    from llama_index.core.schema import NodeWithScore, TextNode

    return [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=float(10 - i))
        for i, t in enumerate(TEXTS)
    ]


def test_llamaindex_postprocessor_order_scores_top_n(li: ModuleType) -> None:
    nodes = li_nodes()
    out = li.ShortlistRerank(reranker=OverlapScorer(), top_n=3).postprocess_nodes(
        nodes, query_str=QUERY
    )
    assert [n.node.node_id for n in out] == [f"n{i}" for i in EXPECTED_ORDER[:3]]
    assert [n.score for n in out] == pytest.approx([sig(2.0), sig(2.0), sig(0.0)])


def test_llamaindex_postprocessor_matches_reranker_directly(li: ModuleType) -> None:
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}", metadata={"k": i}), score=None)
        for i, t in enumerate(TEXTS)
    ]
    reranker = load_reranker("bi-encoder:hashing:64")
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    direct = reranker.rerank(QUERY, texts, top_n=4)
    for post in (
        li.ShortlistRerank(reranker=reranker, top_n=4),
        li.ShortlistRerank(spec="bi-encoder:hashing:64", top_n=4),
    ):
        out = post.postprocess_nodes(nodes, QueryBundle(QUERY))
        assert [n.node.node_id for n in out] == [f"n{h.index}" for h in direct]
        assert [n.score for n in out] == [h.calibrated_score for h in direct]


def test_llamaindex_postprocessor_threshold_and_inputs_untouched(li: ModuleType) -> None:
    nodes = li_nodes()
    before = copy.deepcopy(nodes)
    post = li.ShortlistRerank(reranker=OverlapScorer(), top_n=10, score_threshold=0.5)
    out = post.postprocess_nodes(nodes, query_str=QUERY)
    assert [n.node.node_id for n in out] == ["n1", "n4", "n2", "n3"]
    assert nodes == before  # the caller's NodeWithScore scores and order are unchanged
    assert all(o is not n for o in out for n in nodes)
    assert post.postprocess_nodes([], query_str=QUERY) == []


def test_llamaindex_postprocessor_async_matches_sync(li: ModuleType) -> None:
    post = li.ShortlistRerank(reranker=OverlapScorer(), top_n=2)
    got = asyncio.run(post.apostprocess_nodes(li_nodes(), query_str=QUERY))
    assert got == post.postprocess_nodes(li_nodes(), query_str=QUERY)


def test_llamaindex_postprocessor_needs_a_query(li: ModuleType) -> None:
    post = li.ShortlistRerank(reranker=OverlapScorer())
    with pytest.raises(InvalidInputError, match="needs the query"):
        post.postprocess_nodes(li_nodes())
    with pytest.raises(InvalidInputError, match="exactly one of"):
        li.ShortlistRerank()
    with pytest.raises(InvalidInputError, match="top_n must be >= 1"):
        li.ShortlistRerank(spec="bi-encoder", top_n=0)


def test_llamaindex_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "llama_index", "shortlist.integrations.llamaindex")
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[llamaindex\]'"):
        importlib.import_module("shortlist.integrations.llamaindex")

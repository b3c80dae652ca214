from __future__ import annotations

from pathlib import Path

import pytest

from shortlist.errors import SpecError
from shortlist.pipeline import Pipeline, parse_pipeline
from shortlist.rerank.base import build_ranking, candidate_text
from shortlist.retrieve.stages import first_stage
from shortlist.store.index import Index
from shortlist.types import Document, Ranking


class ReverseReranker:
    """Scores candidates by reversed first-stage position: the last becomes the first."""

    name = "reverse"

    def rerank(self, query, documents, top_n=None) -> Ranking:  # type: ignore[no-untyped-def]
        n = len(documents)
        raw = [float(i) for i in range(n)]
        cal = [i / max(n - 1, 1) for i in range(n)]
        assert all(candidate_text(d) for d in documents)
        return build_ranking(query, documents, raw, cal, top_n=top_n)


@pytest.fixture
def index(tmp_path: Path) -> Index:
    docs = [
        Document(f"d{i}", f"shared words document number {i} " + "filler " * i) for i in range(12)
    ]
    return Index.create(tmp_path / "i", docs, encoder="hashing:32")


def test_pipeline_keeps_both_ranks(index: Index) -> None:
    p = Pipeline(first_stage(index, "bm25"), ReverseReranker(), k=8, top_n=3)
    r = p.run("shared words document")
    assert len(r) == 3
    assert [h.rank for h in r] == [1, 2, 3]
    assert [h.first_stage_rank for h in r] == [8, 7, 6]
    assert all(h.first_stage_score is not None and h.raw_score is not None for h in r)
    assert set(r.timings_ms) >= {"retrieve", "rerank", "total"}


def test_pipeline_without_reranker(index: Index) -> None:
    r = Pipeline(first_stage(index, "hybrid"), None, k=8, top_n=4).run("document number")
    assert len(r) == 4 and "rerank" not in r.timings_ms
    assert [h.first_stage_rank for h in r] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("spec", "first", "rerank"),
    [
        ("bm25", "bm25", None),
        ("hybrid+bi-encoder", "hybrid", "bi-encoder"),
        (
            "bm25+cross-encoder:/m/x?backend=onnx-int8",
            "bm25",
            "cross-encoder:/m/x?backend=onnx-int8",
        ),
        ("dense+none", "dense", None),
    ],
)
def test_parse_pipeline(spec: str, first: str, rerank: str | None) -> None:
    p = parse_pipeline(spec)
    assert (p.first_stage, p.reranker) == (first, rerank)


@pytest.mark.parametrize("spec", ["sparse", "bm25+", "", "+bi-encoder"])
def test_parse_pipeline_errors(spec: str) -> None:
    with pytest.raises(SpecError):
        parse_pipeline(spec)


def test_bi_encoder_shares_the_index_encoder_when_specs_match(index: Index) -> None:
    from shortlist.rerank.bi_encoder import BiEncoderReranker

    same = Pipeline(first_stage(index, "dense"), BiEncoderReranker("hashing:32"), k=8, top_n=3)
    assert isinstance(same.reranker, BiEncoderReranker)
    assert same.reranker.encoder is index.encoder  # one model in memory, not two
    other = Pipeline(first_stage(index, "dense"), BiEncoderReranker("hashing:16"), k=8, top_n=3)
    assert isinstance(other.reranker, BiEncoderReranker)
    assert other.reranker.encoder is not index.encoder and other.reranker.encoder.dim == 16
    ranking = same.run("shared words document number 3")
    assert len(ranking) == 3 and all(h.first_stage_rank is not None for h in ranking)


def test_cascade_stages_are_bound_to_the_index(index: Index) -> None:
    from shortlist.rerank.bi_encoder import BiEncoderReranker
    from shortlist.rerank.cascade import CascadeReranker

    cascade = CascadeReranker(BiEncoderReranker("hashing:32"), 4, ReverseReranker())
    pipeline = Pipeline(first_stage(index, "bm25"), cascade, k=8, top_n=3)
    assert isinstance(pipeline.reranker, CascadeReranker)
    first = pipeline.reranker.first
    assert isinstance(first, BiEncoderReranker) and first.encoder is index.encoder
    assert len(pipeline.run("shared words document number 3")) == 3


def test_pipeline_prints_its_spec_and_reads_in_one_line(index: Index) -> None:
    pipeline = Pipeline.from_spec("bm25+cascade:bi-encoder:hashing:32>4>none", index, k=8, top_n=3)
    assert str(pipeline) == "bm25+cascade:bi-encoder:hashing:32>4>none"
    assert pipeline.describe() == "bm25(k=8) > bi-encoder:hashing:32 > top(4) > none > top(3)"
    assert [type(s).__name__ for s in pipeline.stages] == [
        "BM25Retriever", "BiEncoderReranker", "NoRerank", "Cutoff"
    ]
    rebuilt = Pipeline.from_spec(str(pipeline), index, k=8, top_n=3)
    query = "shared words document number 3"
    assert rebuilt.run(query).ids == pipeline.run(query).ids
    assert str(Pipeline.from_spec("hybrid", index)) == "hybrid"


def test_pipeline_run_is_first_stage_then_rerank(index: Index) -> None:
    pipeline = Pipeline(first_stage(index, "hybrid"), ReverseReranker(), k=6, top_n=2)
    query = "shared words document"
    first = pipeline.first_stage.run(query, k=6)
    assert pipeline.rerank(query, first).ids == pipeline.run(query).ids
    timings = pipeline.run(query).timings_ms
    assert set(timings) == {
        "retrieve.bm25", "retrieve.encode", "retrieve.dense", "retrieve.fusion",
        "retrieve", "rerank", "total",
    }

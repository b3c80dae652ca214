"""Retrieve K, rerank, keep N: the two stages composed, with per-stage timings.

    pipeline = Pipeline(index, load_reranker("cross-encoder:/models/minilm"), k=50, top_n=10)
    ranking = pipeline.run("how do I rotate logs?")

A pipeline spec string names both stages, as used by the CLI and the evaluation
harness: `FIRST_STAGE[+RERANKER_SPEC]`, e.g. `bm25`, `hybrid+bi-encoder`,
`bm25+cross-encoder:/path?backend=onnx-int8`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shortlist.errors import SpecError
from shortlist.rerank.base import Reranker, bind_to_store
from shortlist.retrieve.store import VectorSource
from shortlist.types import Ranking

FIRST_STAGES: tuple[str, ...] = ("bm25", "dense", "hybrid")


class Retriever(Protocol):
    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        filter: Mapping[str, Any] | None = None,
    ) -> Ranking: ...


@dataclass(frozen=True)
class PipelineSpec:
    first_stage: str
    reranker: str | None

    def __str__(self) -> str:
        return self.first_stage + (f"+{self.reranker}" if self.reranker else "")


def parse_pipeline(spec: str) -> PipelineSpec:
    """Split `FIRST_STAGE[+RERANKER_SPEC]`; the reranker spec itself is checked by the registry."""
    first, _, rerank = spec.strip().partition("+")
    if first not in FIRST_STAGES:
        raise SpecError(
            f"unknown first stage {first!r} in pipeline {spec!r}; expected one of "
            f"{', '.join(FIRST_STAGES)}, optionally followed by +RERANKER_SPEC"
        )
    rerank = rerank.strip()
    if spec.strip().endswith("+") or (rerank == "" and "+" in spec):
        raise SpecError(
            f"pipeline {spec!r} ends with '+': name a reranker after it, or drop the '+'"
        )
    return PipelineSpec(first, None if rerank in ("", "none") else rerank)


def bind_to_retriever(reranker: Reranker, retriever: object) -> Reranker:
    """Let a reranker reuse what the retriever already computed.

    A bi-encoder reranker whose model matches the index's encoder reads the stored
    passage vectors instead of re-encoding every candidate (it checks the identity).
    """
    if isinstance(retriever, VectorSource):
        return bind_to_store(reranker, retriever)
    return reranker


@dataclass(frozen=True)
class Pipeline:
    """First stage `retriever` (mode `mode`, top `k`), then `reranker` keeps `top_n`."""

    retriever: Retriever
    reranker: Reranker | None = None
    k: int = 50
    top_n: int = 10
    mode: str = "hybrid"

    def __post_init__(self) -> None:
        if self.reranker is not None:
            object.__setattr__(self, "reranker", bind_to_retriever(self.reranker, self.retriever))

    def run(
        self,
        query: str,
        *,
        filter: Mapping[str, Any] | None = None,
        k: int | None = None,
        top_n: int | None = None,
    ) -> Ranking:
        """Every returned hit carries its first-stage rank/score and its final rank/score."""
        t0 = time.perf_counter()
        k = self.k if k is None else k
        top_n = self.top_n if top_n is None else top_n
        first = self.retriever.search(query, k=k, mode=self.mode, filter=filter)
        t1 = time.perf_counter()
        timings = {
            f"retrieve.{name}": v
            for name, v in first.timings_ms.items()
            if name not in ("total", "retrieve")
        }
        timings["retrieve"] = (t1 - t0) * 1000
        if self.reranker is None:
            final = first.top(top_n)
        else:
            final = self.reranker.rerank(query, first.hits, top_n=top_n)
            timings["rerank"] = (time.perf_counter() - t1) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        return Ranking(query=query, hits=final.hits, timings_ms=timings)

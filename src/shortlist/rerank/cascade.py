"""A cascade: a cheap reranker narrows the candidates, an expensive one orders the rest."""

from __future__ import annotations

import time
from collections.abc import Sequence

from shortlist.errors import InvalidInputError
from shortlist.rerank.base import (
    NO_OPTIONS,
    Candidate,
    Executor,
    Reranker,
    RerankOptions,
    bind_to_store,
    local_executor,
    run_reranker,
    supported_options,
)
from shortlist.retrieve.store import VectorSource
from shortlist.types import Ranking


class CascadeReranker:
    """`first` scores every candidate and keeps its top `keep`; `second` reranks those.

    The result holds only `second`'s ranking (scores, calibration and raw scores are
    `second`'s); `index` still refers to the position in the caller's `documents`, and
    plain-string candidates keep the id of that position. The kept candidates reach
    `second` in input order, so its ties are broken by input position as the contract
    asks. Timings: `rerank.first`, `rerank.second` and the total `rerank`.

    A `ComposedReranker`: run with an executor (the server's batcher), both stages
    score through it; request options go to both stages.
    """

    def __init__(self, first: Reranker, keep: int, second: Reranker) -> None:
        if keep <= 0:
            raise InvalidInputError(f"a cascade must keep at least 1 candidate, got keep={keep}")
        self.first = first
        self.keep = keep
        self.second = second

    @property
    def name(self) -> str:
        return f"cascade:{self.first.name}>{self.keep}>{self.second.name}"

    @property
    def stages(self) -> tuple[Reranker, ...]:
        return (self.first, self.second)

    @property
    def supported_options(self) -> frozenset[str]:
        return supported_options(self.first) | supported_options(self.second)

    def bind_vectors(self, source: VectorSource) -> CascadeReranker:
        """A cascade whose stages reuse `source`'s stored vectors where they can."""
        return CascadeReranker(
            bind_to_store(self.first, source), self.keep, bind_to_store(self.second, source)
        )

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        return self.rerank_with(
            query, documents, top_n, executor=local_executor, options=NO_OPTIONS
        )

    def rerank_with(
        self,
        query: str,
        documents: Sequence[Candidate],
        top_n: int | None,
        *,
        executor: Executor,
        options: RerankOptions,
    ) -> Ranking:
        start = time.perf_counter()
        coarse = run_reranker(
            self.first, query, documents, self.keep, options=options, executor=executor
        )
        mid = time.perf_counter()
        kept = sorted(h.index for h in coarse.hits if h.index is not None)
        fine = run_reranker(
            self.second,
            query,
            [documents[i] for i in kept],
            top_n,
            options=options,
            executor=executor,
        )
        end = time.perf_counter()
        hits = []
        for h in fine.hits:
            assert h.index is not None
            original = kept[h.index]
            if isinstance(documents[original], str):
                hits.append(h.with_(index=original, id=str(original), doc_id=str(original)))
            else:
                hits.append(h.with_(index=original))
        timings = {
            "rerank.first": (mid - start) * 1000.0,
            "rerank.second": (end - mid) * 1000.0,
            "rerank": (end - start) * 1000.0,
        }
        stats = dict(coarse.stats)
        for key, value in fine.stats.items():
            stats[key] = stats.get(key, 0.0) + value
        return Ranking(
            query=query,
            hits=tuple(hits),
            timings_ms=timings,
            stats=stats,
            warnings=(*coarse.warnings, *fine.warnings),
        )

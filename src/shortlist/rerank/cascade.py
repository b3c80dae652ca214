"""A cascade: a cheap reranker narrows the candidates, an expensive one orders the rest."""

from __future__ import annotations

import time
from collections.abc import Sequence

from shortlist.errors import InvalidInputError
from shortlist.rerank.base import Candidate, Reranker
from shortlist.types import Ranking


class CascadeReranker:
    """`first` scores every candidate and keeps its top `keep`; `second` reranks those.

    The result holds only `second`'s ranking (scores, calibration and raw scores are
    `second`'s); `index` still refers to the position in the caller's `documents`, and
    plain-string candidates keep the id of that position. The kept candidates reach
    `second` in input order, so its ties are broken by input position as the contract
    asks. Timings: `rerank.first`, `rerank.second` and the total `rerank`.
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

    def with_vector_source(self, source: object) -> CascadeReranker:
        """A cascade whose stages reuse `source`'s stored vectors where they can
        (`shortlist.pipeline.bind_to_retriever` applied to each stage)."""
        from shortlist.pipeline import bind_to_retriever

        return CascadeReranker(
            bind_to_retriever(self.first, source), self.keep, bind_to_retriever(self.second, source)
        )

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        start = time.perf_counter()
        coarse = self.first.rerank(query, documents, top_n=self.keep)
        mid = time.perf_counter()
        kept = sorted(h.index for h in coarse.hits if h.index is not None)
        fine = self.second.rerank(query, [documents[i] for i in kept], top_n=top_n)
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
        return Ranking(query=query, hits=tuple(hits), timings_ms=timings)

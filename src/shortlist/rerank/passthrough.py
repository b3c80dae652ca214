"""The `none` reranker: the no-rerank baseline that keeps the first-stage order."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from shortlist.rerank.base import Candidate, build_ranking
from shortlist.types import Hit, Ranking


class NoRerank:
    """Keeps candidates in input (first-stage) order.

    - `raw_score`: the first-stage score for a `Hit` candidate, else `1 / (position + 1)`.
    - `calibrated_score`: `1 / (position + 1)` for every candidate.

    Why reciprocal rank and not a min-max of first-stage scores: min-max depends on
    the other candidates of the query and on the first stage's scale (BM25 scores are
    unbounded), so a threshold would mean something different for every query. `1/rank`
    is in (0, 1], strictly decreasing, so sorting by it reproduces the input order
    exactly, and it is the same for every query. It is a position weight, not a
    relevance probability: do not threshold it as one.
    """

    def __init__(self, *, name: str = "none") -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        start = time.perf_counter()
        n = len(documents)
        calibrated = 1.0 / np.arange(1, n + 1, dtype=np.float64)
        raw = [
            float(c.score) if isinstance(c, Hit) else float(calibrated[i])
            for i, c in enumerate(documents)
        ]
        elapsed = (time.perf_counter() - start) * 1000.0
        timings = {"rerank": elapsed}
        return build_ranking(query, documents, raw, calibrated, top_n, timings_ms=timings)

"""Framework-free pieces shared by the adapters: building the reranker, cutting a ranking."""

from __future__ import annotations

import threading
from typing import Any

from shortlist.errors import InvalidInputError
from shortlist.rerank.base import Reranker
from shortlist.rerank.registry import load_reranker, parse_spec
from shortlist.types import Hit, Ranking


def check_settings(
    reranker: Any, spec: str | None, top_n: int, score_threshold: float | None
) -> None:
    """Raise `InvalidInputError` unless exactly one of `reranker`/`spec` is given and the
    cutoffs make sense. A spec is parsed here (so typos fail at construction) but its
    model is only loaded on first use."""
    if (reranker is None) == (spec is None):
        raise InvalidInputError(
            "give exactly one of reranker= (a shortlist Reranker) or spec= (a reranker spec "
            "string such as 'cross-encoder:/models/minilm')"
        )
    if reranker is not None and not isinstance(reranker, Reranker):
        raise InvalidInputError(
            f"reranker= must be a shortlist Reranker (with .name and .rerank()), "
            f"got {type(reranker).__name__}; build one with shortlist.rerank.load_reranker"
        )
    if spec is not None:
        parse_spec(spec)
    if top_n < 1:
        raise InvalidInputError(f"top_n must be >= 1, got {top_n}")
    if score_threshold is not None and not 0.0 <= score_threshold <= 1.0:
        raise InvalidInputError(
            f"score_threshold applies to calibrated scores in [0, 1], got {score_threshold}"
        )


class LazyReranker:
    """Holds a given reranker, or builds one from a spec once, on first use (thread-safe)."""

    def __init__(self, reranker: Reranker | None, spec: str | None) -> None:
        self._reranker = reranker
        self._spec = spec
        self._lock = threading.Lock()

    def get(self) -> Reranker:
        if self._reranker is None:
            with self._lock:
                if self._reranker is None:
                    assert self._spec is not None
                    self._reranker = load_reranker(self._spec)
        return self._reranker


def calibrated(hit: Hit) -> float:
    """The hit's calibrated score; the sort score for stages that do not calibrate."""
    return hit.calibrated_score if hit.calibrated_score is not None else hit.score


def cut(ranking: Ranking, score_threshold: float | None) -> tuple[Hit, ...]:
    """The hits whose calibrated score is at least `score_threshold` (all when None)."""
    if score_threshold is None:
        return ranking.hits
    return tuple(h for h in ranking.hits if calibrated(h) >= score_threshold)

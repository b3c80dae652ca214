"""`HybridConfig`: how the hybrid first stage fuses BM25 and dense results."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shortlist.errors import InvalidInputError
from shortlist.retrieve.fusion import (
    DEFAULT_FUSION,
    DEFAULT_FUSION_WEIGHTS,
    DEFAULT_LONG_QUERY_WEIGHTS,
    DEFAULT_LONG_QUERY_WORDS,
    FUSIONS,
    fuse,
)


@dataclass(frozen=True)
class HybridConfig:
    """How `HybridRetriever` fuses two first stages: a method of `shortlist.retrieve.fusion`.

    `method` is a key of `shortlist.retrieve.fusion.FUSIONS` ("rrf", "minmax", "zscore",
    "dbsf"; "weighted_sum" is min-max, kept for old manifests). `weights` are
    (BM25, dense), used by every method (RRF included: weighted RRF). Each side
    contributes its top `depth` (at least the requested k) before fusion; `rrf_k` is
    RRF's constant.

    `long_weights`, when set, are the weights for long queries: a query of at most
    `long_words[0]` whitespace-separated words is fused with `weights`, one of at least
    `long_words[1]` words with `long_weights`, and one in between with the linear mix
    (`weights_for`). None (the field's default) fuses every query with `weights`.
    `DEFAULT_HYBRID`, what a new index gets, has them (see `DEFAULT_LONG_QUERY_WEIGHTS`
    for why); weights given in a spec or a pipeline file without long-query weights mean
    fixed weights.

    Raises `InvalidInputError` for an unknown method, bad weights or a depth < 1.
    """

    method: str = DEFAULT_FUSION
    depth: int = 100
    rrf_k: int = 60
    weights: tuple[float, float] = DEFAULT_FUSION_WEIGHTS
    long_weights: tuple[float, float] | None = None
    long_words: tuple[int, int] = DEFAULT_LONG_QUERY_WORDS

    def __post_init__(self) -> None:
        if self.method not in FUSIONS:
            raise InvalidInputError(
                f"unknown fusion method {self.method!r}; valid: {', '.join(sorted(FUSIONS))}"
            )
        if self.depth < 1:
            raise InvalidInputError(f"hybrid depth must be >= 1, got {self.depth}")
        if self.rrf_k < 1:
            raise InvalidInputError(f"rrf_k must be >= 1, got {self.rrf_k}")
        _check_weights(self.weights, "hybrid weights")
        if self.long_weights is not None:
            _check_weights(self.long_weights, "long-query weights")
        lo, hi = self.long_words
        if not 0 <= lo < hi:
            raise InvalidInputError(
                "long-query word counts must be two integers 0 <= short < long, e.g. "
                f"(20, 40); got {self.long_words}"
            )

    def weights_for(self, query: str | None) -> tuple[float, float]:
        """The (BM25, dense) weights for `query` (`weights` when `query` is None or the
        config has no long-query weights)."""
        if self.long_weights is None or query is None:
            return self.weights
        lo, hi = self.long_words
        t = min(1.0, max(0.0, (len(query.split()) - lo) / (hi - lo)))
        if t == 0.0:
            return self.weights
        (a, b), (c, d) = self.weights, self.long_weights
        return (a + t * (c - a), b + t * (d - b))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "depth": self.depth,
            "rrf_k": self.rrf_k,
            "weights": list(self.weights),
        }
        if self.long_weights is not None:
            out["long_query_weights"] = list(self.long_weights)
            out["long_query_words"] = list(self.long_words)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HybridConfig:
        """From `to_dict` output; keys missing from an older manifest take the values
        that index was built with (equal-weight RRF, k=60, depth 100, fixed weights)."""
        long = d.get("long_query_weights")
        words = d.get("long_query_words")
        return cls(
            d.get("method", "rrf"),
            int(d.get("depth", 100)),
            int(d.get("rrf_k", 60)),
            (float(w[0]), float(w[1])) if (w := d.get("weights")) else (0.5, 0.5),
            (float(long[0]), float(long[1])) if long else None,
            (int(words[0]), int(words[1])) if words else DEFAULT_LONG_QUERY_WORDS,
        )

    def fuse(
        self, runs: Sequence[Mapping[int, float]], query: str | None = None
    ) -> dict[int, float]:
        """Fuse the (BM25, dense) runs of one query, keyed by passage row."""
        return fuse(self.method, runs, **self.fusion_params(query))

    def fusion_params(self, query: str | None = None) -> dict[str, Any]:
        """Keyword parameters for `fuse(self.method, ...)` for `query`."""
        weights = list(self.weights_for(query))
        if self.method == "rrf":
            return {"k": self.rrf_k, "weights": weights}
        return {"weights": weights}




def _check_weights(weights: Sequence[float], what: str) -> None:
    if len(weights) != 2 or any(not math.isfinite(w) or w < 0 for w in weights) or not any(weights):
        raise InvalidInputError(
            f"{what} must be two finite numbers >= 0 (BM25, dense), not both 0; got {weights}"
        )


DEFAULT_HYBRID = HybridConfig(long_weights=DEFAULT_LONG_QUERY_WEIGHTS)
"""The fusion a new index gets: min-max, (0.3, 0.7), moving to (0.9, 0.1) for long queries."""

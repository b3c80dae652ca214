"""`HybridConfig`: how the hybrid first stage fuses BM25 and dense results."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shortlist.errors import InvalidInputError
from shortlist.retrieve.fusion import DEFAULT_FUSION, DEFAULT_FUSION_WEIGHTS, FUSIONS, fuse


@dataclass(frozen=True)
class HybridConfig:
    """How `HybridRetriever` fuses two first stages: a method of `shortlist.retrieve.fusion`.

    `method` is a key of `shortlist.retrieve.fusion.FUSIONS` ("rrf", "minmax", "zscore",
    "dbsf"; "weighted_sum" is min-max, kept for old manifests). `weights` are
    (BM25, dense), used by every method (RRF included: weighted RRF). Each side
    contributes its top `depth` (at least the requested k) before fusion; `rrf_k` is
    RRF's constant.

    Raises `InvalidInputError` for an unknown method, bad weights or a depth < 1.
    """

    method: str = DEFAULT_FUSION
    depth: int = 100
    rrf_k: int = 60
    weights: tuple[float, float] = DEFAULT_FUSION_WEIGHTS

    def __post_init__(self) -> None:
        if self.method not in FUSIONS:
            raise InvalidInputError(
                f"unknown fusion method {self.method!r}; valid: {', '.join(sorted(FUSIONS))}"
            )
        if self.depth < 1:
            raise InvalidInputError(f"hybrid depth must be >= 1, got {self.depth}")
        if self.rrf_k < 1:
            raise InvalidInputError(f"rrf_k must be >= 1, got {self.rrf_k}")
        if (
            len(self.weights) != 2
            or any(not math.isfinite(w) or w < 0 for w in self.weights)
            or not any(self.weights)
        ):
            raise InvalidInputError(
                "hybrid weights must be two finite numbers >= 0 (BM25, dense), not both 0; "
                f"got {self.weights}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "depth": self.depth,
            "rrf_k": self.rrf_k,
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HybridConfig:
        """From `to_dict` output; keys missing from an older manifest take the values
        that index was built with (equal-weight RRF, k=60, depth 100)."""
        return cls(
            d.get("method", "rrf"),
            int(d.get("depth", 100)),
            int(d.get("rrf_k", 60)),
            (float(w[0]), float(w[1])) if (w := d.get("weights")) else (0.5, 0.5),
        )

    def fuse(self, runs: Sequence[Mapping[int, float]]) -> dict[int, float]:
        """Fuse the (BM25, dense) runs of one query, keyed by passage row."""
        return fuse(self.method, runs, **self.fusion_params())

    def fusion_params(self) -> dict[str, Any]:
        """Keyword parameters for `fuse(self.method, ...)`."""
        if self.method == "rrf":
            return {"k": self.rrf_k, "weights": list(self.weights)}
        return {"weights": list(self.weights)}

"""`HybridConfig`: how the hybrid first stage fuses BM25 and dense results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HybridConfig:
    """How `HybridRetriever` fuses two first stages: a method of `shortlist.retrieve.fusion`.

    Each side contributes its top `depth` (at least the requested k) before fusion;
    `rrf_k` is RRF's constant, `weights` the (sparse, dense) weights of the other methods.
    """

    method: str = "rrf"
    depth: int = 100
    rrf_k: int = 60
    weights: tuple[float, float] = (0.5, 0.5)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "depth": self.depth,
            "rrf_k": self.rrf_k,
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HybridConfig:
        return cls(
            d.get("method", "rrf"),
            int(d.get("depth", 100)),
            int(d.get("rrf_k", 60)),
            (float(w[0]), float(w[1])) if (w := d.get("weights")) else (0.5, 0.5),
        )

    def fusion_params(self) -> dict[str, Any]:
        """Keyword parameters for `fuse(self.method, ...)`."""
        if self.method == "rrf":
            return {"k": self.rrf_k}
        return {"weights": list(self.weights)}

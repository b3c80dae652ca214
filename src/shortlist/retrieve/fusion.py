"""Fusion of first-stage rankings: pure functions over `{doc_id: score}` mappings.

Each run maps a document id to its score for one query (higher is better). Every function
returns a new dict and never mutates its inputs. Ranks are 1-based positions after sorting
a run by score descending, ties broken by doc id ascending, so results never depend on
dict order.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from shortlist.errors import InvalidInputError

Norm = Literal["minmax", "zscore", "none"]


def ranked(run: Mapping[str, float], depth: int | None = None) -> list[tuple[str, float]]:
    """(doc_id, score) pairs by score descending, ties by doc id ascending, cut at `depth`."""
    if depth is not None and depth < 0:
        raise InvalidInputError(f"depth must be non-negative or None, got {depth}")
    pairs = sorted(run.items(), key=lambda item: (-item[1], item[0]))
    return pairs if depth is None else pairs[:depth]


def rrf(
    runs: Sequence[Mapping[str, float]], k: int = 60, depth: int | None = None
) -> dict[str, float]:
    """Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009).

        RRF(d) = sum over runs r containing d of 1 / (k + rank_r(d))

    rank_r(d) is the 1-based position of d in run r sorted by score descending, ties broken
    by doc id ascending (for determinism; the paper leaves ties unspecified). Only the top
    `depth` documents of each run take part (all when `depth` is None). k=60 is the paper's
    value. Returns {doc_id: fused score}; a document absent from a run gets nothing from it.
    """
    if k < 0:
        raise InvalidInputError(f"rrf k must be non-negative, got {k}")
    fused: dict[str, float] = {}
    for run in runs:
        for rank, (doc_id, _) in enumerate(ranked(run, depth), start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused


def normalise(run: Mapping[str, float], norm: Norm = "minmax") -> dict[str, float]:
    """Normalise one run's scores, as ranx's `min_max_norm` / `z_score_norm` (Bassani 2022).

    - "minmax": (s - min) / (max - min); a run whose scores are all equal maps to 1.0
      (every document is as good as the best one).
    - "zscore": (s - mean) / std, population std; a constant run maps to 0.0.
    - "none": scores unchanged.
    """
    if norm not in NORMALISERS:
        raise InvalidInputError(f"unknown norm {norm!r}; valid: {', '.join(NORMALISERS)}")
    return NORMALISERS[norm](run)


def _minmax(run: Mapping[str, float]) -> dict[str, float]:
    if not run:
        return {}
    low, high = min(run.values()), max(run.values())
    if high == low:
        return dict.fromkeys(run, 1.0)
    span = high - low
    return {doc_id: (score - low) / span for doc_id, score in run.items()}


def _zscore(run: Mapping[str, float]) -> dict[str, float]:
    if not run:
        return {}
    mean = sum(run.values()) / len(run)
    std = math.sqrt(sum((score - mean) ** 2 for score in run.values()) / len(run))
    if std == 0:
        return dict.fromkeys(run, 0.0)
    return {doc_id: (score - mean) / std for doc_id, score in run.items()}


NORMALISERS: dict[str, Callable[[Mapping[str, float]], dict[str, float]]] = {
    "minmax": _minmax,
    "zscore": _zscore,
    "none": dict,
}


def weighted_sum(
    runs: Sequence[Mapping[str, float]],
    weights: Sequence[float] | None = None,
    norm: Norm = "minmax",
    depth: int | None = None,
) -> dict[str, float]:
    """Weighted sum of normalised scores ("CombSUM" with weights; Fox and Shaw, TREC-2 1994;
    normalisations as in ranx, Bassani 2022).

        score(d) = sum over runs r of w_r * norm_r(s_r(d))

    Each run is first cut to its top `depth` documents (by score, ties by doc id) and then
    normalised over those documents (see `normalise`). A document missing from a run
    contributes 0 for that run *after* normalisation: with minmax that equals the run's worst
    retrieved score, with zscore it equals the run's mean. Weights default to 1 for every
    run and need not sum to 1.
    """
    if weights is None:
        weights = [1.0] * len(runs)
    if len(weights) != len(runs):
        raise InvalidInputError(f"got {len(weights)} weights for {len(runs)} runs")
    if norm not in NORMALISERS:
        raise InvalidInputError(f"unknown norm {norm!r}; valid: {', '.join(NORMALISERS)}")
    fused: dict[str, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        normalised = NORMALISERS[norm](dict(ranked(run, depth)))
        for doc_id, score in normalised.items():
            fused[doc_id] = fused.get(doc_id, 0.0) + weight * score
    return fused


FUSIONS: dict[str, Callable[..., dict[str, float]]] = {
    "rrf": rrf,
    "weighted_sum": weighted_sum,
}
"""Fusion method name -> function(runs, **params)."""


def fuse(method: str, runs: Sequence[Mapping[str, float]], **params: Any) -> dict[str, float]:
    """Fuse `runs` with the named method (a key of `FUSIONS`) and its keyword parameters.

    Raises `InvalidInputError` for an unknown method or parameter.
    """
    function = FUSIONS.get(method)
    if function is None:
        raise InvalidInputError(
            f"unknown fusion method {method!r}; valid: {', '.join(sorted(FUSIONS))}"
        )
    signature = inspect.signature(function)
    try:
        signature.bind(runs, **params)
    except TypeError:
        accepted = [name for name in signature.parameters if name != "runs"]
        raise InvalidInputError(
            f"bad parameters {sorted(params)} for fusion {method!r}; it accepts: "
            f"{', '.join(accepted)}"
        ) from None
    return function(runs, **params)

"""Fusion of first-stage rankings: pure functions over `{key: score}` mappings.

A run maps a key (a passage row number, or a document id) to its score for one query,
higher is better. Keys are all `int` or all `str`; every function returns a new dict and
never mutates its inputs. The rank of a key in a run is its 1-based position after
sorting by score descending, ties broken by key ascending: numerically for `int` keys
(row 9 before row 10), so results never depend on dict order or on string order.

Methods (`FUSIONS`), each a pure function with its formula and reference below:

- ``rrf``: weighted reciprocal rank fusion;
- ``minmax``, ``zscore``, ``dbsf``: weighted sums of scores normalised per run by
  min-max, z-score, or the distribution-based 3-sigma rule (DBSF);
- ``weighted_sum``: the weighted sum with the normalisation as a parameter.

A document that one run did not retrieve (it fell below that run's `depth`) gets nothing
from that run under RRF, and that run's *lowest normalised score* under the weighted
sums: it ranked below every document the run returned, so it is scored as the worst of
them (0 with min-max; the run's minimum z-score; the run's minimum DBSF score).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from shortlist.errors import InvalidInputError

K = TypeVar("K", int, str)

DEFAULT_FUSION = "minmax"
"""The hybrid fusion an index gets unless told otherwise: min-max normalised scores summed
with `DEFAULT_FUSION_WEIGHTS`. Chosen by the sweep in docs/RESULTS.md ("Relevance
defaults"): of the fixed rules measured, it lost least to the better of BM25 and dense on
the collection where any rule lost (Lee), and beat both on the others."""
DEFAULT_FUSION_WEIGHTS: tuple[float, float] = (0.3, 0.7)
"""(BM25, dense) weights of `DEFAULT_FUSION` for a query of up to
`DEFAULT_LONG_QUERY_WORDS[0]` words."""
DEFAULT_LONG_QUERY_WEIGHTS: tuple[float, float] = (0.9, 0.1)
"""(BM25, dense) weights of `DEFAULT_FUSION` for a query of `DEFAULT_LONG_QUERY_WORDS[1]`
words or more: a passage used as the query ("find text like this one"), where BM25 has
many terms to match and a single query vector has to compress all of them. In between, the
weights move linearly with the query's word count. Chosen by the sweep in docs/RESULTS.md
("Default fusion and query length"): with it the default hybrid is within 0.005 nDCG@10
of the better of BM25 and dense on every collection measured, where fixed weights lost
0.047 on the one with passage-length queries."""
DEFAULT_LONG_QUERY_WORDS: tuple[int, int] = (20, 40)
"""Query lengths in whitespace-separated words: at or below the first the fusion uses its
`weights`; at or above the second its long-query weights."""

Norm = Literal["minmax", "zscore", "dbsf", "none"]


def ranked(run: Mapping[K, float], depth: int | None = None) -> list[tuple[K, float]]:
    """(key, score) pairs by score descending, ties by key ascending, cut at `depth`.

    Raises `InvalidInputError` for a negative `depth`.
    """
    if depth is not None and depth < 0:
        raise InvalidInputError(f"depth must be non-negative or None, got {depth}")
    pairs = sorted(run.items(), key=lambda item: (-item[1], item[0]))
    return pairs if depth is None else pairs[:depth]


def _weights(weights: Sequence[float] | None, n_runs: int) -> list[float]:
    if weights is None:
        return [1.0] * n_runs
    if len(weights) != n_runs:
        raise InvalidInputError(f"got {len(weights)} weights for {n_runs} runs")
    out = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in out):
        raise InvalidInputError(f"fusion weights must be finite and >= 0, got {list(weights)}")
    return out


def rrf(
    runs: Sequence[Mapping[K, float]],
    k: int = 60,
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> dict[K, float]:
    """Weighted reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009).

        RRF(d) = sum over runs r that contain d of w_r / (k + rank_r(d))

    rank_r(d) is the 1-based position of d in run r (score descending, ties by key
    ascending; the paper leaves ties unspecified). Only the top `depth` of each run take
    part (all when None). k=60 is the paper's value; weights default to 1 each (the
    paper's unweighted form) and need not sum to 1. A document absent from a run gets
    nothing from it. Raises `InvalidInputError` for k < 0 or bad weights.
    """
    if k < 0:
        raise InvalidInputError(f"rrf k must be non-negative, got {k}")
    fused: dict[K, float] = {}
    for run, weight in zip(runs, _weights(weights, len(runs)), strict=True):
        for rank, (key, _) in enumerate(ranked(run, depth), start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


def minmax_norm(run: Mapping[K, float]) -> dict[K, float]:
    """Min-max normalisation (as ranx's `min_max_norm`, Bassani 2022).

        s'(d) = (s(d) - min) / (max - min)

    A run whose scores are all equal maps to 1.0 (each document is as good as the best).
    """
    if not run:
        return {}
    low, high = min(run.values()), max(run.values())
    if high == low:
        return dict.fromkeys(run, 1.0)
    span = high - low
    return {key: (score - low) / span for key, score in run.items()}


def zscore_norm(run: Mapping[K, float]) -> dict[K, float]:
    """Z-score normalisation (as ranx's `z_score_norm`, Bassani 2022).

        s'(d) = (s(d) - mean) / std,   std the population standard deviation

    A constant run maps to 0.0.
    """
    if not run:
        return {}
    mean = sum(run.values()) / len(run)
    std = math.sqrt(sum((score - mean) ** 2 for score in run.values()) / len(run))
    if std == 0:
        return dict.fromkeys(run, 0.0)
    return {key: (score - mean) / std for key, score in run.items()}


def dbsf_norm(run: Mapping[K, float]) -> dict[K, float]:
    """Distribution-based score normalisation (DBSF; Mazzeschi 2023, as in Qdrant >= 1.11).

        lo = mean - 3 * std,   hi = mean + 3 * std
        s'(d) = clip((s(d) - lo) / (hi - lo), 0, 1)

    std is the sample standard deviation (n - 1 in the denominator), as Qdrant computes
    it. A run of one document, or of equal scores, maps to 0.5 (Qdrant's convention).
    """
    if not run:
        return {}
    n = len(run)
    if n == 1:
        return dict.fromkeys(run, 0.5)
    mean = sum(run.values()) / n
    std = math.sqrt(sum((score - mean) ** 2 for score in run.values()) / (n - 1))
    if std == 0:
        return dict.fromkeys(run, 0.5)
    low, span = mean - 3.0 * std, 6.0 * std
    return {key: min(1.0, max(0.0, (score - low) / span)) for key, score in run.items()}


NORMALISERS: dict[str, Callable[[Mapping[Any, float]], dict[Any, float]]] = {
    "minmax": minmax_norm,
    "zscore": zscore_norm,
    "dbsf": dbsf_norm,
    "none": dict,
}
"""Normalisation name -> function(run) -> normalised run."""


def normalise(run: Mapping[K, float], norm: Norm = "minmax") -> dict[K, float]:
    """Normalise one run's scores with the named method (a key of `NORMALISERS`).

    Raises `InvalidInputError` for an unknown method.
    """
    if norm not in NORMALISERS:
        raise InvalidInputError(f"unknown norm {norm!r}; valid: {', '.join(NORMALISERS)}")
    return NORMALISERS[norm](run)


def weighted_sum(
    runs: Sequence[Mapping[K, float]],
    weights: Sequence[float] | None = None,
    norm: Norm = "minmax",
    depth: int | None = None,
) -> dict[K, float]:
    """Weighted sum of normalised scores ("CombSUM" with weights; Fox and Shaw, TREC-2 1994;
    normalisations as in ranx, Bassani 2022, and Qdrant's DBSF).

        score(d) = sum over runs r of w_r * norm_r(s_r(d))

    Each run is first cut to its top `depth` (by score, ties by key) and then normalised
    over those documents (see `normalise`). A document missing from a run gets that run's
    lowest normalised score: it ranked below everything the run returned. (With min-max
    that is 0.) Weights default to 1 each and need not sum to 1.

    Raises `InvalidInputError` for an unknown norm or bad weights.
    """
    weights_ = _weights(weights, len(runs))
    if norm not in NORMALISERS:
        raise InvalidInputError(f"unknown norm {norm!r}; valid: {', '.join(NORMALISERS)}")
    normalised = [NORMALISERS[norm](dict(ranked(run, depth))) for run in runs]
    keys: dict[K, None] = {}
    for run in normalised:
        keys.update(dict.fromkeys(run))
    fused = dict.fromkeys(keys, 0.0)
    for run, weight in zip(normalised, weights_, strict=True):
        if not run:
            continue
        floor = min(run.values())
        for key in fused:
            fused[key] += weight * run.get(key, floor)
    return fused


def minmax(
    runs: Sequence[Mapping[K, float]],
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> dict[K, float]:
    """`weighted_sum` over min-max normalised scores: sum_r w_r * (s - min_r) / (max_r - min_r)."""
    return weighted_sum(runs, weights, "minmax", depth)


def zscore(
    runs: Sequence[Mapping[K, float]],
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> dict[K, float]:
    """`weighted_sum` over z-scores: sum_r w_r * (s - mean_r) / std_r (see `zscore_norm`)."""
    return weighted_sum(runs, weights, "zscore", depth)


def dbsf(
    runs: Sequence[Mapping[K, float]],
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> dict[K, float]:
    """Distribution-based score fusion (Mazzeschi 2023; Qdrant's ``fusion: dbsf``).

        score(d) = sum_r w_r * clip((s_r(d) - (mean_r - 3 std_r)) / (6 std_r), 0, 1)

    See `dbsf_norm`; a missing document gets the run's lowest normalised score.
    """
    return weighted_sum(runs, weights, "dbsf", depth)


def top(fused: Mapping[K, float], k: int) -> list[tuple[K, float]]:
    """The best `k` (key, score) pairs of a fused run, ties by key ascending."""
    return ranked(fused, k)


FUSIONS: dict[str, Callable[..., dict[Any, float]]] = {
    "rrf": rrf,
    "minmax": minmax,
    "zscore": zscore,
    "dbsf": dbsf,
    "weighted_sum": weighted_sum,
}
"""Fusion method name -> function(runs, **params)."""


def fuse(method: str, runs: Sequence[Mapping[K, float]], **params: Any) -> dict[K, float]:
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

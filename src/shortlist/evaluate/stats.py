"""Statistics over per-query metric values: confidence intervals, paired tests, corrections.

All functions are pure. Random procedures take an explicit `seed` so results repeat.
Paired functions take two equally long sequences of per-query values in the same query
order; `paired_values` builds them from two ``{query_id: value}`` dicts.

References: Smucker, Allan & Carterette, "A comparison of statistical significance tests
for information retrieval evaluation", CIKM 2007 (randomization and t tests); Holm, "A
simple sequentially rejective multiple test procedure", Scand. J. Statistics 1979; Efron &
Tibshirani, "An Introduction to the Bootstrap", 1993 (percentile interval).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shortlist.errors import InvalidInputError

CI_METHODS = ("t", "bootstrap")


@dataclass(frozen=True)
class MeanCI:
    """A mean with its confidence interval. `low`/`high` are NaN when n < 2."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float
    method: str


@dataclass(frozen=True)
class TestResult:
    """A paired test: `statistic` (mean difference a - b, or t), two-sided `p_value`."""

    statistic: float
    p_value: float
    n: int
    method: str


@dataclass(frozen=True)
class WinLossTie:
    """Query ids where a beats b by more than the tolerance (`wins`), loses, or ties."""

    wins: tuple[str, ...]
    losses: tuple[str, ...]
    ties: tuple[str, ...]

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.wins), len(self.losses), len(self.ties)


def _array(values: Sequence[float] | NDArray[np.float64], name: str) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be a flat sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"{name} contains NaN or infinite values")
    return array


def _paired(
    a: Sequence[float] | NDArray[np.float64], b: Sequence[float] | NDArray[np.float64]
) -> NDArray[np.float64]:
    x, y = _array(a, "a"), _array(b, "b")
    if x.shape != y.shape:
        raise InvalidInputError(f"paired samples differ in length: {len(x)} vs {len(y)}")
    if len(x) == 0:
        raise InvalidInputError("paired test needs at least one query")
    return x - y


def paired_values(
    a: Mapping[str, float], b: Mapping[str, float]
) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
    """Align two per-query dicts: (sorted query ids, values of a, values of b).

    Both must cover the same queries; anything else is an `InvalidInputError` naming them.
    """
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise InvalidInputError(
            f"the two systems were evaluated on different queries ({len(only)} differ, "
            f"e.g. {', '.join(only[:3])}); evaluate both on the same qrels"
        )
    qids = sorted(a)
    return qids, np.array([a[q] for q in qids], float), np.array([b[q] for q in qids], float)


def mean_ci(
    values: Sequence[float] | NDArray[np.float64],
    confidence: float = 0.95,
    method: str = "t",
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> MeanCI:
    """Mean of `values` with a two-sided confidence interval.

    ``method="t"`` (default): Student-t interval ``mean ± t_{(1+c)/2, n-1} · s / sqrt(n)``
    with the sample standard deviation ``s`` (ddof=1). ``method="bootstrap"``: percentile
    bootstrap over `n_resamples` resamples with replacement, seeded. With fewer than two
    values the interval is undefined and `low`/`high` are NaN.
    """
    from scipy import stats

    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence}")
    if method not in CI_METHODS:
        raise InvalidInputError(f"unknown CI method {method!r}; choose one of {CI_METHODS}")
    x = _array(values, "values")
    n = len(x)
    if n == 0:
        raise InvalidInputError("cannot average zero values")
    mean = float(x.mean())
    if n < 2:
        return MeanCI(mean, math.nan, math.nan, n, confidence, method)
    if method == "t":
        half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
        return MeanCI(mean, mean - half, mean + half, n, confidence, method)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return MeanCI(mean, float(low), float(high), n, confidence, method)


def randomization_test(
    a: Sequence[float] | NDArray[np.float64],
    b: Sequence[float] | NDArray[np.float64],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> TestResult:
    """Two-sided paired randomization (sign-flip permutation) test of mean(a - b) = 0.

    Under the null each per-query difference is equally likely to have either sign. The
    p-value is the share of sign assignments whose |mean difference| is at least the
    observed one. When ``2**n <= n_resamples`` all assignments are enumerated (exact test);
    otherwise `n_resamples` random ones are drawn with `seed`, and the observed assignment
    is counted in, ``p = (hits + 1) / (n_resamples + 1)``, so p is never 0.
    """
    d = _paired(a, b)
    n = len(d)
    observed = abs(float(d.mean()))
    # A relative tolerance so that float noise in sums of equal magnitudes counts as a tie.
    tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
    if 2**n <= n_resamples:
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        signs = 1.0 - 2.0 * ((codes >> np.arange(n, dtype=np.int64)) & 1)
        stat = np.abs((signs * d).mean(axis=1))
        p = float(np.mean(stat >= observed - tol))
        return TestResult(float(d.mean()), p, n, "randomization-exact")
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, min(n_resamples, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, n))
        hits += int(np.count_nonzero(np.abs((signs * d).mean(axis=1)) >= observed - tol))
        done += size
    return TestResult(float(d.mean()), (hits + 1) / (n_resamples + 1), n, "randomization")


def paired_t_test(
    a: Sequence[float] | NDArray[np.float64], b: Sequence[float] | NDArray[np.float64]
) -> TestResult:
    """Two-sided paired Student t-test (`scipy.stats.ttest_rel`); statistic is t.

    When every difference is zero there is no evidence of a difference: t = 0, p = 1
    (scipy would return NaN). With one query the test is undefined: t and p are NaN.
    """
    from scipy import stats

    d = _paired(a, b)
    n = len(d)
    if n < 2:
        return TestResult(math.nan, math.nan, n, "paired-t")
    if np.all(d == d[0]):
        if d[0] == 0:
            return TestResult(0.0, 1.0, n, "paired-t")
        # Constant non-zero difference: zero variance, infinitely strong evidence.
        return TestResult(math.copysign(math.inf, float(d[0])), 0.0, n, "paired-t")
    result = stats.ttest_rel(_array(a, "a"), _array(b, "b"))
    return TestResult(float(result.statistic), float(result.pvalue), n, "paired-t")


def holm_bonferroni(
    p_values: Sequence[float], alpha: float = 0.05
) -> tuple[list[float], list[bool]]:
    """Holm's step-down correction for multiple comparisons.

    Sort the m p-values ascending; the i-th smallest (i from 0) gets the adjusted value
    ``max_{j <= i} min(1, (m - j) * p_(j))``. A hypothesis is rejected when its adjusted
    p-value is <= `alpha`. Returns (adjusted p-values, rejected) in the input order.
    """
    p = _array(p_values, "p_values")
    if np.any((p < 0) | (p > 1)):
        raise InvalidInputError("p-values must lie in [0, 1]")
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must be in (0, 1), got {alpha}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted_sorted = np.maximum.accumulate(scaled)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    values = [float(v) for v in adjusted]
    return values, [v <= alpha for v in values]


def win_loss_tie(
    a: Mapping[str, float], b: Mapping[str, float], tolerance: float = 1e-9
) -> WinLossTie:
    """Per-query comparison of a against b: a win when ``a - b > tolerance``, a loss when
    ``b - a > tolerance``, otherwise a tie. Both dicts must cover the same queries."""
    if tolerance < 0:
        raise InvalidInputError(f"tolerance must be >= 0, got {tolerance}")
    qids, x, y = paired_values(a, b)
    wins = tuple(q for q, u, v in zip(qids, x, y, strict=True) if u - v > tolerance)
    losses = tuple(q for q, u, v in zip(qids, x, y, strict=True) if v - u > tolerance)
    decided = set(wins) | set(losses)
    return WinLossTie(wins, losses, tuple(q for q in qids if q not in decided))

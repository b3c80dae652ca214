"""Statistics: hand-checked values and agreement with scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from shortlist.errors import InvalidInputError
from shortlist.evaluate.stats import (
    holm_bonferroni,
    mean_ci,
    paired_t_test,
    paired_values,
    randomization_test,
    win_loss_tie,
)


def test_mean_ci_t_interval_by_hand() -> None:
    # mean 2, s = 1, n = 3: half width = t_{0.975, 2} / sqrt(3) = 4.302653 / 1.732051
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci.mean == 2.0 and ci.n == 3
    assert ci.high - ci.mean == pytest.approx(4.302652729911275 / math.sqrt(3))
    assert ci.low == pytest.approx(2 * ci.mean - ci.high)
    single = mean_ci([0.5])
    assert single.mean == 0.5 and math.isnan(single.low) and math.isnan(single.high)


def test_mean_ci_bootstrap_is_seeded_and_brackets_mean() -> None:
    values = np.random.default_rng(1).random(50)
    a = mean_ci(values, method="bootstrap", seed=3)
    b = mean_ci(values, method="bootstrap", seed=3)
    assert a == b
    t = mean_ci(values)
    assert a.low < a.mean < a.high
    assert a.high - a.low == pytest.approx(t.high - t.low, rel=0.2)
    with pytest.raises(InvalidInputError, match="unknown CI method"):
        mean_ci(values, method="jackknife")


def test_randomization_exact_by_hand() -> None:
    # differences (1, 1, 1): of the 8 sign patterns only +++ and --- reach |mean| = 1.
    result = randomization_test([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert result.p_value == pytest.approx(2 / 8)
    assert result.statistic == 1.0 and result.method == "randomization-exact"
    # differences (1, -1): every pattern has |mean| in {0, 1}; observed 0 -> p = 1.
    assert randomization_test([1.0, 0.0], [0.0, 1.0]).p_value == 1.0


def test_randomization_exact_matches_enumeration() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.random(8), rng.random(8)
    d = a - b
    observed = abs(d.mean())
    count = sum(
        abs(np.mean(np.array(s) * d)) >= observed - 1e-12
        for s in itertools.product([-1, 1], repeat=8)
    )
    assert randomization_test(a, b).p_value == pytest.approx(count / 256)


def test_randomization_sampled_is_seeded_and_close_to_t_test() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a - 0.02 + rng.normal(0, 0.1, 200)
    one = randomization_test(a, b, n_resamples=4000, seed=5)
    assert one == randomization_test(a, b, n_resamples=4000, seed=5)
    assert one.method == "randomization"
    assert one.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue, abs=0.03)


def test_paired_t_test_matches_scipy() -> None:
    a = [0.5, 0.7, 0.2, 0.9, 0.4]
    b = [0.4, 0.5, 0.3, 0.6, 0.4]
    ref = sps.ttest_rel(a, b)
    ours = paired_t_test(a, b)
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.p_value == pytest.approx(ref.pvalue)
    assert paired_t_test([1.0, 2.0], [1.0, 2.0]).p_value == 1.0
    with pytest.raises(InvalidInputError, match="differ in length"):
        paired_t_test([1.0], [1.0, 2.0])


def test_holm_bonferroni_by_hand() -> None:
    # sorted 0.01, 0.02, 0.03, 0.04 -> 4*0.01, 3*0.02, 2*0.03, 1*0.04 = .04 .06 .06 .06
    adjusted, reject = holm_bonferroni([0.04, 0.01, 0.03, 0.02])
    assert adjusted == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert reject == [False, True, False, False]
    adjusted, _ = holm_bonferroni([0.5, 0.9])
    assert adjusted == pytest.approx([1.0, 1.0])


def test_win_loss_tie_and_pairing() -> None:
    a = {"q1": 0.5, "q2": 0.3, "q3": 0.2, "q4": 0.2}
    b = {"q1": 0.4, "q2": 0.3 + 1e-12, "q3": 0.6, "q4": 0.2}
    result = win_loss_tie(a, b, tolerance=1e-9)
    assert result.wins == ("q1",) and result.losses == ("q3",) and result.ties == ("q2", "q4")
    assert result.counts == (1, 1, 2)
    qids, x, y = paired_values(a, b)
    assert qids == ["q1", "q2", "q3", "q4"] and x[2] == 0.2 and y[2] == 0.6
    with pytest.raises(InvalidInputError, match="different queries"):
        win_loss_tie({"q1": 1.0}, {"q2": 1.0})

"""Fusion functions against hand-computed values."""

from __future__ import annotations

import copy
import math

import pytest

from shortlist.errors import InvalidInputError
from shortlist.retrieve.fusion import (
    FUSIONS,
    dbsf,
    dbsf_norm,
    fuse,
    minmax,
    normalise,
    ranked,
    rrf,
    top,
    weighted_sum,
    zscore,
)

RUN_A = {"d1": 3.0, "d2": 2.0, "d3": 1.0}
RUN_B = {"d3": 10.0, "d4": 5.0, "d1": 0.0}


def test_rrf_hand_computed() -> None:
    fused = rrf([RUN_A, RUN_B], k=60)
    assert fused == pytest.approx(
        {
            "d1": 1 / 61 + 1 / 63,
            "d2": 1 / 62,
            "d3": 1 / 63 + 1 / 61,
            "d4": 1 / 62,
        }
    )


def test_rrf_small_k_and_depth() -> None:
    fused = rrf([RUN_A, RUN_B], k=1, depth=2)
    # RUN_A top 2: d1 (rank 1), d2 (rank 2); RUN_B top 2: d3 (1), d4 (2).
    assert fused == pytest.approx({"d1": 1 / 2, "d2": 1 / 3, "d3": 1 / 2, "d4": 1 / 3})


def test_rrf_ties_broken_by_doc_id() -> None:
    fused = rrf([{"b": 1.0, "a": 1.0, "c": 2.0}], k=0)
    assert fused == pytest.approx({"c": 1.0, "a": 1 / 2, "b": 1 / 3})
    assert ranked({"b": 1.0, "a": 1.0}) == [("a", 1.0), ("b", 1.0)]


def test_rrf_empty_inputs() -> None:
    assert rrf([]) == {}
    assert rrf([{}, {}]) == {}


def test_minmax_hand_computed() -> None:
    assert normalise({"a": 2.0, "b": 4.0, "c": 3.0}, "minmax") == pytest.approx(
        {"a": 0.0, "b": 1.0, "c": 0.5}
    )
    assert normalise({"a": 7.0, "b": 7.0}, "minmax") == {"a": 1.0, "b": 1.0}


def test_zscore_hand_computed() -> None:
    # mean 4, population std sqrt(((2)^2 + 0 + 2^2) / 3) = sqrt(8/3)
    std = math.sqrt(8 / 3)
    assert normalise({"a": 2.0, "b": 4.0, "c": 6.0}, "zscore") == pytest.approx(
        {"a": -2 / std, "b": 0.0, "c": 2 / std}
    )
    assert normalise({"a": 7.0, "b": 7.0}, "zscore") == {"a": 0.0, "b": 0.0}


def test_weighted_sum_minmax_missing_docs_contribute_zero() -> None:
    # RUN_A minmax: d1 1, d2 .5, d3 0; RUN_B minmax: d3 1, d4 .5, d1 0.
    fused = weighted_sum([RUN_A, RUN_B])
    assert fused == pytest.approx({"d1": 1.0, "d2": 0.5, "d3": 1.0, "d4": 0.5})


def test_weighted_sum_weights() -> None:
    fused = weighted_sum([RUN_A, RUN_B], weights=[0.25, 0.75])
    assert fused == pytest.approx(
        {"d1": 0.25, "d2": 0.125, "d3": 0.75, "d4": 0.375}
    )


def test_weighted_sum_zscore_and_none() -> None:
    std_a = math.sqrt(2 / 3)  # RUN_A mean 2
    mean_b = 5.0
    std_b = math.sqrt((25 + 0 + 25) / 3)
    floor_a, floor_b = -1 / std_a, (0 - mean_b) / std_b  # each run's lowest z-score
    fused = weighted_sum([RUN_A, RUN_B], norm="zscore")
    assert fused == pytest.approx(
        {
            "d1": 1 / std_a + (0 - mean_b) / std_b,
            "d2": 0.0 + floor_b,  # missing from RUN_B: its lowest z-score, not its mean
            "d3": -1 / std_a + (10 - mean_b) / std_b,
            "d4": floor_a + 0.0,
        }
    )
    assert zscore([RUN_A, RUN_B]) == fused
    # "none": raw scores; a missing document gets the run's lowest raw score.
    assert weighted_sum([RUN_A, RUN_B], norm="none", weights=[1.0, 2.0]) == pytest.approx(
        {"d1": 3.0, "d2": 2.0, "d3": 21.0, "d4": 1.0 + 10.0}
    )


def test_weighted_rrf_hand_computed() -> None:
    fused = rrf([RUN_A, RUN_B], k=60, weights=[2.0, 1.0])
    assert fused == pytest.approx(
        {"d1": 2 / 61 + 1 / 63, "d2": 2 / 62, "d3": 2 / 63 + 1 / 61, "d4": 1 / 62}
    )
    # Equal weights rank exactly as unweighted RRF.
    assert rrf([RUN_A, RUN_B], weights=[0.5, 0.5]) == pytest.approx(
        {d: s / 2 for d, s in rrf([RUN_A, RUN_B]).items()}
    )


def test_dbsf_norm_hand_computed() -> None:
    # mean 2, sample std sqrt((1 + 0 + 1) / 2) = 1: limits -1 and 5, span 6.
    assert dbsf_norm({"a": 1.0, "b": 2.0, "c": 3.0}) == pytest.approx(
        {"a": 2 / 6, "b": 3 / 6, "c": 4 / 6}
    )
    assert dbsf_norm({"a": 4.0}) == {"a": 0.5}
    assert dbsf_norm({"a": 4.0, "b": 4.0}) == {"a": 0.5, "b": 0.5}
    assert dbsf_norm({}) == {}


def test_dbsf_norm_clips_beyond_three_std() -> None:
    # 15 zeros and one 16: mean 1, sample variance (15 * 1 + 15 ** 2) / 15 = 16, std 4;
    # limits 1 - 12 = -11 and 13: 16 lies above and clips to 1, the zeros map to 11/24.
    run = {f"z{i:02d}": 0.0 for i in range(15)} | {"top": 16.0}
    normed = dbsf_norm(run)
    assert normed["top"] == 1.0
    assert normed["z00"] == pytest.approx(11 / 24)


def test_dbsf_fusion_hand_computed() -> None:
    # RUN_A: mean 2, sample std 1 -> d1 4/6, d2 3/6, d3 2/6.
    # RUN_B: mean 5, sample std 5 -> limits -10, 20: d3 20/30, d4 15/30, d1 10/30.
    fused = dbsf([RUN_A, RUN_B], weights=[0.25, 0.75])
    assert fused == pytest.approx(
        {
            "d1": 0.25 * 4 / 6 + 0.75 * 10 / 30,
            "d2": 0.25 * 3 / 6 + 0.75 * 10 / 30,  # missing from RUN_B: its floor, 10/30
            "d3": 0.25 * 2 / 6 + 0.75 * 20 / 30,
            "d4": 0.25 * 2 / 6 + 0.75 * 15 / 30,  # missing from RUN_A: its floor, 2/6
        }
    )
    assert fuse("dbsf", [RUN_A, RUN_B], weights=[0.25, 0.75]) == fused


def test_minmax_fusion_is_weighted_sum_default() -> None:
    assert minmax([RUN_A, RUN_B], weights=[0.3, 0.7]) == weighted_sum(
        [RUN_A, RUN_B], weights=[0.3, 0.7], norm="minmax"
    )


def test_integer_keys_tie_break_numerically() -> None:
    # Row 9 before row 10: numeric order, never string order ("10" < "9").
    assert [k for k, _ in ranked({10: 1.0, 9: 1.0, 100: 1.0})] == [9, 10, 100]
    fused = rrf([{10: 1.0, 9: 1.0}, {9: 5.0, 10: 5.0}])
    assert fused[9] > fused[10]
    tied = weighted_sum([{10: 2.0, 9: 2.0, 3: 1.0}])
    assert [k for k, _ in top(tied, 2)] == [9, 10]


def test_weighted_sum_depth_cuts_before_normalising() -> None:
    # RUN_A top 2: d1 3, d2 2 -> minmax d1 1, d2 0. RUN_B top 2: d3 10, d4 5 -> d3 1, d4 0.
    fused = weighted_sum([RUN_A, RUN_B], depth=2)
    assert fused == pytest.approx({"d1": 1.0, "d2": 0.0, "d3": 1.0, "d4": 0.0})


def test_inputs_not_mutated() -> None:
    runs = [dict(RUN_A), dict(RUN_B)]
    before = copy.deepcopy(runs)
    weights = [1.0, 2.0]
    rrf(runs, depth=1)
    weighted_sum(runs, weights=weights, norm="zscore", depth=2)
    fuse("rrf", runs)
    assert runs == before
    assert weights == [1.0, 2.0]


def test_fuse_dispatch_and_errors() -> None:
    assert fuse("rrf", [RUN_A, RUN_B], k=1) == rrf([RUN_A, RUN_B], k=1)
    assert fuse("weighted_sum", [RUN_A], norm="none") == RUN_A
    with pytest.raises(InvalidInputError) as err:
        fuse("borda", [RUN_A])
    for name in FUSIONS:
        assert name in str(err.value)
    with pytest.raises(InvalidInputError, match="accepts"):
        fuse("rrf", [RUN_A], norm="minmax")


def test_bad_parameters() -> None:
    with pytest.raises(InvalidInputError, match="weights"):
        weighted_sum([RUN_A, RUN_B], weights=[1.0])
    with pytest.raises(InvalidInputError, match="norm"):
        weighted_sum([RUN_A], norm="max")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        rrf([RUN_A], depth=-1)
    with pytest.raises(InvalidInputError, match="weights"):
        rrf([RUN_A, RUN_B], weights=[1.0, -1.0])
    with pytest.raises(InvalidInputError, match="weights"):
        dbsf([RUN_A], weights=[float("nan")])


# ---- the default fusion's long-query weights (HybridConfig) ---------------------------------


def test_long_query_weights_interpolate_by_word_count() -> None:
    from shortlist.retrieve.hybrid import DEFAULT_HYBRID, HybridConfig

    config = HybridConfig(weights=(0.3, 0.7), long_weights=(0.9, 0.1), long_words=(20, 40))
    short, long = " ".join(["w"] * 20), " ".join(["w"] * 40)
    assert config.weights_for(short) == (0.3, 0.7)
    assert config.weights_for("one two") == (0.3, 0.7)
    assert config.weights_for(long) == pytest.approx((0.9, 0.1))
    assert config.weights_for(long + " more words") == pytest.approx((0.9, 0.1))
    # 30 words: halfway from (0.3, 0.7) to (0.9, 0.1)
    assert config.weights_for(" ".join(["w"] * 30)) == pytest.approx((0.6, 0.4))
    assert config.weights_for(None) == (0.3, 0.7)
    # Without long-query weights every query gets `weights`.
    assert HybridConfig(weights=(0.3, 0.7)).weights_for(long) == (0.3, 0.7)
    assert DEFAULT_HYBRID.long_weights is not None
    assert DEFAULT_HYBRID.weights_for(long) == pytest.approx(DEFAULT_HYBRID.long_weights)


def test_long_query_weights_change_the_fused_scores_hand_computed() -> None:
    from shortlist.retrieve.hybrid import HybridConfig

    bm25 = {1: 10.0, 2: 5.0, 3: 0.0}  # min-max: 1, 0.5, 0
    dense = {1: 0.0, 2: 0.5, 3: 1.0}  # min-max: 0, 0.5, 1
    config = HybridConfig(weights=(0.3, 0.7), long_weights=(0.9, 0.1))
    short = config.fuse([bm25, dense], "short query")
    assert short == pytest.approx({1: 0.3, 2: 0.5, 3: 0.7})
    long = config.fuse([bm25, dense], " ".join(["w"] * 50))
    assert long == pytest.approx({1: 0.9, 2: 0.5, 3: 0.1})


def test_long_query_config_round_trips_and_old_manifests_stay_fixed() -> None:
    from shortlist.retrieve.hybrid import DEFAULT_HYBRID, HybridConfig

    assert HybridConfig.from_dict(DEFAULT_HYBRID.to_dict()) == DEFAULT_HYBRID
    fixed = HybridConfig("zscore", 50, 60, (0.4, 0.6))
    assert "long_query_weights" not in fixed.to_dict()
    assert HybridConfig.from_dict(fixed.to_dict()) == fixed
    # A manifest written before long-query weights existed keeps fixed weights.
    old = {"method": "minmax", "depth": 100, "rrf_k": 60, "weights": [0.3, 0.7]}
    assert HybridConfig.from_dict(old).long_weights is None


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"long_weights": (0.0, 0.0)}, "long-query weights"),
        ({"long_weights": (-1.0, 0.5)}, "long-query weights"),
        ({"long_words": (40, 20)}, "short < long"),
    ],
)
def test_long_query_config_errors(kwargs: dict[str, object], needle: str) -> None:
    from shortlist.retrieve.hybrid import HybridConfig

    with pytest.raises(InvalidInputError, match=needle):
        HybridConfig(**kwargs)  # type: ignore[arg-type]

"""Metrics: hand-computed values and agreement with trec_eval (pytrec_eval) on random runs."""

from __future__ import annotations

import math
import random

import pytest

from shortlist.errors import InvalidInputError
from shortlist.evaluate.metrics import (
    MetricSpec,
    evaluate,
    hit_rate,
    map_at_k,
    mrr,
    ndcg,
    parse_metric,
    precision,
    ranked_doc_ids,
    recall,
)

# q1: relevant a (grade 1) and c (grade 2); all four retrieved docs tie on score, so
# trec_eval's order is doc id descending: d, c, b, a.
QRELS = {"q1": {"a": 1, "b": 0, "c": 2}, "q2": {"x": 1}, "q3": {"y": 1, "z": 1}}
RUN = {
    "q1": {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0},
    "q2": {"w": 3.0, "v": 2.0, "x": 1.0},
    "q4": {"y": 1.0},
}


def test_ranking_order_breaks_ties_by_doc_id_descending() -> None:
    assert ranked_doc_ids({"a": 1.0, "b": 1.0, "c": 2.0, "d": 1.0}) == ["c", "d", "b", "a"]
    assert ranked_doc_ids({"a": 1.0, "b": 1.0}, k=1) == ["b"]


def test_hand_computed_values() -> None:
    # q1 ranking d(0) c(2) b(0) a(1); q2 ranking w v x(1); q3 missing from the run -> 0.
    idcg2 = 2 + 1 / math.log2(3)
    assert ndcg(QRELS, RUN, 2) == pytest.approx(
        {"q1": (2 / math.log2(3)) / idcg2, "q2": 0.0, "q3": 0.0}
    )
    assert ndcg(QRELS, RUN, None)["q1"] == pytest.approx(
        (2 / math.log2(3) + 1 / math.log2(5)) / idcg2
    )
    assert mrr(QRELS, RUN, 10) == {"q1": 0.5, "q2": 1 / 3, "q3": 0.0}
    assert mrr(QRELS, RUN, 2) == {"q1": 0.5, "q2": 0.0, "q3": 0.0}
    assert recall(QRELS, RUN, 2) == {"q1": 0.5, "q2": 0.0, "q3": 0.0}
    assert recall(QRELS, RUN, 4) == {"q1": 1.0, "q2": 1.0, "q3": 0.0}
    # P@5 divides by 5 even though only 4 / 3 documents were retrieved.
    assert precision(QRELS, RUN, 5) == {"q1": 2 / 5, "q2": 1 / 5, "q3": 0.0}
    # AP@4 on q1 = (1/2 + 2/4) / 2; MAP cut at 2 still divides by all 2 relevant.
    assert map_at_k(QRELS, RUN, 4)["q1"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert map_at_k(QRELS, RUN, 2)["q1"] == pytest.approx((1 / 2) / 2)
    assert hit_rate(QRELS, RUN, 1) == {"q1": 0.0, "q2": 0.0, "q3": 0.0}
    assert hit_rate(QRELS, RUN, 2) == {"q1": 1.0, "q2": 0.0, "q3": 0.0}


def test_query_without_relevant_documents_scores_zero() -> None:
    qrels = {"q": {"a": 0}}
    run = {"q": {"a": 1.0}}
    for metric in (ndcg, mrr, recall, precision, map_at_k, hit_rate):
        assert metric(qrels, run, 5) == {"q": 0.0}


def test_inputs_are_not_modified() -> None:
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "b": 2.0}}
    evaluate(qrels, run, ["ndcg@1", "map"])
    assert qrels == {"q": {"a": 1}} and run == {"q": {"a": 1.0, "b": 2.0}}


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("ndcg@10", MetricSpec("ndcg", 10)),
        ("NDCG@10", MetricSpec("ndcg", 10)),
        ("ndcg_cut.5", MetricSpec("ndcg", 5)),
        ("P@5", MetricSpec("precision", 5)),
        ("recip_rank", MetricSpec("mrr", None)),
        ("map", MetricSpec("map", None)),
        ("success@1", MetricSpec("hit_rate", 1)),
    ],
)
def test_parse_metric(text: str, spec: MetricSpec) -> None:
    assert parse_metric(text) == spec


@pytest.mark.parametrize("bad", ["ndgc@10", "ndcg@0", "ndcg@x", "", "ndcg@10@2"])
def test_parse_metric_rejects(bad: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_metric(bad)
    assert "ndcg" in str(info.value)


def test_evaluate_matches_single_metric_functions() -> None:
    out = evaluate(QRELS, RUN, ["ndcg@2", "mrr@10", "recall@4", "P@5", "map@4", "hit_rate@2"])
    assert out["ndcg@2"] == ndcg(QRELS, RUN, 2)
    assert out["mrr@10"] == mrr(QRELS, RUN, 10)
    assert out["recall@4"] == recall(QRELS, RUN, 4)
    assert out["precision@5"] == precision(QRELS, RUN, 5)
    assert out["map@4"] == map_at_k(QRELS, RUN, 4)
    assert out["hit_rate@2"] == hit_rate(QRELS, RUN, 2)


def _random_collection(seed: int) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    rng = random.Random(seed)
    docs = [f"d{i:03d}" for i in range(60)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 20))
        qrels[qid] = {d: rng.choice([-1, 0, 0, 1, 1, 2, 3]) for d in judged}
        if q % 7 == 0:
            continue  # in qrels, missing from the run
        retrieved = rng.sample(docs, rng.randint(0, 50))
        # Scores from a small set of values, so many ties.
        run[qid] = {d: float(rng.randint(0, 5)) / 2 for d in retrieved}
    run["only-in-run"] = {"d001": 1.0}
    return qrels, run


def _truncate(run: dict[str, dict[str, float]], k: int) -> dict[str, dict[str, float]]:
    return {q: {d: s[d] for d in ranked_doc_ids(s, k)} for q, s in run.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3, 10, 25])
def test_agrees_with_trec_eval(seed: int, k: int) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _random_collection(seed)
    measures = {f"ndcg_cut.{k}", f"recall.{k}", f"P.{k}", f"map_cut.{k}", f"success.{k}"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    rr_ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_truncate(run, k))
    ours = evaluate(
        qrels, run, [f"ndcg@{k}", f"recall@{k}", f"P@{k}", f"map@{k}", f"hit_rate@{k}", f"mrr@{k}"]
    )
    pairs = {
        f"ndcg@{k}": (ref, f"ndcg_cut_{k}"),
        f"recall@{k}": (ref, f"recall_{k}"),
        f"precision@{k}": (ref, f"P_{k}"),
        f"map@{k}": (ref, f"map_cut_{k}"),
        f"hit_rate@{k}": (ref, f"success_{k}"),
        f"mrr@{k}": (rr_ref, "recip_rank"),
    }
    for name, (reference, key) in pairs.items():
        assert set(ours[name]) == set(qrels)
        for qid in qrels:
            # pytrec_eval omits queries absent from the run; we score them 0 (trec_eval -c).
            expected = reference[qid][key] if qid in reference else 0.0
            assert ours[name][qid] == pytest.approx(expected, abs=1e-6), (name, qid)


def test_uncut_map_and_ndcg_agree_with_trec_eval() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _random_collection(5)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"map", "ndcg", "recip_rank"}).evaluate(run)
    ours = evaluate(qrels, run, ["map", "ndcg", "mrr"])
    for qid in ref:
        assert ours["map"][qid] == pytest.approx(ref[qid]["map"], abs=1e-6)
        assert ours["ndcg"][qid] == pytest.approx(ref[qid]["ndcg"], abs=1e-6)
        assert ours["mrr"][qid] == pytest.approx(ref[qid]["recip_rank"], abs=1e-6)

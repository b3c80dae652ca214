"""Ranking metrics as pure functions over `Qrels` and `Run`, computed the way trec_eval does.

Every metric takes `qrels` (query id -> doc id -> graded relevance) and `run` (query id ->
doc id -> score) and returns one value per query: ``dict[query_id, float]``. Nothing is
averaged here; averaging and confidence intervals live in `shortlist.evaluate.stats`.

Conventions (all checked against trec_eval 9 through pytrec_eval in the tests):

* **Ranking order.** A run is a score map, so the ranking is derived from it exactly as
  trec_eval does (``form_res_rels.c``): by score descending, ties broken by document id
  descending (byte-wise string comparison). Rank positions start at 1.
* **Relevance.** A document is relevant when its grade is >= 1 (trec_eval's default
  ``relevance_level``). Unjudged documents count as not relevant.
* **Gain.** nDCG uses trec_eval's linear gain ``gain = grade`` (``ndcg_cut``), not the
  exponential ``2**grade - 1`` of Burges et al. Grades below 0 contribute 0.
* **Query set.** Metrics are computed for every query in `qrels`. A query that is in the
  qrels but missing from the run (or has an empty ranking) scores 0, like
  ``trec_eval -c``. (pytrec_eval only reports queries present in the run; the tests pad its
  output with zeros to compare.) Run queries without qrels are ignored. A qrels query with
  no relevant document scores 0 on every metric, as in trec_eval; the loaders in
  `shortlist.evaluate.beir` drop such queries before evaluation and say so in their report.
* **Cutoff.** ``k=None`` means the whole ranking. ``k`` must be a positive integer.

References: trec_eval (https://github.com/usnistgov/trec_eval), measures ``ndcg_cut``,
``recip_rank``, ``recall``, ``P``, ``map_cut``, ``success``; Järvelin & Kekäläinen,
"Cumulated gain-based evaluation of IR techniques", TOIS 2002.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from shortlist.errors import InvalidInputError
from shortlist.types import Qrels, Run

RELEVANCE_LEVEL = 1
"""Minimum grade for a document to count as relevant (trec_eval's default)."""

# Per-query kernel: (grades of the ranked documents, best first, already cut at k;
# the query's judgements; the cutoff) -> value.
_Kernel = Callable[[Sequence[int], Mapping[str, int], "int | None"], float]


def ranked_doc_ids(scores: Mapping[str, float], k: int | None = None) -> list[str]:
    """Document ids in trec_eval order: score descending, then doc id descending; first `k`."""
    ordered = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
    if k is not None:
        ordered = ordered[:k]
    return [doc_id for doc_id, _ in ordered]


def _num_relevant(judged: Mapping[str, int]) -> int:
    return sum(1 for grade in judged.values() if grade >= RELEVANCE_LEVEL)


def _ndcg_kernel(grades: Sequence[int], judged: Mapping[str, int], k: int | None) -> float:
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)
    if k is not None:
        ideal = ideal[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    if idcg == 0.0:
        return 0.0
    dcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(grades, start=1) if g > 0)
    return dcg / idcg


def _rr_kernel(grades: Sequence[int], judged: Mapping[str, int], k: int | None) -> float:
    for rank, grade in enumerate(grades, start=1):
        if grade >= RELEVANCE_LEVEL:
            return 1.0 / rank
    return 0.0


def _recall_kernel(grades: Sequence[int], judged: Mapping[str, int], k: int | None) -> float:
    total = _num_relevant(judged)
    if total == 0:
        return 0.0
    return sum(1 for g in grades if g >= RELEVANCE_LEVEL) / total


def _precision_kernel(grades: Sequence[int], judged: Mapping[str, int], k: int | None) -> float:
    # trec_eval's P.k divides by k even when fewer than k documents were retrieved.
    denominator = k if k is not None else len(grades)
    if denominator == 0:
        return 0.0
    return sum(1 for g in grades if g >= RELEVANCE_LEVEL) / denominator


def _ap_kernel(grades: Sequence[int], judged: Mapping[str, int], k: int | None) -> float:
    total = _num_relevant(judged)
    if total == 0:
        return 0.0
    hits = 0
    summed = 0.0
    for rank, grade in enumerate(grades, start=1):
        if grade >= RELEVANCE_LEVEL:
            hits += 1
            summed += hits / rank
    return summed / total


def _hit_kernel(grades: Sequence[int], judged: Mapping[str, int], k: int | None) -> float:
    return 1.0 if any(g >= RELEVANCE_LEVEL for g in grades) else 0.0


@dataclass(frozen=True)
class MetricInfo:
    """A registered metric: its canonical name, kernel and the trec_eval measure it matches."""

    name: str
    kernel: _Kernel
    trec_eval: str
    summary: str


METRICS: dict[str, MetricInfo] = {
    "ndcg": MetricInfo("ndcg", _ndcg_kernel, "ndcg_cut", "normalised DCG, linear gain"),
    "mrr": MetricInfo("mrr", _rr_kernel, "recip_rank", "reciprocal rank of the first relevant"),
    "recall": MetricInfo("recall", _recall_kernel, "recall", "relevant retrieved / all relevant"),
    "precision": MetricInfo("precision", _precision_kernel, "P", "relevant retrieved / k"),
    "map": MetricInfo("map", _ap_kernel, "map_cut", "average precision, divided by all relevant"),
    "hit_rate": MetricInfo("hit_rate", _hit_kernel, "success", "1 if any relevant in the top k"),
}

ALIASES: dict[str, str] = {
    "ndcg_cut": "ndcg",
    "recip_rank": "mrr",
    "rr": "mrr",
    "r": "recall",
    "p": "precision",
    "map_cut": "map",
    "ap": "map",
    "success": "hit_rate",
    "hit": "hit_rate",
    "hits": "hit_rate",
}


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric string: registry name plus cutoff (`None` = whole ranking)."""

    name: str
    k: int | None

    def __str__(self) -> str:
        return self.name if self.k is None else f"{self.name}@{self.k}"


_SPEC = re.compile(r"^\s*([A-Za-z_]+)\s*(?:[@.]\s*(\S+))?\s*$")


def parse_metric(text: str) -> MetricSpec:
    """Parse ``"ndcg@10"``, ``"MRR@10"``, ``"recall@100"``, ``"map"`` into a `MetricSpec`.

    Names are case-insensitive; trec_eval names (``ndcg_cut.10``, ``P.5``, ``recip_rank``)
    are accepted as aliases. Raises `InvalidInputError` naming the known metrics.
    """
    match = _SPEC.match(text)
    known = ", ".join(sorted(METRICS))
    if match is None:
        raise InvalidInputError(
            f"cannot parse metric {text!r}; write NAME or NAME@K, e.g. ndcg@10 (metrics: {known})"
        )
    raw_name, raw_k = match.group(1).lower(), match.group(2)
    name = ALIASES.get(raw_name, raw_name)
    if name not in METRICS:
        raise InvalidInputError(f"unknown metric {match.group(1)!r}; known metrics: {known}")
    k: int | None = None
    if raw_k is not None:
        if not raw_k.isdigit() or int(raw_k) < 1:
            raise InvalidInputError(
                f"metric {text!r}: the cutoff must be a positive integer, e.g. {name}@10"
            )
        k = int(raw_k)
    return MetricSpec(name, k)


def _check_k(k: int | None) -> None:
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise InvalidInputError(f"cutoff k must be a positive integer or None, got {k!r}")


def _grades_at(judged: Mapping[str, int], scores: Mapping[str, float], k: int | None) -> list[int]:
    return [judged.get(doc_id, 0) for doc_id in ranked_doc_ids(scores, k)]


def _per_query(qrels: Qrels, run: Run, kernel: _Kernel, k: int | None) -> dict[str, float]:
    _check_k(k)
    empty: dict[str, float] = {}
    return {
        qid: kernel(_grades_at(judged, run.get(qid, empty), k), judged, k)
        for qid, judged in qrels.items()
    }


def ndcg(qrels: Qrels, run: Run, k: int | None = 10) -> dict[str, float]:
    """nDCG@k with trec_eval's linear gain (``ndcg_cut.k``).

    ``DCG@k = sum_{i=1..k} grade_i / log2(i + 1)``; ``nDCG@k = DCG@k / IDCG@k`` where IDCG
    ranks all judged documents by grade. 0 when the query has no document with grade > 0.
    """
    return _per_query(qrels, run, _ndcg_kernel, k)


def mrr(qrels: Qrels, run: Run, k: int | None = 10) -> dict[str, float]:
    """Reciprocal rank of the first relevant document within the top k, else 0.

    Equals trec_eval's ``recip_rank`` on the run truncated at k (trec_eval itself has no
    cutoff for this measure). Averaging over queries gives MRR@k.
    """
    return _per_query(qrels, run, _rr_kernel, k)


def recall(qrels: Qrels, run: Run, k: int | None = 100) -> dict[str, float]:
    """Recall@k = relevant documents in the top k / all relevant documents (``recall.k``)."""
    return _per_query(qrels, run, _recall_kernel, k)


def precision(qrels: Qrels, run: Run, k: int | None = 10) -> dict[str, float]:
    """Precision@k = relevant documents in the top k / k (``P.k``).

    The denominator is k even when the run retrieved fewer than k documents, as in
    trec_eval. With ``k=None`` it is the number of documents retrieved.
    """
    return _per_query(qrels, run, _precision_kernel, k)


def map_at_k(qrels: Qrels, run: Run, k: int | None = 100) -> dict[str, float]:
    """Average precision cut at k (``map_cut.k``; ``k=None`` gives ``map``).

    ``AP@k = (1 / R) * sum_{i <= k, doc_i relevant} P@i`` where R is the number of relevant
    documents for the query: trec_eval normalises by all relevant documents, not by
    ``min(k, R)``. Averaging over queries gives MAP@k.
    """
    return _per_query(qrels, run, _ap_kernel, k)


def hit_rate(qrels: Qrels, run: Run, k: int | None = 10) -> dict[str, float]:
    """1.0 if any relevant document is in the top k, else 0.0 (trec_eval ``success.k``)."""
    return _per_query(qrels, run, _hit_kernel, k)


def evaluate(
    qrels: Qrels, run: Run, metrics: Sequence[str | MetricSpec]
) -> dict[str, dict[str, float]]:
    """Compute several metrics at once: metric name (as given) -> query id -> value.

    Each query's ranking is sorted once and shared by all metrics. Metric strings are parsed
    with `parse_metric`; the output keys are the canonical names (``"ndcg@10"``).
    """
    specs = [m if isinstance(m, MetricSpec) else parse_metric(m) for m in metrics]
    for spec in specs:
        _check_k(spec.k)
    longest: int | None = 0
    for spec in specs:
        if spec.k is None or longest is None:
            longest = None
        else:
            longest = max(longest, spec.k)
    out: dict[str, dict[str, float]] = {str(spec): {} for spec in specs}
    empty: dict[str, float] = {}
    for qid, judged in qrels.items():
        grades = _grades_at(judged, run.get(qid, empty), longest)
        for spec in specs:
            cut = grades if spec.k is None else grades[: spec.k]
            out[str(spec)][qid] = METRICS[spec.name].kernel(cut, judged, spec.k)
    return out

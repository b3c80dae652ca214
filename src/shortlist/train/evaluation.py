"""Dev evaluation: rerank the first-stage candidates of dev queries, score with qrels.

Candidates come from the same pool index the negatives were mined from (top
`depth` documents per query); the metrics are `shortlist.evaluate.metrics`
(nDCG@10 and MRR@10 by default, averaged over the dev queries). A relevant document
the first stage missed stays missed: these numbers measure the reranker in the
pipeline it will run in, not in isolation.

sentence-transformers' `CrossEncoderRerankingEvaluator` does the same reranking, but
with its own metric code; these numbers come from the metrics the evaluation harness
reports (checked against trec_eval), so a dev nDCG here and an eval table in
docs/RESULTS.md mean the same thing. `shortlist.train.trainer.DevEvaluator` plugs this
into the trainer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shortlist.rerank.base import candidate_text
from shortlist.types import Document, Qrels

DEV_METRICS = ("ndcg@10", "mrr@10")
"""The dev metrics; the first one picks the best checkpoint."""

PairScorerFn = Callable[[Sequence[tuple[str, str]]], np.ndarray]


@dataclass(frozen=True)
class DevSet:
    """Dev queries, their judgements and first-stage candidates (doc ids, best first)."""

    queries: Mapping[str, str]
    qrels: Qrels
    candidates: Mapping[str, tuple[str, ...]]
    texts: Mapping[str, str]


def build_devset(
    queries: Mapping[str, str],
    qrels: Qrels,
    candidates: Mapping[str, Sequence[str]],
    pool: Mapping[str, Document],
    *,
    max_queries: int | None,
    seed: int,
) -> DevSet:
    """A `DevSet` over at most `max_queries` queries (a seeded sample when cut)."""
    qids = sorted(queries)
    if max_queries is not None and len(qids) > max_queries:
        qids = sorted(random.Random(seed).sample(qids, max_queries))
    cands = {q: tuple(candidates.get(q, ())) for q in qids}
    needed = {d for c in cands.values() for d in c}
    return DevSet(
        queries={q: queries[q] for q in qids},
        qrels={q: dict(qrels[q]) for q in qids},
        candidates=cands,
        texts={d: candidate_text(pool[d]) for d in sorted(needed)},
    )


def first_stage_metrics(dev: DevSet, metrics: Sequence[str] = DEV_METRICS) -> dict[str, float]:
    """The metrics of the first-stage order itself (the baseline reranking must beat)."""
    run = {q: {d: float(len(c) - i) for i, d in enumerate(c)} for q, c in dev.candidates.items()}
    return _mean_metrics(dev.qrels, run, metrics)


def evaluate_reranking(
    dev: DevSet, score: PairScorerFn, metrics: Sequence[str] = DEV_METRICS
) -> dict[str, float]:
    """Mean of each metric over dev queries after reranking their candidates with `score`."""
    pairs = [(dev.queries[q], dev.texts[d]) for q, c in dev.candidates.items() for d in c]
    scores = np.asarray(score(pairs), dtype=np.float64) if pairs else np.zeros(0)
    run: dict[str, dict[str, float]] = {}
    i = 0
    for q, c in dev.candidates.items():
        run[q] = {d: float(s) for d, s in zip(c, scores[i : i + len(c)], strict=True)}
        i += len(c)
    return _mean_metrics(dev.qrels, run, metrics)


def _mean_metrics(
    qrels: Qrels, run: Mapping[str, Mapping[str, float]], metrics: Sequence[str]
) -> dict[str, float]:
    from shortlist.evaluate.metrics import evaluate

    per_query = evaluate(qrels, {q: dict(r) for q, r in run.items()}, list(metrics))
    return {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()}

"""Evaluation commands: ``shortlist eval-run`` scores an existing run against qrels.

Helpers here (`summarise`, `format_table`) turn per-query metric values into the numbers a
person reads; every evaluation command in this module shares them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import click

from shortlist.evaluate.beir import clean_qrels
from shortlist.evaluate.metrics import evaluate, parse_metric
from shortlist.evaluate.runs import drop_identical_ids, read_qrels, read_run
from shortlist.evaluate.stats import mean_ci

DEFAULT_METRICS = "ndcg@10,mrr@10,recall@100"


@dataclass(frozen=True)
class MetricSummary:
    """Mean of one metric over the evaluated queries, with its 95% t-interval."""

    metric: str
    mean: float
    ci_low: float
    ci_high: float
    n_queries: int
    per_query: dict[str, float]

    def to_dict(self, per_query: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric,
            "mean": self.mean,
            "ci95_low": None if math.isnan(self.ci_low) else self.ci_low,
            "ci95_high": None if math.isnan(self.ci_high) else self.ci_high,
            "n_queries": self.n_queries,
        }
        if per_query:
            out["per_query"] = dict(sorted(self.per_query.items()))
        return out


def summarise(per_metric: dict[str, dict[str, float]]) -> list[MetricSummary]:
    """One `MetricSummary` per metric, in the given order."""
    out = []
    for name, values in per_metric.items():
        ci = mean_ci(list(values.values()))
        out.append(MetricSummary(name, ci.mean, ci.low, ci.high, ci.n, values))
    return out


def format_table(rows: list[MetricSummary]) -> str:
    """A plain-text table: metric, mean, 95% CI, number of queries."""
    header = ("metric", "mean", "95% CI", "n")
    body = []
    for row in rows:
        ci = "n/a" if math.isnan(row.ci_low) else f"[{row.ci_low:.4f}, {row.ci_high:.4f}]"
        body.append((row.metric, f"{row.mean:.4f}", ci, str(row.n_queries)))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


@click.command("eval-run")
@click.option(
    "--qrels",
    "qrels_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Judgements: TREC qrels (qid 0 docid rel) or BEIR qrels tsv.",
)
@click.option(
    "--run",
    "run_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The run: TREC run file, or JSON {qid: {docid: score}} when the name ends in .json.",
)
@click.option(
    "--metrics",
    default=DEFAULT_METRICS,
    show_default=True,
    help="Comma-separated metrics: ndcg, mrr, recall, precision, map, hit_rate, each @k.",
)
@click.option(
    "--ignore-identical-ids",
    is_flag=True,
    help="Remove documents whose id equals the query id before scoring (doc-to-doc sets).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every number as JSON.")
def eval_run_cmd(
    qrels_path: str, run_path: str, metrics: str, ignore_identical_ids: bool, as_json: bool
) -> None:
    """Score a run file against qrels, trec_eval-compatible.

    Every query with a relevant judgement is scored; one missing from the run scores 0.
    Queries without any relevant document are skipped (reported on stderr).
    """
    specs = [parse_metric(m) for m in metrics.split(",") if m.strip()]
    if not specs:
        raise click.BadParameter("give at least one metric", param_hint="--metrics")
    qrels, report = clean_qrels(read_qrels(qrels_path))
    run = read_run(run_path)
    if ignore_identical_ids:
        run = drop_identical_ids(run)
    missing = sorted(q for q in qrels if not run.get(q))
    extra = sorted(q for q in run if q not in qrels)
    notes = list(report.warnings)
    if missing:
        notes.append(f"{len(missing)} judged query(ies) have no results in the run; they score 0")
    if extra:
        notes.append(f"ignored {len(extra)} run query(ies) without relevance judgements")
    if not qrels:
        raise click.ClickException(f"{qrels_path}: no query has a relevant judgement")
    rows = summarise(evaluate(qrels, run, specs))
    if as_json:
        payload = {
            "qrels": qrels_path,
            "run": run_path,
            "n_queries": len(qrels),
            "queries_missing_from_run": missing,
            "ignored_run_queries": extra,
            "warnings": notes,
            "confidence_interval": "95% Student-t over per-query values",
            "metrics": {row.metric: row.to_dict() for row in rows},
        }
        click.echo(json.dumps(payload, indent=2))
        return
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(format_table(rows))

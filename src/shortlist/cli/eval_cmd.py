"""`shortlist eval`: compare pipelines on a BEIR-layout dataset (quality, latency, cost)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from shortlist.cli._common import index_size, load_reranker_with_threads, threads_option
from shortlist.errors import IndexCompatibilityError, IndexNotFoundError, InvalidInputError


def _parse_pipelines(items: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep:
            name, spec = item, item
        if not name or not spec:
            raise InvalidInputError(
                f"--pipeline {item!r} must be NAME=SPEC or SPEC, e.g. rerank=hybrid+bi-encoder"
            )
        out.append((name, spec))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"pipeline names must be unique, got {names}")
    return out


def _parse_ks(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise InvalidInputError(
            f"-k {text!r} must be comma-separated integers, e.g. 20,50,100"
        ) from exc
    if not ks or min(ks) < 1:
        raise InvalidInputError(f"-k {text!r} must list positive integers")
    return ks


@click.command("eval")
@click.argument("dataset_dir", type=click.Path())
@click.option(
    "--pipeline",
    "pipelines",
    multiple=True,
    required=True,
    metavar="NAME=SPEC",
    help="FIRST_STAGE[+RERANKER_SPEC], e.g. bm25, hybrid+bi-encoder. "
    "Repeat; the first is the baseline.",
)
@click.option(
    "-k", "ks", default="20,50,100", show_default=True, help="First-stage depths to sweep."
)
@click.option("--top-n", default=10, show_default=True, help="Results kept for prompts.")
@click.option("--metrics", default="ndcg@10,mrr@10,recall@100", show_default=True)
@click.option(
    "--budget-ms", type=float, default=None, help="Recommend the best configuration whose p95 fits."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(),
    default=None,
    help="Write a self-contained HTML report.",
)
@click.option(
    "--json", "json_path", type=click.Path(), default=None, help="Write every number as JSON."
)
@click.option("--split", default="test", show_default=True, help="Qrels split (qrels/SPLIT.tsv).")
@click.option(
    "--cache-dir",
    type=click.Path(),
    default=None,
    help="Where the index and saved runs go (default: DATASET_DIR/.shortlist).",
)
@click.option(
    "--model",
    default="default",
    show_default=True,
    help="Dense encoder for the index, e.g. default?backend=onnx-int8.",
)
@click.option(
    "--prices",
    "prices_path",
    type=click.Path(exists=True),
    default=None,
    help="JSON price table for hosted rerankers: {kind: {unit: usd_per_unit}}.",
)
@click.option("--max-queries", type=int, default=None, help="Evaluate only the first N queries.")
@threads_option
def eval_cmd(
    dataset_dir: str,
    pipelines: tuple[str, ...],
    ks: str,
    top_n: int,
    metrics: str,
    budget_ms: float | None,
    report_path: str | None,
    json_path: str | None,
    split: str,
    cache_dir: str | None,
    model: str,
    prices_path: str | None,
    max_queries: int | None,
    threads: int,
) -> None:
    """Run every pipeline at every k on DATASET_DIR and report which wins."""
    from shortlist.evaluate.beir import load_beir
    from shortlist.evaluate.harness import (
        Harness,
        compare_to_baseline,
        file_fingerprint,
        recommend,
        run_harness,
        where_reranking_hurts,
    )
    from shortlist.evaluate.metrics import parse_metric
    from shortlist.evaluate.report import format_table, render_html, to_json
    from shortlist.pipeline import parse_pipeline
    from shortlist.progress import progress_for
    from shortlist.rerank.registry import parse_spec
    from shortlist.store.index import Index

    specs = _parse_pipelines(pipelines)
    for _name, spec in specs:  # fail fast, before any work
        parsed = parse_pipeline(spec)
        if parsed.reranker:
            parse_spec(parsed.reranker)
    k_list = _parse_ks(ks)
    metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
    for m in metric_list:
        parse_metric(m)
    prices = json.loads(Path(prices_path).read_text()) if prices_path else None

    root = Path(dataset_dir)
    dataset = load_beir(root, split=split)
    for line in dataset.report.warnings:
        click.echo(f"note: {line}", err=True)
    queries = dict(sorted(dataset.queries.items()))
    queries = {q: t for q, t in queries.items() if q in dataset.qrels}
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])
    if not queries:
        raise InvalidInputError(
            f"{root}: no query has relevance judgements in qrels/{split}.tsv; nothing to evaluate"
        )

    cache = Path(cache_dir) if cache_dir else root / ".shortlist"
    needs_dense = any(parse_pipeline(s).first_stage != "bm25" for _n, s in specs)
    fp = file_fingerprint(root / "corpus.jsonl")
    index_dir = cache / f"index-{fp}-{'dense-' + _safe(model) if needs_dense else 'bm25'}"

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    try:
        index = Index.open(index_dir, num_threads=threads)
        progress(f"reusing index {index_dir} ({index.num_passages} passages)")
    except (IndexNotFoundError, IndexCompatibilityError):
        t = time.perf_counter()
        # Index defaults (chunking, BM25, fusion), so eval measures what `shortlist index` builds.
        index = Index.create(
            index_dir,
            dataset.corpus,
            dense=needs_dense,
            encoder=model,
            overwrite=True,
            progress=progress_for(sys.stderr),
            num_threads=threads,
        )
        progress(
            f"indexed {index_size(index)} "
            f"in {time.perf_counter() - t:.1f}s -> {index_dir}"
        )

    harness = Harness(
        index,
        queries,
        dataset.qrels,
        ignore_identical_ids=dataset.ignore_identical_ids,
        cache_dir=cache,
        dataset_fingerprint=fp,
        metrics=metric_list,
        top_n=top_n,
        prices=prices,
        progress=progress,
        stages=progress_for(sys.stderr),
        load_reranker=lambda spec: load_reranker_with_threads(spec, threads),
    )
    primary = metric_list[0]
    result = run_harness(harness, specs, k_list, dataset=root.name or str(root), primary=primary)
    comparisons = compare_to_baseline(result, primary)
    hurts = where_reranking_hurts(result, queries, dataset.qrels, primary)
    rec = recommend(result, budget_ms) if budget_ms is not None else None

    click.echo(format_table(result, comparisons))
    if rec is not None:
        click.echo(f"\nrecommendation (budget {budget_ms:g} ms p95): {rec.reason}")
    if hurts:
        click.echo("\nwhere reranking hurt most:")
        for h in hurts[:5]:
            click.echo(
                f"  {h.name} k={h.k} q={h.query_id}: {primary} {h.before:.3f} -> {h.after:.3f}, "
                f"relevant rank {h.relevant_rank_before} -> {h.relevant_rank_after}  "
                f"{h.query[:60]!r}"
            )
    if json_path:
        Path(json_path).write_text(json.dumps(to_json(result, comparisons, hurts, rec), indent=2))
        click.echo(f"wrote {json_path}", err=True)
    if report_path:
        Path(report_path).write_text(render_html(result, comparisons, hurts, rec), encoding="utf-8")
        click.echo(f"wrote {report_path}", err=True)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:40]

"""`shortlist eval`: compare pipelines on a BEIR-layout dataset (quality, latency, cost)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shortlist.cli._common import index_size, load_reranker_with_threads, threads_option
from shortlist.cli.batch_cmd import ray_options, ray_settings
from shortlist.errors import IndexCompatibilityError, IndexNotFoundError, InvalidInputError

if TYPE_CHECKING:
    from shortlist.store.index import Index


def _parse_pipelines(items: tuple[str, ...]) -> list[tuple[str, str]]:
    """`NAME=SPEC` or `SPEC` items; a first-stage parameter given as a comma-separated
    list (`hybrid?fusion=zscore&w=0.1,0.3,0.5`) sweeps it: one pipeline per value (per
    combination, if several are lists), named `NAME w=0.1` and so on."""
    out = []
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or "?" in name:
            name, spec = item, item
        if not name or not spec:
            raise InvalidInputError(
                f"--pipeline {item!r} must be NAME=SPEC or SPEC, e.g. rerank=hybrid+bi-encoder"
            )
        out.extend(expand_sweep(name, spec))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"pipeline names must be unique, got {names}")
    return out


def expand_sweep(name: str, spec: str) -> list[tuple[str, str]]:
    """(name, spec) pairs for every combination of the comma-separated first-stage
    parameter values in `spec` (just `[(name, spec)]` when there are none)."""
    import itertools

    first, plus, rerank = spec.partition("+")
    mode, q, query = first.partition("?")
    if not q or "," not in query:
        return [(name, spec)]
    pairs = [item.partition("=") for item in query.split("&")]
    choices = [[v.strip() for v in value.split(",")] for _key, _eq, value in pairs]
    out = []
    for combo in itertools.product(*choices):
        params = "&".join(f"{k}{eq}{v}" for (k, eq, _), v in zip(pairs, combo, strict=True))
        swept = " ".join(
            f"{k}={v}" for (k, _, value), v in zip(pairs, combo, strict=True) if "," in value
        )
        out.append(
            (
                f"{name} {swept}" if name != spec else f"{mode}?{params}",
                f"{mode}?{params}{plus}{rerank}",
            )
        )
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
    metavar="NAME=SPEC",
    help="FIRST_STAGE[?PARAMS][+RERANKER_SPEC], e.g. bm25, hybrid+bi-encoder, "
    "'bm25?k1=1.5&b=0.75', 'hybrid?fusion=zscore&w=0.3'; a comma list sweeps a parameter "
    "('hybrid?w=0.1,0.5,0.9'). Repeat; the first is the baseline.",
)
@click.option(
    "--pipeline-file",
    "pipeline_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="A pipeline file (shortlist.toml), evaluated as the pipeline named by the file's "
    "stem; its K joins the -k list. Repeatable.",
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
@ray_options
@threads_option
def eval_cmd(
    dataset_dir: str,
    pipelines: tuple[str, ...],
    pipeline_files: tuple[str, ...],
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
    ray_address: str | None,
    actors: int,
    batch_size: int,
    threads: int,
) -> None:
    """Run every pipeline at every k on DATASET_DIR and report which wins.

    With --ray, each configuration's queries are ranked by Ray actors (the saved runs and
    the metrics are the same as without it; latencies are the actors')."""
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
    from shortlist.pipeline_file import PipelineConfig
    from shortlist.progress import progress_for
    from shortlist.rerank.registry import parse_spec

    specs = _parse_pipelines(pipelines)
    k_list = _parse_ks(ks)
    for file in pipeline_files:
        config = PipelineConfig.load(file)
        specs.append((Path(file).stem, config.spec))
        k_list = sorted({*k_list, config.k})
    if not specs:
        raise InvalidInputError(
            "give at least one --pipeline NAME=SPEC or --pipeline-file FILE, e.g. --pipeline bm25"
        )
    names = [n for n, _ in specs]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"pipeline names must be unique, got {names}")
    for _name, spec in specs:  # fail fast, before any work
        parsed = parse_pipeline(spec)
        if parsed.reranker:
            parse_spec(parsed.reranker)
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
    needs_dense = any(parse_pipeline(s).mode != "bm25" for _n, s in specs)
    fp = file_fingerprint(root / "corpus.jsonl")

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    index = dataset_index(
        root, dataset.corpus, cache, model, dense=needs_dense, progress=progress, threads=threads
    )

    ray = ray_settings(ray_address, actors, batch_size, threads)
    remote = None
    if ray is not None:
        from shortlist.batch import BatchJob, rank_queries

        def remote(spec: str, k: int, max_k: int) -> list[Any]:
            job = BatchJob(
                str(index.path), spec, k=k, first_k=max_k, threads=threads,
                ignore_identical_ids=dataset.ignore_identical_ids,
            )
            return rank_queries(job, queries, ray=ray, progress=progress)

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
        remote=remote,
    )
    primary = metric_list[0]
    session: Any = contextlib.nullcontext()
    if ray is not None:
        from shortlist.batch import ray_session

        session = ray_session(ray)  # one Ray for every configuration
    with session:
        result = run_harness(
            harness, specs, k_list, dataset=root.name or str(root), primary=primary
        )
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


def dataset_index(
    root: Path,
    corpus: Any,
    cache: Path,
    model: str,
    *,
    dense: bool,
    progress: Callable[[str], None],
    threads: int | None = None,
) -> Index:
    """The index of a dataset's corpus under `cache`, reused when it exists (keyed by the
    corpus file's fingerprint and the encoder), else built with the index defaults
    (chunking, BM25, fusion), so eval and tune measure what `shortlist index` builds."""
    from shortlist.evaluate.harness import file_fingerprint
    from shortlist.progress import progress_for
    from shortlist.store.index import Index

    fp = file_fingerprint(root / "corpus.jsonl")
    index_dir = cache / f"index-{fp}-{'dense-' + _safe(model) if dense else 'bm25'}"
    try:
        index = Index.open(index_dir, num_threads=threads)
        progress(f"reusing index {index_dir} ({index.num_passages} passages)")
        return index
    except (IndexNotFoundError, IndexCompatibilityError):
        pass
    t = time.perf_counter()
    index = Index.create(
        index_dir,
        corpus,
        dense=dense,
        encoder=model,
        overwrite=True,
        progress=progress_for(sys.stderr),
        num_threads=threads,
    )
    progress(f"indexed {index_size(index)} in {time.perf_counter() - t:.1f}s -> {index_dir}")
    return index


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:40]

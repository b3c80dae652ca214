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
from shortlist.corpus.chunking import Chunker
from shortlist.errors import IndexCompatibilityError, IndexNotFoundError, InvalidInputError

if TYPE_CHECKING:
    from shortlist.evaluate.harness import Analysis
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
@click.argument(
    "dataset_dirs", nargs=-1, required=True, type=click.Path(), metavar="DATASET_DIR..."
)
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
@click.option(
    "--metrics",
    default="ndcg@10,mrr@10,recall@k",
    show_default=True,
    help="Comma-separated metrics, the first one primary. NAME@k (recall@k) is cut at each "
    "configuration's own K: the first stage's recall of the candidates the reranker sees.",
)
@click.option(
    "--budget-ms",
    type=float,
    default=None,
    help="Only recommend configurations whose p95 latency fits this budget.",
)
@click.option(
    "--format",
    "table_format",
    type=click.Choice(["text", "markdown", "latex"]),
    default="text",
    show_default=True,
    help="How the summary tables are printed on stdout.",
)
@click.option(
    "--remeasure",
    is_flag=True,
    help="Execute and time saved runs again instead of reusing their old latencies.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(),
    default=None,
    help="Write a self-contained HTML report.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(),
    default=None,
    help="Write every number as JSON (schema: docs/eval-json.md).",
)
@click.option("--split", default="test", show_default=True, help="Qrels split (qrels/SPLIT.tsv).")
@click.option(
    "--cache-dir",
    type=click.Path(),
    default=None,
    help="Where indexes and saved runs go (default: each DATASET_DIR/.shortlist).",
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
@click.option(
    "--max-queries", type=int, default=None, help="Evaluate only the first N queries of each."
)
@ray_options
@threads_option
def eval_cmd(
    dataset_dirs: tuple[str, ...],
    pipelines: tuple[str, ...],
    pipeline_files: tuple[str, ...],
    ks: str,
    top_n: int,
    metrics: str,
    budget_ms: float | None,
    table_format: str,
    remeasure: bool,
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
    """Run every pipeline at every k on each DATASET_DIR and report which wins.

    Several datasets give one table each plus a combined table (per dataset and the
    average), and one report page. With --ray, each configuration's queries are ranked by
    Ray actors (the saved runs and the metrics are the same as without it; latencies are
    the actors').
    """
    from shortlist.evaluate.harness import check_metric, utc_now
    from shortlist.evaluate.metadata import run_metadata
    from shortlist.evaluate.report import format_combined, format_table, shorten, write_outputs
    from shortlist.pipeline import parse_pipeline
    from shortlist.pipeline_file import PipelineConfig
    from shortlist.rerank.registry import parse_spec

    started = utc_now()
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
    if not metric_list:
        raise InvalidInputError("--metrics lists no metric; e.g. --metrics ndcg@10,recall@k")
    for m in metric_list:
        check_metric(m)
    prices = json.loads(Path(prices_path).read_text()) if prices_path else None
    roots = [Path(d) for d in dataset_dirs]
    labels = [r.resolve().name or str(r) for r in roots]
    if len(set(labels)) != len(labels):
        raise InvalidInputError(f"dataset folder names must be unique, got {labels}")

    ray = ray_settings(ray_address, actors, batch_size, threads)
    session: Any = contextlib.nullcontext()
    if ray is not None:
        from shortlist.batch import ray_session

        session = ray_session(ray)  # one Ray for every dataset and configuration
    analyses, models = [], {}
    with session:
        for root in roots:
            analysis, used = _evaluate_dataset(
                root,
                specs=specs,
                ks=k_list,
                metrics=metric_list,
                split=split,
                max_queries=max_queries,
                cache=Path(cache_dir) if cache_dir else root / ".shortlist",
                model=model,
                prices=prices,
                top_n=top_n,
                threads=threads,
                remeasure=remeasure,
                budget_ms=budget_ms,
                ray=ray,
            )
            analyses.append(analysis)
            models.update(used)
    command = _command_line(click.get_current_context())
    metadata = run_metadata(command, models, date=started, threads=threads)
    for a in analyses:
        a.result.metadata.update(metadata)

    blocks = [format_table(a, table_format) for a in analyses]
    if len(analyses) > 1:
        blocks.append(format_combined(analyses, table_format))
    click.echo("\n\n".join(blocks))
    if table_format == "text":
        for a in analyses:
            rec, primary = a.recommendation, a.result.primary
            budget = "" if budget_ms is None else f", budget {budget_ms:g} ms p95"
            click.echo(f"\nrecommendation for {a.result.dataset}{budget}: {rec.reason}")
            for title, rows in (("helped", a.helps), ("hurt", a.hurts)):
                if rows:
                    click.echo(f"where reranking {title} most:")
                for h in rows[:5]:
                    click.echo(
                        f"  {h.name} k={h.k} q={h.query_id}: {primary} {h.before:.3f} -> "
                        f"{h.after:.3f}, relevant rank {h.relevant_rank_before} -> "
                        f"{h.relevant_rank_after}  {shorten(h.query, 60)!r}"
                    )
        for a in analyses:
            for note in a.result.notes:
                click.echo(f"note ({a.result.dataset}): {note}", err=True)
    write_outputs(
        analyses,
        metadata,
        json_path=json_path,
        report_path=report_path,
        say=lambda msg: click.echo(msg, err=True),
    )


def _command_line(ctx: click.Context) -> list[str]:
    """The command as given, rebuilt from what click parsed (the same whether run from a
    shell or in-process): arguments, then every option set on the command line or by an
    environment variable, by its long name."""
    from click.core import ParameterSource

    args: list[str] = []
    options: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        value = ctx.params.get(name)
        if ctx.get_parameter_source(name) not in (
            ParameterSource.COMMANDLINE,
            ParameterSource.ENVIRONMENT,
        ):
            continue
        if isinstance(param, click.Argument):
            args += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
            continue
        flag = max(param.opts, key=len)
        if isinstance(param, click.Option) and param.is_flag:
            options += [flag] if value else []
        elif isinstance(value, tuple):
            for v in value:
                options += [flag, str(v)]
        else:
            options += [flag, str(value)]
    return ["shortlist", ctx.info_name or "eval", *args, *options]


def _evaluate_dataset(
    root: Path,
    *,
    specs: list[tuple[str, str]],
    ks: list[int],
    metrics: list[str],
    split: str,
    max_queries: int | None,
    cache: Path,
    model: str,
    prices: Any,
    top_n: int,
    threads: int,
    remeasure: bool,
    budget_ms: float | None,
    ray: Any = None,
) -> tuple[Analysis, dict[str, Any]]:
    """One dataset: load it, index it (or reuse the index), run the harness, analyse."""
    from shortlist.evaluate.beir import load_beir
    from shortlist.evaluate.harness import Harness, analyse, file_fingerprint, run_harness
    from shortlist.pipeline import parse_pipeline
    from shortlist.progress import progress_for
    from shortlist.rerank.base import close_reranker

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
    needs_dense = any(parse_pipeline(s).mode != "bm25" for _n, s in specs)
    fp = file_fingerprint(root / "corpus.jsonl")

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    # One index per chunking asked for (`chunk=...` in a first stage): the default one,
    # plus one more for each other chunking, each built once and cached.
    groups: dict[tuple[int, int, str] | None, list[tuple[str, str]]] = {}
    for pipeline_name, spec in specs:
        groups.setdefault(chunking_of(spec), []).append((pipeline_name, spec))
    loaded_rerankers: dict[str, Any] = {}

    def load(spec: str) -> Any:
        # One model per reranker spec across the chunking variants' harnesses.
        if spec not in loaded_rerankers:
            loaded_rerankers[spec] = load_reranker_with_threads(spec, threads)
        return loaded_rerankers[spec]

    name = root.resolve().name or str(root)
    result = None
    models: dict[str, Any] = {}
    try:
        for chunking, group in groups.items():
            index = dataset_index(
                root,
                dataset.corpus,
                cache,
                model,
                dense=needs_dense,
                progress=progress,
                threads=threads,
                chunker=None if chunking is None else Chunker(*chunking),  # type: ignore[arg-type]
            )
            harness = Harness(
                index,
                queries,
                dataset.qrels,
                ignore_identical_ids=dataset.ignore_identical_ids,
                cache_dir=cache,
                dataset_fingerprint=fp,
                metrics=metrics,
                top_n=top_n,
                prices=prices,
                progress=progress,
                stages=progress_for(sys.stderr),
                load_reranker=load,
                remeasure=remeasure,
                remote=None if ray is None else _ray_ranker(ray, index, queries, dataset,
                                                            threads, progress),
            )
            part = run_harness(harness, group, ks, dataset=name, primary=metrics[0])
            models.update(harness.models())
            if result is None:
                result = part
            else:
                result.configs.extend(part.configs)
                result.notes.extend(n for n in part.notes if n not in result.notes)
    finally:
        # The rerankers are shared by every chunking's harness (each loads through `load`),
        # so they are released here, once, not by a harness.
        for reranker in loaded_rerankers.values():
            close_reranker(reranker)
    assert result is not None
    order = {pipeline_name: i for i, (pipeline_name, _spec) in enumerate(specs)}
    result.configs.sort(key=lambda c: order[c.name])  # stable: K order kept per pipeline
    return analyse(result, queries, dataset.qrels, budget_ms=budget_ms), models


def _ray_ranker(
    ray: Any,
    index: Index,
    queries: dict[str, str],
    dataset: Any,
    threads: int,
    progress: Callable[[str], None],
) -> Callable[[str, int, int], list[Any]]:
    """Rank a configuration's queries on Ray actors, each opening `index` by its path."""
    from shortlist.batch import BatchJob, rank_queries

    def remote(spec: str, k: int, max_k: int) -> list[Any]:
        job = BatchJob(
            str(index.path),
            spec,
            k=k,
            first_k=max_k,
            threads=threads,
            ignore_identical_ids=dataset.ignore_identical_ids,
        )
        return rank_queries(job, queries, ray=ray, progress=progress)

    return remote


def chunking_of(spec: str) -> tuple[int, int, str] | None:
    """The (size, overlap, unit) a pipeline's first stage asks for with `chunk=...`, or
    None (the index defaults)."""
    from shortlist.pipeline import parse_pipeline
    from shortlist.retrieve.stages import parse_first_stage

    chunker = parse_first_stage(parse_pipeline(spec).first_stage).chunker
    if chunker is None or chunker == Chunker():
        return None
    return (chunker.size, chunker.overlap, chunker.unit)


def dataset_index(
    root: Path,
    corpus: Any,
    cache: Path,
    model: str,
    *,
    dense: bool,
    progress: Callable[[str], None],
    threads: int | None = None,
    chunker: Chunker | None = None,
) -> Index:
    """The index of a dataset's corpus under `cache`, reused when it exists (keyed by the
    corpus file's fingerprint, the encoder and a chunking other than the default), else
    built with the index defaults (BM25, fusion; chunking unless `chunker` is given), so
    eval and tune measure what `shortlist index` builds."""
    from shortlist.evaluate.harness import file_fingerprint
    from shortlist.progress import progress_for
    from shortlist.store.index import Index

    fp = file_fingerprint(root / "corpus.jsonl")
    index_dir = cache / f"index-{fp}-{'dense-' + _safe(model) if dense else 'bm25'}"
    if chunker is not None:
        index_dir = index_dir.with_name(
            f"{index_dir.name}-chunk-{chunker.size}-{chunker.overlap}-{chunker.unit}"
        )
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
        chunker=chunker,
    )
    progress(f"indexed {index_size(index)} in {time.perf_counter() - t:.1f}s -> {index_dir}")
    return index


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:40]

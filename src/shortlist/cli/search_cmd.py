"""`shortlist search`: first stage, optional rerank, output as JSON, text or a packed prompt."""

from __future__ import annotations

from typing import Any

import click

from shortlist.cli._common import (
    echo_json,
    echo_ranking,
    filter_option,
    first_stage_options,
    load_reranker_with_threads,
    parse_filters,
    threads_option,
)
from shortlist.types import Ranking
from shortlist.validate import check_query


@click.command("search")
@click.argument("query")
@click.option("--index", "index_dir", required=True, type=click.Path(), help="Index directory.")
@first_stage_options
@filter_option
@click.option(
    "--rerank",
    "rerank_spec",
    default=None,
    metavar="SPEC",
    help="Reranker spec, e.g. bi-encoder or cross-encoder:PATH?backend=onnx-int8.",
)
@click.option(
    "--top-n",
    default=None,
    type=click.IntRange(min=1),
    help="Results kept after reranking (default 10, or the pipeline file's).",
)
@click.option(
    "--pipeline-file",
    "pipeline_file",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Run the pipeline a pipeline file (shortlist.toml, e.g. from `shortlist tune`) "
    "describes: first stage and its parameters, K, reranker, N.",
)
@click.option(
    "--by",
    type=click.Choice(["passage", "document"]),
    default="passage",
    show_default=True,
    help="Return passages, or the best passage per document.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "prompt"]),
    default="text",
    show_default=True,
    help="text: a readable list; json: the ranking as JSON; prompt: the top passages "
    "packed into a prompt with citations (see --budget).",
)
@click.option("--budget", default=2000, show_default=True, help="--format prompt: token budget.")
@threads_option
def search_cmd(
    query: str,
    index_dir: str,
    mode: str | None,
    k: int | None,
    filters: tuple[str, ...],
    rerank_spec: str | None,
    top_n: int | None,
    pipeline_file: str | None,
    by: str,
    as_json: bool,
    fmt: str,
    budget: int,
    threads: int,
) -> None:
    """Search an index; with --rerank, rescore the top K and keep the top N."""
    from shortlist.store.index import Index

    check_query(query, "the query (first argument)")
    index = Index.open(index_dir, num_threads=threads)
    ranking = search_ranking(
        index,
        query,
        mode=mode,
        k=k,
        filter=parse_filters(filters) or None,
        rerank_spec=rerank_spec,
        top_n=top_n,
        pipeline_file=pipeline_file,
        by=by,
        threads=threads,
    )
    if as_json:
        fmt = "json"
    if fmt == "json":
        echo_json(ranking.to_dict())
    elif fmt == "prompt":
        from shortlist.prompt import pack_prompt

        packed = pack_prompt(query, ranking, budget_tokens=budget)
        click.echo(packed.text)
        if packed.dropped:
            click.echo(
                f"[dropped {len(packed.dropped)} passages over the {budget}-token budget: "
                f"{', '.join(h.id for h in packed.dropped)}]",
                err=True,
            )
    else:
        echo_ranking(ranking)


def search_ranking(
    index: Any,
    query: str,
    *,
    mode: str | None,
    k: int | None,
    filter: dict[str, Any] | None,
    rerank_spec: str | None,
    top_n: int | None,
    pipeline_file: str | None,
    by: str = "passage",
    threads: int,
) -> Ranking:
    """What `shortlist search` (and `shortlist ask`) rank for `query`: the pipeline file,
    else the first stage `mode` with `--rerank` (K 50, N 10), else the first stage alone
    (K 10). Raises `InvalidInputError` when the file and -k/--mode/--rerank are both given."""
    from shortlist.pipeline import Pipeline
    from shortlist.retrieve.stages import first_stage

    if pipeline_file is not None:
        from shortlist.errors import InvalidInputError
        from shortlist.pipeline_file import PipelineConfig

        given = [name for name, v in (("--mode", mode), ("-k", k), ("--rerank", rerank_spec)) if v]
        if given:
            raise InvalidInputError(
                f"{', '.join(given)} and --pipeline-file both set the pipeline; drop "
                f"{', '.join(given)} (or edit {pipeline_file})"
            )
        config = PipelineConfig.load(pipeline_file)
        pipeline = Pipeline.from_config(config, index, by=by)  # type: ignore[arg-type]
        return pipeline.run(query, filter=filter, top_n=top_n)
    mode = mode or ("hybrid" if index.has_dense else "bm25")
    if rerank_spec and rerank_spec != "none":
        retriever = first_stage(index, mode, by=by)  # type: ignore[arg-type]
        pipeline = Pipeline(
            retriever,
            load_reranker_with_threads(rerank_spec, threads),
            k=k or 50,
            top_n=top_n or 10,
        )
        return pipeline.run(query, filter=filter)
    ranking: Ranking = index.search(query, k=k or 10, mode=mode, filter=filter, by=by)
    return ranking

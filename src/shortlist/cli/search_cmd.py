"""`shortlist search`: first stage, optional rerank, output as JSON, text or a packed prompt."""

from __future__ import annotations

import click

from shortlist.cli._common import (
    echo_json,
    echo_ranking,
    load_reranker_with_threads,
    parse_filters,
    threads_option,
)
from shortlist.validate import check_query


@click.command("search")
@click.argument("query")
@click.option("--index", "index_dir", required=True, type=click.Path(), help="Index directory.")
@click.option(
    "--mode",
    type=click.Choice(["bm25", "dense", "hybrid"]),
    default=None,
    help="First stage (default: hybrid, or bm25 for an index without vectors).",
)
@click.option(
    "-k",
    "k",
    default=None,
    type=click.IntRange(min=1),
    help="Candidates from the first stage (default 10, or 50 with --rerank).",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata filter; repeat a key for any-of.",
)
@click.option(
    "--rerank",
    "rerank_spec",
    default=None,
    metavar="SPEC",
    help="Reranker spec, e.g. bi-encoder or cross-encoder:PATH?backend=onnx-int8.",
)
@click.option(
    "--top-n",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Results kept after reranking.",
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
    top_n: int,
    by: str,
    as_json: bool,
    fmt: str,
    budget: int,
    threads: int,
) -> None:
    """Search an index; with --rerank, rescore the top K and keep the top N."""
    from shortlist.pipeline import Pipeline
    from shortlist.retrieve.stages import first_stage
    from shortlist.store.index import Index

    check_query(query, "the query (first argument)")
    index = Index.open(index_dir, num_threads=threads)
    mode = mode or ("hybrid" if index.has_dense else "bm25")
    flt = parse_filters(filters) or None
    if rerank_spec and rerank_spec != "none":
        retriever = first_stage(index, mode, by=by)  # type: ignore[arg-type]
        reranker = load_reranker_with_threads(rerank_spec, threads)
        pipeline = Pipeline(retriever, reranker, k=k or 50, top_n=top_n)
        ranking = pipeline.run(query, filter=flt)
    else:
        ranking = index.search(query, k=k or 10, mode=mode, filter=flt, by=by)  # type: ignore[arg-type]
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

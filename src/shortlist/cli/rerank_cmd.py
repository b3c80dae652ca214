"""`shortlist rerank`: rerank the documents of a JSONL file for one query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from shortlist.cli._common import load_reranker_with_threads, threads_option
from shortlist.errors import CorpusFormatError
from shortlist.evaluate.trec import iter_json_objects
from shortlist.types import Document, Ranking
from shortlist.validate import InvalidTextError, check_query


def read_docs(path: Path) -> list[Document]:
    """One JSON object per line with `text` and optional `id` (default: its 0-based index
    among the documents); other keys become metadata. Blank lines are skipped."""
    docs: list[Document] = []
    form = "each line must be a JSON object with a string 'text'"
    for number, obj in iter_json_objects(path, form=form):
        if not isinstance(obj.get("text"), str):
            raise CorpusFormatError(form, path=str(path), line=number)
        doc_id = obj.get("id", len(docs))
        meta = {k: v for k, v in obj.items() if k not in ("id", "text")}
        try:
            docs.append(Document(id=str(doc_id), text=obj["text"], metadata=meta))
        except InvalidTextError as exc:
            raise CorpusFormatError(str(exc), path=str(path), line=number) from None
    return docs


def _results(ranking: Ranking, docs: list[Document]) -> list[dict[str, Any]]:
    return [
        {
            "index": h.index,
            "id": h.id,
            "score": h.score,
            "raw_score": h.raw_score,
            "text": docs[h.index].text if h.index is not None else h.text,
        }
        for h in ranking.hits
    ]


def _spec_help() -> str:
    from shortlist.rerank.registry import describe_specs

    return describe_specs()


class _RerankCommand(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        with formatter.indentation():
            for line in _spec_help().splitlines():
                formatter.write(line + "\n")


@click.command("rerank", cls=_RerankCommand)
@click.argument("query")
@click.option("--model", "spec", default="bi-encoder", show_default=True, help="Reranker spec.")
@click.option(
    "--docs",
    "docs_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL file: one {'text': ..., 'id': ...} per line.",
)
@click.option("--top-n", type=click.IntRange(min=1), default=None, help="Keep the best N.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@threads_option
def rerank_cmd(
    query: str, spec: str, docs_path: Path, top_n: int | None, as_json: bool, threads: int
) -> None:
    """Rerank the documents in --docs for QUERY with the reranker --model."""
    from shortlist.rerank.base import close_reranker

    check_query(query, "the query (first argument)")
    docs = read_docs(docs_path)
    reranker = load_reranker_with_threads(spec, threads)
    try:
        ranking = reranker.rerank(query, docs, top_n=top_n)
    finally:
        close_reranker(reranker)
    results = _results(ranking, docs)
    for warning in ranking.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        payload: dict[str, Any] = {
            "query": query,
            "results": results,
            "timings_ms": dict(ranking.timings_ms),
        }
        if ranking.stats:
            payload["stats"] = dict(ranking.stats)
        if ranking.warnings:
            payload["warnings"] = list(ranking.warnings)
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    click.echo(f"{'rank':>4}  {'score':>6}  {'raw':>9}  {'id':<12}  text")
    for rank, r in enumerate(results, start=1):
        text = " ".join(r["text"].split())
        text = text if len(text) <= 70 else text[:69] + "…"
        raw = f"{r['raw_score']:9.4f}" if r["raw_score"] is not None else f"{'-':>9}"
        click.echo(f"{rank:>4}  {r['score']:6.4f}  {raw}  {str(r['id'])[:12]:<12}  {text}")
    total = ranking.timings_ms.get("rerank")
    if total is not None:
        click.echo(f"{len(results)} of {len(docs)} documents, {reranker.name}, {total:.1f} ms")

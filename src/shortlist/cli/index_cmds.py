"""`shortlist index`, `shortlist add`, `shortlist delete`: build and change an index."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from shortlist.cli._common import echo_json, threads_option
from shortlist.corpus.chunking import Chunker
from shortlist.corpus.readers import BadRecord, CsvColumns, read_corpus
from shortlist.types import Document

_source = click.argument("sources", nargs=-1, required=True, type=click.Path())
_index_opt = click.option(
    "--index", "index_dir", required=True, type=click.Path(), help="Index directory."
)


def _reader_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--format",
        "fmt",
        type=click.Choice(["jsonl", "beir", "csv", "folder"]),
        default=None,
        help="Input format (default: from the file extension).",
    )(f)
    f = click.option("--id-column", default="id", show_default=True, help="CSV: id column.")(f)
    f = click.option("--text-column", default="text", show_default=True, help="CSV: text column.")(
        f
    )
    f = click.option(
        "--title-column", default=None, help="CSV: title column (default: 'title' when present)."
    )(f)
    f = click.option(
        "--skip-bad", is_flag=True, help="Report and skip bad records instead of failing."
    )(f)
    return f


class _Reader:
    """Reads sources, counting and reporting skipped records on stderr."""

    def __init__(
        self,
        sources: tuple[str, ...],
        fmt: str | None,
        id_column: str,
        text_column: str,
        title_column: str | None,
        skip_bad: bool,
    ) -> None:
        self.sources = sources
        self.fmt = fmt
        self.columns = CsvColumns(id=id_column, text=text_column, title=title_column)
        self.skip_bad = skip_bad
        self.skipped = 0
        self.count = 0

    def _bad(self, bad: BadRecord) -> None:
        self.skipped += 1
        click.echo(f"skipped {bad.path}:{bad.line}: {bad.reason}", err=True)

    def documents(self) -> Iterator[Document]:
        for doc in read_corpus(
            list(self.sources),
            format=self.fmt,
            csv_columns=self.columns,
            skip_bad=self.skip_bad,
            on_bad=self._bad,
        ):
            self.count += 1
            yield doc


@click.command("index")
@_source
@_index_opt
@click.option("--no-dense", is_flag=True, help="BM25 only: no embedding model, no vectors.")
@click.option(
    "--model",
    default="default",
    show_default=True,
    help="Dense encoder: 'default' (all-MiniLM-L6-v2, offline) or a sentence-transformers "
    "id/path, with an optional ?backend=torch|onnx|onnx-int8|openvino|openvino-int8.",
)
@click.option("--chunk-size", default=200, show_default=True, help="Passage size in words.")
@click.option(
    "--chunk-overlap", default=40, show_default=True, help="Overlap between passages in words."
)
@click.option("--k1", default=0.9, show_default=True, help="BM25 k1.")
@click.option("--b", default=0.4, show_default=True, help="BM25 b.")
@click.option("--overwrite", is_flag=True, help="Replace an existing index (atomically).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@threads_option
@_reader_options
def index_cmd(
    sources: tuple[str, ...],
    index_dir: str,
    no_dense: bool,
    model: str,
    chunk_size: int,
    chunk_overlap: int,
    k1: float,
    b: float,
    overwrite: bool,
    as_json: bool,
    threads: int,
    fmt: str | None,
    id_column: str,
    text_column: str,
    title_column: str | None,
    skip_bad: bool,
) -> None:
    """Build an index from SOURCES (JSONL, BEIR corpus.jsonl, CSV, or folders of .txt/.md).

    Progress goes to stderr: a bar per stage on a terminal, one line per stage otherwise.
    """
    from shortlist.progress import progress_for
    from shortlist.store.index import Index

    t0 = time.perf_counter()
    reader = _Reader(sources, fmt, id_column, text_column, title_column, skip_bad)
    chunker = Chunker(size=chunk_size, overlap=chunk_overlap)
    index = Index.create(
        index_dir,
        reader.documents(),
        dense=not no_dense,
        encoder=model,
        k1=k1,
        b=b,
        chunker=chunker,
        overwrite=overwrite,
        progress=progress_for(sys.stderr),
        num_threads=threads,
    )
    dt = time.perf_counter() - t0
    if as_json:
        echo_json(
            {
                "index": index_dir,
                "documents": index.num_documents,
                "passages": index.num_passages,
                "seconds": round(dt, 3),
                "encoder": index.encoder_identity,
                "skipped": reader.skipped,
            }
        )
    else:
        click.echo(
        f"indexed {index.num_documents} documents ({index.num_passages} passages) "
            f"into {index_dir} in {dt:.1f}s" + ("" if no_dense else f" [dense: {model}]")
        )
    if reader.skipped:
        click.echo(f"skipped {reader.skipped} bad records", err=True)


@click.command("add")
@_source
@_index_opt
@click.option("--replace", is_flag=True, help="Replace documents whose id is already indexed.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@threads_option
@_reader_options
def add_cmd(
    sources: tuple[str, ...],
    index_dir: str,
    replace: bool,
    as_json: bool,
    threads: int,
    fmt: str | None,
    id_column: str,
    text_column: str,
    title_column: str | None,
    skip_bad: bool,
) -> None:
    """Add documents to an existing index without rebuilding it (progress on stderr)."""
    from shortlist.progress import progress_for
    from shortlist.store.index import Index

    t0 = time.perf_counter()
    index = Index.open(index_dir, num_threads=threads)
    reader = _Reader(sources, fmt, id_column, text_column, title_column, skip_bad)
    added = index.add(
        reader.documents(),
        on_duplicate="replace" if replace else "error",
        progress=progress_for(sys.stderr),
    )
    dt = time.perf_counter() - t0
    if as_json:
        echo_json(
            {
                "index": index_dir,
                "added_passages": added,
                "read_documents": reader.count,
                "documents": index.num_documents,
                "passages": index.num_passages,
                "seconds": round(dt, 3),
                "skipped": reader.skipped,
            }
        )
    else:
        click.echo(
            f"added {added} passages from {reader.count} documents in {dt:.1f}s; the index "
            f"now has {index.num_documents} documents ({index.num_passages} passages)"
        )
    if reader.skipped:
        click.echo(f"skipped {reader.skipped} bad records", err=True)


@click.command("delete")
@click.argument("ids", nargs=-1, required=True)
@_index_opt
def delete_cmd(ids: tuple[str, ...], index_dir: str) -> None:
    """Delete documents (by document id) or single passages (by passage id)."""
    from shortlist.errors import InvalidInputError
    from shortlist.store.index import Index

    index = Index.open(index_dir)
    deleted, unknown = index.delete(ids)
    if unknown:
        click.echo(f"not in the index: {', '.join(unknown)}", err=True)
    if deleted == 0:
        raise InvalidInputError("none of the given ids is in the index; nothing was deleted")
    click.echo(
        f"deleted {deleted} passages; the index now has {index.num_documents} documents "
        f"({index.num_passages} passages)"
    )

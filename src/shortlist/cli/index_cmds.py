"""`shortlist index`, `shortlist add`, `shortlist delete`: build and change an index."""

from __future__ import annotations

import functools
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from shortlist.cli._common import echo_json, index_size, threads_option
from shortlist.corpus.chunking import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CHUNK_UNIT,
    Chunker,
)
from shortlist.corpus.readers import FORMATS, BadRecord, CsvColumns, read_corpus
from shortlist.errors import InvalidInputError
from shortlist.retrieve.bm25 import DEFAULT_B, DEFAULT_K1
from shortlist.retrieve.fusion import (
    DEFAULT_FUSION,
    DEFAULT_FUSION_WEIGHTS,
    DEFAULT_LONG_QUERY_WEIGHTS,
    FUSIONS,
)
from shortlist.types import Document

_index_opt = click.option(
    "--index", "index_dir", required=True, type=click.Path(), help="Index directory."
)


class _Reader:
    """Reads sources, counting and reporting skipped records on stderr."""

    def __init__(
        self, sources: tuple[str, ...], fmt: str | None, columns: CsvColumns, skip_bad: bool
    ) -> None:
        self.sources = sources
        self.fmt = fmt
        self.columns = columns
        self.skip_bad = skip_bad
        self.skipped = 0
        self.count = 0

    def bad(self, bad: BadRecord) -> None:
        self.skipped += 1
        click.echo(f"skipped {bad}", err=True)

    def note(self, note: BadRecord) -> None:
        click.echo(f"note: {note}", err=True)

    def documents(self) -> Iterator[Document]:
        for doc in read_corpus(
            list(self.sources),
            format=self.fmt,
            csv_columns=self.columns,
            skip_bad=self.skip_bad,
            on_bad=self.bad,
            on_note=self.note,
        ):
            self.count += 1
            yield doc

    def report_skipped(self) -> None:
        if self.skipped:
            click.echo(f"skipped {self.skipped} bad records", err=True)


def _reads_documents(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command SOURCES, --index and the reader options, as `index_dir` and `reader`.

    The command receives a `_Reader` over the sources instead of the six reader arguments;
    skipped records are reported after it returns.
    """

    @functools.wraps(command)
    def run(
        sources: tuple[str, ...],
        fmt: str | None,
        id_column: str,
        text_column: str,
        title_column: str | None,
        skip_bad: bool,
        **kwargs: Any,
    ) -> None:
        columns = CsvColumns(id=id_column, text=text_column, title=title_column)
        reader = _Reader(sources, fmt, columns, skip_bad)
        command(reader=reader, **kwargs)
        reader.report_skipped()

    decorators = [
        click.argument("sources", nargs=-1, required=True, type=click.Path()),
        _index_opt,
        click.option(
            "--format",
            "fmt",
            type=click.Choice(list(FORMATS)),
            default=None,
            help="Input format (default: from the file extension; in a folder, each file's). "
            "html, pdf and docx need the 'documents' extra.",
        ),
        click.option("--id-column", default="id", show_default=True, help="CSV: id column."),
        click.option("--text-column", default="text", show_default=True, help="CSV: text column."),
        click.option(
            "--title-column",
            default=None,
            help="CSV: title column (default: 'title' when present).",
        ),
        click.option(
            "--skip-bad",
            is_flag=True,
            help="Report and skip bad records and files (one line each) instead of failing.",
        ),
    ]
    wrapped: Callable[..., None] = run
    for decorate in reversed(decorators):
        wrapped = decorate(wrapped)
    return wrapped


@click.command("index")
@_reads_documents
@click.option("--no-dense", is_flag=True, help="BM25 only: no embedding model, no vectors.")
@click.option(
    "--model",
    default="default",
    show_default=True,
    help="Dense encoder: 'default' (all-MiniLM-L6-v2, offline) or a sentence-transformers "
    "id/path, with an optional ?backend=torch|onnx|onnx-int8|openvino|openvino-int8 "
    "(without one: openvino-int8 for 'default' on CPU, torch otherwise).",
)
@click.option(
    "--chunk-unit",
    type=click.Choice(["tokens", "words"]),
    default=DEFAULT_CHUNK_UNIT,
    show_default=True,
    help="Unit of --chunk-size/--chunk-overlap: the default encoder's word-piece tokens, or words.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Longest passage; a document that fits is never split (254 tokens: "
    "all-MiniLM-L6-v2's window).",
)
@click.option(
    "--chunk-overlap",
    type=click.IntRange(min=0),
    default=DEFAULT_CHUNK_OVERLAP,
    show_default=True,
    help="Units shared by consecutive passages of a split document.",
)
@click.option("--k1", type=float, default=DEFAULT_K1, show_default=True, help="BM25 k1.")
@click.option("--b", type=float, default=DEFAULT_B, show_default=True, help="BM25 b.")
@click.option(
    "--fusion",
    type=click.Choice(sorted(FUSIONS)),
    default=DEFAULT_FUSION,
    show_default=True,
    help="How hybrid search fuses BM25 and dense (stored in the index).",
)
@click.option(
    "--fusion-weights",
    default=",".join(f"{w:g}" for w in DEFAULT_FUSION_WEIGHTS),
    show_default=True,
    help="BM25,DENSE weights of the fusion.",
)
@click.option(
    "--long-query-weights",
    default=",".join(f"{w:g}" for w in DEFAULT_LONG_QUERY_WEIGHTS),
    show_default=True,
    help="BM25,DENSE weights for long queries (40+ words; 20 or fewer use --fusion-weights, "
    "in between a linear mix), or 'none' for --fusion-weights on every query.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing index (atomically).")
@click.option(
    "--store",
    default=None,
    metavar="milvus:URI?collection=NAME",
    help="Keep the passages in a Milvus collection instead of local files; --index then "
    "holds only a pointer to it. URI: a file (Milvus Lite) or http://host:19530 (token "
    "from MILVUS_TOKEN). Add &index=flat|hnsw to choose the dense index.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@threads_option
def index_cmd(
    reader: _Reader,
    index_dir: str,
    no_dense: bool,
    model: str,
    chunk_unit: str,
    chunk_size: int,
    chunk_overlap: int,
    k1: float,
    b: float,
    fusion: str,
    fusion_weights: str,
    long_query_weights: str,
    overwrite: bool,
    store: str | None,
    as_json: bool,
    threads: int,
) -> None:
    """Build an index from SOURCES: JSONL, BEIR corpus.jsonl, CSV, documents (HTML, PDF,
    DOCX, Markdown, text) or folders of documents.

    Progress goes to stderr: a bar per stage on a terminal, one line per stage otherwise.
    With --store, the passages go to that Milvus collection, and every other command
    (search, add, delete, serve, eval, tune) reaches it through --index DIR.
    """
    from shortlist.progress import progress_for
    from shortlist.store.index import HybridConfig, Index

    t0 = time.perf_counter()
    long = long_query_weights.strip().lower()
    hybrid = HybridConfig(
        method=fusion,
        weights=_weights(fusion_weights),
        long_weights=None if long == "none" else _weights(long, "--long-query-weights"),
    )
    chunker = Chunker(size=chunk_size, overlap=chunk_overlap, unit=chunk_unit)  # type: ignore[arg-type]
    documents = reader.documents()
    first = next(documents, None)
    if first is None:  # build nothing rather than an empty index nobody asked for
        skipped = f" ({reader.skipped} bad records skipped)" if reader.skipped else ""
        raise InvalidInputError(
            f"no documents found in {', '.join(reader.sources)}{skipped}; nothing was indexed"
        )
    build: Callable[..., Index] = Index.create
    if store is not None:
        from shortlist.store.milvus import MilvusIndex, MilvusTarget

        target = MilvusTarget.parse(store, token=os.environ.get("MILVUS_TOKEN") or None)
        build = functools.partial(MilvusIndex.create, target=target)
    index = build(
        index_dir,
        itertools.chain([first], documents),
        dense=not no_dense,
        encoder=model,
        k1=k1,
        b=b,
        chunker=chunker,
        hybrid=hybrid,
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
            f"indexed {index_size(index)} "
            f"into {index_dir} in {dt:.1f}s" + ("" if no_dense else f" [dense: {model}]")
        )


def _weights(text: str, option: str = "--fusion-weights") -> tuple[float, float]:
    parts = text.split(",")
    try:
        bm25, dense = (float(p) for p in parts)
    except ValueError:
        raise InvalidInputError(
            f"{option} must be two numbers BM25,DENSE such as 0.3,0.7; got {text!r}"
        ) from None
    return bm25, dense


@click.command("add")
@_reads_documents
@click.option("--replace", is_flag=True, help="Replace documents whose id is already indexed.")
@click.option(
    "--sync",
    is_flag=True,
    help="SOURCES is one folder: re-read only its files whose content changed, add new "
    "ones, remove the passages of deleted ones.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@threads_option
def add_cmd(
    reader: _Reader, index_dir: str, replace: bool, sync: bool, as_json: bool, threads: int
) -> None:
    """Add documents to an existing index without rebuilding it (progress on stderr)."""
    from shortlist.progress import progress_for
    from shortlist.store.index import Index

    t0 = time.perf_counter()
    if sync:
        if len(reader.sources) != 1 or replace:
            raise InvalidInputError(
                "--sync takes exactly one folder (and implies --replace for changed files); "
                "run it once per folder"
            )
        _sync(reader, index_dir, as_json, threads, t0)
        return
    index = Index.open(index_dir, num_threads=threads)
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
            f"added {added} passages from {reader.count} documents in {dt:.1f}s; "
            f"the index now has {index_size(index)}"
        )


def _sync(reader: _Reader, index_dir: str, as_json: bool, threads: int, t0: float) -> None:
    from shortlist.progress import progress_for
    from shortlist.store.index import Index
    from shortlist.store.sync import sync_folder

    folder = reader.sources[0]
    index = Index.open(index_dir, num_threads=threads)
    report = sync_folder(
        index,
        folder,
        format=None if reader.fmt == "folder" else reader.fmt,
        skip_bad=reader.skip_bad,
        on_bad=reader.bad,
        on_note=reader.note,
        progress=progress_for(sys.stderr),
    )
    dt = time.perf_counter() - t0
    if as_json:
        echo_json(
            {
                "index": index_dir,
                "folder": folder,
                **report.to_dict(),
                "documents": index.num_documents,
                "passages": index.num_passages,
                "seconds": round(dt, 3),
                "skipped": reader.skipped,
            }
        )
        return
    counts = report.to_dict()
    summary = ", ".join(
        f"{counts[k]} {k}" for k in ("added", "changed", "removed", "unchanged")
    )
    failed = f", {counts['failed']} unreadable (kept as before)" if report.failed else ""
    click.echo(
        f"synced {folder}: {summary}{failed}; {report.passages} passages encoded in "
        f"{dt:.1f}s; the index now has {index_size(index)}"
    )


@click.command("delete")
@click.argument("ids", nargs=-1, required=True)
@_index_opt
def delete_cmd(ids: tuple[str, ...], index_dir: str) -> None:
    """Delete documents (by document id) or single passages (by passage id)."""
    from shortlist.store.index import Index

    index = Index.open(index_dir)
    deleted, unknown = index.delete(ids)
    if unknown:
        click.echo(f"not in the index: {', '.join(unknown)}", err=True)
    if deleted == 0:
        raise InvalidInputError("none of the given ids is in the index; nothing was deleted")
    click.echo(
        f"deleted {deleted} passages; the index now has {index_size(index)}"
    )

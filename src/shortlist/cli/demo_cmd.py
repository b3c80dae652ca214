"""`shortlist demo`: the whole pipeline on a small real corpus that ships offline.

The corpus is the Lee news corpus inside the gensim package (300 background and 50
evaluation news articles from the Australian Broadcasting Corporation, as used by
Lee, Pincombe & Welsh 2005). The demo indexes it (BM25 + all-MiniLM-L6-v2 vectors),
then answers a few queries with hybrid retrieval and the default reranker.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click

from shortlist.cli._common import echo_ranking, load_reranker_with_threads, threads_option

DEMO_QUERIES = (
    "bushfires threatening homes around Sydney",
    "Israeli Palestinian violence and peace talks",
    "Australian cricket team wins the test match",
)


@click.command("demo")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(),
    default=None,
    help="Keep the demo index here (default: a temporary directory).",
)
@click.option(
    "--rerank",
    "rerank_spec",
    default="bi-encoder",
    show_default=True,
    help="Second stage reranker spec.",
)
@click.option("-k", "k", default=30, show_default=True, help="First-stage candidates.")
@click.option("--top-n", default=3, show_default=True, help="Results shown per query.")
@click.option("--query", "queries", multiple=True, help="Your own queries (repeatable).")
@threads_option
def demo(
    index_dir: str | None,
    rerank_spec: str,
    k: int,
    top_n: int,
    queries: tuple[str, ...],
    threads: int,
) -> None:
    """Index the Lee news corpus (shipped with gensim) and answer a few queries."""
    from shortlist.evaluate.datasets.lee import make_collection
    from shortlist.pipeline import Pipeline
    from shortlist.progress import progress_for
    from shortlist.store.index import Index

    with tempfile.TemporaryDirectory(prefix="shortlist-demo-") as tmp:
        path = Path(index_dir) if index_dir else Path(tmp) / "index"
        docs = make_collection().corpus
        click.echo(f"corpus: Lee news corpus from gensim, {len(docs)} articles")
        t0 = time.perf_counter()
        index = Index.create(
            path,
            docs,
            overwrite=True,
            progress=progress_for(sys.stderr),
            num_threads=threads,
        )
        click.echo(
            f"indexed {index.num_documents} documents ({index.num_passages} passages) "
            f"in {time.perf_counter() - t0:.1f}s -> {path}"
        )
        reranker = load_reranker_with_threads(rerank_spec, threads)
        pipeline = Pipeline(index, reranker, k=k, top_n=top_n, mode="hybrid")
        pipeline.run("warm up")  # first call loads the models; keep it out of the timings
        click.echo(
            f"pipeline: hybrid (BM25 + dense, RRF) top {k} -> {rerank_spec} -> top {top_n}\n"
        )
        for q in queries or DEMO_QUERIES:
            click.echo(f"query: {q}")
            echo_ranking(pipeline.run(q))
            click.echo("")

"""`shortlist demo`: the whole pipeline on a small real corpus that ships offline.

The corpus is the Lee news corpus inside the gensim package (300 background and 50
evaluation news articles from the Australian Broadcasting Corporation, as used by
Lee, Pincombe & Welsh 2005). The demo indexes it (BM25 + all-MiniLM-L6-v2 vectors),
then answers a few queries with hybrid retrieval and the default reranker. The corpus
reader lives in `shortlist_datasets` and gensim is not a core dependency, so the demo
needs ``pip install -e '.[datasets]'`` and says so when it is missing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click

from shortlist._optional import require
from shortlist.cli._common import (
    echo_ranking,
    index_size,
    load_reranker_with_threads,
    threads_option,
)

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
    """Index the Lee news corpus (shipped with gensim) and answer a few queries.

    Needs the datasets extra: pip install -e '.[datasets]' (from a checkout).
    """
    require("shortlist_datasets", "datasets", "the demo corpus")
    from shortlist.pipeline import Pipeline
    from shortlist.progress import progress_for
    from shortlist.retrieve.stages import first_stage
    from shortlist.store.index import Index
    from shortlist_datasets.lee import make_collection

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
            f"indexed {index_size(index)} "
            f"in {time.perf_counter() - t0:.1f}s -> {path}"
        )
        reranker = load_reranker_with_threads(rerank_spec, threads)
        pipeline = Pipeline(first_stage(index, "hybrid"), reranker, k=k, top_n=top_n)
        pipeline.run("warm up")  # first call loads the models; keep it out of the timings
        fusion = f"{index.hybrid.method} {index.hybrid.weights[0]:g}/{index.hybrid.weights[1]:g}"
        click.echo(
            f"pipeline: hybrid (BM25 + dense, {fusion}) top {k} -> {rerank_spec} -> top {top_n}\n"
        )
        for q in queries or DEMO_QUERIES:
            click.echo(f"query: {q}")
            echo_ranking(pipeline.run(q))
            click.echo("")

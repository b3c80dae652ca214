"""`shortlist rerank-batch`: a file of queries through retrieve-and-rerank into a TREC run,
in this process or on Ray (`--ray [ADDRESS]`); and the `--ray` options `eval` shares."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shortlist.cli._common import threads_option
from shortlist.errors import InvalidInputError

F = TypeVar("F", bound=Callable[..., Any])

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before `ray` is imported, a private local Ray keeps 127.0.0.1 as its node
address, so every Ray process listens on loopback only (else Ray swaps in the machine's
address and listens on it)."""


def ray_options(f: F) -> F:
    """`--ray [ADDRESS]`, `--actors N`, `--batch-size N`."""
    f = click.option(
        "--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
        help="With --ray: queries per batch handed to an actor.",
    )(f)
    f = click.option(
        "--actors", type=click.IntRange(min=1), default=2, show_default=True,
        help="With --ray: actors in the pool; each loads the model once.",
    )(f)
    return click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="local",
        default=None,
        metavar="[ADDRESS]",
        help="Spread the queries over Ray (Ray Data actors): alone, a private Ray on this "
        "machine (loopback only); with an address (auto, ray://head:10001), that cluster. "
        "The index folder must exist on every node, or point at a shared Milvus collection.",
    )(f)


def ray_settings(address: str | None, actors: int, batch_size: int, threads: int | None) -> Any:
    """The `RayOptions` for the flags, or None without --ray (then ray is never imported)."""
    if address is None:
        return None
    from shortlist.batch import RayOptions

    if address == "local":
        os.environ.setdefault(LOOPBACK_ENV, "0")  # the edge: before ray is imported
    return RayOptions(
        address=None if address == "local" else address,
        actors=actors,
        cpus_per_actor=float(threads or 1),
        batch_size=batch_size,
    )


@click.command("rerank-batch")
@click.argument(
    "queries_path", type=click.Path(exists=True, dir_okay=False), metavar="QUERIES.jsonl"
)
@click.option("--index", "index_dir", required=True, type=click.Path(), help="Index directory.")
@click.option(
    "--rerank", "rerank_spec", default="none", show_default=True,
    help="Reranker spec (see `shortlist rerank --help`); none: first stage only.",
)
@click.option(
    "--first-stage", default="hybrid", show_default=True,
    help="bm25, dense or hybrid, with optional ?KEY=VALUE parameters.",
)
@click.option("-k", "k", type=click.IntRange(min=1), default=100, show_default=True,
              help="Candidates retrieved and reranked per query.")
@click.option("--top-n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Hits kept per query (the run holds their documents).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="TREC run file to write.")
@click.option("--tag", default="shortlist", show_default=True, help="The run's tag column.")
@ray_options
@threads_option
def rerank_batch_cmd(
    queries_path: str,
    index_dir: str,
    rerank_spec: str,
    first_stage: str,
    k: int,
    top_n: int,
    out_path: str,
    tag: str,
    ray_address: str | None,
    actors: int,
    batch_size: int,
    threads: int | None,
) -> None:
    """Rank every query of QUERIES.jsonl (BEIR queries: _id and text per line) with the
    index's first stage and the reranker, and write the top N as a TREC run (each
    document scored by its best passage's reranked score). With --ray the run file is
    the same, byte for byte, as without it."""
    from shortlist.batch import BatchJob, rank_queries
    from shortlist.evaluate.beir import read_queries_jsonl
    from shortlist.evaluate.trec import write_trec_run
    from shortlist.pipeline import parse_pipeline

    queries = read_queries_jsonl(queries_path)
    if not queries:
        raise InvalidInputError(f"no queries in {queries_path}")
    spec = first_stage if rerank_spec.strip() in ("", "none") else f"{first_stage}+{rerank_spec}"
    parse_pipeline(spec)  # fail fast on a bad spec, before Ray starts
    job = BatchJob(index_dir, spec, k=k, top_n=top_n, threads=threads)
    ray = ray_settings(ray_address, actors, batch_size, threads)
    t = time.perf_counter()
    outcomes = rank_queries(job, queries, ray=ray, progress=lambda m: click.echo(m, err=True))
    write_trec_run(out_path, {o.qid: o.scores for o in outcomes}, tag)
    where = "" if ray is None else f" on Ray ({actors} actors)"
    click.echo(
        f"wrote {out_path}: {len(outcomes)} queries{where} in "
        f"{time.perf_counter() - t:.1f}s",
        err=True,
    )

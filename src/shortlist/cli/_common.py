"""Helpers shared by CLI commands: progress on terminals only, filters, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from shortlist.errors import InvalidInputError
from shortlist.types import Ranking, citation_label

F = TypeVar("F", bound=Callable[..., Any])


def _apply_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int:
    from shortlist.threads import apply_threads, default_threads

    n = value if value is not None else default_threads()
    apply_threads(n)
    return n


def threads_option(f: F) -> F:
    """`--threads N`, applied while the command line is parsed (before any model loads):
    intra-op threads for torch, ONNX Runtime and OpenVINO. See `shortlist.threads` for
    why the default is the physical cores available rather than the runtimes' own."""
    return click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        callback=_apply_threads,
        help="Intra-op threads for model runtimes "
        "(default: OMP_NUM_THREADS, else the physical cores this process may use).",
    )(f)


def first_stage_options(f: F) -> F:
    """`--mode` and `-k`: the first stage and how many candidates it hands on, as
    `search` and `ask` declare them (None: the command picks the default it documents)."""
    f = click.option(
        "-k",
        "k",
        default=None,
        type=click.IntRange(min=1),
        help="Candidates from the first stage (default 10, or 50 with --rerank).",
    )(f)
    return click.option(
        "--mode",
        type=click.Choice(["bm25", "dense", "hybrid"]),
        default=None,
        help="First stage (default: hybrid, or bm25 for an index without vectors).",
    )(f)


def filter_option(f: F) -> F:
    """`--filter KEY=VALUE`, repeatable, read with `parse_filters`."""
    return click.option(
        "--filter",
        "filters",
        multiple=True,
        metavar="KEY=VALUE",
        help="Metadata filter; repeat a key for any-of.",
    )(f)


def load_reranker_with_threads(spec: str, threads: int) -> Any:
    """`load_reranker(spec)`, handing `threads` to a reranker kind that sizes its own
    runtime (a local cross-encoder on onnx/openvino); torch ones follow `--threads` anyway."""
    from shortlist.rerank.registry import REGISTRY, load_reranker

    kind = REGISTRY.get(spec.strip().partition(":")[0])  # the grammar's kind; None: invalid
    if kind is not None and "num_threads" in kind.options:
        return load_reranker(spec, num_threads=threads)
    return load_reranker(spec)  # raises the spec error for an unknown kind


def interactive() -> bool:
    """Progress bars only when a person is watching: stderr is a terminal."""
    return sys.stderr.isatty()


def index_size(index: Any) -> str:
    """``N documents (P passages)``: how commands report an index's size."""
    return f"{index.num_documents} documents ({index.num_passages} passages)"


def parse_filters(items: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs; a key given twice means membership (any of the values)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--filter {item!r} is not key=value, e.g. --filter lang=en")
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def snippet(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def echo_ranking(ranking: Ranking, *, show_first_stage: bool = True) -> None:
    """A readable table of hits and a timing line."""
    if not ranking.hits:
        click.echo("no results")
    for h in ranking.hits:
        first = ""
        if show_first_stage and h.first_stage_rank is not None and h.first_stage_rank != h.rank:
            first = f"  (first stage #{h.first_stage_rank})"
        label = citation_label(h)
        where = f"  [{label}]" if label != h.doc_id else ""
        click.echo(f"{h.rank:>3}. {h.score:8.4f}  {h.id}{where}{first}")
        click.echo(f"       {snippet(h.text)}")
    timings = "  ".join(f"{k}={v:.1f}ms" for k, v in ranking.timings_ms.items())
    click.echo(f"timings: {timings}")

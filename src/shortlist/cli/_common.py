"""Helpers shared by CLI commands: progress on terminals only, filters, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from shortlist.errors import InvalidInputError
from shortlist.types import Ranking


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
        click.echo(f"{h.rank:>3}. {h.score:8.4f}  {h.id}{first}")
        click.echo(f"       {snippet(h.text)}")
    timings = "  ".join(f"{k}={v:.1f}ms" for k, v in ranking.timings_ms.items())
    click.echo(f"timings: {timings}")

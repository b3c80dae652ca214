"""Citations in an answer: `[1]`, `[2, 3]`, `[1][4]`, checked against the packed prompt.

`pack_prompt` numbers the passages it includes from 1; an answer cites them by that
number. A number outside the prompt (the model invented it, or cited a passage that was
retrieved but dropped for the token budget) is kept and flagged, never silently removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shortlist.types import Hit

_CITATION = re.compile(r"\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\]")


@dataclass(frozen=True, slots=True)
class Citation:
    """One cited number. `id`/`doc_id` name the passage when `in_prompt`, else None."""

    number: int
    in_prompt: bool
    id: str | None = None
    doc_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "in_prompt": self.in_prompt,
            "id": self.id,
            "doc_id": self.doc_id,
        }


def cited_numbers(text: str) -> list[int]:
    """Every number cited in `text`, in order of first appearance, without repeats."""
    seen: dict[int, None] = {}
    for match in _CITATION.finditer(text):
        for part in match.group(1).split(","):
            seen.setdefault(int(part), None)
    return list(seen)


def resolve_citations(text: str, included: Sequence[Hit]) -> list[Citation]:
    """The citations of `text`; `included[i]` is the passage cited as `[i + 1]`."""
    out = []
    for number in cited_numbers(text):
        if 1 <= number <= len(included):
            hit = included[number - 1]
            out.append(Citation(number, True, hit.id, hit.doc_id))
        else:
            out.append(Citation(number, False))
    return out

"""The record every collection recipe returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shortlist.types import Document, Qrels


@dataclass(frozen=True)
class Collection:
    """A test collection in memory, ready to be written as a BEIR folder."""

    corpus: list[Document]
    queries: dict[str, str]
    qrels: Qrels
    card: str
    manifest: dict[str, Any] = field(default_factory=dict)

"""The record every collection recipe returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shortlist.types import Document, Qrels


@dataclass(frozen=True)
class Collection:
    """A collection in memory, ready to be written as a BEIR folder.

    `qrels` is the ``test`` split (written when not empty); `splits` holds other named
    splits (``train``, ``dev``); `query_metadata` goes into each query's ``metadata``.
    """

    corpus: list[Document]
    queries: dict[str, str]
    qrels: Qrels
    card: str
    manifest: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, Qrels] = field(default_factory=dict)
    query_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    def all_splits(self) -> dict[str, Qrels]:
        """Every split to write: ``test`` (from `qrels`, when not empty) and `splits`."""
        return ({"test": self.qrels} if self.qrels or not self.splits else {}) | self.splits

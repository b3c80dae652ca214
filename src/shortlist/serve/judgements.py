"""Relevance judgements made in the playground, kept as a BEIR dataset folder.

    store = JudgementStore(Path("judged"))
    store.export_corpus(index)                  # corpus.jsonl, once, from the served index
    store.mark("how do cats sleep", "doc-7", 1) # qrels/test.tsv and queries.jsonl

The folder is BEIR's layout (`corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv` with a
`query-id corpus-id score` header), so `shortlist eval DIR` runs on it as it is. A query
is identified by its text: the same text always gets the same id (`pg-` and 12 hex
digits of its SHA-1), and a query already in `queries.jsonl` keeps the id it has there.
Every write replaces the file atomically (temporary file, then rename), under one lock,
so a reader never sees half a file. Relevance is graded 0-3 (0: judged not relevant).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.types import Passage

MAX_RELEVANCE = 3
QRELS_HEADER = "query-id\tcorpus-id\tscore"


def query_id_for(text: str) -> str:
    """The id a new query gets: `pg-` and the first 12 hex digits of SHA-1 of its text."""
    return "pg-" + hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:12]


class JudgementStore:
    """Judgements in a BEIR folder at `root` (created when missing). Thread-safe."""

    def __init__(self, root: Path, *, split: str = "test") -> None:
        self.root = Path(root)
        self.split = split
        self._lock = threading.Lock()

    @property
    def qrels_path(self) -> Path:
        return self.root / "qrels" / f"{self.split}.tsv"

    @property
    def queries_path(self) -> Path:
        return self.root / "queries.jsonl"

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"

    def export_corpus(self, index: Any) -> bool:
        """Write `corpus.jsonl` from `index`'s documents unless the file exists; True when
        written. A document's text is rebuilt from its passages' offsets (chunks overlap,
        so the rebuilt text is the original, whitespace at chunk cuts aside)."""
        with self._lock:
            if self.corpus_path.exists():
                return False
            rows = np.flatnonzero(index.filter_mask({}))
            documents: dict[str, list[Passage]] = {}
            for passage in index.passages_at(rows):
                documents.setdefault(passage.doc_id, []).append(passage)
            lines = []
            for doc_id, passages in documents.items():
                first = passages[0]
                record = {
                    "_id": doc_id,
                    "title": first.title,
                    "text": _rebuild(passages),
                    "metadata": dict(first.metadata),
                }
                lines.append(json.dumps(record, ensure_ascii=False))
            _write(self.corpus_path, "".join(line + "\n" for line in lines))
            return True

    def marks(self, query: str) -> tuple[str, dict[str, int]]:
        """The query's id and its judgements `{doc_id: relevance}` (empty when none)."""
        with self._lock:
            qid = self._queries().get(query.strip()) or query_id_for(query)
            return qid, dict(self._qrels().get(qid, {}))

    def mark(self, query: str, doc_id: str, relevance: int | None) -> tuple[str, dict[str, int]]:
        """Judge `doc_id` for `query` (None removes the judgement); the query's id and all
        its judgements after the change. Raises `InvalidInputError` for a blank query or
        document id, or a relevance outside 0-3."""
        text = query.strip()
        if not text:
            raise InvalidInputError("the query is empty; judge passages of a query you ran")
        if not doc_id.strip() or any(c in doc_id for c in "\t\r\n"):
            raise InvalidInputError(f"bad document id {doc_id!r}: blank or with tabs/newlines")
        if relevance is not None and not 0 <= relevance <= MAX_RELEVANCE:
            raise InvalidInputError(
                f"relevance must be 0-{MAX_RELEVANCE} (0: not relevant), got {relevance}"
            )
        with self._lock:
            queries = self._queries()
            qid = queries.get(text) or query_id_for(text)
            qrels = self._qrels()
            judged = qrels.setdefault(qid, {})
            if relevance is None:
                judged.pop(doc_id, None)
            else:
                judged[doc_id] = relevance
            if text not in queries:
                line = json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n"
                old = self.queries_path.read_text("utf-8") if self.queries_path.exists() else ""
                _write(self.queries_path, old + line)
            rows = [QRELS_HEADER] + [
                f"{q}\t{d}\t{score}" for q, docs in qrels.items() for d, score in docs.items()
            ]
            _write(self.qrels_path, "\n".join(rows) + "\n")
            return qid, dict(judged)

    def _queries(self) -> dict[str, str]:
        """Query text -> id, from `queries.jsonl`."""
        if not self.queries_path.exists():
            return {}
        out: dict[str, str] = {}
        for line in self.queries_path.read_text("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                out.setdefault(str(record["text"]).strip(), str(record["_id"]))
        return out

    def _qrels(self) -> dict[str, dict[str, int]]:
        if not self.qrels_path.exists():
            return {}
        out: dict[str, dict[str, int]] = {}
        for line in self.qrels_path.read_text("utf-8").splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) == 3:
                out.setdefault(parts[0], {})[parts[1]] = int(parts[2])
        return out


def _rebuild(passages: Iterable[Passage]) -> str:
    """A document's text from its passages (`start`/`end` offsets into it)."""
    text = ""
    for p in sorted(passages, key=lambda p: p.start):
        if p.start >= len(text):
            text += " " * (p.start - len(text)) + p.text
        else:
            text += p.text[len(text) - p.start :]
    return text


def _write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

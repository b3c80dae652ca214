"""A score cache for rerankers whose score of a pair does not depend on the other candidates.

Entries are keyed by sha256 over (model identity, purpose, query, text): the same
passage reranked again for the same query is not sent to the model twice (repeated
evaluation runs, popular queries on a server). Only `PairScorer` rerankers may be
cached: their score of a pair is, by contract, independent of the other candidates.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from shortlist.errors import InvalidInputError, SpecError
from shortlist.rerank.base import Candidate, PairScorer, Reranker, build_ranking, candidate_text
from shortlist.types import Ranking


@dataclass(frozen=True)
class CachedScore:
    """What is kept for one pair: the raw score, and for a rerank the calibrated score
    and the deciding window of a long document."""

    raw: float
    calibrated: float | None = None
    window: int | None = None


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@runtime_checkable
class ScoreCache(Protocol):
    """Maps keys (hex digests) to `CachedScore`s; counts hits and misses in `get_many`."""

    def get_many(self, keys: Sequence[str]) -> list[CachedScore | None]: ...

    def put_many(self, items: Mapping[str, CachedScore]) -> None: ...

    def stats(self) -> CacheStats: ...


def cache_key(identity: str, purpose: str, query: str, text: str) -> str:
    """sha256 over a JSON array, so no choice of strings can collide by concatenation."""
    blob = json.dumps([identity, purpose, query, text], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class MemoryScoreCache:
    """A thread-safe in-memory LRU cache holding at most `max_entries` scores."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries <= 0:
            raise InvalidInputError(f"max_entries must be positive, got {max_entries}")
        self._max = max_entries
        self._data: OrderedDict[str, CachedScore] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get_many(self, keys: Sequence[str]) -> list[CachedScore | None]:
        out: list[CachedScore | None] = []
        with self._lock:
            for key in keys:
                value = self._data.get(key)
                if value is None:
                    self._misses += 1
                else:
                    self._hits += 1
                    self._data.move_to_end(key)
                out.append(value)
        return out

    def put_many(self, items: Mapping[str, CachedScore]) -> None:
        with self._lock:
            for key, value in items.items():
                self._data[key] = value
                self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._data))


class SQLiteScoreCache:
    """An on-disk cache in one SQLite file (WAL mode), shared across runs and processes.

    Unbounded: delete the file to clear it. Each `put_many` is one transaction, so a
    crash loses at most the batch being written, never corrupts earlier entries.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS scores ("
                "key TEXT PRIMARY KEY, raw REAL NOT NULL, calibrated REAL, win INTEGER)"
            )
        self._hits = 0
        self._misses = 0

    def get_many(self, keys: Sequence[str]) -> list[CachedScore | None]:
        found: dict[str, CachedScore] = {}
        with self._lock:
            # SQLite caps bound parameters (999 in old builds): query in chunks.
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, raw, calibrated, win FROM scores WHERE key IN ({marks})", chunk
                )
                for key, raw, cal, win in rows:
                    found[key] = CachedScore(raw, cal, win)
            out = [found.get(k) for k in keys]
            hits = sum(v is not None for v in out)
            self._hits += hits
            self._misses += len(keys) - hits
        return out

    def put_many(self, items: Mapping[str, CachedScore]) -> None:
        rows = [(k, v.raw, v.calibrated, v.window) for k, v in items.items()]
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)

    def stats(self) -> CacheStats:
        with self._lock:
            (size,) = self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()
            return CacheStats(self._hits, self._misses, int(size))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _identity(inner: Reranker) -> str:
    identity = getattr(inner, "identity", None)
    if identity is None:
        return inner.name
    return identity if isinstance(identity, str) else json.dumps(identity, sort_keys=True)


class CachedReranker:
    """Wraps a `PairScorer` reranker; serves repeated (query, text) pairs from `cache`.

    `rerank` sends only the uncached candidates to the inner reranker's `rerank` (so
    its calibration and long-document windows are kept) and caches raw score,
    calibrated score and window; `score_pairs` caches raw scores separately, as the
    two may differ for long documents. The model identity in the key is `identity`,
    else the inner reranker's `identity` attribute, else its `name` (a spec string:
    pass `identity` when the weights behind a path can change).
    """

    def __init__(self, inner: Reranker, cache: ScoreCache, *, identity: str | None = None) -> None:
        if not isinstance(inner, PairScorer):
            raise SpecError(
                f"{inner.name} cannot be cached: only rerankers that score each pair on its "
                "own (PairScorer: cross-encoders, bi-encoders) give cacheable scores"
            )
        self.inner = inner
        self.cache = cache
        self._identity = identity or _identity(inner)

    @property
    def name(self) -> str:
        return self.inner.name

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        start = time.perf_counter()
        keys = [
            cache_key(self._identity, "rerank", query, candidate_text(c)) for c in documents
        ]
        cached = self.cache.get_many(keys)
        missing = [i for i, v in enumerate(cached) if v is None or v.calibrated is None]
        scores: list[CachedScore | None] = list(cached)
        if missing:
            fresh = self.inner.rerank(query, [documents[i] for i in missing])
            new: dict[str, CachedScore] = {}
            for h in fresh.hits:
                assert h.index is not None and h.raw_score is not None
                hit_cal = h.calibrated_score if h.calibrated_score is not None else h.score
                value = CachedScore(float(h.raw_score), float(hit_cal), h.window)
                scores[missing[h.index]] = value
                new[keys[missing[h.index]]] = value
            self.cache.put_many(new)
        raw = [s.raw if s is not None else math.nan for s in scores]
        cal = [s.calibrated if s is not None and s.calibrated is not None else math.nan
               for s in scores]
        windows = [s.window if s is not None else None for s in scores]
        elapsed = (time.perf_counter() - start) * 1000.0
        return build_ranking(
            query, documents, raw, cal, top_n, windows=windows,
            timings_ms={"rerank": elapsed},
        )

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        keys = [cache_key(self._identity, "pair", q, t) for q, t in pairs]
        cached = self.cache.get_many(keys)
        out = np.array([v.raw if v is not None else math.nan for v in cached], dtype=np.float64)
        missing = [i for i, v in enumerate(cached) if v is None]
        if missing:
            scorer: PairScorer = self.inner
            fresh = np.asarray(scorer.score_pairs([pairs[i] for i in missing]), dtype=np.float64)
            if fresh.shape != (len(missing),):
                raise InvalidInputError(
                    f"{self.inner.name}.score_pairs returned shape {fresh.shape}; "
                    "only one raw score per pair can be cached"
                )
            out[missing] = fresh
            pairs_new = zip(missing, fresh, strict=True)
            self.cache.put_many({keys[i]: CachedScore(float(s)) for i, s in pairs_new})
        return out

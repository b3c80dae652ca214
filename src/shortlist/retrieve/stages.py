"""First-stage retrievers: small frozen objects with one job each.

    store = Index.open("my-index")              # any `PassageStore`
    bm25 = BM25Retriever(store)
    hybrid = HybridRetriever(bm25, DenseRetriever(store), HybridConfig(method="rrf"))
    ranking = hybrid.run("how do I rotate logs?", k=50, filter={"lang": "en"})

Every retriever has `run(query, *, k, filter) -> Ranking` and `run_many(queries, ...)`.
`BM25Retriever`, `DenseRetriever` and `HybridRetriever` also expose `search_rows`, the
same search in the store's numeric rows, which is what fusion combines. Hits carry
their first-stage rank and score. Timing keys (see `shortlist.pipeline`):
`retrieve.bm25`, `retrieve.encode`, `retrieve.dense`, `retrieve.fusion` and the
stage's total `retrieve`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast, runtime_checkable

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.retrieve.fusion import fuse
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.retrieve.store import Filter, PassageStore
from shortlist.types import Hit, Ranking
from shortlist.validate import check_query

MODES: tuple[str, ...] = ("bm25", "dense", "hybrid")
"""First-stage names, as used in pipeline specs and `Index.search(mode=...)`."""


@dataclass(frozen=True, slots=True)
class RowHits:
    """A first-stage result in store rows: `rows` (int64) and `scores` (float32), best first."""

    rows: np.ndarray
    scores: np.ndarray
    timings_ms: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class Retriever(Protocol):
    """A first stage: the top `k` passages of `store` for a query."""

    @property
    def name(self) -> str:
        """The first-stage spec (`bm25`, `dense`, `hybrid`)."""
        ...

    @property
    def store(self) -> PassageStore: ...

    def run(self, query: str, *, k: int = 10, filter: Filter | None = None) -> Ranking: ...

    def run_many(
        self, queries: Sequence[str], *, k: int = 10, filter: Filter | None = None
    ) -> list[Ranking]: ...


@runtime_checkable
class RowRetriever(Retriever, Protocol):
    """A retriever that can answer in store rows (what `HybridRetriever` fuses)."""

    def search_rows(self, query: str, k: int, *, allowed: np.ndarray | None) -> RowHits: ...


class _RowStage:
    """`run`/`run_many` for a stage that implements `search_rows` (shared, not a type)."""

    store: PassageStore

    def search_rows(self, query: str, k: int, *, allowed: np.ndarray | None) -> RowHits:
        raise NotImplementedError

    def run(self, query: str, *, k: int = 10, filter: Filter | None = None) -> Ranking:
        """The top `k` passages; `filter` restricts the search itself, so k hits come back
        whenever k matching passages exist. Raises `InvalidInputError` for an empty query
        or k < 1."""
        started = time.perf_counter()
        _check_query(query, k)
        allowed = self.store.filter_mask(filter) if filter else None
        found = self.search_rows(query, k, allowed=allowed)
        hits = hits_at(self.store, found.rows, found.scores)
        timings = dict(found.timings_ms)
        timings["retrieve"] = (time.perf_counter() - started) * 1000.0
        return Ranking(query=query, hits=tuple(hits), timings_ms=timings)

    def run_many(
        self, queries: Sequence[str], *, k: int = 10, filter: Filter | None = None
    ) -> list[Ranking]:
        return [self.run(q, k=k, filter=filter) for q in queries]


@dataclass(frozen=True)
class BM25Retriever(_RowStage):
    """BM25 over the store's postings (the store's analyzer and parameters)."""

    store: PassageStore
    name: str = field(default="bm25", init=False)

    def search_rows(self, query: str, k: int, *, allowed: np.ndarray | None) -> RowHits:
        t = time.perf_counter()
        rows, scores = self.store.bm25_search(self.store.analyze(query), k, allowed=allowed)
        return RowHits(rows, scores, {"retrieve.bm25": (time.perf_counter() - t) * 1000.0})


@dataclass(frozen=True)
class DenseRetriever(_RowStage):
    """Cosine nearest neighbours of the query embedding (the store's own encoder)."""

    store: PassageStore
    name: str = field(default="dense", init=False)

    def __post_init__(self) -> None:
        if not self.store.has_dense:
            raise InvalidInputError(
                f"the index at {self.store.location} has no dense vectors (built with "
                "--no-dense); use mode 'bm25', or rebuild it with dense vectors"
            )

    def search_rows(self, query: str, k: int, *, allowed: np.ndarray | None) -> RowHits:
        t = time.perf_counter()
        vector = self.store.embed_query(query)
        encoded = time.perf_counter()
        rows, scores = self.store.vector_search(vector, k, allowed=allowed)
        timings = {
            "retrieve.encode": (encoded - t) * 1000.0,
            "retrieve.dense": (time.perf_counter() - encoded) * 1000.0,
        }
        return RowHits(rows, scores, timings)


@dataclass(frozen=True)
class HybridRetriever(_RowStage):
    """Fuses two row retrievers (usually BM25 and dense over one store) with `config`.

    Fusion runs on numeric rows: equal fused scores are ordered by ascending row.
    """

    sparse: RowRetriever
    dense: RowRetriever
    config: HybridConfig = field(default_factory=HybridConfig)
    name: str = field(default="hybrid", init=False)

    @property
    def store(self) -> PassageStore:  # type: ignore[override]
        return self.sparse.store

    def search_rows(self, query: str, k: int, *, allowed: np.ndarray | None) -> RowHits:
        depth = max(k, self.config.depth)
        left = self.sparse.search_rows(query, depth, allowed=allowed)
        right = self.dense.search_rows(query, depth, allowed=allowed)
        t = time.perf_counter()
        rows, scores = fuse_rows(self.config, [left, right], k)
        timings = {**left.timings_ms, **right.timings_ms}
        timings["retrieve.fusion"] = (time.perf_counter() - t) * 1000.0
        return RowHits(rows, scores, timings)


def fuse_rows(
    config: HybridConfig, results: Sequence[RowHits], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse row results with `config`'s method; the top `k`, ties by ascending row."""
    runs = [
        dict(zip(r.rows.tolist(), r.scores.astype(np.float64).tolist(), strict=True))
        for r in results
    ]
    # The fusion functions only sort and compare keys; int rows keep numeric order.
    fused = cast(
        Mapping[int, float],
        fuse(config.method, cast(list[Mapping[str, float]], runs), **config.fusion_params()),
    )
    ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    rows = np.asarray([r for r, _ in ranked], dtype=np.int64)
    scores = np.asarray([s for _, s in ranked], dtype=np.float32)
    return rows, scores


@dataclass(frozen=True)
class BestPerDocument:
    """Collapses a row retriever's passages to documents: each document's best passage.

    Fetches 4k passages, and 4x more until k documents are found or the store runs out.
    """

    inner: RowRetriever

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def store(self) -> PassageStore:
        return self.inner.store

    def run(self, query: str, *, k: int = 10, filter: Filter | None = None) -> Ranking:
        started = time.perf_counter()
        _check_query(query, k)
        allowed = self.store.filter_mask(filter) if filter else None
        fetch = k * 4
        while True:
            found = self.inner.search_rows(query, fetch, allowed=allowed)
            hits = _best_per_document(hits_at(self.store, found.rows, found.scores))
            if len(hits) >= k or len(found.rows) < fetch:
                break
            fetch *= 4
        timings = dict(found.timings_ms)
        timings["retrieve"] = (time.perf_counter() - started) * 1000.0
        return Ranking(query=query, hits=tuple(hits[:k]), timings_ms=timings)

    def run_many(
        self, queries: Sequence[str], *, k: int = 10, filter: Filter | None = None
    ) -> list[Ranking]:
        return [self.run(q, k=k, filter=filter) for q in queries]


def first_stage(
    store: PassageStore,
    mode: str,
    *,
    hybrid: HybridConfig | None = None,
    by: Literal["passage", "document"] = "passage",
) -> Retriever:
    """The retriever a first-stage name (`bm25`, `dense`, `hybrid`) stands for over `store`.

`hybrid` overrides the store's own fusion settings (`store.hybrid`).

    Raises `InvalidInputError` for an unknown name, or a dense one over a store without
    vectors.
    """
    stage: RowRetriever
    if mode == "bm25":
        stage = BM25Retriever(store)
    elif mode == "dense":
        stage = DenseRetriever(store)
    elif mode == "hybrid":
        dense = DenseRetriever(store)
        stage = HybridRetriever(BM25Retriever(store), dense, hybrid or store.hybrid)
    else:
        raise InvalidInputError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if by == "document":
        return BestPerDocument(stage)
    if by != "passage":
        raise InvalidInputError(f"by must be 'passage' or 'document', got {by!r}")
    return stage


def hits_at(store: PassageStore, rows: np.ndarray, scores: np.ndarray) -> list[Hit]:
    """First-stage hits for `rows` (rank from 1, first-stage rank and score filled)."""
    passages = store.passages_at(rows)
    return [
        Hit(
            id=p.id,
            doc_id=p.doc_id,
            text=p.text,
            metadata=p.metadata,
            score=float(s),
            rank=r,
            first_stage_rank=r,
            first_stage_score=float(s),
        )
        for r, (p, s) in enumerate(zip(passages, scores.tolist(), strict=True), start=1)
    ]


def _best_per_document(hits: list[Hit]) -> list[Hit]:
    seen: set[str] = set()
    out: list[Hit] = []
    for h in hits:
        if h.doc_id in seen:
            continue
        seen.add(h.doc_id)
        rank = len(out) + 1
        out.append(h.with_(rank=rank, first_stage_rank=rank))
    return out


def _check_query(query: str, k: int) -> None:
    check_query(query, "query")  # blank, or not valid text (a lone surrogate)
    if k < 1:
        raise InvalidInputError(f"k must be >= 1, got {k}")

"""First-stage retrievers: small frozen objects with one job each.

    store = Index.open("my-index")              # any `PassageStore`
    bm25 = BM25Retriever(store)
    hybrid = HybridRetriever(bm25, DenseRetriever(store), HybridConfig(method="rrf"))
    ranking = hybrid.run("how do I rotate logs?", k=50, filter={"lang": "en"})

Every retriever has `run(query, *, k, filter) -> Ranking` and `run_many(queries, ...)`.
A first stage is named by a spec string, `MODE[?KEY=VALUE&...]` (`FirstStageSpec`):
`bm25?k1=1.5&b=0.75`, `hybrid?fusion=zscore&w=0.3` (see `FIRST_STAGE_PARAMS`).
`BM25Retriever`, `DenseRetriever` and `HybridRetriever` also expose `search_rows`, the
same search in the store's numeric rows, which is what fusion combines. Hits carry
their first-stage rank and score. Timing keys (see `shortlist.pipeline`):
`retrieve.bm25`, `retrieve.encode`, `retrieve.dense`, `retrieve.fusion` and the
stage's total `retrieve`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, cast, runtime_checkable

import numpy as np

from shortlist.corpus.chunking import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_UNIT,
    Chunker,
    Unit,
)
from shortlist.errors import InvalidInputError, SpecError
from shortlist.retrieve.hybrid import DEFAULT_HYBRID, HybridConfig
from shortlist.retrieve.store import (
    Allowed,
    ChunkedStore,
    Filter,
    PassageStore,
    RescoresBM25,
)
from shortlist.types import Hit, Ranking
from shortlist.validate import check_query

MODES: tuple[str, ...] = ("bm25", "dense", "hybrid")
"""First-stage names, as used in pipeline specs and `Index.search(mode=...)`."""


CHUNK_PARAMS: tuple[str, ...] = ("chunk", "overlap", "unit")
FIRST_STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "bm25": ("k1", "b", *CHUNK_PARAMS),
    "dense": CHUNK_PARAMS,
    "hybrid": ("fusion", "w", "wd", "wl", "rrf_k", "depth", "k1", "b", *CHUNK_PARAMS),
}
"""The query parameters each first stage accepts in a spec string:

- `k1`, `b`: BM25 parameters, applied at query time from the stored term frequencies
  and lengths (no re-indexing; see `BM25Params`);
- `fusion`: the hybrid's fusion method (a key of `shortlist.retrieve.fusion.FUSIONS`);
- `w`: the BM25 weight, the dense weight being `1 - w` unless `wd` gives it; given
  without `wl`, it is used for every query (fixed weights);
- `wl`: the BM25 weight for long queries (dense `1 - wl`; see `HybridConfig`), which the
  default fusion has; the weights then move from `w` to `wl` with the query's length;
- `rrf_k`: RRF's constant; `depth`: how many each side contributes before fusion;
- `chunk`, `overlap`, `unit`: the chunking the store must have been built with (a
  `Chunker`: size, overlap, `tokens` or `words`; overlap and unit default to the
  chunker's defaults). Chunking is fixed when an index is built, so a store chunked
  otherwise is refused; `shortlist eval` builds one index per chunking it is asked for.

Parameters left out take the store's own values (`store.hybrid`, the index's k1/b)."""


@dataclass(frozen=True)
class BM25Params:
    """BM25 `k1` (>= 0) and `b` (in [0, 1]) to score with at query time.

    The store rescores from its stored term frequencies and document lengths, so a
    search with other parameters equals a search of an index built with them.
    Raises `InvalidInputError` for values out of range.
    """

    k1: float
    b: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.k1) and self.k1 >= 0):
            raise InvalidInputError(f"BM25 k1 must be a finite number >= 0, got {self.k1}")
        if not (math.isfinite(self.b) and 0.0 <= self.b <= 1.0):
            raise InvalidInputError(f"BM25 b must be in [0, 1], got {self.b}")


@dataclass(frozen=True)
class FirstStageSpec:
    """A first stage and the parameters it overrides (None: the store's own value).

    `str(spec)` is the canonical spec string and `parse_first_stage` reads it back.
    """

    mode: str
    bm25: BM25Params | None = None
    method: str | None = None
    weights: tuple[float, float] | None = None
    rrf_k: int | None = None
    depth: int | None = None
    long_weights: tuple[float, float] | None = None
    chunker: Chunker | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SpecError(
                f"unknown first stage {self.mode!r}; expected one of {', '.join(MODES)}"
            )
        fusion = (self.method, self.weights, self.rrf_k, self.depth, self.long_weights)
        if self.mode != "hybrid" and any(v is not None for v in fusion):
            raise SpecError(
                f"fusion parameters apply to the hybrid first stage only, not {self.mode!r}"
            )
        if self.mode == "dense" and self.bm25 is not None:
            raise SpecError("k1 and b apply to bm25 and hybrid, not to the dense first stage")
        try:
            self.hybrid_config(HybridConfig())  # checks the overrides' values
        except InvalidInputError as exc:
            raise SpecError(f"first stage {self.mode!r}: {exc}") from None

    def hybrid_config(self, base: HybridConfig) -> HybridConfig:
        """`base` (the store's fusion settings) with this spec's overrides."""
        changes: dict[str, object] = {}
        if self.method is not None:
            changes["method"] = self.method
        if self.weights is not None:
            changes["weights"] = self.weights
            # Weights given without long-query weights mean these weights for every query.
            changes["long_weights"] = self.long_weights
        elif self.long_weights is not None:
            changes["long_weights"] = self.long_weights
        if self.rrf_k is not None:
            changes["rrf_k"] = self.rrf_k
        if self.depth is not None:
            changes["depth"] = self.depth
        return replace(base, **changes) if changes else base  # type: ignore[arg-type]

    def params(self) -> dict[str, str]:
        """The query parameters, canonical order and number formatting."""
        out: dict[str, str] = {}
        if self.method is not None:
            out["fusion"] = self.method
        if self.weights is not None:
            w, wd = self.weights
            out["w"] = _num(w)
            if wd != dense_weight(w):
                out["wd"] = _num(wd)
        if self.long_weights is not None:
            out["wl"] = _num(self.long_weights[0])
        if self.rrf_k is not None:
            out["rrf_k"] = str(self.rrf_k)
        if self.depth is not None:
            out["depth"] = str(self.depth)
        if self.bm25 is not None:
            out["k1"] = _num(self.bm25.k1)
            out["b"] = _num(self.bm25.b)
        if self.chunker is not None:
            out["chunk"] = str(self.chunker.size)
            out["overlap"] = str(self.chunker.overlap)
            out["unit"] = self.chunker.unit
        return out

    def without_chunking(self) -> FirstStageSpec:
        """This spec with no chunking requirement (what runs once the store is chosen)."""
        return replace(self, chunker=None)

    def __str__(self) -> str:
        params = self.params()
        return self.mode + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def dense_weight(w: float) -> float:
    """The dense weight that goes with BM25 weight `w` when only `w` is given: `1 - w`,
    rounded to 12 decimals so that `w=0.9` means (0.9, 0.1), not (0.9, 0.0999...98)."""
    return round(1.0 - w, 12)


def _num(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def parse_first_stage(spec: str | FirstStageSpec) -> FirstStageSpec:
    """Read `MODE[?KEY=VALUE&...]`, e.g. `hybrid?fusion=zscore&w=0.3`, `bm25?k1=1.5&b=0.75`.

    Raises `SpecError` naming the valid modes or the valid keys of that mode
    (`FIRST_STAGE_PARAMS`), or the value that is not a number.
    """
    if isinstance(spec, FirstStageSpec):
        return spec
    mode, sep, query = spec.strip().partition("?")
    if mode not in MODES:
        raise SpecError(
            f"unknown first stage {mode!r} in {spec!r}; expected one of {', '.join(MODES)}"
            ", optionally with ?KEY=VALUE&... parameters"
        )
    valid = FIRST_STAGE_PARAMS[mode]
    values: dict[str, str] = {}
    for item in query.split("&") if sep else ():
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key not in valid:
            hint = f"valid: {', '.join(valid)}" if valid else "it takes no parameters"
            raise SpecError(
                f"unknown parameter {key!r} for first stage {mode!r} in {spec!r}; {hint}"
            )
        if not eq or not value:
            raise SpecError(f"parameter {key!r} in {spec!r} needs a value: {key}=VALUE")
        if key in values:
            raise SpecError(f"parameter {key!r} is given twice in {spec!r}")
        values[key] = value

    def number(key: str) -> float:
        try:
            x = float(values[key])
        except ValueError:
            raise SpecError(
                f"parameter {key}={values[key]!r} in {spec!r} must be a number"
            ) from None
        if not math.isfinite(x):
            raise SpecError(f"parameter {key}={values[key]!r} in {spec!r} must be finite")
        return x

    def integer(key: str) -> int:
        try:
            return int(values[key])
        except ValueError:
            raise SpecError(
                f"parameter {key}={values[key]!r} in {spec!r} must be an integer"
            ) from None

    bm25 = None
    if "k1" in values or "b" in values:
        if not ("k1" in values and "b" in values):
            raise SpecError(f"give k1 and b together in {spec!r}, e.g. k1=1.2&b=0.75")
        try:
            bm25 = BM25Params(number("k1"), number("b"))
        except InvalidInputError as exc:
            raise SpecError(f"{exc} (in {spec!r})") from None
    weights = None
    if "w" in values or "wd" in values:
        w = number("w") if "w" in values else None
        wd = number("wd") if "wd" in values else None
        if w is None:
            assert wd is not None
            w = dense_weight(wd)
        if wd is None:
            if not 0.0 <= w <= 1.0:
                raise SpecError(
                    f"w={values['w']} in {spec!r} must be in [0, 1] (the BM25 weight; the "
                    "dense weight is 1 - w), or give the dense weight as wd=..."
                )
            wd = dense_weight(w)
        weights = (w, wd)
    long_weights = None
    if "wl" in values:
        wl = number("wl")
        if not 0.0 <= wl <= 1.0:
            raise SpecError(
                f"wl={values['wl']} in {spec!r} must be in [0, 1] (the BM25 weight for long "
                "queries; dense gets 1 - wl)"
            )
        long_weights = (wl, dense_weight(wl))
    chunker = None
    if any(key in values for key in CHUNK_PARAMS):
        if "chunk" not in values:
            raise SpecError(
                f"overlap and unit describe a chunking: give its size too in {spec!r}, "
                "e.g. chunk=128&overlap=16&unit=tokens"
            )
        try:
            chunker = Chunker(
                size=integer("chunk"),
                overlap=integer("overlap") if "overlap" in values else DEFAULT_CHUNK_OVERLAP,
                unit=cast(Unit, values.get("unit", DEFAULT_CHUNK_UNIT)),
            )
        except InvalidInputError as exc:
            raise SpecError(f"{exc} (in {spec!r})") from None
    return FirstStageSpec(
        mode,
        bm25=bm25,
        method=values.get("fusion"),
        weights=weights,
        rrf_k=integer("rrf_k") if "rrf_k" in values else None,
        depth=integer("depth") if "depth" in values else None,
        long_weights=long_weights,
        chunker=chunker,
    )


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

    def search_rows(self, query: str, k: int, *, allowed: Allowed | None) -> RowHits: ...


class _RowStage:
    """`run`/`run_many` for a stage that implements `search_rows` (shared, not a type)."""

    store: PassageStore

    def search_rows(self, query: str, k: int, *, allowed: Allowed | None) -> RowHits:
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
    """BM25 over the store's postings (the store's analyzer and parameters).

    `params` scores with other k1/b at query time; the store must implement
    `RescoresBM25` (`shortlist.store.Index` does), else `InvalidInputError`.
    """

    store: PassageStore
    params: BM25Params | None = None
    name: str = field(default="bm25", init=False)

    def __post_init__(self) -> None:
        if self.params is not None and not isinstance(self.store, RescoresBM25):
            raise InvalidInputError(
                f"the store at {self.store.location} cannot score BM25 with other k1/b at "
                "query time; drop k1/b, or rebuild the index with them"
            )

    def search_rows(self, query: str, k: int, *, allowed: Allowed | None) -> RowHits:
        t = time.perf_counter()
        terms = self.store.analyze(query)
        if self.params is None:
            rows, scores = self.store.bm25_search(terms, k, allowed=allowed)
        else:
            rows, scores = cast(RescoresBM25, self.store).bm25_search_with(
                terms, k, allowed=allowed, k1=self.params.k1, b=self.params.b
            )
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

    def search_rows(self, query: str, k: int, *, allowed: Allowed | None) -> RowHits:
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
    config: HybridConfig = DEFAULT_HYBRID
    name: str = field(default="hybrid", init=False)

    @property
    def store(self) -> PassageStore:  # type: ignore[override]
        return self.sparse.store

    def search_rows(self, query: str, k: int, *, allowed: Allowed | None) -> RowHits:
        depth = max(k, self.config.depth)
        left = self.sparse.search_rows(query, depth, allowed=allowed)
        right = self.dense.search_rows(query, depth, allowed=allowed)
        t = time.perf_counter()
        rows, scores = fuse_rows(self.config, [left, right], k, query=query)
        timings = {**left.timings_ms, **right.timings_ms}
        timings["retrieve.fusion"] = (time.perf_counter() - t) * 1000.0
        return RowHits(rows, scores, timings)


def fuse_rows(
    config: HybridConfig, results: Sequence[RowHits], k: int, *, query: str
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse `query`'s row results with `config`'s method and its weights for that query;
    the top `k`, ties by ascending row."""
    runs = [
        dict(zip(r.rows.tolist(), r.scores.astype(np.float64).tolist(), strict=True))
        for r in results
    ]
    # The fusion functions only sort and compare keys; int rows keep numeric order.
    fused = config.fuse(runs, query)
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
    mode: str | FirstStageSpec,
    *,
    hybrid: HybridConfig | None = None,
    by: Literal["passage", "document"] = "passage",
) -> Retriever:
    """The retriever a first-stage spec (`bm25`, `dense`, `hybrid`, with optional
    `?KEY=VALUE` parameters: `FirstStageSpec`) stands for over `store`.

    `hybrid` replaces the store's own fusion settings (`store.hybrid`); the spec's
    parameters then override single fields of it.

    Raises `InvalidInputError` for an unknown name (a `SpecError` for bad parameters),
    or a dense one over a store without vectors.
    """
    if isinstance(mode, str) and mode not in MODES and "?" not in mode:
        raise InvalidInputError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    spec = parse_first_stage(mode)
    if spec.chunker is not None:
        _check_chunking(store, spec)
    stage: RowRetriever
    if spec.mode == "bm25":
        stage = BM25Retriever(store, spec.bm25)
    elif spec.mode == "dense":
        stage = DenseRetriever(store)
    else:
        dense = DenseRetriever(store)
        config = spec.hybrid_config(hybrid or store.hybrid)
        stage = HybridRetriever(BM25Retriever(store, spec.bm25), dense, config)
    if by == "document":
        return BestPerDocument(stage)
    if by != "passage":
        raise InvalidInputError(f"by must be 'passage' or 'document', got {by!r}")
    return stage


def _check_chunking(store: PassageStore, spec: FirstStageSpec) -> None:
    """Refuse a spec whose chunking is not the store's (it is fixed at index time)."""
    assert spec.chunker is not None
    want = spec.chunker
    have = store.chunker if isinstance(store, ChunkedStore) else None
    if have is not None and (have.size, have.overlap, have.unit) == (
        want.size,
        want.overlap,
        want.unit,
    ):
        return
    built = (
        f"is chunked chunk={have.size}&overlap={have.overlap}&unit={have.unit}"
        if have is not None
        else "does not say how it was chunked"
    )
    raise SpecError(
        f"{spec} asks for passages of {want.size} {want.unit} with {want.overlap} overlap, "
        f"but the store at {store.location} {built}; chunking is fixed when an index is "
        f"built: build one with `shortlist index --chunk-size {want.size} --chunk-overlap "
        f"{want.overlap} --chunk-unit {want.unit}`, or compare chunkings with `shortlist "
        "eval`, which builds one index per chunking"
    )


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

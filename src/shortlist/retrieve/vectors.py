"""`VectorIndex`: the on-disk dense vector store and its nearest-neighbour search.

On disk a vector index is a folder of plain arrays plus a JSON manifest:

    manifest.json                  format, version, dim, dtype, segment list, ANN parameters
    seg-000000.vectors.npy         (n, dim) float16/float32, mmap-able
    seg-000000.rows.npy            (n,) int64: the caller's row id of each vector
    deleted-<hash>.npy             int64 positions (over all segments, in order) deleted
    ann.usearch                    optional HNSW graph (usearch) over live positions

Segments are immutable and only ever appended: `save` hardlinks the segment files that are
unchanged since the folder the index was loaded from (or last saved to) and writes only
new data, so a new generation of an index costs the size of what changed.

Search is exact (a chunked float32 matrix product) unless the index holds at least
`ann_threshold` live vectors and no `allowed` filter is given; then an HNSW graph (usearch)
gives approximate neighbours whose scores are recomputed exactly. A filtered search is
always exact over the allowed rows, so it returns `min(k, live allowed rows)` hits: an ANN
graph searched with a post-filter can miss allowed rows that lie outside its candidate set.

Scores are dot products of the stored vectors with the query; callers store L2-normalised
vectors (as every `Encoder` returns), so scores are cosine similarities.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shortlist._fs import fsync_dir, link_or_copy
from shortlist._ondisk import damage_as, guarded, load_npy, read_manifest
from shortlist._optional import require
from shortlist.errors import IndexDamagedError, InvalidInputError

FORMAT = "shortlist-vectors"
VERSION = 1
MANIFEST = "manifest.json"
ANN_FILE = "ann.usearch"

DType = Literal["float16", "float32"]
_DTYPES: dict[str, type[np.floating[Any]]] = {"float16": np.float16, "float32": np.float32}

# Float32 values per exact-search chunk, for the score block (queries x rows) and for the
# float32 copy of the vectors (rows x dim): each stays under ~64 MiB whatever the index size.
_CHUNK_BUDGET = 1 << 24
# Up to this many queries per call, float16 exact scans go through usearch (see
# `_exact_f16_segment`); bigger batches amortise numpy's float16 conversion instead.
_FAST_F16_MAX_QUERIES = 8


@dataclass
class _Segment:
    vectors: np.ndarray  # (n, dim), stored dtype; a read-only memmap once saved
    rows: np.ndarray  # (n,) int64
    start: int  # global position of the first vector
    source: Path | None = None  # folder holding this segment's files, None if unsaved
    name: str = ""  # file stem inside `source`
    _max_norm: float | None = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def max_norm(self) -> float:
        """Largest vector norm in the segment (computed once; segments are immutable)."""
        if self._max_norm is None:
            step = 65_536
            norms = [
                np.linalg.norm(np.asarray(self.vectors[lo : lo + step], np.float32), axis=1)
                for lo in range(0, len(self), step)
            ]
            self._max_norm = max((float(n.max()) for n in norms), default=0.0)
        return self._max_norm


class VectorIndex:
    """Append-only dense vectors keyed by caller-given int row ids, with exact and ANN search.

    Args:
        dim: vector dimension.
        dtype: storage type, "float16" (half the disk and memory; scores differ from
            float32 by about 1e-3) or "float32". Scoring always computes in float32.
        ann_threshold: build and use an HNSW graph once the index holds this many live
            vectors; `None` disables ANN.
        ann_connectivity, ann_expansion_add, ann_expansion_search: HNSW parameters
            (M, efConstruction, efSearch). A search for k neighbours uses
            `max(ann_expansion_search, fetch)` where fetch >= k.
    """

    def __init__(
        self,
        dim: int,
        *,
        dtype: DType = "float16",
        ann_threshold: int | None = 50_000,
        ann_connectivity: int = 16,
        ann_expansion_add: int = 128,
        ann_expansion_search: int = 128,
    ) -> None:
        if dim <= 0:
            raise InvalidInputError(f"vector dim must be positive, got {dim}")
        if dtype not in _DTYPES:
            raise InvalidInputError(f"unknown dtype {dtype!r}; valid: {', '.join(_DTYPES)}")
        if ann_threshold is not None and ann_threshold < 1:
            raise InvalidInputError(f"ann_threshold must be >= 1 or None, got {ann_threshold}")
        self._dim = dim
        self._dtype: DType = dtype
        self.ann_threshold = ann_threshold
        self._ann_params = {
            "connectivity": ann_connectivity,
            "expansion_add": ann_expansion_add,
            "expansion_search": ann_expansion_search,
        }
        self._segments: list[_Segment] = []
        self._alive = np.zeros(0, dtype=bool)  # per global position
        self._deleted_source: tuple[Path, str] | None = None  # unchanged tombstone file
        self._sorted_rows: np.ndarray | None = None  # live rows, sorted (cache)
        self._sorted_pos: np.ndarray | None = None  # their positions
        self._ann: Any = None
        self._ann_upto = 0  # positions < this were considered for the ANN graph
        self._ann_source: Path | None = None  # folder whose ANN file equals self._ann

    # ------------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def dtype(self) -> DType:
        return self._dtype

    @property
    def num_vectors(self) -> int:
        """Number of live (not deleted) vectors."""
        return int(self._alive.sum())

    @property
    def num_segments(self) -> int:
        return len(self._segments)

    def rows(self) -> np.ndarray:
        """Live row ids, ascending (a copy)."""
        return self._live_lookup()[0].copy()

    def __contains__(self, row: object) -> bool:
        if not isinstance(row, int | np.integer):
            return False
        sorted_rows, _ = self._live_lookup()
        i = int(np.searchsorted(sorted_rows, row))
        return i < sorted_rows.shape[0] and int(sorted_rows[i]) == int(row)

    def __len__(self) -> int:
        return self.num_vectors

    # ------------------------------------------------------------------ mutation

    def add(self, vectors: np.ndarray, rows: np.ndarray | list[int]) -> None:
        """Append `vectors` (n, dim) under the int row ids `rows` (n,).

        Rows must be non-negative, unique within the call and not live in the index
        (delete a row first to replace its vector). Vectors are stored as given, converted
        to the index dtype; pass L2-normalised vectors for cosine scores.
        Raises `InvalidInputError` on a shape, value or row-id problem; nothing is added then.
        """
        matrix = np.asarray(vectors)
        row_ids = np.asarray(rows)
        if matrix.ndim != 2 or matrix.shape[1] != self._dim:
            raise InvalidInputError(
                f"vectors must have shape (n, {self._dim}), got {tuple(matrix.shape)}"
            )
        if row_ids.ndim != 1 or row_ids.shape[0] != matrix.shape[0]:
            raise InvalidInputError(
                f"rows must be a 1-d array of {matrix.shape[0]} ids, got shape "
                f"{tuple(row_ids.shape)}"
            )
        if matrix.shape[0] == 0:
            return
        if not np.issubdtype(row_ids.dtype, np.integer):
            raise InvalidInputError(f"rows must be integers, got dtype {row_ids.dtype}")
        row_ids = row_ids.astype(np.int64)
        if int(row_ids.min()) < 0:
            raise InvalidInputError("rows must be non-negative")
        if np.unique(row_ids).shape[0] != row_ids.shape[0]:
            raise InvalidInputError("rows contain duplicates")
        if not np.isfinite(matrix).all():
            raise InvalidInputError("vectors contain NaN or infinity")
        sorted_rows, _ = self._live_lookup()
        present = np.isin(row_ids, sorted_rows)
        if present.any():
            shown = ", ".join(str(r) for r in row_ids[present][:5])
            raise InvalidInputError(
                f"rows already in the index: {shown}; delete them first to replace them"
            )
        stored = np.ascontiguousarray(matrix, dtype=_DTYPES[self._dtype])
        start = self._alive.shape[0]
        self._segments.append(_Segment(stored, row_ids.copy(), start))
        self._alive = np.concatenate([self._alive, np.ones(len(row_ids), dtype=bool)])
        self._invalidate()

    def delete(self, rows: np.ndarray | list[int]) -> int:
        """Tombstone the given row ids; ids not in the index are ignored.

        Returns the number of vectors deleted. Deleted vectors stay in their segment files
        until the index is rebuilt; they are never returned by a search.
        """
        row_ids = np.unique(np.asarray(rows, dtype=np.int64).ravel())
        positions = self._positions_of(row_ids)
        positions = positions[positions >= 0]
        if positions.shape[0] == 0:
            return 0
        self._alive = self._alive.copy()
        self._alive[positions] = False
        self._deleted_source = None
        if self._ann is not None:
            indexed = positions[positions < self._ann_upto]
            if indexed.shape[0]:
                self._ann.remove(indexed.astype(np.uint64))
                self._ann_source = None
        self._invalidate()
        return int(positions.shape[0])

    def _invalidate(self) -> None:
        self._sorted_rows = None
        self._sorted_pos = None

    # ------------------------------------------------------------------ lookups

    def _all_rows(self) -> np.ndarray:
        if not self._segments:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.asarray(s.rows) for s in self._segments])

    def _live_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        if self._sorted_rows is None or self._sorted_pos is None:
            positions = np.flatnonzero(self._alive)
            live_rows = self._all_rows()[positions]
            order = np.argsort(live_rows, kind="stable")
            self._sorted_rows = live_rows[order]
            self._sorted_pos = positions[order]
        return self._sorted_rows, self._sorted_pos

    def _positions_of(self, row_ids: np.ndarray) -> np.ndarray:
        """Global position of each live row id, -1 where absent."""
        sorted_rows, sorted_pos = self._live_lookup()
        if sorted_rows.shape[0] == 0:
            return np.full(row_ids.shape, -1, dtype=np.int64)
        i = np.searchsorted(sorted_rows, row_ids)
        i_clipped = np.minimum(i, sorted_rows.shape[0] - 1)
        found = (i < sorted_rows.shape[0]) & (sorted_rows[i_clipped] == row_ids)
        return np.where(found, sorted_pos[i_clipped], -1).astype(np.int64)

    def _rows_at(self, positions: np.ndarray) -> np.ndarray:
        starts = np.array([s.start for s in self._segments], dtype=np.int64)
        seg = np.searchsorted(starts, positions, side="right") - 1
        out = np.empty(positions.shape[0], dtype=np.int64)
        for s in np.unique(seg):
            mask = seg == s
            segment = self._segments[int(s)]
            out[mask] = segment.rows[positions[mask] - segment.start]
        return out

    def _vectors_at(self, positions: np.ndarray) -> np.ndarray:
        """Float32 copies of the vectors at the given global positions (any order)."""
        out = np.empty((positions.shape[0], self._dim), dtype=np.float32)
        if positions.shape[0] == 0:
            return out
        starts = np.array([s.start for s in self._segments], dtype=np.int64)
        seg = np.searchsorted(starts, positions, side="right") - 1
        for s in np.unique(seg):
            mask = np.flatnonzero(seg == s)
            segment = self._segments[int(s)]
            local = positions[mask] - segment.start
            order = np.argsort(local, kind="stable")  # sorted reads are kinder to mmap
            out[mask[order]] = segment.vectors[local[order]]
        return out

    def get(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """Float32 vectors of the given live rows, in the given order.

        Raises `InvalidInputError` naming rows that are not in the index."""
        row_ids = np.asarray(rows, dtype=np.int64).ravel()
        positions = self._positions_of(row_ids)
        if (positions < 0).any():
            missing = ", ".join(str(r) for r in row_ids[positions < 0][:5])
            raise InvalidInputError(f"rows not in the index: {missing}")
        return self._vectors_at(positions)

    # ------------------------------------------------------------------ search

    def search(
        self, query_vec: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `k` live rows with the highest dot product with `query_vec` (dim,).

        Returns (rows int64, scores float32), best first, ties broken by row id ascending.
        `allowed` restricts the search to the given row ids (an int array; ids not in the
        index are ignored) or, as a bool array, to rows r with `allowed[r]` true; a filtered
        search is always exact, so it returns min(k, live allowed rows) hits. Unfiltered
        searches use the ANN graph when the index holds at least `ann_threshold` rows.
        """
        query = np.asarray(query_vec)
        if query.ndim != 1:
            raise InvalidInputError(f"query_vec must be 1-d, got shape {tuple(query.shape)}")
        rows, scores = self.search_many(query[None, :], k, allowed=allowed)
        return rows[0], scores[0]

    def search_many(
        self, query_vecs: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """`search` for each row of `query_vecs` (m, dim); one list entry per query.

        The same `allowed` filter applies to every query.
        """
        queries = self._check_queries(query_vecs, k)
        if allowed is not None:
            positions = self._allowed_positions(allowed)
            return self._exact_positions(queries, k, positions)
        if self._ann_active():
            return self._ann_search(queries, k)
        return self._exact(queries, k)

    def exact_search_many(
        self, query_vecs: np.ndarray, k: int
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Exact `search_many` over all live rows, never using the ANN graph."""
        return self._exact(self._check_queries(query_vecs, k), k)

    def _check_queries(self, query_vecs: np.ndarray, k: int) -> np.ndarray:
        queries = np.asarray(query_vecs)
        if queries.ndim != 2 or queries.shape[1] != self._dim:
            raise InvalidInputError(
                f"queries must have shape (m, {self._dim}), got {tuple(queries.shape)}"
            )
        if k < 0:
            raise InvalidInputError(f"k must be non-negative, got {k}")
        if not np.isfinite(queries).all():
            raise InvalidInputError("query vectors contain NaN or infinity")
        return np.ascontiguousarray(queries, dtype=np.float32)

    def _allowed_positions(self, allowed: np.ndarray) -> np.ndarray:
        mask_or_ids = np.asarray(allowed)
        if mask_or_ids.dtype == bool:
            row_ids = np.flatnonzero(mask_or_ids).astype(np.int64)
        elif np.issubdtype(mask_or_ids.dtype, np.integer) or mask_or_ids.size == 0:
            row_ids = np.unique(mask_or_ids.astype(np.int64).ravel())
        else:
            raise InvalidInputError(
                f"allowed must be an array of int row ids or a bool mask, got {mask_or_ids.dtype}"
            )
        positions = self._positions_of(row_ids)
        return np.sort(positions[positions >= 0])

    def _chunk_rows(self, n_queries: int) -> int:
        return max(1, _CHUNK_BUDGET // max(n_queries, self._dim))

    def _exact(self, queries: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        acc = _TopK(queries.shape[0], k)
        if k == 0:
            return acc.result()
        for segment in self._segments:
            alive = self._alive[segment.start : segment.start + len(segment)]
            if not alive.any():
                continue
            rows = np.asarray(segment.rows)
            todo = np.arange(queries.shape[0])
            if self._dtype == "float16" and queries.shape[0] <= _FAST_F16_MAX_QUERIES:
                todo = self._exact_f16_segment(segment, alive, rows, queries, k, acc)
            if todo.shape[0]:
                self._exact_segment(segment.vectors, alive, rows, queries[todo], todo, acc)
        return acc.result()

    def _exact_segment(
        self,
        vectors: np.ndarray,
        alive: np.ndarray,
        rows: np.ndarray,
        queries: np.ndarray,
        query_ids: np.ndarray,
        acc: _TopK,
    ) -> None:
        step = self._chunk_rows(queries.shape[0])
        for lo in range(0, rows.shape[0], step):
            hi = min(lo + step, rows.shape[0])
            live = alive[lo:hi]
            if not live.any():
                continue
            block = np.asarray(vectors[lo:hi], dtype=np.float32)
            scores = queries @ block.T
            if not live.all():
                scores[:, ~live] = -np.inf
            for j, i in enumerate(query_ids):
                acc.push_row(int(i), scores[j], rows[lo:hi], live)

    def _exact_f16_segment(
        self,
        segment: _Segment,
        alive: np.ndarray,
        rows: np.ndarray,
        queries: np.ndarray,
        k: int,
        acc: _TopK,
    ) -> np.ndarray:
        """Exact top-k over a float16 segment via usearch's SIMD brute force.

        numpy converts float16 to float32 slowly (several ns per value), which made a
        single-query scan ~8x slower than over float32. usearch scores float16 natively;
        it picks candidates, which are rescored here in float32. The candidates provably
        hold the exact top k (ties included) when the worst candidate's score is below the
        k-th best by more than twice the query-rounding error bound (|q - q16| max|v|);
        queries where that fails, or segments with many deletions, are returned for the
        plain numpy scan. Returns the indices of those queries.
        """
        n = len(segment)
        n_dead = n - int(alive.sum())
        fetch = k + n_dead + max(32, k)
        if fetch >= n or n_dead > n // 4:
            return np.arange(queries.shape[0])
        usearch_index = require("usearch.index", "dense", "dense retrieval")
        q16 = queries.astype(np.float16)
        matches = usearch_index.search(
            np.asarray(segment.vectors),
            q16,
            fetch,
            "ip",
            exact=True,
        )
        keys = np.asarray(matches.keys).reshape(queries.shape[0], -1).astype(np.int64)
        max_norm = segment.max_norm()
        fallback: list[int] = []
        for i in range(queries.shape[0]):
            local = np.sort(keys[i])
            if local.shape[0] < fetch or local[0] < 0 or local[-1] >= n:
                fallback.append(i)
                continue
            scores = np.asarray(segment.vectors[local], dtype=np.float32) @ queries[i]
            live = alive[local]
            live_scores = np.sort(scores[live])[::-1]
            # |v.q - v.q16| <= |v| |q - q16| (Cauchy-Schwarz); usearch ranks by v.q16.
            tol = float(np.linalg.norm(queries[i] - q16[i])) * max_norm * 1.01 + 1e-6
            if live_scores.shape[0] <= k or float(scores.min()) + 2 * tol >= live_scores[k - 1]:
                fallback.append(i)
                continue
            acc.push_row(i, np.where(live, scores, -np.inf), rows[local], live)
        return np.array(fallback, dtype=np.int64)

    def _exact_positions(
        self, queries: np.ndarray, k: int, positions: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        acc = _TopK(queries.shape[0], k)
        if k == 0 or positions.shape[0] == 0:
            return acc.result()
        step = self._chunk_rows(queries.shape[0])
        for lo in range(0, positions.shape[0], step):
            chunk = positions[lo : lo + step]
            scores = queries @ self._vectors_at(chunk).T
            acc.push(scores, self._rows_at(chunk), np.ones(chunk.shape[0], dtype=bool))
        return acc.result()

    # ------------------------------------------------------------------ ANN

    def _ann_active(self) -> bool:
        if self.ann_threshold is None or self.num_vectors < self.ann_threshold:
            return False
        self._ensure_ann()
        return True

    def _new_ann(self) -> Any:
        index_module = require("usearch.index", "dense", "approximate nearest-neighbour search")
        return index_module.Index(
            ndim=self._dim,
            metric="ip",
            dtype="f16" if self._dtype == "float16" else "f32",
            **self._ann_params,
        )

    def _ensure_ann(self) -> None:
        """Build the graph, or add to it the positions appended since it was last updated."""
        if self._ann is None:
            self._ann = self._new_ann()
            self._ann_upto = 0
        total = self._alive.shape[0]
        if self._ann_upto >= total:
            return
        pending = np.arange(self._ann_upto, total, dtype=np.int64)
        pending = pending[self._alive[pending]]
        step = 65_536
        for lo in range(0, pending.shape[0], step):
            chunk = pending[lo : lo + step]
            self._ann.add(chunk.astype(np.uint64), self._vectors_at(chunk))
        self._ann_upto = total
        self._ann_source = None

    def build_ann(self) -> None:
        """Build or update the ANN graph now (otherwise it is built on first use or save)."""
        self._ensure_ann()

    def _ann_search(self, queries: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        live = self.num_vectors
        want = min(k, live)
        if want == 0:
            return _TopK(queries.shape[0], k).result()
        # Removed keys are never returned by usearch; the margin covers the graph losing
        # reachable nodes around removals and is rechecked below.
        fetch = min(live, want + max(8, want // 4))
        self._ann.expansion_search = max(self._ann_params["expansion_search"], fetch)
        matches = self._ann.search(queries, fetch)
        keys = np.asarray(matches.keys).reshape(queries.shape[0], -1)
        if hasattr(matches, "counts"):  # BatchMatches
            counts = np.asarray(matches.counts).reshape(-1)
        else:  # a single query was given as a 2-d array of one row
            counts = np.array([keys.shape[1]])
        out_rows: list[np.ndarray] = []
        out_scores: list[np.ndarray] = []
        for i in range(queries.shape[0]):
            positions = keys[i, : int(counts[i])].astype(np.int64)
            positions = positions[(positions >= 0) & (positions < self._alive.shape[0])]
            positions = positions[self._alive[positions]]
            if positions.shape[0] < want:
                # The graph could not give enough live neighbours: answer exactly instead.
                rows, scores = self._exact(queries[i : i + 1], k)
                out_rows.append(rows[0])
                out_scores.append(scores[0])
                continue
            # Rescore exactly so ANN and exact results share scores and tie order.
            acc = _TopK(1, k)
            scores = queries[i : i + 1] @ self._vectors_at(positions).T
            acc.push(scores, self._rows_at(positions), np.ones(positions.shape[0], dtype=bool))
            rows_i, scores_i = acc.result()
            out_rows.append(rows_i[0])
            out_scores.append(scores_i[0])
        return out_rows, out_scores

    def measure_recall(
        self,
        k: int = 100,
        n_queries: int = 100,
        *,
        queries: np.ndarray | None = None,
        seed: int = 0,
    ) -> dict[str, float]:
        """ANN recall@k against exact search, and ms/query for both.

        Queries default to `n_queries` stored live vectors (chosen with `seed`) plus
        gaussian noise of norm ~0.3, renormalised, so they resemble but do not equal stored
        vectors. Recall@k = mean over queries of |ANN top k ∩ exact top k| / |exact top k|.
        Builds the ANN graph if needed (whatever `ann_threshold` says); the build time is
        reported as `build_s` and excluded from the per-query timings.
        """
        if self.num_vectors == 0:
            raise InvalidInputError("cannot measure recall on an empty index")
        if queries is None:
            rng = np.random.default_rng(seed)
            _, live_pos = self._live_lookup()
            picked = rng.choice(live_pos, size=min(n_queries, live_pos.shape[0]), replace=False)
            base = self._vectors_at(np.sort(picked))
            noise = rng.standard_normal(base.shape).astype(np.float32)
            noise *= 0.3 / np.sqrt(self._dim)
            queries = base + noise
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        queries = self._check_queries(queries, k)
        start = time.perf_counter()
        self._ensure_ann()
        build_s = time.perf_counter() - start

        start = time.perf_counter()
        exact_rows = [self._exact(q[None, :], k)[0][0] for q in queries]
        exact_ms = 1000 * (time.perf_counter() - start) / queries.shape[0]
        start = time.perf_counter()
        ann_rows = [self._ann_search(q[None, :], k)[0][0] for q in queries]
        ann_ms = 1000 * (time.perf_counter() - start) / queries.shape[0]

        recalls = [
            len(np.intersect1d(a, e)) / max(1, e.shape[0])
            for a, e in zip(ann_rows, exact_rows, strict=True)
        ]
        return {
            "recall": float(np.mean(recalls)),
            "exact_ms_per_query": exact_ms,
            "ann_ms_per_query": ann_ms,
            "build_s": build_s,
            "n_queries": float(queries.shape[0]),
            "k": float(k),
            "num_vectors": float(self.num_vectors),
        }

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the index into `directory`, which must not exist or be empty.

        Files are written to a temporary sibling folder, fsynced, and the folder renamed
        into place, so a crash leaves either no index or a complete one. Segment files
        unchanged since the folder this index was loaded from or last saved to are
        hardlinked (copied where hardlinks are impossible); unsaved segments are merged
        into one new segment. The ANN graph, if the index is big enough to use one, is
        brought up to date and saved too.
        """
        target = Path(directory)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InvalidInputError(
                f"{target} already exists and is not an empty folder; save into a new folder"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{time.time_ns()}"
        tmp.mkdir()
        try:
            self._merge_unsaved()
            segments_meta = []
            for segment in self._segments:
                segments_meta.append(self._write_segment(segment, tmp))
            deleted_name = self._write_deleted(tmp)
            ann_meta = self._write_ann(tmp)
            manifest = {
                "format": FORMAT,
                "format_version": VERSION,
                "dim": self._dim,
                "dtype": self._dtype,
                "num_positions": int(self._alive.shape[0]),
                "num_vectors": self.num_vectors,
                "segments": segments_meta,
                "deleted": deleted_name,
                "ann_threshold": self.ann_threshold,
                "ann_params": self._ann_params,
                "ann": ann_meta,
            }
            with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
                json.dump(manifest, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(tmp)
            os.replace(tmp, target)
            fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for segment in self._segments:
            segment.source = target
        if deleted_name is not None:
            self._deleted_source = (target, deleted_name)
        if ann_meta is not None:
            self._ann_source = target

    def _merge_unsaved(self) -> None:
        unsaved = [s for s in self._segments if s.source is None]
        if len(unsaved) <= 1:
            return
        # Unsaved segments are always the tail: saved ones came from a load or an earlier save.
        first = unsaved[0]
        merged = _Segment(
            np.concatenate([s.vectors for s in unsaved]),
            np.concatenate([s.rows for s in unsaved]),
            first.start,
        )
        self._segments = [s for s in self._segments if s.source is not None] + [merged]

    def _write_segment(self, segment: _Segment, folder: Path) -> dict[str, Any]:
        if not segment.name:
            segment.name = f"seg-{segment.start:012d}-{len(segment):09d}"
        files = (f"{segment.name}.vectors.npy", f"{segment.name}.rows.npy")
        if segment.source is not None:
            for file in files:
                link_or_copy(segment.source / file, folder / file)
        else:
            _save_npy(folder / files[0], np.asarray(segment.vectors))
            _save_npy(folder / files[1], np.asarray(segment.rows))
        return {"name": segment.name, "start": segment.start, "count": len(segment)}

    def _write_deleted(self, folder: Path) -> str | None:
        deleted = np.flatnonzero(~self._alive).astype(np.int64)
        if deleted.shape[0] == 0:
            return None
        if self._deleted_source is not None:
            source, name = self._deleted_source
            link_or_copy(source / name, folder / name)
            return name
        digest = hashlib.sha256(deleted.tobytes()).hexdigest()[:16]
        name = f"deleted-{digest}.npy"
        _save_npy(folder / name, deleted)
        return name

    def _write_ann(self, folder: Path) -> dict[str, Any] | None:
        if self.ann_threshold is None or self.num_vectors < self.ann_threshold:
            return None
        self._ensure_ann()
        if self._ann_source is not None and (self._ann_source / ANN_FILE).is_file():
            link_or_copy(self._ann_source / ANN_FILE, folder / ANN_FILE)
        else:
            self._ann.save(str(folder / ANN_FILE))
            with open(folder / ANN_FILE, "rb") as f:
                os.fsync(f.fileno())
        return {"file": ANN_FILE, "indexed_upto": self._ann_upto, "metric": "ip"}

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, mmap: bool = True) -> VectorIndex:
        """Open an index written by `save`. With `mmap`, segment arrays are memory-mapped
        read-only (new vectors added later are kept in memory until the next save).

        Raises `IndexNotFoundError` when there is no manifest, `IndexCompatibilityError`
        when it was written in another format or version, and `IndexDamagedError`
        (naming the file) when a file is missing, truncated or inconsistent.
        """
        folder = Path(directory)
        manifest_path = folder / MANIFEST
        manifest = read_manifest(manifest_path, fmt=FORMAT, version=VERSION, what="vector index")
        with damage_as(manifest_path):
            params = manifest["ann_params"]
            index = cls(
                int(manifest["dim"]),
                dtype=manifest["dtype"],
                ann_threshold=manifest["ann_threshold"],
                ann_connectivity=int(params["connectivity"]),
                ann_expansion_add=int(params["expansion_add"]),
                ann_expansion_search=int(params["expansion_search"]),
            )
            segments = [
                (str(m["name"]), int(m["count"]), int(m["start"])) for m in manifest["segments"]
            ]
            num_positions = int(manifest["num_positions"])
            deleted_name = manifest["deleted"]
            ann_meta = manifest.get("ann")
            ann_file = None if ann_meta is None else folder / str(ann_meta["file"])
            ann_upto = 0 if ann_meta is None else int(ann_meta["indexed_upto"])
        for name, count, start in segments:
            vectors_path = folder / f"{name}.vectors.npy"
            rows_path = folder / f"{name}.rows.npy"
            vectors = load_npy(vectors_path, mmap=mmap)
            rows = load_npy(rows_path, mmap=mmap, ndim=1, integer=True)
            if vectors.shape != (count, index._dim) or vectors.dtype != index._dtype:
                raise IndexDamagedError(
                    vectors_path,
                    f"holds {vectors.dtype} {vectors.shape} where the manifest says "
                    f"{index._dtype} {(count, index._dim)}",
                )
            if rows.shape != (count,):
                raise IndexDamagedError(rows_path, f"holds {rows.shape[0]} rows, not {count}")
            index._segments.append(_Segment(vectors, rows, start, folder, name))
        if sum(count for _n, count, _s in segments) != num_positions:
            raise IndexDamagedError(manifest_path, "segment sizes do not add up to num_positions")
        index._alive = np.ones(num_positions, dtype=bool)
        if deleted_name is not None:
            deleted_path = folder / str(deleted_name)
            deleted = load_npy(deleted_path, ndim=1, integer=True)
            if deleted.size and (deleted.min() < 0 or deleted.max() >= num_positions):
                raise IndexDamagedError(deleted_path, "deleted positions out of range")
            index._alive[deleted] = False
            index._deleted_source = (folder, str(deleted_name))
        if ann_file is not None and ann_file.is_file():
            ann = index._new_ann()
            guarded(ann_file, lambda: ann.load(str(ann_file)))
            index._ann = ann
            index._ann_upto = ann_upto
            index._ann_source = folder
        return index


class _TopK:
    """Running top-k per query over scored chunks, best first, ties by row id ascending."""

    def __init__(self, n_queries: int, k: int) -> None:
        self.k = k
        self.rows: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_queries
        self.scores: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * n_queries

    def push(self, scores: np.ndarray, rows: np.ndarray, live: np.ndarray) -> None:
        """Offer a block of scores (n_queries, len(rows)); dead columns are skipped."""
        for i in range(scores.shape[0]):
            self.push_row(i, scores[i], rows, live)

    def push_row(self, i: int, s: np.ndarray, rows: np.ndarray, live: np.ndarray) -> None:
        """Offer query i's scores `s` over `rows`; entries where `live` is false are skipped."""
        k = self.k
        n_live = int(live.sum())
        if n_live == 0 or k == 0:
            return
        take = min(k, n_live)
        if s.shape[0] > take:
            kth = np.partition(s, s.shape[0] - take)[s.shape[0] - take]
            # Keep every row tied with the k-th score so ties resolve by row id exactly.
            idx = np.flatnonzero((s >= kth) & live)
        else:
            idx = np.flatnonzero(live)
        cand_rows = np.concatenate([self.rows[i], rows[idx]])
        cand_scores = np.concatenate([self.scores[i], s[idx].astype(np.float32)])
        order = np.lexsort((cand_rows, -cand_scores))[:k]
        self.rows[i] = cand_rows[order]
        self.scores[i] = cand_scores[order]

    def result(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return list(self.rows), list(self.scores)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())

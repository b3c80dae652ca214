"""A segment-based BM25 index over numpy arrays, with incremental add and delete.

Scoring is Lucene's BM25 as bm25s implements it for ``method="lucene"`` (Kamphuis et al.,
"Which BM25 Do You Mean? A Large-Scale Reproducibility Study of Scoring Variants", ECIR 2020)::

    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(q, d) = sum over query terms t of
                  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * dl(d) / avgdl))

Like Lucene >= 8 and bm25s, the ``(k1 + 1)`` numerator factor of the classic formula is left
out; it scales every score by the same constant and so never changes a ranking. Document
lengths are exact term counts (Lucene quantizes them to one byte; we do not). A query term
repeated in the query counts once per occurrence, as in bm25s and a Lucene BooleanQuery.
Defaults ``k1=DEFAULT_K1, b=DEFAULT_B`` are Lucene's and Elasticsearch's (1.2, 0.75), chosen over
Pyserini's MS MARCO-tuned (0.9, 0.4) by the sweep in docs/RESULTS.md ("Relevance defaults").

Storage. The index is a list of immutable segments, one per `add` call. A segment holds the
global row ids of its documents, their lengths, its own term list and postings
(term -> local document, term frequency) in CSR form. `delete` records tombstones. N, df and
avgdl are computed over live documents only, so the scores of an index equal those of a fresh
index built from its live documents. The per-posting BM25 contributions ("eager" scores, as in
bm25s) are derived data: they are recomputed, vectorised, after every add, delete and load,
without re-tokenising anything.

On disk (`save`): ``manifest.json``, ``deleted.npy`` and one folder per segment holding
``rows.npy``, ``doc_len.npy``, ``term_ptr.npy``, ``post_doc.npy``, ``post_tf.npy`` and
``terms.json``. Segment files never change once written, so a save hardlinks the files of
segments that already exist in the directory the index was loaded from or last saved to.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from shortlist._fs import link_or_copy
from shortlist._ondisk import damage_as, load_json, load_npy, read_manifest
from shortlist.errors import IndexDamagedError, InvalidInputError

FORMAT = "shortlist.bm25"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DELETED = "deleted.npy"
_SEGMENT_ARRAYS = ("rows", "doc_len", "term_ptr", "post_doc", "post_tf")
_TERMS = "terms.json"
_REBUILD_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Segment:
    """One immutable batch of documents. Postings are grouped by local term, docs ascending."""

    name: str
    rows: np.ndarray  # int64 (n_docs,): global row ids, strictly increasing
    doc_len: np.ndarray  # int32 (n_docs,): number of terms in each document
    terms: list[str]  # local term id -> term
    term_ptr: np.ndarray  # int64 (n_terms + 1,): postings of term i are [ptr[i], ptr[i+1])
    post_doc: np.ndarray  # int32 (n_postings,): local document index
    post_tf: np.ndarray  # uint16 or int32 (n_postings,): term frequency

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        for name in _SEGMENT_ARRAYS:
            yield name, getattr(self, name)

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]], rows: np.ndarray) -> _Segment:
        n = len(token_lists)
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=n)
        terms = list(dict.fromkeys(chain.from_iterable(token_lists)))
        if not all(isinstance(t, str) for t in terms):
            raise InvalidInputError("token_lists must contain lists of strings (terms)")
        term_id = dict(zip(terms, range(len(terms)), strict=True))
        # key = term * n + doc: one sort groups postings by term with documents ascending,
        # and runs of equal keys give the term frequencies.
        keys = np.fromiter(
            map(term_id.__getitem__, chain.from_iterable(token_lists)),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        keys *= n
        keys += np.repeat(np.arange(n, dtype=np.int64), lengths)
        keys.sort()
        starts = np.flatnonzero(np.diff(keys, prepend=-1))
        tf = np.diff(starts, append=len(keys))
        keys = keys[starts]
        post_term = keys // n
        term_ptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(post_term, minlength=len(terms)), out=term_ptr[1:])
        return cls(
            name=f"seg-{int(rows[0]):012d}-{uuid.uuid4().hex[:8]}",
            rows=rows,
            doc_len=lengths.astype(np.int32),
            terms=terms,
            term_ptr=term_ptr,
            post_doc=(keys - post_term * n).astype(np.int32),
            # Term frequencies almost always fit 16 bits; the loader accepts either width.
            post_tf=tf.astype(np.uint16 if tf.max(initial=0) < 2**16 else np.int32),
        )


@dataclass(frozen=True)
class _View:
    """Derived search structure over live postings: one CSR over global term ids."""

    indptr: np.ndarray  # int64 (n_terms + 1,)
    rows: np.ndarray  # int32 or int64 (n_live_postings,): rows ascending within each term
    scores: np.ndarray  # float32 (n_live_postings,): BM25 contribution of each posting
    num_docs: int
    row_bound: int  # every row id is < row_bound


DEFAULT_K1 = 1.2
"""BM25 term-frequency saturation: Lucene's and Elasticsearch's default."""
DEFAULT_B = 0.75
"""BM25 length normalisation: Lucene's and Elasticsearch's default."""


def _validate_params(k1: float, b: float) -> tuple[float, float]:
    k1, b = float(k1), float(b)
    if not (np.isfinite(k1) and k1 >= 0):
        raise InvalidInputError(f"BM25 k1 must be a finite number >= 0, got {k1}")
    if not 0.0 <= b <= 1.0:
        raise InvalidInputError(f"BM25 b must be in [0, 1], got {b}")
    return k1, b


def _as_rows(rows: Sequence[int] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(rows)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"{what} rows must be a 1-d sequence of integers")
    if arr.min() < 0:
        raise InvalidInputError(f"{what} rows must be >= 0")
    return arr.astype(np.int64, copy=True)


class BM25Index:
    """BM25 (Lucene variant) over append-only segments with tombstone deletes.

    Rows are integer ids chosen by the caller (the index store's row numbers); the index
    returns them from `search`. Searching is thread-safe; `add` and `delete` must not run
    concurrently with each other (the store serialises writers) but may run beside searches,
    which see either the old or the new state.

    Args:
        k1: term-frequency saturation, >= 0 (default `DEFAULT_K1`).
        b: document-length normalisation, in [0, 1] (default `DEFAULT_B`).

    Raises:
        InvalidInputError: k1 or b out of range.
    """

    def __init__(self, k1: float = DEFAULT_K1, b: float = DEFAULT_B) -> None:
        self._k1, self._b = _validate_params(k1, b)
        self._segments: list[_Segment] = []
        self._sources: dict[str, Path] = {}  # segment name -> index directory holding it
        self._segment_gids: dict[str, np.ndarray] = {}  # local term id -> global term id
        self._vocab: dict[str, int] = {}
        self._deleted = np.zeros(0, dtype=np.int64)
        self._next_row = 0  # rows of a new add must be >= this
        self._local = threading.local()
        self._view = self._rebuild()

    # ----------------------------------------------------------------- properties

    @property
    def num_docs(self) -> int:
        """Number of live (added and not deleted) documents."""
        return self._view.num_docs

    @property
    def params(self) -> dict[str, Any]:
        """Scoring parameters, as written to the manifest."""
        return {"k1": self._k1, "b": self._b, "method": "lucene"}

    @property
    def num_segments(self) -> int:
        return len(self._segments)

    @property
    def vocabulary_size(self) -> int:
        """Number of distinct terms ever added (terms of deleted documents included)."""
        return len(self._vocab)

    def live_rows(self) -> np.ndarray:
        """The rows of live documents, ascending (int64)."""
        if not self._segments:
            return np.zeros(0, dtype=np.int64)
        rows = np.concatenate([seg.rows for seg in self._segments])
        return rows[~np.isin(rows, self._deleted)] if self._deleted.size else rows

    def with_params(self, k1: float | None = None, b: float | None = None) -> BM25Index:
        """A new index over the same (shared, immutable) segments with other k1 / b."""
        new = BM25Index.__new__(BM25Index)
        new._k1, new._b = _validate_params(
            self._k1 if k1 is None else k1, self._b if b is None else b
        )
        new._segments = list(self._segments)
        new._sources = dict(self._sources)
        new._segment_gids = dict(self._segment_gids)
        new._vocab = dict(self._vocab)
        new._deleted = self._deleted.copy()
        new._next_row = self._next_row
        new._local = threading.local()
        new._view = new._rebuild()
        return new

    # ----------------------------------------------------------------- writes

    def add(self, token_lists: Sequence[Sequence[str]], rows: Sequence[int] | np.ndarray) -> None:
        """Add documents, given as analysed terms, under new global `rows`.

        Args:
            token_lists: the terms of each document (e.g. from `Analyzer.analyze_many`).
            rows: one row id per document, strictly increasing and greater than every row
                ever added to this index (deleted ones included).

        Raises:
            InvalidInputError: lengths differ, rows not new and increasing, or terms not strings.
        """
        if isinstance(token_lists, str):
            raise InvalidInputError("token_lists must be a sequence of term lists, not a string")
        row_arr = _as_rows(rows, "added")
        if len(row_arr) != len(token_lists):
            raise InvalidInputError(
                f"got {len(token_lists)} documents but {len(row_arr)} rows; pass one row each"
            )
        if len(row_arr) == 0:
            return
        if row_arr[0] < self._next_row or (len(row_arr) > 1 and np.any(np.diff(row_arr) <= 0)):
            raise InvalidInputError(
                f"added rows must be strictly increasing and >= {self._next_row} "
                "(greater than every row already added)"
            )
        for tokens in token_lists:
            if isinstance(tokens, str):
                raise InvalidInputError(
                    "each document must be a list of terms, not a string; analyze it first"
                )
        segment = _Segment.build(token_lists, row_arr)
        self._register(segment, source=None)
        self._next_row = int(row_arr[-1]) + 1
        self._view = self._rebuild()

    def delete(self, rows: Sequence[int] | np.ndarray) -> None:
        """Delete documents by row. Rows already deleted are ignored.

        Raises:
            InvalidInputError: a row that was never added.
        """
        row_arr = np.unique(_as_rows(rows, "deleted"))
        if row_arr.size == 0:
            return
        known = np.zeros(len(row_arr), dtype=bool)
        for seg in self._segments:
            known |= np.isin(row_arr, seg.rows)
        if not known.all():
            missing = row_arr[~known][:5].tolist()
            raise InvalidInputError(f"cannot delete rows that were never added: {missing}")
        self._deleted = np.union1d(self._deleted, row_arr)
        self._view = self._rebuild()

    def _register(self, segment: _Segment, source: Path | None) -> None:
        vocab = self._vocab
        for term in segment.terms:
            if term not in vocab:
                vocab[term] = len(vocab)
        gids = np.fromiter(map(vocab.__getitem__, segment.terms), np.int64, len(segment.terms))
        self._segment_gids[segment.name] = gids
        self._segments.append(segment)
        if source is not None:
            self._sources[segment.name] = source

    # ----------------------------------------------------------------- derived scores

    def _rebuild(self) -> _View:
        """Recompute N, df, avgdl and every posting's BM25 contribution over live docs."""
        n_terms = len(self._vocab)
        row_bound = self._next_row
        parts = []
        df = np.zeros(n_terms, dtype=np.int64)
        num_docs, total_len = 0, 0
        for seg in self._segments:
            n_local = len(seg.terms)
            local_term = np.repeat(
                np.arange(n_local, dtype=np.int32), np.diff(np.asarray(seg.term_ptr))
            )
            post_doc = np.asarray(seg.post_doc)
            post_tf = np.asarray(seg.post_tf)
            doc_len = np.asarray(seg.doc_len)
            if self._deleted.size:
                live = ~np.isin(seg.rows, self._deleted)
                keep = live[post_doc]
                local_term, post_doc, post_tf = local_term[keep], post_doc[keep], post_tf[keep]
                num_docs += int(live.sum())
                total_len += int(doc_len[live].sum(dtype=np.int64))
            else:
                num_docs += len(seg.rows)
                total_len += int(doc_len.sum(dtype=np.int64))
            counts = np.bincount(local_term, minlength=n_local)
            gids = self._segment_gids[seg.name]
            df[gids] += counts  # gids are distinct within a segment
            parts.append((seg, gids, local_term, post_doc, post_tf, counts))

        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        n_postings = int(indptr[-1])
        row_dtype = np.int32 if row_bound < 2**31 else np.int64
        rows_out = np.empty(n_postings, dtype=row_dtype)
        scores_out = np.empty(n_postings, dtype=np.float32)
        if num_docs == 0 or n_postings == 0:
            return _View(indptr, rows_out, scores_out, num_docs, row_bound)

        avgdl = total_len / num_docs
        idf = np.log1p((num_docs - df + 0.5) / (df + 0.5))
        k1, b = self._k1, self._b
        # Segments hold increasing rows and each term's postings are row-ascending within a
        # segment, so filling every term's slot segment by segment keeps rows ascending.
        cursor = indptr[:-1].copy()
        for seg, gids, local_term, post_doc, post_tf, counts in parts:
            group_start = np.zeros(len(counts), dtype=np.int64)
            np.cumsum(counts[:-1], out=group_start[1:])
            # The i-th live posting of this segment goes to base[its local term] + i.
            base = cursor[gids] - group_start
            cursor[gids] += counts
            idf_local = idf[gids]
            seg_rows, seg_len = np.asarray(seg.rows), np.asarray(seg.doc_len)
            # Chunks keep the float64 temporaries small on large segments.
            for lo in range(0, len(local_term), _REBUILD_CHUNK):
                hi = min(lo + _REBUILD_CHUNK, len(local_term))
                term, doc = local_term[lo:hi], post_doc[lo:hi]
                dest = base[term] + np.arange(lo, hi)
                tf = post_tf[lo:hi].astype(np.float64)
                norm = (k1 * (1.0 - b)) + (k1 * b / avgdl) * seg_len[doc]
                rows_out[dest] = seg_rows[doc]
                scores_out[dest] = idf_local[term] * tf / (tf + norm)
        return _View(indptr, rows_out, scores_out, num_docs, row_bound)

    # ----------------------------------------------------------------- search

    def _buffer(self, size: int) -> np.ndarray:
        buf: np.ndarray | None = getattr(self._local, "buf", None)
        if buf is None or len(buf) < size:
            buf = np.zeros(max(size, 1), dtype=np.float32)
            self._local.buf = buf
        return buf

    def search(
        self, query_tokens: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` live documents for a query, best first.

        Args:
            query_tokens: analysed query terms; unknown terms are ignored, repeats count twice.
            k: how many hits at most (>= 0).
            allowed: optional boolean mask over rows (length > every row in the index);
                only rows where it is True are returned, and up to `k` of them are.

        Returns:
            ``(rows, scores)``: int64 rows and float32 scores, score descending, ties broken by
            row ascending; only documents with score > 0 (i.e. matching a query term).

        Raises:
            InvalidInputError: k negative, a string instead of a token list, or a bad mask.
        """
        if isinstance(query_tokens, str):
            raise InvalidInputError("query_tokens must be a list of terms; analyze the query")
        if k < 0:
            raise InvalidInputError(f"k must be >= 0, got {k}")
        view = self._view
        if allowed is not None:
            allowed = np.asarray(allowed)
            if allowed.dtype != np.bool_ or allowed.ndim != 1:
                raise InvalidInputError("allowed must be a 1-d boolean mask over rows")
            if len(allowed) < view.row_bound:
                raise InvalidInputError(
                    f"allowed mask has {len(allowed)} entries but the index has rows up to "
                    f"{view.row_bound - 1}; the mask must cover every row"
                )
        vocab, indptr = self._vocab, view.indptr
        spans = []
        for term in query_tokens:
            gid = vocab.get(term)
            if gid is not None and gid < len(indptr) - 1:
                start, end = int(indptr[gid]), int(indptr[gid + 1])
                if end > start:
                    spans.append((start, end))
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        if not spans or k == 0:
            return empty

        if len(spans) == 1:
            start, end = spans[0]
            cand = view.rows[start:end]
            vals = view.scores[start:end]
        else:
            buf = self._buffer(view.row_bound)
            pieces = []
            try:
                for i, (start, end) in enumerate(spans):
                    rows = view.rows[start:end]
                    # Every contribution is > 0, so a zero slot marks a row not seen yet.
                    pieces.append(rows if i == 0 else rows[buf[rows] == 0])
                    buf[rows] += view.scores[start:end]  # rows are distinct within a term
                cand = np.concatenate(pieces)
                vals = buf[cand]
                buf[cand] = 0.0
            except BaseException:
                buf.fill(0.0)
                raise
        if allowed is not None:
            keep = allowed[cand]
            cand, vals = cand[keep], vals[keep]
        return _top_k(cand, vals, k)

    # ----------------------------------------------------------------- persistence

    def save(self, directory: Path) -> None:
        """Write the index into `directory`, which must be new or empty.

        Files of segments already present in the directory this index was loaded from or
        last saved to are hardlinked (copied where links are impossible); only new data is
        written. The manifest is written last, so a directory without one is incomplete.

        Raises:
            InvalidInputError: `directory` exists and is not empty.
        """
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            raise InvalidInputError(
                f"{directory} is not empty; save the index into a new directory"
            )
        directory.mkdir(parents=True, exist_ok=True)
        for seg in self._segments:
            target = directory / seg.name
            target.mkdir()
            source = self._sources.get(seg.name)
            origin = None if source is None else source / seg.name
            for name, array in seg.arrays():
                fname = f"{name}.npy"
                if origin is None or not _link_or_copy(origin / fname, target / fname):
                    _write_npy(target / fname, array)
            if origin is None or not _link_or_copy(origin / _TERMS, target / _TERMS):
                _write_bytes(target / _TERMS, json.dumps(seg.terms).encode("utf-8"))
        _write_npy(directory / DELETED, self._deleted)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "params": self.params,
            "num_docs": self.num_docs,
            "next_row": self._next_row,
            "deleted": DELETED,
            "segments": [
                {
                    "name": seg.name,
                    "num_docs": len(seg.rows),
                    "num_terms": len(seg.terms),
                    "num_postings": len(seg.post_doc),
                }
                for seg in self._segments
            ],
        }
        tmp = directory / (MANIFEST + ".tmp")
        _write_bytes(tmp, json.dumps(manifest, indent=2).encode("utf-8"))
        os.replace(tmp, directory / MANIFEST)
        self._sources = {seg.name: directory for seg in self._segments}

    @classmethod
    def load(cls, directory: Path, mmap: bool = True) -> BM25Index:
        """Open an index written by `save`; arrays are memory-mapped read-only if `mmap`.

        Raises:
            IndexNotFoundError: no manifest in `directory`.
            IndexCompatibilityError: another format or version.
            IndexDamagedError: a file is missing, truncated or inconsistent (named).
        """
        directory = Path(directory)
        manifest_path = directory / MANIFEST
        manifest = read_manifest(
            manifest_path, fmt=FORMAT, version=FORMAT_VERSION, what="BM25 index"
        )
        with damage_as(manifest_path):
            params = manifest["params"]
            index = cls(k1=float(params["k1"]), b=float(params["b"]))
            entries = [
                (str(e["name"]), int(e["num_docs"]), int(e["num_terms"]), int(e["num_postings"]))
                for e in manifest["segments"]
            ]
            next_row = int(manifest["next_row"])
            deleted_name = str(manifest["deleted"])
        for name, num_docs, num_terms, num_postings in entries:
            folder = directory / name
            arrays = {
                n: load_npy(folder / f"{n}.npy", mmap=mmap, ndim=1, integer=True)
                for n in _SEGMENT_ARRAYS
            }
            terms = load_json(folder / _TERMS)
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise IndexDamagedError(folder / _TERMS, "not a JSON list of terms")
            segment = _Segment(name=name, terms=terms, **arrays)
            _check_segment(folder, segment, (num_docs, num_terms, num_postings), next_row)
            index._register(segment, source=directory)
        deleted_path = directory / deleted_name
        index._deleted = np.array(load_npy(deleted_path, ndim=1, integer=True), dtype=np.int64)
        if index._deleted.size and (index._deleted.min() < 0 or index._deleted.max() >= next_row):
            raise IndexDamagedError(deleted_path, "deleted rows out of range")
        index._next_row = next_row
        with damage_as(directory):
            index._view = index._rebuild()
        return index


def _top_k(cand: np.ndarray, vals: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(cand)
    if n > k:
        top = np.argpartition(vals, n - k)[n - k :]
        threshold = vals[top].min()
        if np.count_nonzero(vals >= threshold) > k:
            # Ties at the cut: keep all tied rows so the row-ascending tie-break is exact.
            top = np.flatnonzero(vals >= threshold)
        cand, vals = cand[top], vals[top]
    order = np.lexsort((cand, -vals))[:k]
    return cand[order].astype(np.int64), vals[order].astype(np.float32, copy=False)


def _check_segment(
    folder: Path, seg: _Segment, expected: tuple[int, int, int], next_row: int
) -> None:
    """Array lengths agree with the manifest entry and values are in range, so a damaged
    file is named here rather than failing (or silently mis-scoring) in a search."""
    num_docs, num_terms, num_postings = expected
    lengths = (
        ("rows.npy", len(seg.rows), num_docs),
        ("doc_len.npy", len(seg.doc_len), num_docs),
        (_TERMS, len(seg.terms), num_terms),
        ("term_ptr.npy", len(seg.term_ptr), num_terms + 1),
        ("post_doc.npy", len(seg.post_doc), num_postings),
        ("post_tf.npy", len(seg.post_tf), num_postings),
    )
    for file, found, wanted in lengths:
        if found != wanted:
            raise IndexDamagedError(
                folder / file, f"holds {found} entries where the manifest implies {wanted}"
            )
    ptr = np.asarray(seg.term_ptr)
    if ptr[0] != 0 or ptr[-1] != num_postings or (np.diff(ptr) < 0).any():
        raise IndexDamagedError(folder / "term_ptr.npy", "postings offsets are out of order")
    if num_postings and (int(seg.post_doc.min()) < 0 or int(seg.post_doc.max()) >= num_docs):
        raise IndexDamagedError(folder / "post_doc.npy", "posting document numbers out of range")
    if num_postings and int(seg.post_tf.min()) < 1:
        raise IndexDamagedError(folder / "post_tf.npy", "term frequencies below 1")
    rows = np.asarray(seg.rows)
    if num_docs and (rows[0] < 0 or rows[-1] >= next_row or (np.diff(rows) <= 0).any()):
        raise IndexDamagedError(folder / "rows.npy", "row ids out of range or out of order")


def _link_or_copy(src: Path, dst: Path) -> bool:
    """Share `src` as `dst` (hardlink, else copy). False when `src` cannot be read."""
    try:
        link_or_copy(src, dst)
    except OSError:
        return False
    return True


def _write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())

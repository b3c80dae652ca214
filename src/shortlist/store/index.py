"""`Index`: a persistent first-stage index (BM25 + optional dense vectors) over passages.

    index = Index.create("my-index", documents, dense=True)
    index = Index.open("my-index")
    index.add(more_documents)
    index.delete(["doc-7"])
    ranking = index.search("how do I ...", k=50, mode="hybrid", filter={"lang": "en"})

On disk an index is a directory of atomic generations (see `generations`); every
`create`/`add`/`delete` commits a complete new generation or nothing. The manifest
pins the format version, analyzer, BM25 parameters, chunking and the encoder's
identity, so an index is never searched with a different model or format.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shortlist.corpus.chunking import Chunker
from shortlist.errors import (
    IndexCompatibilityError,
    IndexNotFoundError,
    InvalidInputError,
)
from shortlist.progress import NoProgress, Progress, progress_for
from shortlist.retrieve.analyzer import Analyzer
from shortlist.retrieve.bm25 import BM25Index
from shortlist.retrieve.encoder import Encoder, normalized_identity
from shortlist.retrieve.fusion import fuse
from shortlist.retrieve.vectors import VectorIndex
from shortlist.store.docstore import DocStore, FilterSpec
from shortlist.store.generations import (
    begin_generation,
    commit_generation,
    current_generation,
    writer_lock,
)
from shortlist.types import Document, Hit, Passage, Ranking

FORMAT = "shortlist-index"
FORMAT_VERSION = 1
Mode = Literal["bm25", "dense", "hybrid"]
MODES: tuple[str, ...] = ("bm25", "dense", "hybrid")


@dataclass(frozen=True)
class HybridConfig:
    """How `mode="hybrid"` fuses BM25 and dense: a method of `shortlist.retrieve.fusion`.

    Each side contributes its top `depth` (at least the requested k) before fusion.
    """

    method: str = "rrf"
    depth: int = 100
    rrf_k: int = 60
    weights: tuple[float, float] = (0.5, 0.5)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "depth": self.depth,
            "rrf_k": self.rrf_k,
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HybridConfig:
        return cls(
            d.get("method", "rrf"),
            int(d.get("depth", 100)),
            int(d.get("rrf_k", 60)),
            (float(w[0]), float(w[1])) if (w := d.get("weights")) else (0.5, 0.5),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Index:
    """A persistent passage index. Use `Index.create` or `Index.open`, not the constructor."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        docstore: DocStore,
        bm25: BM25Index,
        vectors: VectorIndex | None,
        encoder: Encoder | None,
        *,
        num_threads: int | None = None,
    ) -> None:
        self.path = path
        self._num_threads = num_threads
        self._progress: Progress = NoProgress()
        self._manifest = manifest
        self._docs = docstore
        self._bm25 = bm25
        self._vectors = vectors
        self._encoder = encoder
        self.analyzer = Analyzer.from_dict(manifest["analyzer"])
        self.chunker = Chunker.from_dict(manifest["chunker"])
        self.hybrid = HybridConfig.from_dict(manifest.get("hybrid", {}))
        self._generation = int(manifest.get("generation", 0))

    # ---- construction ------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        documents: Iterable[Document] = (),
        *,
        dense: bool = True,
        encoder: str | Encoder = "default",
        analyzer: Analyzer | None = None,
        k1: float = 0.9,
        b: float = 0.4,
        chunker: Chunker | None = None,
        vector_dtype: str = "float16",
        hybrid: HybridConfig | None = None,
        overwrite: bool = False,
        show_progress: bool = False,
        progress: Progress | None = None,
        num_threads: int | None = None,
    ) -> Index:
        """Build a new index at `path` from `documents`.

        An existing index at `path` is an error unless `overwrite=True`, in which case
        the new index replaces it atomically (the old one answers until the switch).
        `encoder` is a spec for `shortlist.retrieve.encoders.load_encoder` or an
        `Encoder` object (then its identity must be reproducible from `encoder_spec`).
        The spec's `?backend=` is recorded in the manifest's encoder identity, and the
        index is always searched with that backend.

        `progress` reports each stage (see `shortlist.progress`); `show_progress=True`
        without it means bars on a terminal stderr, one line per stage otherwise.
        `num_threads` is the encoder's intra-op thread count (None: its runtime's default).
        """
        root = Path(path)
        if current_generation(root) is not None and not overwrite:
            raise InvalidInputError(
                f"an index already exists at {root}; use `shortlist add` to extend it, "
                "or overwrite=True (--overwrite) to rebuild it"
            )
        if root.exists() and not root.is_dir():
            raise InvalidInputError(f"{root} exists and is not a directory")
        enc: Encoder | None = None
        encoder_spec = encoder if isinstance(encoder, str) else getattr(encoder, "spec", "custom")
        if dense:
            enc = _load_encoder(encoder, num_threads) if isinstance(encoder, str) else encoder
        analyzer = analyzer or Analyzer()
        chunker = chunker or Chunker()
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": _now(),
            "analyzer": analyzer.to_dict(),
            "bm25": {"k1": k1, "b": b},
            "chunker": chunker.to_dict(),
            "hybrid": (hybrid or HybridConfig()).to_dict(),
            "dense": {
                "enabled": dense,
                "encoder": encoder_spec if dense else None,
                "identity": enc.identity if enc is not None else None,
                "dtype": vector_dtype,
            },
        }
        if vector_dtype not in ("float16", "float32"):
            raise InvalidInputError(
                f"vector_dtype must be 'float16' or 'float32', got {vector_dtype!r}"
            )
        vectors = (
            VectorIndex(dim=enc.dim, dtype=vector_dtype)  # type: ignore[arg-type]
            if enc is not None
            else None
        )
        index = cls(
            root,
            manifest,
            DocStore(),
            BM25Index(k1=k1, b=b),
            vectors,
            enc,
            num_threads=num_threads,
        )
        index._progress = _pick_progress(show_progress, progress)
        try:
            index._ingest(documents, on_duplicate="error")
            index._commit(fresh=True)
        finally:
            index._progress = NoProgress()
        return index

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        encoder: Encoder | None = None,
        num_threads: int | None = None,
    ) -> Index:
        """Open the live generation of the index at `path`.

        Raises `IndexNotFoundError` when there is none, and `IndexCompatibilityError`
        when it was written by another format version, or when `encoder` is given and
        differs from the model (or the backend) the index was built with. Without
        `encoder`, the one in the manifest is loaded on first use, with `num_threads`
        intra-op threads (None: its runtime's default).
        """
        root = Path(path)
        gen = current_generation(root)
        if gen is None:
            raise IndexNotFoundError(
                f"no shortlist index at {root}; "
                f"build one with `shortlist index SOURCE --index {root}`"
            )
        try:
            manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCompatibilityError(f"{gen / 'manifest.json'} is unreadable: {exc}") from exc
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise IndexCompatibilityError(
                f"{root} was written by index format {manifest.get('format')!r} version "
                f"{manifest.get('format_version')!r}; this shortlist reads {FORMAT!r} version "
                f"{FORMAT_VERSION}. Rebuild it with `shortlist index ... --overwrite`."
            )
        dense = manifest["dense"]
        if encoder is not None and dense["enabled"]:
            _check_identity(root, dense["identity"], encoder.identity)
        docstore = DocStore.load(gen / "docs")
        bm25 = BM25Index.load(gen / "bm25")
        vectors = VectorIndex.load(gen / "vectors") if dense["enabled"] else None
        return cls(root, manifest, docstore, bm25, vectors, encoder, num_threads=num_threads)

    # ---- properties ----------------------------------------------------------
    @property
    def manifest(self) -> Mapping[str, Any]:
        return self._manifest

    @property
    def has_dense(self) -> bool:
        return self._vectors is not None

    @property
    def num_documents(self) -> int:
        return self._docs.num_documents

    @property
    def num_passages(self) -> int:
        return self._docs.num_passages

    @property
    def encoder_spec(self) -> str | None:
        """The encoder spec the index was built with (None without dense vectors)."""
        return str(self._manifest["dense"]["encoder"]) if self.has_dense else None

    @property
    def encoder(self) -> Encoder:
        """The index's encoder, loaded on first use and checked against the manifest."""
        if not self.has_dense:
            raise InvalidInputError(
                f"the index at {self.path} has no dense vectors (built with --no-dense); "
                "use mode='bm25' or rebuild it with dense vectors"
            )
        if self._encoder is None:
            dense = self._manifest["dense"]
            enc = _load_encoder(_pinned_spec(dense), self._num_threads)
            _check_identity(self.path, dense["identity"], enc.identity)
            self._encoder = enc
        return self._encoder

    # ---- mutation ------------------------------------------------------------
    def add(
        self,
        documents: Iterable[Document],
        *,
        on_duplicate: Literal["error", "replace", "skip"] = "error",
        show_progress: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Add documents incrementally and commit a new generation; returns passages added.

        A document id already in the index is an error (`on_duplicate="error"`),
        replaces the old document (`"replace"`) or is left alone (`"skip"`).
        `progress` / `show_progress` report each stage, as for `create`.
        """
        self._progress = _pick_progress(show_progress, progress)
        try:
            added = self._ingest(documents, on_duplicate=on_duplicate)
            self._commit()
        except BaseException:
            self._reload()
            raise
        finally:
            self._progress = NoProgress()
        return added

    def delete(self, ids: Iterable[str]) -> tuple[int, list[str]]:
        """Delete documents (by document id, or single passages by passage id).

        Commits a new generation; returns (passages deleted, ids that matched nothing).
        """
        rows, unknown = self._docs.rows_for(list(ids))
        if not rows:
            return 0, unknown
        try:
            self._delete_rows(rows)
            self._commit()
        except BaseException:
            self._reload()
            raise
        return len(rows), unknown

    def _delete_rows(self, rows: Sequence[int]) -> None:
        arr = np.asarray(rows, dtype=np.int64)
        self._docs.delete_rows(arr)
        self._bm25.delete(arr)
        if self._vectors is not None:
            self._vectors.delete(arr)

    def _ingest(self, documents: Iterable[Document], *, on_duplicate: str) -> int:
        progress = self._progress
        docs: list[Document] = []
        seen: set[str] = set()
        replace_ids: list[str] = []
        for d in documents:
            if d.id in seen:
                raise InvalidInputError(f"document id {d.id!r} appears twice in the input")
            seen.add(d.id)
            if self._docs.has_document(d.id):
                if on_duplicate == "skip":
                    continue
                if on_duplicate == "error":
                    raise InvalidInputError(
                        f"document {d.id!r} is already in the index; delete it first, "
                        "or add with --replace (on_duplicate='replace')"
                    )
                replace_ids.append(d.id)
            docs.append(d)
        if replace_ids:
            replaced, _ = self._docs.rows_for(replace_ids)
            self._delete_rows(replaced)
        if not docs:
            return 0
        with progress.stage("chunk", len(docs), "documents") as stage:
            passages: list[Passage] = list(self.chunker.chunk_many(docs))
            stage.advance(len(docs))
        texts = [_indexed_text(p) for p in passages]
        with progress.stage("bm25", len(texts), "passages") as stage:
            tokens = self.analyzer.analyze_many(texts)
            rows = self._docs.add(passages)
            self._bm25.add(tokens, rows)
            stage.advance(len(texts))
        if self._vectors is not None:
            encoder = self.encoder
            with progress.stage("encode", len(texts), "passages") as stage:
                vecs = _encode_in_slices(encoder, texts, stage.advance)
            self._vectors.add(vecs, rows)
        return len(passages)

    def _commit(self, fresh: bool = False) -> None:
        with writer_lock(self.path):
            live = current_generation(self.path)
            on_disk_gen = 0
            if live is not None:
                on_disk = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
                on_disk_gen = int(on_disk.get("generation", 0))
            if not fresh and live is not None and on_disk_gen != self._generation:
                raise InvalidInputError(
                    f"the index at {self.path} was changed by another writer since it "
                    "was opened; reopen it and retry"
                )
            manifest = dict(self._manifest)
            manifest["generation"] = max(self._generation, on_disk_gen) + 1
            manifest["updated_at"] = _now()
            manifest["counts"] = {"documents": self.num_documents, "passages": self.num_passages}
            gen = begin_generation(self.path)
            with self._progress.stage("write", self.num_passages, "passages") as stage:
                self._docs.save(gen / "docs")
                self._bm25.save(gen / "bm25")
                if self._vectors is not None:
                    self._vectors.save(gen / "vectors")
                (gen / "manifest.json").write_text(
                    json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"
                )
                stage.advance(self.num_passages)
            commit_generation(self.path, gen)
        self._manifest = manifest
        self._generation = manifest["generation"]

    def _reload(self) -> None:
        """Drop in-memory changes after a failed write: go back to the live generation."""
        if current_generation(self.path) is None:
            return
        fresh = Index.open(self.path, encoder=self._encoder, num_threads=self._num_threads)
        self.__dict__.update(fresh.__dict__)

    # ---- search ----------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: Mode | str = "hybrid",
        filter: FilterSpec | None = None,
        by: Literal["passage", "document"] = "passage",
    ) -> Ranking:
        """The top `k` passages (or documents, `by="document"`: best passage per document).

        `mode` is `bm25`, `dense` or `hybrid` (default hybrid; `bm25` when the index has
        no vectors). `filter` restricts results to passages whose metadata match, inside
        the first stage, so k hits come back whenever k matching passages exist.
        """
        t0 = time.perf_counter()
        if not query or not query.strip():
            raise InvalidInputError("the query is empty; pass some text to search for")
        if k < 1:
            raise InvalidInputError(f"k must be >= 1, got {k}")
        if mode not in MODES:
            raise InvalidInputError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        if mode != "bm25" and not self.has_dense:
            raise InvalidInputError(
                f"mode {mode!r} needs dense vectors, but the index at {self.path} was built "
                "with --no-dense; use --mode bm25"
            )
        allowed = self._docs.filter_mask(filter) if filter else None
        timings: dict[str, float] = {}
        fetch = k if by == "passage" else k * 4
        while True:
            rows, scores = self._retrieve(query, fetch, mode, allowed, timings)
            hits = self._hits(rows, scores)
            if by == "passage":
                break
            hits = _best_per_document(hits)
            if len(hits) >= k or len(rows) < fetch:
                break
            fetch *= 4
        hits = hits[:k]
        total = (time.perf_counter() - t0) * 1000
        timings["retrieve"] = total
        timings["total"] = total
        return Ranking(query=query, hits=tuple(hits), timings_ms=timings)

    def _retrieve(
        self, query: str, k: int, mode: str, allowed: np.ndarray | None, timings: dict[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        if mode == "bm25":
            return self._bm25_search(query, k, allowed, timings)
        if mode == "dense":
            return self._dense_search(query, k, allowed, timings)
        depth = max(k, self.hybrid.depth)
        b_rows, b_scores = self._bm25_search(query, depth, allowed, timings)
        d_rows, d_scores = self._dense_search(query, depth, allowed, timings)
        t = time.perf_counter()
        runs = [
            {str(r): float(s) for r, s in zip(b_rows.tolist(), b_scores.tolist(), strict=True)},
            {str(r): float(s) for r, s in zip(d_rows.tolist(), d_scores.tolist(), strict=True)},
        ]
        if self.hybrid.method == "rrf":
            fused = fuse("rrf", runs, k=self.hybrid.rrf_k)
        else:
            fused = fuse(self.hybrid.method, runs, weights=list(self.hybrid.weights))
        ranked = sorted(fused.items(), key=lambda kv: (-kv[1], int(kv[0])))[:k]
        timings["fusion"] = (time.perf_counter() - t) * 1000
        rows = np.asarray([int(r) for r, _ in ranked], dtype=np.int64)
        scores = np.asarray([s for _, s in ranked], dtype=np.float32)
        return rows, scores

    def _bm25_search(
        self, query: str, k: int, allowed: np.ndarray | None, timings: dict[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        t = time.perf_counter()
        rows, scores = self._bm25.search(self.analyzer.analyze(query), k, allowed=allowed)
        timings["bm25"] = (time.perf_counter() - t) * 1000
        return rows, scores

    def _dense_search(
        self, query: str, k: int, allowed: np.ndarray | None, timings: dict[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self._vectors is not None
        t = time.perf_counter()
        qvec = self.encoder.encode([query])[0]
        timings["encode"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        rows, scores = self._vectors.search(qvec, k, allowed=allowed)
        timings["dense"] = (time.perf_counter() - t) * 1000
        return rows, scores

    def _hits(self, rows: np.ndarray, scores: np.ndarray) -> list[Hit]:
        passages = self._docs.get(rows)
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

    # ---- for rerankers -------------------------------------------------------------
    def passages(self, ids: Sequence[str]) -> list[Passage | None]:
        """Stored passages by passage id (None for unknown or deleted ids)."""
        rows = [self._docs.row_of_passage(i) for i in ids]
        found = iter(self._docs.get([r for r in rows if r is not None]))
        return [None if r is None else next(found) for r in rows]

    def vectors_for(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Stored vectors for passage ids: (matrix, found-mask).

        Lets a bi-encoder reranker skip re-encoding candidates that came from this index.
        """
        if self._vectors is None:
            return np.zeros((len(ids), 0), dtype=np.float32), np.zeros(len(ids), dtype=bool)
        rows = [self._docs.row_of_passage(i) for i in ids]
        found = np.asarray([r is not None for r in rows], dtype=bool)
        mat = np.zeros((len(ids), self._vectors.dim), dtype=np.float32)
        if found.any():
            mat[found] = self._vectors.get(np.asarray([r for r in rows if r is not None]))
        return mat, found

    @property
    def encoder_identity(self) -> Mapping[str, Any] | None:
        ident: Mapping[str, Any] | None = self._manifest["dense"]["identity"]
        return ident


def _indexed_text(p: Passage) -> str:
    return f"{p.title}\n{p.text}" if p.title else p.text


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


def _load_encoder(spec: str, num_threads: int | None = None) -> Encoder:
    from shortlist.retrieve.encoders import load_encoder

    return load_encoder(spec, num_threads=num_threads)


def _pinned_spec(dense: Mapping[str, Any]) -> str:
    from shortlist.retrieve.encoders import pin_backend

    return pin_backend(str(dense["encoder"]), dense.get("identity"))


def _pick_progress(show_progress: bool, progress: Progress | None) -> Progress:
    if progress is not None:
        return progress
    return progress_for(sys.stderr) if show_progress else NoProgress()


# Texts per encode call while indexing: small enough for a progress update every few
# seconds on CPU, large enough to keep batches full.
ENCODE_SLICE = 256


def _encode_in_slices(
    encoder: Encoder, texts: Sequence[str], advance: Callable[[int], None]
) -> np.ndarray:
    """Encode `texts` shortest first in slices (similar lengths share a slice, so batches
    carry little padding), reporting each slice; rows come back in input order."""
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    order = np.argsort(np.asarray([len(t) for t in texts], dtype=np.int64), kind="stable")
    for start in range(0, len(order), ENCODE_SLICE):
        rows = order[start : start + ENCODE_SLICE]
        out[rows] = encoder.encode([texts[i] for i in rows.tolist()])
        advance(len(rows))
    return out


def _check_identity(
    root: Path, expected: Mapping[str, Any] | None, actual: Mapping[str, Any]
) -> None:
    if expected is None:
        return
    keys = ("kind", "model", "dim", "weights_sha256")
    exp = {k: expected.get(k) for k in keys}
    act = {k: actual.get(k) for k in keys}
    if exp != act:
        raise IndexCompatibilityError(
            f"the index at {root} was built with encoder {exp}, but {act} was given; "
            "search it with the same model, or rebuild it with `shortlist index ... --overwrite`"
        )
    # Indexes written before backends existed were encoded by sentence-transformers (torch).
    # Backends are never mixed: int8 vectors differ from fp32 ones by ~1e-2 cosine.
    built = (normalized_identity(expected) or {}).get("backend")
    given = (normalized_identity(actual) or {}).get("backend")
    if built != given:
        raise IndexCompatibilityError(
            f"the index at {root} was encoded with backend {built!r}, but the query encoder "
            f"uses {given!r}; query it with the same backend (e.g. "
            f"'{expected.get('model')}?backend={built}', which `shortlist search` does by "
            f"itself), or rebuild it with `shortlist index ... --model "
            f"'{expected.get('model')}?backend={given}' --overwrite`"
        )


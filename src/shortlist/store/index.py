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
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
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
from shortlist.retrieve.analyzer import Analyzer
from shortlist.retrieve.bm25 import BM25Index
from shortlist.retrieve.encoder import Encoder
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.retrieve.stages import MODES, first_stage
from shortlist.retrieve.vectors import VectorIndex
from shortlist.store.docstore import DocStore, FilterSpec
from shortlist.store.generations import (
    begin_generation,
    commit_generation,
    current_generation,
    writer_lock,
)
from shortlist.types import Document, Passage, Ranking

__all__ = ["MODES", "HybridConfig", "Index", "Mode"]

QUERY_MEMO = 256
"""How many recent query embeddings an open `Index` keeps (`embed_query`)."""

FORMAT = "shortlist-index"
FORMAT_VERSION = 1
Mode = Literal["bm25", "dense", "hybrid"]


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
    ) -> None:
        self.path = path
        self._manifest = manifest
        self._docs = docstore
        self._bm25 = bm25
        self._vectors = vectors
        self._encoder = encoder
        self.analyzer = Analyzer.from_dict(manifest["analyzer"])
        self.chunker = Chunker.from_dict(manifest["chunker"])
        self.hybrid = HybridConfig.from_dict(manifest.get("hybrid", {}))
        self._generation = int(manifest.get("generation", 0))
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_lock = threading.Lock()

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
    ) -> Index:
        """Build a new index at `path` from `documents`.

        An existing index at `path` is an error unless `overwrite=True`, in which case
        the new index replaces it atomically (the old one answers until the switch).
        `encoder` is a spec for `shortlist.retrieve.encoders.load_encoder` or an
        `Encoder` object (then its identity must be reproducible from `encoder_spec`).
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
            enc = _load_encoder(encoder) if isinstance(encoder, str) else encoder
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
        index = cls(root, manifest, DocStore(), BM25Index(k1=k1, b=b), vectors, enc)
        index._ingest(documents, show_progress=show_progress, on_duplicate="error")
        index._commit(fresh=True)
        return index

    @classmethod
    def open(cls, path: str | Path, *, encoder: Encoder | None = None) -> Index:
        """Open the live generation of the index at `path`.

        Raises `IndexNotFoundError` when there is none, and `IndexCompatibilityError`
        when it was written by another format version, or when `encoder` is given and
        differs from the model the index was built with.
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
        return cls(root, manifest, docstore, bm25, vectors, encoder)

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
            enc = _load_encoder(dense["encoder"])
            _check_identity(self.path, dense["identity"], enc.identity)
            self._encoder = enc
        return self._encoder

    def load_encoder(self) -> Encoder:
        """`encoder`, for the `PassageStore` protocol."""
        return self.encoder

    def embed_query(self, text: str) -> np.ndarray:
        """`text` embedded by `encoder`; the last `QUERY_MEMO` queries are kept, so the
        dense first stage and a bi-encoder reranking its hits embed a query once."""
        with self._queries_lock:
            vector = self._queries.get(text)
            if vector is not None:
                self._queries.move_to_end(text)
                return vector
        vector = np.asarray(self.encoder.encode([text])[0], dtype=np.float32)
        vector.setflags(write=False)
        with self._queries_lock:
            self._queries[text] = vector
            while len(self._queries) > QUERY_MEMO:
                self._queries.popitem(last=False)
        return vector

    # ---- mutation ------------------------------------------------------------
    def add(
        self,
        documents: Iterable[Document],
        *,
        on_duplicate: Literal["error", "replace", "skip"] = "error",
        show_progress: bool = False,
    ) -> int:
        """Add documents incrementally and commit a new generation; returns passages added.

        A document id already in the index is an error (`on_duplicate="error"`),
        replaces the old document (`"replace"`) or is left alone (`"skip"`).
        """
        try:
            added = self._ingest(documents, show_progress=show_progress, on_duplicate=on_duplicate)
            self._commit()
        except BaseException:
            self._reload()
            raise
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

    def _ingest(
        self, documents: Iterable[Document], *, show_progress: bool, on_duplicate: str
    ) -> int:
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
        passages: list[Passage] = list(self.chunker.chunk_many(docs))
        texts = [_indexed_text(p) for p in passages]
        tokens = self.analyzer.analyze_many(texts)
        rows = self._docs.add(passages)
        self._bm25.add(tokens, rows)
        if self._vectors is not None:
            vecs = self.encoder.encode(texts, show_progress=show_progress)
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
            self._docs.save(gen / "docs")
            self._bm25.save(gen / "bm25")
            if self._vectors is not None:
                self._vectors.save(gen / "vectors")
            (gen / "manifest.json").write_text(
                json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"
            )
            commit_generation(self.path, gen)
        self._manifest = manifest
        self._generation = manifest["generation"]

    def _reload(self) -> None:
        """Drop in-memory changes after a failed write: go back to the live generation."""
        if current_generation(self.path) is None:
            return
        fresh = Index.open(self.path, encoder=self._encoder)
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

        A thin wrapper over the first-stage retrievers of `shortlist.retrieve.stages`:
        `mode` is `bm25`, `dense` or `hybrid` (fused with this index's `HybridConfig`).
        `filter` restricts results to passages whose metadata match, inside the first
        stage, so k hits come back whenever k matching passages exist. Raises
        `InvalidInputError` for an empty query, k < 1, an unknown mode, or a dense mode
        on an index without vectors.
        """
        ranking = first_stage(self, mode, by=by).run(query, k=k, filter=filter)
        return ranking.with_timings(total=ranking.timings_ms["retrieve"])

    # ---- the PassageStore protocol (shortlist.retrieve.store) ---------------------
    @property
    def location(self) -> str:
        return str(self.path)

    def analyze(self, text: str) -> list[str]:
        return self.analyzer.analyze(text)

    def bm25_search(
        self, terms: Sequence[str], k: int, *, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._bm25.search(list(terms), k, allowed=allowed)

    def vector_search(
        self, vector: np.ndarray, k: int, *, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._vectors is None:
            raise InvalidInputError(
                f"the index at {self.path} has no dense vectors (built with --no-dense); "
                "use mode='bm25' or rebuild it with dense vectors"
            )
        return self._vectors.search(vector, k, allowed=allowed)

    def filter_mask(self, filter: FilterSpec) -> np.ndarray:
        return self._docs.filter_mask(filter)

    def passages_at(self, rows: Sequence[int] | np.ndarray) -> list[Passage]:
        return self._docs.get(rows)

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


def _load_encoder(spec: str) -> Encoder:
    from shortlist.retrieve.encoders import load_encoder

    return load_encoder(spec)


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

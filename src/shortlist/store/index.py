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
import os
import shutil
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from shortlist._ondisk import damage_as, load_json, read_manifest
from shortlist.corpus.chunking import Chunker
from shortlist.errors import (
    IndexCompatibilityError,
    IndexDamagedError,
    IndexNotFoundError,
    IndexWriteError,
    InvalidInputError,
)
from shortlist.progress import NoProgress, Progress, progress_for
from shortlist.retrieve.analyzer import Analyzer
from shortlist.retrieve.bm25 import DEFAULT_B, DEFAULT_K1, BM25Index
from shortlist.retrieve.encoder import Encoder, normalized_identity
from shortlist.retrieve.hybrid import DEFAULT_HYBRID, HybridConfig
from shortlist.retrieve.stages import MODES, first_stage
from shortlist.retrieve.vectors import VectorIndex
from shortlist.store.docstore import DocStore, FilterSpec
from shortlist.store.files import check_file_sizes, file_table
from shortlist.store.generations import (
    CURRENT,
    EXTERNAL_POINTER,
    Lease,
    begin_generation,
    commit_generation,
    current_generation,
    current_generation_name,
    describe_current,
    folder_state,
    generation_number,
    pin_current,
    pin_generation,
    writer_lock,
)
from shortlist.types import Document, Passage, Ranking

__all__ = ["MODES", "HybridConfig", "Index", "Mode"]

QUERY_MEMO = 256
"""How many recent query embeddings an open `Index` keeps (`embed_query`)."""

FORMAT = "shortlist-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EXTERNAL_STORES: Mapping[str, tuple[str, str, str | None]] = {
    "milvus": ("shortlist.store.milvus", "MilvusIndex", "MILVUS_TOKEN"),
}
"""Store kind (the pointer's `store.kind`) -> (module, `Index` subclass, the environment
variable holding its token). Named, not imported: the store modules build on this one and
load only when a folder points at them."""
Mode = Literal["bm25", "dense", "hybrid"]
_BM25_VARIANTS_KEPT = 16
"""How many rescored BM25 variants (other k1/b) an open index keeps."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Index:
    """A persistent passage index. Use `Index.create` or `Index.open`, not the constructor.

    An open index pins the generation it reads (see `generations`): writers in this or
    any other process never remove it until `close()` (or garbage collection, or the
    process ending). A long-running reader moves to a newer generation by opening the
    index again and closing the old object. `with Index.open(dir) as index:` closes it.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        docstore: DocStore,
        bm25: BM25Index,
        vectors: VectorIndex | None,
        encoder: Encoder | None,
        *,
        generation_name: str | None = None,
        lease: Lease | None = None,
        num_threads: int | None = None,
    ) -> None:
        self._init_shared(path, manifest, encoder, num_threads)
        self._generation_name = generation_name
        self._lease = lease
        self._generation = int(manifest.get("generation", 0))
        self._docs = docstore
        self._bm25 = bm25
        # (k1, b) -> the BM25 index rescored with them, over the same shared segments;
        # dropped whenever `_bm25` changes.
        self._bm25_variants: dict[tuple[float, float], BM25Index] = {}
        self._vectors = vectors

    def _init_shared(
        self,
        path: Path,
        manifest: dict[str, Any],
        encoder: Encoder | None,
        num_threads: int | None,
    ) -> None:
        """The state every index keeps, whatever holds its passages: the manifest and
        what it configures (analyzer, chunker, fusion), the encoder and the query cache."""
        self.path = path
        self._manifest = manifest
        self._encoder = encoder
        self._num_threads = num_threads
        self._progress: Progress = NoProgress()
        self.analyzer = Analyzer.from_dict(manifest["analyzer"])
        self.chunker = Chunker.from_dict(manifest["chunker"])
        self.hybrid = HybridConfig.from_dict(manifest.get("hybrid", {}))
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
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
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
        the new index replaces it atomically (the old one answers until the switch). So
        is a damaged index (`IndexDamagedError`: repair it, or overwrite it) and a folder
        holding other files (`InvalidInputError`). Even with `overwrite=True`, nothing
        shortlist did not write is ever removed.
        `encoder` is a spec for `shortlist.retrieve.encoders.load_encoder` or an
        `Encoder` object (then its identity must be reproducible from `encoder_spec`).
        The spec's `?backend=` is recorded in the manifest's encoder identity, and the
        index is always searched with that backend.

        `progress` reports each stage (see `shortlist.progress`); `show_progress=True`
        without it means bars on a terminal stderr, one line per stage otherwise.
        `num_threads` is the encoder's intra-op thread count (None: its runtime's default).
        """
        root = Path(path)
        _check_target(root, overwrite)
        enc, encoder_spec = _new_encoder(encoder, dense, num_threads)
        analyzer = analyzer or Analyzer()
        chunker = chunker or Chunker()
        manifest = _new_manifest(
            FORMAT,
            FORMAT_VERSION,
            analyzer=analyzer,
            k1=k1,
            b=b,
            chunker=chunker,
            hybrid=hybrid or DEFAULT_HYBRID,
            dense=dense,
            encoder_spec=encoder_spec,
            enc=enc,
        )
        manifest["dense"]["dtype"] = vector_dtype
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
        with index._reporting(_pick_progress(show_progress, progress)):
            index._ingest(documents, on_duplicate="error")
            index._commit(fresh=True)
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

        A folder that points at an external store (a `store.json` written by
        `shortlist index ... --store milvus:...`) opens that store instead: a
        `shortlist.store.milvus.MilvusIndex`, with the token in `MILVUS_TOKEN` if set.
        """
        root = Path(path)
        if (root / EXTERNAL_POINTER).is_file():
            return _open_external(root, encoder, num_threads)
        name, lease = pin_current(root)
        try:
            if name is None or not (root / name).is_dir():
                raise _no_index_error(root)
            return cls._load(root, root / name, encoder, lease, num_threads)
        except BaseException:
            if lease is not None:
                lease.release()
            raise

    @classmethod
    def _load(
        cls,
        root: Path,
        gen: Path,
        encoder: Encoder | None,
        lease: Lease | None,
        num_threads: int | None = None,
    ) -> Index:
        manifest_path = gen / MANIFEST
        try:
            manifest = read_manifest(
                manifest_path, fmt=FORMAT, version=FORMAT_VERSION, what="shortlist index"
            )
        except IndexNotFoundError:
            raise IndexDamagedError(manifest_path, "the file is missing") from None
        check_file_sizes(gen, manifest)
        with damage_as(manifest_path):
            dense = manifest["dense"]
            enabled = bool(dense["enabled"])
            identity = dense["identity"]
        if encoder is not None and enabled:
            _check_identity(root, identity, encoder.identity)
        parts: dict[str, Any] = {}
        for part, load in (
            ("docs", DocStore.load),
            ("bm25", BM25Index.load),
            ("vectors", VectorIndex.load),
        ):
            if part == "vectors" and not enabled:
                parts[part] = None
                continue
            try:
                with damage_as(gen / part):  # the last net: anything not named deeper
                    parts[part] = load(gen / part)
            except IndexNotFoundError:
                raise IndexDamagedError(gen / part / MANIFEST, "the file is missing") from None
        with damage_as(manifest_path):
            return cls(
                root,
                manifest,
                parts["docs"],
                parts["bm25"],
                parts["vectors"],
                encoder,
                generation_name=gen.name,
                lease=lease,
                num_threads=num_threads,
            )

    def close(self) -> None:
        """Release the pin on this index's generation, so writers may remove it once it
        is no longer among the newest. Idempotent. Searching a closed index is undefined
        once a writer has removed its generation: open the index again instead."""
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- properties ----------------------------------------------------------
    @property
    def manifest(self) -> Mapping[str, Any]:
        return self._manifest

    @property
    def generation_name(self) -> str:
        """The on-disk generation this object reads, e.g. "gen-000003" (compare it with
        `generations.current_generation_name(index.path)` to notice a newer one)."""
        assert self._generation_name is not None, "an Index is built by create() or open()"
        return self._generation_name

    @property
    def generation(self) -> int:
        """The number of `generation_name` (3 for "gen-000003")."""
        number = generation_number(self.generation_name)
        assert number is not None
        return number

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

    @property
    def loaded_encoder(self) -> Encoder | None:
        """The encoder if it is already loaded, else None (never loads a model).

        Lets a reader that moves to a newer generation hand the same model over
        (`Index.open(path, encoder=old.loaded_encoder)`) instead of loading it again.
        """
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

    def forget_queries(self) -> None:
        """Empty the query-embedding memo of `embed_query`. The evaluation harness calls it
        before timing a first stage, so a pipeline never looks faster because an earlier
        pipeline already embedded its queries."""
        with self._queries_lock:
            self._queries.clear()

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
        with self._reporting(_pick_progress(show_progress, progress)), self._new_generation():
            added = self._ingest(documents, on_duplicate=on_duplicate)
        return added

    def update(
        self,
        documents: Iterable[Document],
        *,
        delete: Iterable[str] = (),
        show_progress: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Delete documents by id, then add `documents` (replacing those already indexed),
        in one new generation; returns the passages added. With nothing to add or delete
        no generation is written and nothing is encoded. Unknown ids in `delete` are
        ignored. Used by `shortlist.store.sync` to apply a folder's changes at once.
        """
        docs = list(documents)
        rows, _ = self._docs.rows_for([d for d in delete])
        if not docs and not rows:
            return 0
        with self._reporting(_pick_progress(show_progress, progress)), self._new_generation():
            if rows:
                self._delete_rows(rows)
            added = self._ingest(docs, on_duplicate="replace")
        return added

    def document_metadata(self, where: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Document id -> metadata (of its first passage), for the documents whose
        metadata has every ``key: value`` of `where` (all documents without it)."""
        wanted = dict(where or {})
        return {
            doc_id: MappingProxyType(md)
            for doc_id, md in self._docs.document_metadata().items()
            if all(md.get(k) == v for k, v in wanted.items())
        }

    def delete(self, ids: Iterable[str]) -> tuple[int, list[str]]:
        """Delete documents (by document id, or single passages by passage id).

        Commits a new generation; returns (passages deleted, ids that matched nothing).
        """
        rows, unknown = self._docs.rows_for(list(ids))
        if not rows:
            return 0, unknown
        with self._new_generation():
            self._delete_rows(rows)
        return len(rows), unknown

    @contextmanager
    def _new_generation(self) -> Iterator[None]:
        """Commit what the block changes as one new generation; if anything fails
        (the block or the commit), reload the committed generation and re-raise."""
        try:
            yield
            self._commit()
        except BaseException:
            self._reload()
            raise

    @contextmanager
    def _reporting(self, progress: Progress) -> Iterator[None]:
        """Report the block's stages to `progress`, then go back to reporting nothing."""
        self._progress = progress
        try:
            yield
        finally:
            self._progress = NoProgress()

    def _delete_rows(self, rows: Sequence[int]) -> None:
        arr = np.asarray(rows, dtype=np.int64)
        self._docs.delete_rows(arr)
        self._bm25.delete(arr)
        self._bm25_variants = {}
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
        self._bm25_variants = {}
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
            previous_files: Mapping[str, Any] = {}
            if live is not None:
                try:
                    on_disk = load_json(live / MANIFEST)
                    with damage_as(live / MANIFEST):
                        on_disk_gen = int(on_disk.get("generation", 0))
                        previous_files = on_disk.get("files") or {}
                except IndexDamagedError:
                    if not fresh:  # only a rebuild may replace a damaged index
                        raise
                    on_disk_gen = generation_number(live.name) or 0
            if not fresh and live is not None and on_disk_gen != self._generation:
                raise InvalidInputError(
                    f"the index at {self.path} was changed by another writer since it "
                    "was opened; reopen it and retry"
                )
            manifest = dict(self._manifest)
            manifest["generation"] = max(self._generation, on_disk_gen) + 1
            manifest["updated_at"] = _now()
            manifest["counts"] = {"documents": self.num_documents, "passages": self.num_passages}
            gen: Path | None = None
            try:
                gen = begin_generation(self.path)
                with self._progress.stage("write", self.num_passages, "passages") as stage:
                    self._write_generation(gen, manifest, live, previous_files)
                    stage.advance(self.num_passages)
                commit_generation(self.path, gen)
            except OSError as exc:
                self._abandon(gen)
                raise IndexWriteError(
                    f"could not write a new generation of the index at {self.path}: {exc}; "
                    f"the index is unchanged ({live.name if live is not None else 'empty'})"
                ) from exc
            except BaseException:
                self._abandon(gen)
                raise
            # Move this object's pin to what it now reads (under the writer lock, so no
            # other writer can prune the new generation first).
            lease = pin_generation(self.path, gen.name)
        self.close()
        self._lease = lease
        self._generation_name = gen.name
        self._manifest = manifest
        self._generation = manifest["generation"]

    def _write_generation(
        self,
        gen: Path,
        manifest: dict[str, Any],
        live: Path | None,
        previous_files: Mapping[str, Any],
    ) -> None:
        self._docs.save(gen / "docs")
        self._bm25.save(gen / "bm25")
        if self._vectors is not None:
            self._vectors.save(gen / "vectors")
        # Sizes and checksums of every file, for `check` and for opening (sizes).
        manifest["files"] = file_table(gen, live, previous_files)
        (gen / MANIFEST).write_text(
            json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"
        )

    def _abandon(self, gen: Path | None) -> None:
        """Remove a generation this writer created but did not commit (a full disk must
        not stay full of it). One that CURRENT already names is committed: kept."""
        if gen is not None and current_generation_name(self.path) != gen.name:
            shutil.rmtree(gen, ignore_errors=True)

    def _reload(self) -> None:
        """Drop in-memory changes after a failed write: go back to the live generation."""
        if current_generation(self.path) is None:
            return
        fresh = Index.open(self.path, encoder=self._encoder, num_threads=self._num_threads)
        self.close()
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

    def bm25_search_with(
        self,
        terms: Sequence[str],
        k: int,
        *,
        allowed: np.ndarray | None,
        k1: float,
        b: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`bm25_search` scored with `k1`/`b` (`RescoresBM25`): the per-posting scores are
        recomputed once per (k1, b) from the stored term frequencies and lengths, and kept
        while this index is open and unchanged."""
        own = self._bm25.params
        if (float(k1), float(b)) == (own["k1"], own["b"]):
            return self.bm25_search(terms, k, allowed=allowed)
        key = (float(k1), float(b))
        variant = self._bm25_variants.get(key)
        if variant is None:
            variant = self._bm25.with_params(k1=k1, b=b)
            if len(self._bm25_variants) >= _BM25_VARIANTS_KEPT:
                # Bounded: each variant holds one float32 score per posting.
                self._bm25_variants.pop(next(iter(self._bm25_variants)))
            self._bm25_variants[key] = variant
        return variant.search(list(terms), k, allowed=allowed)

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


def _open_external(root: Path, encoder: Encoder | None, num_threads: int | None) -> Index:
    """Open the external store the pointer in `root` names (`EXTERNAL_STORES`)."""
    import importlib

    pointer = root / EXTERNAL_POINTER
    with damage_as(pointer):
        kind = str(load_json(pointer)["store"]["kind"])
    if kind not in EXTERNAL_STORES:
        raise IndexCompatibilityError(
            f"{root} points at a {kind!r} store; this shortlist opens "
            f"{', '.join(sorted(EXTERNAL_STORES))}. Upgrade shortlist, or rebuild the index"
        )
    module, name, token_env = EXTERNAL_STORES[kind]
    store = getattr(importlib.import_module(module), name)
    token = (os.environ.get(token_env) or None) if token_env else None
    opened: Index = store.open(root, encoder=encoder, num_threads=num_threads, token=token)
    return opened


def _indexed_text(p: Passage) -> str:
    return f"{p.title}\n{p.text}" if p.title else p.text


def _no_index_error(root: Path) -> IndexNotFoundError | IndexDamagedError:
    """Why `root` cannot be opened: no index there, or a damaged one."""
    state = folder_state(root)
    if state == "file":
        return IndexNotFoundError(
            f"{root} is a file, not an index folder; pass the folder built by "
            f"`shortlist index SOURCE --index DIR`"
        )
    if state == "damaged":
        problem = describe_current(root) or "no usable generation"
        return IndexDamagedError(root / CURRENT, problem, index_dir=root)
    return IndexNotFoundError(
        f"no shortlist index at {root}; build one with `shortlist index SOURCE --index {root}`"
    )


def _check_target(root: Path, overwrite: bool) -> None:
    """Refuse to build an index where it would replace something unasked."""
    state = folder_state(root)
    if state == "file":
        raise InvalidInputError(f"{root} exists and is not a directory")
    if state == "index" and not overwrite:
        raise InvalidInputError(
            f"an index already exists at {root}; use `shortlist add` to extend it, "
            "or overwrite=True (--overwrite) to rebuild it"
        )
    if state == "damaged" and not overwrite:
        problem = describe_current(root) or "no usable generation"
        raise IndexDamagedError(
            root / CURRENT,
            f"{problem}. Nothing was changed; repair the index, or replace it with "
            "overwrite=True (--overwrite)",
            index_dir=root,
        )
    if state == "foreign" and not overwrite:
        raise InvalidInputError(
            f"{root} is not empty and holds no shortlist index; build the index in a new "
            "or empty folder, or pass overwrite=True (--overwrite) to build it beside "
            "those files (shortlist never deletes files it did not write)"
        )


def _new_encoder(
    encoder: str | Encoder, dense: bool, num_threads: int | None
) -> tuple[Encoder | None, str]:
    """A new index's encoder (None without dense vectors; a spec string is loaded) and
    the spec its manifest records (an `Encoder` object's `spec`, else "custom")."""
    spec = encoder if isinstance(encoder, str) else getattr(encoder, "spec", "custom")
    if not dense:
        return None, spec
    return (_load_encoder(encoder, num_threads) if isinstance(encoder, str) else encoder), spec


def _new_manifest(
    fmt: str,
    version: int,
    *,
    analyzer: Analyzer,
    k1: float,
    b: float,
    chunker: Chunker,
    hybrid: HybridConfig,
    dense: bool,
    encoder_spec: str,
    enc: Encoder | None,
) -> dict[str, Any]:
    """The manifest entries every new index records, whatever stores its passages: its
    format `fmt` and `version`, what analyzes, scores, chunks and fuses, and the dense
    encoder. Stores add their own (the local index its vector dtype, Milvus its
    collection)."""
    return {
        "format": fmt,
        "format_version": version,
        "created_at": _now(),
        "analyzer": analyzer.to_dict(),
        "bm25": {"k1": k1, "b": b},
        "chunker": chunker.to_dict(),
        "hybrid": hybrid.to_dict(),
        "dense": {
            "enabled": dense,
            "encoder": encoder_spec if dense else None,
            "identity": enc.identity if enc is not None else None,
        },
    }


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


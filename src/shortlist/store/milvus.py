"""`MilvusIndex`: an `Index` whose passages live in a Milvus collection.

    index = MilvusIndex.create("my-index", documents, target=MilvusTarget.parse(
        "milvus:http://milvus:19530?collection=docs"))
    index = Index.open("my-index")          # the folder points at the collection

The same client code reaches Milvus Lite (a local file, for tests and laptops) and a
Milvus server or cluster (an `http://` URI, with the token the caller passes, which
`Index.open` takes from `MILVUS_TOKEN`). The index folder keeps only `store.json`: the
collection's URI and name, the schema version, the analyzer, BM25 k1/b, chunker, fusion
settings and the encoder's identity. The collection's own properties repeat the
identity, so a folder pointed at a collection built otherwise is refused.

How the stages map onto Milvus:

- BM25 is Milvus's built-in full-text search: a BM25 function over the analyzed VARCHAR
  field `terms` into a sparse field. `terms` holds the passage already analyzed by
  shortlist's own `Analyzer` (lowercased, stopwords dropped, Snowball-stemmed, joined by
  spaces), and queries are sent the same way, so both stores see the same terms whatever
  tokenizers and filters the Milvus deployment offers (Milvus Lite has no stemmer);
  Milvus's tokenizer only splits on the spaces. Scores are divided by `k1 + 1`, the
  factor Milvus's formula carries and shortlist's omits, so fusion sees the same scale.
- Dense is a FLOAT_VECTOR field under inner product (vectors are L2-normalised, so scores
  are cosines): FLAT (exact) up to `HNSW_ABOVE` passages at creation, HNSW above, unless
  the target names the index (`?index=flat|hnsw`).
- Hybrid is shortlist's own fusion over the two result lists (`HybridRetriever`), so
  tuned fusion settings mean the same on both stores.
- Filters become Milvus boolean expressions (`filter_expression`), every key and value
  written as an escaped string literal or a number.
- Rows are the collection's INT64 primary key (`auto_id`: increasing with insertion,
  so ties break in insertion order, as in the local index).

Writes: `add` analyzes, embeds and inserts in slices of whole documents, every row
tagged with one write token, and only then deletes the replaced documents' old chunks. A
failure part-way (an insert, the encoder) removes every chunk the call wrote (by its
token), leaving the collection as before; when even that fails, `IndexWriteError` lists
the documents to re-send (re-adding replaces them).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

import numpy as np

from shortlist._ondisk import damage_as, read_manifest
from shortlist._optional import require
from shortlist.corpus.chunking import Chunker
from shortlist.errors import (
    IndexCompatibilityError,
    IndexNotFoundError,
    IndexWriteError,
    InvalidInputError,
    ShortlistError,
)
from shortlist.progress import Progress
from shortlist.retrieve.analyzer import Analyzer
from shortlist.retrieve.bm25 import DEFAULT_B, DEFAULT_K1
from shortlist.retrieve.encoder import Encoder
from shortlist.retrieve.hybrid import DEFAULT_HYBRID, HybridConfig
from shortlist.store.generations import EXTERNAL_POINTER
from shortlist.store.index import (
    Index,
    _check_identity,
    _encode_in_slices,
    _indexed_text,
    _new_encoder,
    _new_manifest,
    _pick_progress,
)
from shortlist.types import Document, Passage

__all__ = [
    "HNSW_ABOVE",
    "MilvusFilter",
    "MilvusIndex",
    "MilvusTarget",
    "POINTER",
    "filter_expression",
]

T = TypeVar("T")

POINTER = EXTERNAL_POINTER
"""The file an index folder holds when its passages live in an external store."""
FORMAT = "shortlist-store-pointer"
FORMAT_VERSION = 1
SCHEMA_VERSION = 1
"""The collection layout this module writes and reads (fields, types, functions)."""

HNSW_ABOVE = 250_000
"""Passages above which a new collection's dense field gets HNSW instead of FLAT.

A FLAT search reads every vector: 250k x 384 float32 is 384 MB per query, about the
most one query can scan inside a 50 ms budget (docs/scaling.md). Below it, exact search
costs little and equals the local index's dense search."""
HNSW_PARAMS = {"M": 16, "efConstruction": 200}
HNSW_EF_MIN = 128
"""HNSW search breadth: max(k, HNSW_EF_MIN)."""

IDENTITY_PROPERTY = "shortlist.identity"
"""The collection property recording the schema version, analyzer, BM25 k1/b and encoder."""

MAX_TOPK = 16_384
"""Milvus's limit on `limit` (topK) of one search."""
MAX_VARCHAR = 65_535
"""Milvus's longest VARCHAR, in bytes."""
_TIE_MARGIN = 16
"""Extra hits fetched beyond k, so that ties at the cut-off break by row (see `_search`)."""
_IN_CHUNK = 1_000
"""Ids per `in [...]` expression (keeps expressions well inside Milvus's limits)."""
RECENT_PASSAGES = 4_096
"""Passages of recent search hits kept in memory, so turning rows into hits needs no
second request (searches return their passages' fields)."""
INSERT_ROWS = 512
"""Rows per insert call (documents are never split across calls)."""
WRITE_ROWS = 2_048
"""Passages analyzed and embedded per slice of a write (bounds the memory of `add`)."""

_OUTPUT = ["row", "passage_id", "doc_id", "text", "title", "start", "end", "metadata"]


class MilvusError(IndexWriteError):
    """Milvus refused or failed a request (the message names the operation)."""


@dataclass(frozen=True)
class MilvusTarget:
    """Where a collection lives: `uri` (a Milvus Lite file path or `http(s)://host:port`),
    `collection`, and the dense index (`"auto"`: FLAT up to `HNSW_ABOVE` passages).

    `token` (user:password or an API key) is never written to the index folder."""

    uri: str
    collection: str
    dense_index: Literal["auto", "flat", "hnsw"] = "auto"
    token: str | None = None

    @property
    def is_lite(self) -> bool:
        return "://" not in self.uri

    @classmethod
    def parse(cls, spec: str, *, token: str | None = None) -> MilvusTarget:
        """Read `milvus:URI?collection=NAME[&index=flat|hnsw]`.

        A URI without a scheme is a Milvus Lite file (made absolute, so the folder opens
        from any working directory). Raises `InvalidInputError` naming the expected form.
        """
        form = "milvus:URI?collection=NAME (URI: a file path for Milvus Lite, or http://host:19530)"
        kind, sep, rest = spec.partition(":")
        if kind != "milvus" or not sep:
            raise InvalidInputError(f"unknown store {spec!r}; expected {form}")
        uri, _, query = rest.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        unknown = sorted(set(params) - {"collection", "index"})
        if unknown:
            raise InvalidInputError(
                f"unknown store parameter(s) {', '.join(unknown)} in {spec!r}; "
                "valid: collection, index"
            )
        name = params.get("collection", "")
        if not uri or not name:
            raise InvalidInputError(f"store {spec!r} needs a URI and a collection: {form}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", name):
            raise InvalidInputError(
                f"collection name {name!r} must start with a letter or underscore and hold "
                "only letters, digits and underscores (Milvus's rule)"
            )
        dense_index = params.get("index", "auto")
        if dense_index not in ("auto", "flat", "hnsw"):
            raise InvalidInputError(f"index={dense_index!r} in {spec!r}: use flat or hnsw")
        if "://" not in uri:
            uri = str(Path(uri).expanduser().resolve())
        return cls(uri, name, dense_index, token)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"milvus:{self.uri}?collection={self.collection}"


@dataclass(frozen=True, slots=True)
class MilvusFilter:
    """A metadata filter as a Milvus boolean expression (what `MilvusIndex.filter_mask`
    returns and its searches take as `allowed`)."""

    expression: str


# ---- filter translation --------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string_literal(value: str) -> str:
    """`value` as a double-quoted Milvus string literal: backslash, quote, newline, CR and
    tab escaped (the escapes both Milvus and Milvus Lite read); other control characters
    are refused (`InvalidInputError`), never passed through."""
    if _CONTROL.search(value):
        raise InvalidInputError(
            f"filter value {value!r} holds a control character; remove it"
        )
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"filter value {value!r} must be a finite number")
        return repr(value)
    if isinstance(value, str):
        return string_literal(value)
    raise InvalidInputError(
        f"filter value {value!r} must be a string, number or boolean, "
        f"not {type(value).__name__}"
    )


def _options(wanted: Any) -> list[Any]:
    """The values one condition accepts, as the local store matches them: a CLI string
    also matches the number or boolean it spells (`"2"` matches 2)."""
    values = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
    out: list[Any] = []
    for v in values:
        out.append(v)
        if isinstance(v, str):
            try:
                parsed = json.loads(v)
            except ValueError:
                continue
            if isinstance(parsed, bool | int | float) and not isinstance(parsed, str):
                out.append(parsed)
    return out


def filter_expression(filter: Mapping[str, Any]) -> str:
    """A metadata filter (`{key: value | [values]}`, all must hold) as a Milvus boolean
    expression over the JSON field `metadata`.

    A passage matches a value when its metadata value equals it, or is a list holding
    it (as in the local store). Keys and string values are written as escaped string
    literals (`string_literal`), numbers with `repr`, so no value can change the
    expression's structure. An empty filter is `""` (no restriction).
    """
    clauses = []
    for key, wanted in filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"filter key {key!r} must be a non-empty string")
        field = f"metadata[{string_literal(key)}]"
        options = _options(wanted)
        if not options:
            clauses.append("false")
            continue
        terms = []
        for v in options:
            lit = _literal(v)
            terms.append(f"{field} == {lit}")
            terms.append(f"json_contains({field}, {lit})")
        clauses.append("(" + " or ".join(terms) + ")")
    return " and ".join(clauses)


# ---- the index ----------------------------------------------------------------------------
class MilvusIndex(Index):
    """An `Index` over a Milvus collection (see the module docstring).

    Built by `MilvusIndex.create` (the CLI: `shortlist index ... --store milvus:...`) and
    opened by `Index.open(folder)`, which reads the folder's `store.json`. It keeps the
    `Index` interface (search, add, delete, the `PassageStore` protocol), and holds no
    passages in the process: every search, add and delete goes to the collection, so
    any number of processes may serve the same collection.

    What differs from the local index: there are no generations (writes are visible to
    searches at once; `generation_name` is the collection), BM25 k1/b are fixed when the
    collection is built (`bm25_search_with` accepts only those), and `num_documents`
    reads every passage's document id (one scan: for summaries, not for requests).
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        target: MilvusTarget,
        client: Any,
        encoder: Encoder | None,
        *,
        num_threads: int | None = None,
    ) -> None:
        # Index.__init__ builds local segments; this store has none.
        self._init_shared(path, manifest, encoder, num_threads)
        self.target = target
        self._client = client
        self._lease = None
        self._generation_name = None
        self._generation = 0
        self._recent: OrderedDict[int, Passage] = OrderedDict()
        self._recent_lock = threading.Lock()
        bm25 = manifest["bm25"]
        self._k1 = float(bm25["k1"])
        self._b = float(bm25["b"])

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def create(  # type: ignore[override]
        cls,
        path: str | Path,
        documents: Iterable[Document] = (),
        *,
        target: MilvusTarget,
        dense: bool = True,
        encoder: str | Encoder = "default",
        analyzer: Analyzer | None = None,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        chunker: Chunker | None = None,
        hybrid: HybridConfig | None = None,
        overwrite: bool = False,
        show_progress: bool = False,
        progress: Progress | None = None,
        num_threads: int | None = None,
        expected_passages: int | None = None,
    ) -> MilvusIndex:
        """Create the collection `target` and the folder `path` pointing at it, and add
        `documents`.

        An existing collection or index folder is an error unless `overwrite=True` (the
        collection is then dropped and built anew; nothing else in the folder is
        touched). The dense index is FLAT unless `target.dense_index` is `hnsw`, or it is
        `auto` and the documents make more than `HNSW_ABOVE` passages (the count is taken
        after chunking, before anything is written; `expected_passages` overrides it).
        """
        root = Path(path)
        _check_folder(root, overwrite)
        enc, encoder_spec = _new_encoder(encoder, dense, num_threads)
        analyzer = analyzer or Analyzer()
        chunker = chunker or Chunker()
        docs = _unique(documents)
        progress_ = _pick_progress(show_progress, progress)
        with progress_.stage("chunk", len(docs), "documents") as stage:
            passages = list(chunker.chunk_many(docs))
            stage.advance(len(docs))
        count = expected_passages if expected_passages is not None else len(passages)
        dense_index = target.dense_index
        if dense_index == "auto":
            dense_index = "hnsw" if count > HNSW_ABOVE else "flat"
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
        manifest["store"] = {
            "kind": "milvus",
            "uri": target.uri,
            "collection": target.collection,
            "schema_version": SCHEMA_VERSION,
            "dense_index": dense_index if enc is not None else None,
        }
        manifest["dense"]["dim"] = enc.dim if enc is not None else None
        client = _connect(target)
        try:
            if client.has_collection(target.collection):
                if not overwrite:
                    raise InvalidInputError(
                        f"collection {target.collection!r} already exists at {target.uri}; "
                        "point the folder at it by opening an index folder made for it, or "
                        "pass --overwrite (overwrite=True) to drop and rebuild it"
                    )
                client.drop_collection(target.collection)
            _create_collection(client, target.collection, manifest)
        except ShortlistError:
            client.close()
            raise
        except Exception as exc:
            client.close()
            raise MilvusError(
                f"could not create collection {target.collection!r} at {target.uri}: {exc}"
            ) from exc
        index = cls(root, manifest, target, client, enc, num_threads=num_threads)
        with index._reporting(progress_):
            index._write(passages, replace_docs=[])
            index._seal(always=True)
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{POINTER}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, root / POINTER)
        return index

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        encoder: Encoder | None = None,
        num_threads: int | None = None,
        token: str | None = None,
    ) -> MilvusIndex:
        """Open the collection the folder `path` points at.

        Raises `IndexNotFoundError` when the folder or the collection is missing, and
        `IndexCompatibilityError` when the collection was built with another schema,
        analyzer or encoder than the folder names, or `encoder` differs from it.
        """
        root = Path(path)
        manifest = read_manifest(
            root / POINTER, fmt=FORMAT, version=FORMAT_VERSION, what="shortlist store pointer"
        )
        with damage_as(root / POINTER):
            store = manifest["store"]
            if store["kind"] != "milvus":
                raise IndexCompatibilityError(
                    f"{root} points at a {store['kind']!r} store; this module opens Milvus"
                )
            target = MilvusTarget(str(store["uri"]), str(store["collection"]), token=token)
            identity = manifest["dense"]["identity"]
        if encoder is not None and manifest["dense"]["enabled"]:
            _check_identity(root, identity, encoder.identity)
        client = _connect(target)
        try:
            if not client.has_collection(target.collection):
                raise IndexNotFoundError(
                    f"collection {target.collection!r} is missing at {target.uri} (the "
                    f"index folder {root} points at it); rebuild it with `shortlist index "
                    f"SOURCE --index {root} --store '{target}' --overwrite`"
                )
            _check_collection(client, root, target, manifest)
            client.load_collection(target.collection)
        except BaseException:
            client.close()
            raise
        return cls(root, manifest, target, client, encoder, num_threads=num_threads)

    def close(self) -> None:
        """Close the client connection. Idempotent."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # ---- properties ------------------------------------------------------------------------
    @property
    def generation_name(self) -> str:
        """`milvus:COLLECTION`: a collection has no generations; writes are visible at once."""
        return f"milvus:{self.target.collection}"

    @property
    def generation(self) -> int:
        return 0

    @property
    def has_dense(self) -> bool:
        return bool(self._manifest["dense"]["enabled"])

    @property
    def fixed_bm25(self) -> tuple[float, float]:
        """The BM25 (k1, b) the collection scores with: fixed when its sparse index was
        built (`shortlist tune --index` keeps them instead of searching a k1/b grid)."""
        return self._k1, self._b

    @property
    def location(self) -> str:
        return f"{self.path} ({self.target})"

    @property
    def num_passages(self) -> int:
        rows = self._call("count passages", self._db.query, self._name, filter="",
                          output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @property
    def num_documents(self) -> int:
        """Distinct document ids (reads every passage's `doc_id`: one scan)."""
        return len({r["doc_id"] for r in self._scan(["doc_id"], "")})

    @property
    def _db(self) -> Any:
        if self._client is None:
            raise InvalidInputError(f"the index at {self.location} is closed; open it again")
        return self._client

    @property
    def _name(self) -> str:
        return self.target.collection

    # ---- mutation ------------------------------------------------------------------------------
    def add(
        self,
        documents: Iterable[Document],
        *,
        on_duplicate: Literal["error", "replace", "skip"] = "error",
        show_progress: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Add documents; returns passages added. `on_duplicate` as for `Index.add`:
        `"replace"` upserts (the document's old chunks are deleted once its new ones are
        in). A failure writes nothing visible, or says which documents to re-send."""
        docs = _unique(documents)
        present = self._present_documents([d.id for d in docs])
        if present and on_duplicate == "error":
            first = sorted(present)[0]
            raise InvalidInputError(
                f"document {first!r} is already in the index; delete it first, "
                "or add with --replace (on_duplicate='replace')"
            )
        if on_duplicate == "skip":
            docs = [d for d in docs if d.id not in present]
        with self._reporting(_pick_progress(show_progress, progress)):
            with self._progress.stage("chunk", len(docs), "documents") as stage:
                passages = list(self.chunker.chunk_many(docs))
                stage.advance(len(docs))
            self._write(passages, replace_docs=sorted(present) if on_duplicate == "replace" else [])
            self._seal()
        return len(passages)

    def delete(self, ids: Iterable[str]) -> tuple[int, list[str]]:
        """Delete documents (every chunk of a document id) or single passages (by passage
        id); returns (passages deleted, ids that matched nothing)."""
        wanted = list(dict.fromkeys(ids))
        matched: set[str] = set()
        rows: list[int] = []
        for chunk in _chunks(wanted, _IN_CHUNK):
            lits = ", ".join(string_literal(i) for i in chunk)
            expr = f"doc_id in [{lits}] or passage_id in [{lits}]"
            for r in self._scan(["row", "passage_id", "doc_id"], expr):
                rows.append(int(r["row"]))
                matched.update(x for x in (r["passage_id"], r["doc_id"]) if x in chunk)
        unknown = [i for i in wanted if i not in matched]
        rows = sorted(set(rows))
        for chunk in _chunks(rows, _IN_CHUNK):
            self._call("delete passages", self._db.delete, self._name,
                       filter=f"row in [{', '.join(map(str, chunk))}]")
        if rows:
            self._seal()
        return len(rows), unknown

    def _seal(self, *, always: bool = False) -> None:
        """Flush the collection: after the bulk load of `create` (its segments then get
        their indexes), and after every write on Milvus Lite, which otherwise answers
        from an unsealed buffer that it re-indexes on every search (measured on Lee: 350
        ms per BM25 search before a flush, 4-8 ms after). A server seals segments by
        itself; flushing it after each small write would only make small segments."""
        if always or self.target.is_lite:
            self._call("flush", self._db.flush, self._name)

    def _present_documents(self, doc_ids: Sequence[str]) -> set[str]:
        present: set[str] = set()
        for chunk in _chunks(list(doc_ids), _IN_CHUNK):
            expr = f"doc_id in [{', '.join(string_literal(i) for i in chunk)}]"
            present.update(r["doc_id"] for r in self._scan(["doc_id"], expr))
        return present

    def _write(self, passages: Sequence[Passage], *, replace_docs: Sequence[str]) -> None:
        """Insert `passages` (tagged with one fresh write token), then delete the old
        chunks of `replace_docs`. See the module docstring for what a failure leaves.

        Works in slices of about `WRITE_ROWS` passages (whole documents): analyze, embed
        and insert one slice before the next, so memory stays bounded by a slice."""
        if not passages:
            self._delete_old(replace_docs, token="")
            return
        for p in passages:  # refuse before anything is written
            _check_length(p, _indexed_text(p))
        encoder = self.encoder if self.has_dense else None  # loaded before any write
        token = uuid.uuid4().hex
        written: list[str] = []
        label = "encode+write" if encoder is not None else "write"
        with self._progress.stage(label, len(passages), "passages") as stage:
            try:
                for part in _document_batches(passages, WRITE_ROWS, lambda p: p.doc_id):
                    self._write_slice(part, encoder, token, written)
                    stage.advance(len(part))
            except Exception as exc:
                self._roll_back(token, written, exc)
        self._delete_old(replace_docs, token)

    def _write_slice(
        self,
        passages: Sequence[Passage],
        encoder: Encoder | None,
        token: str,
        written: list[str],
    ) -> None:
        texts = [_indexed_text(p) for p in passages]
        terms = [" ".join(t) for t in self.analyzer.analyze_many(texts)]
        vectors = None if encoder is None else _encode_in_slices(encoder, texts, _ignore)
        records = [
            _record(p, t, None if vectors is None else vectors[i], token)
            for i, (p, t) in enumerate(zip(passages, terms, strict=True))
        ]
        for batch in _document_batches(records, INSERT_ROWS, lambda r: r["doc_id"]):
            docs = list(dict.fromkeys(r["doc_id"] for r in batch))
            written.extend(docs)  # before the call: a failed insert may have written part
            self._db.insert(self._name, batch)

    def _roll_back(self, token: str, docs: Sequence[str], cause: Exception) -> None:
        """Remove every chunk written under `token` and raise; if that fails too, name
        the documents whose new chunks may be partly visible."""
        try:
            self._db.delete(self._name, filter=f"batch == {string_literal(token)}")
        except Exception as exc:
            raise MilvusError(
                f"adding to {self.target} failed ({cause}), and removing the partly "
                f"written documents failed too ({exc}). Re-send these documents with "
                f"`shortlist add --replace` (re-adding replaces them): {', '.join(docs)}"
            ) from cause
        raise MilvusError(
            f"adding to {self.target} failed ({cause}); everything this add wrote was "
            "removed, so the collection is as before. Retry the add."
        ) from cause

    def _delete_old(self, doc_ids: Sequence[str], token: str) -> None:
        for chunk in _chunks(list(doc_ids), _IN_CHUNK):
            expr = (
                f"doc_id in [{', '.join(string_literal(i) for i in chunk)}] "
                f"and batch != {string_literal(token)}"
            )
            try:
                self._db.delete(self._name, filter=expr)
            except Exception as exc:
                raise MilvusError(
                    f"the new chunks of {len(doc_ids)} documents are in {self.target}, but "
                    f"deleting their old chunks failed ({exc}); re-send these documents "
                    f"with `shortlist add --replace`: {', '.join(doc_ids)}"
                ) from exc

    # ---- the PassageStore protocol -------------------------------------------------------------
    def bm25_search(
        self, terms: Sequence[str], k: int, *, allowed: np.ndarray | MilvusFilter | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if not terms:
            return _empty()
        # BM25 scores are positive; Milvus Lite reports them negated (as distances).
        # Milvus's formula carries a (k1 + 1) factor that shortlist's omits.
        k1 = self._k1
        return self._search(
            [" ".join(terms)],
            "sparse",
            k,
            allowed,
            {"metric_type": "BM25", "params": {}},
            lambda d: abs(d) / (k1 + 1.0),
        )

    def bm25_search_with(
        self,
        terms: Sequence[str],
        k: int,
        *,
        allowed: np.ndarray | MilvusFilter | None,
        k1: float,
        b: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`bm25_search` when `k1`/`b` are the collection's own; Milvus fixes them when
        the sparse index is built, so other values are an `InvalidInputError`."""
        if (float(k1), float(b)) != (self._k1, self._b):
            raise InvalidInputError(
                f"the Milvus collection {self.target} scores BM25 with k1={self._k1:g}, "
                f"b={self._b:g}, fixed when it was built; search with those (tune with "
                f"--k1 {self._k1:g} --b {self._b:g}), or rebuild it with `shortlist index "
                f"... --k1 {k1:g} --b {b:g} --store ... --overwrite`"
            )
        return self.bm25_search(terms, k, allowed=allowed)

    def vector_search(
        self, vector: np.ndarray, k: int, *, allowed: np.ndarray | MilvusFilter | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if not self.has_dense:
            raise InvalidInputError(
                f"the index at {self.location} has no dense vectors (built with --no-dense); "
                "use mode='bm25' or rebuild it with dense vectors"
            )
        params: dict[str, Any] = {"metric_type": "IP", "params": {}}
        if self._manifest["store"].get("dense_index") == "hnsw":
            params["params"] = {"ef": max(min(k, MAX_TOPK), HNSW_EF_MIN)}
        query = np.asarray(vector, dtype=np.float32).tolist()
        return self._search([query], "dense", k, allowed, params, float)

    def filter_mask(self, filter: Mapping[str, Any]) -> MilvusFilter:  # type: ignore[override]
        """The filter as a Milvus expression (`filter_expression`); searches apply it."""
        return MilvusFilter(filter_expression(filter))

    def passages_at(self, rows: Sequence[int] | np.ndarray) -> list[Passage]:
        """Passages for `rows`: those the last searches returned come from memory (a row's
        passage never changes: re-adding a document writes new rows), the rest from
        Milvus in one request per 1,000 rows."""
        wanted = [int(r) for r in np.asarray(rows, dtype=np.int64).tolist()]
        with self._recent_lock:
            found = {r: self._recent[r] for r in wanted if r in self._recent}
        missing = sorted({r for r in wanted if r not in found})
        for chunk in _chunks(missing, _IN_CHUNK):
            for r in self._call("fetch passages", self._db.get, self._name, ids=chunk,
                                output_fields=_OUTPUT):
                found[int(r["row"])] = _passage(r)
        missing = [r for r in wanted if r not in found]
        if missing:
            raise InvalidInputError(
                f"rows {missing[:5]} are not in {self.target} (deleted since they were "
                "found); search again"
            )
        return [found[r] for r in wanted]

    def passages(self, ids: Sequence[str]) -> list[Passage | None]:
        by_id: dict[str, Passage] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), _IN_CHUNK):
            expr = f"passage_id in [{', '.join(string_literal(i) for i in chunk)}]"
            for r in self._scan(_OUTPUT, expr):
                by_id[r["passage_id"]] = _passage(r)
        return [by_id.get(i) for i in ids]

    def vectors_for(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if not self.has_dense:
            return np.zeros((len(ids), 0), dtype=np.float32), np.zeros(len(ids), dtype=bool)
        dim = int(self._manifest["dense"]["dim"])
        by_id: dict[str, np.ndarray] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), _IN_CHUNK):
            expr = f"passage_id in [{', '.join(string_literal(i) for i in chunk)}]"
            for r in self._scan(["passage_id", "dense"], expr):
                by_id[r["passage_id"]] = np.asarray(r["dense"], dtype=np.float32)
        mat = np.zeros((len(ids), dim), dtype=np.float32)
        found = np.zeros(len(ids), dtype=bool)
        for i, pid in enumerate(ids):
            vec = by_id.get(pid)
            if vec is not None:
                mat[i], found[i] = vec, True
        return mat, found

    # ---- Milvus calls -------------------------------------------------------------------------
    def _search(
        self,
        data: list[Any],
        field: str,
        k: int,
        allowed: np.ndarray | MilvusFilter | None,
        params: Mapping[str, Any],
        score: Callable[[float], float],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` rows and scores (`score` of Milvus's distance), ties in ascending row.

        Milvus breaks ties at the cut-off its own way, so this asks for more than `k` and
        asks again, deeper, while the k-th score equals the last one fetched."""
        if isinstance(allowed, np.ndarray):
            raise InvalidInputError(
                "a Milvus store takes filters as expressions; pass the result of its "
                "filter_mask(), not a row mask"
            )
        expr = allowed.expression if allowed is not None else ""
        k = min(k, MAX_TOPK)
        limit = min(k + _TIE_MARGIN, MAX_TOPK)
        while True:
            result = self._call(
                "search", self._db.search, self._name, data=data, anns_field=field,
                limit=limit, filter=expr, search_params=dict(params), output_fields=_OUTPUT,
            )
            self._remember([{**h["entity"], "row": h["row"]} for h in result[0]])
            scored = sorted(
                ((score(float(h["distance"])), int(h["row"])) for h in result[0]),
                key=lambda sr: (-sr[0], sr[1]),
            )
            complete = len(scored) < limit or limit == MAX_TOPK
            if complete or len(scored) <= k or scored[k - 1][0] > scored[-1][0]:
                break
            limit = min(limit * 4, MAX_TOPK)
        scored = scored[:k]
        rows = np.asarray([r for _, r in scored], dtype=np.int64)
        return rows, np.asarray([s for s, _ in scored], dtype=np.float32)

    def _remember(self, records: Sequence[Mapping[str, Any]]) -> None:
        with self._recent_lock:
            for r in records:
                self._recent[int(r["row"])] = _passage(r)
                self._recent.move_to_end(int(r["row"]))
            while len(self._recent) > RECENT_PASSAGES:
                self._recent.popitem(last=False)

    def _scan(self, fields: list[str], expr: str) -> Iterator[dict[str, Any]]:
        """Every passage matching `expr` (all of them for ""), `fields` only."""
        if expr:
            yield from self._call("query", self._db.query, self._name, filter=expr,
                                  output_fields=fields)
            return
        iterator = self._call("scan", self._db.query_iterator, self._name, batch_size=1000,
                              filter="", output_fields=fields)
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except ShortlistError:
            raise
        except Exception as exc:
            raise MilvusError(f"Milvus {what} on {self.target} failed: {exc}") from exc


# ---- helpers ----------------------------------------------------------------------------
def _connect(target: MilvusTarget) -> Any:
    pymilvus = require("pymilvus", "milvus", "Milvus as a store")
    if target.is_lite:
        require("milvus_lite", "milvus", "Milvus Lite (a local file) as a store")
        Path(target.uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        return pymilvus.MilvusClient(uri=target.uri, token=target.token or "")
    except Exception as exc:
        raise MilvusError(f"cannot connect to Milvus at {target.uri}: {exc}") from exc


def _identity_text(manifest: Mapping[str, Any]) -> str:
    """What the collection's `IDENTITY_PROPERTY` records, for `_check_collection`."""
    return json.dumps(
        {
            "shortlist_schema": SCHEMA_VERSION,
            "analyzer": manifest["analyzer"],
            "bm25": manifest["bm25"],
            "encoder": manifest["dense"]["identity"],
        },
        sort_keys=True,
    )


def _create_collection(client: Any, name: str, manifest: Mapping[str, Any]) -> None:
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("passage_id", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("title", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("batch", DataType.VARCHAR, max_length=64)
    # Already analyzed by shortlist: the tokenizer only splits on spaces.
    schema.add_field(
        "terms",
        DataType.VARCHAR,
        max_length=MAX_VARCHAR,
        enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["terms"],
            output_field_names=["sparse"],
        )
    )
    index_params = client.prepare_index_params()
    bm25 = manifest["bm25"]
    bm25_params = {"bm25_k1": float(bm25["k1"]), "bm25_b": float(bm25["b"])}
    index_params.add_index(
        "sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        # pymilvus sends these as top-level keys, which Milvus reads; Milvus Lite reads
        # only a JSON "params" key (else its defaults, k1=1.5), so both forms go.
        params={**bm25_params, "params": dict(bm25_params)},
    )
    dense = manifest["dense"]
    if dense["enabled"]:
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=int(dense["dim"]))
        if manifest["store"]["dense_index"] == "hnsw":
            index_params.add_index(
                "dense", index_type="HNSW", metric_type="IP", params=dict(HNSW_PARAMS)
            )
        else:
            index_params.add_index("dense", index_type="FLAT", metric_type="IP")
    client.create_collection(
        name,
        schema=schema,
        index_params=index_params,
        consistency_level="Strong",
        properties={IDENTITY_PROPERTY: _identity_text(manifest)},
    )


def _check_collection(
    client: Any, root: Path, target: MilvusTarget, manifest: Mapping[str, Any]
) -> None:
    described = client.describe_collection(target.collection)
    try:
        recorded = json.loads((described.get("properties") or {}).get(IDENTITY_PROPERTY, "null"))
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict) or "shortlist_schema" not in recorded:
        raise IndexCompatibilityError(
            f"collection {target.collection!r} at {target.uri} was not built by shortlist; "
            f"point {root} at another collection, or rebuild it with `shortlist index SOURCE "
            f"--index {root} --store '{target}' --overwrite`"
        )
    expected = json.loads(_identity_text(manifest))
    for key, what in (
        ("shortlist_schema", "schema version"),
        ("analyzer", "analyzer"),
        ("bm25", "BM25 parameters"),
        ("encoder", "encoder"),
    ):
        if recorded.get(key) != expected[key]:
            raise IndexCompatibilityError(
                f"collection {target.collection!r} at {target.uri} was built with {what} "
                f"{recorded.get(key)!r}, but the index folder {root} names "
                f"{expected[key]!r}; rebuild the collection with `shortlist index SOURCE "
                f"--index {root} --store '{target}' --overwrite`, or use the folder that "
                "was made with it"
            )


def _check_folder(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise InvalidInputError(f"{root} exists and is not a directory")
    if (root / POINTER).exists() and not overwrite:
        raise InvalidInputError(
            f"an index already exists at {root}; use `shortlist add` to extend it, "
            "or overwrite=True (--overwrite) to rebuild it"
        )
    others = [p.name for p in root.iterdir() if p.name != POINTER] if root.is_dir() else []
    if others and not overwrite:
        raise InvalidInputError(
            f"{root} is not empty; a Milvus-backed index folder holds only {POINTER}. "
            "Use a new or empty folder"
        )


def _unique(documents: Iterable[Document]) -> list[Document]:
    """`documents` as a list; an id given twice is an `InvalidInputError`."""
    docs: list[Document] = []
    seen: set[str] = set()
    for d in documents:
        if d.id in seen:
            raise InvalidInputError(f"document id {d.id!r} appears twice in the input")
        seen.add(d.id)
        docs.append(d)
    return docs


def _check_length(p: Passage, text: str) -> None:
    for what, value in (("id", p.id), ("doc_id", p.doc_id), ("text", text)):
        if len(value.encode("utf-8")) > MAX_VARCHAR:
            raise InvalidInputError(
                f"passage {p.id[:80]!r}: its {what} is longer than Milvus's {MAX_VARCHAR}-byte "
                "VARCHAR limit; chunk smaller (--chunk-size) or shorten the id"
            )


def _record(p: Passage, terms: str, vector: np.ndarray | None, token: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "passage_id": p.id,
        "doc_id": p.doc_id,
        "text": p.text,
        "title": p.title,
        "start": p.start,
        "end": p.end,
        "metadata": dict(p.metadata),
        "batch": token,
        "terms": terms,
    }
    if vector is not None:
        out["dense"] = vector.astype(np.float32).tolist()
    return out


def _passage(r: Mapping[str, Any]) -> Passage:
    return Passage(
        id=r["passage_id"],
        doc_id=r["doc_id"],
        text=r["text"],
        start=int(r["start"]),
        end=int(r["end"]),
        title=r["title"],
        metadata=r["metadata"] or {},
    )


def _document_batches(
    items: Sequence[T], size: int, doc_of: Callable[[T], str]
) -> Iterator[list[T]]:
    """Consecutive items in batches of about `size`, never splitting a document (the
    items of one document are consecutive, as chunking yields them)."""
    batch: list[T] = []
    for i, item in enumerate(items):
        batch.append(item)
        last_of_doc = i + 1 == len(items) or doc_of(items[i + 1]) != doc_of(item)
        if len(batch) >= size and last_of_doc:
            yield batch
            batch = []
    if batch:
        yield batch


def _ignore(_n: int) -> None:
    """A progress callback that reports nothing (the slice loop reports)."""


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

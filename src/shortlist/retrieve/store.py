"""What a first-stage retriever needs from storage: the `PassageStore` protocol.

Retrievers (`shortlist.retrieve.stages`) never see files, generations or segment
layouts; they read through this narrow interface, in the store's own numeric row ids.
`shortlist.store.Index` implements it over the local on-disk index; an external engine
(Milvus, Elasticsearch, ...) implements the same methods and runs the same stages and
the same contract test (`tests/retriever_contract.py`).

Rows are the store's integer passage ids: stable within one opened generation, and the
only ids fusion sees (so ties break in numeric order, never string order). Passage ids
(strings) appear only when rows become `Hit`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from shortlist.corpus.chunking import Chunker
from shortlist.retrieve.encoder import Encoder
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.types import Passage

Filter = Mapping[str, Any]
"""A metadata filter: `{field: value}` (equality) or `{field: [v1, v2]}` (membership);
all conditions must hold."""

Allowed = Any
"""What `PassageStore.filter_mask` returns and the searches take back as `allowed`: opaque
to the stages, which only pass it on. The local index uses a boolean mask over rows; an
external engine its own filter (Milvus: a boolean expression)."""


@runtime_checkable
class VectorSource(Protocol):
    """Stored passage vectors, looked up by passage id (what a bi-encoder reranker reuses).

    - `encoder_spec`/`encoder_identity`: the model that wrote the vectors (None without
      vectors); a reranker reuses them only when the identity equals its own encoder's;
    - `load_encoder()`: that model, loaded on first use (only when `encoder_spec` is set);
    - `vectors_for(ids)`: `(vectors, found)`, shape `(len(ids), dim)` and a boolean mask
      of the ids it holds (other rows are zeros);
    - `embed_query(text)`: a query's embedding by that model.
    """

    @property
    def encoder_spec(self) -> str | None: ...

    @property
    def encoder_identity(self) -> Mapping[str, Any] | None: ...

    def load_encoder(self) -> Encoder:
        """The store's encoder (a method, not a property: `isinstance` checks of this
        protocol must not load a model)."""
        ...

    def vectors_for(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...

    def embed_query(self, text: str) -> np.ndarray:
        """`text` embedded by the store's encoder (read-only float32, shape (dim,)).

        A store may keep its recent query embeddings, so that the dense first stage and a
        reranker bound to the same store embed a query once.
        """
        ...


@runtime_checkable
class PassageStore(VectorSource, Protocol):
    """Passages with BM25 postings and (optionally) dense vectors, addressed by row.

    Search methods return `(rows, scores)`: int64 rows and float32 scores, best first,
    ties in ascending row order, at most `k` of them, only rows allowed by `allowed`
    (what `filter_mask` returned, None for every live row) and never deleted rows.
    """

    @property
    def location(self) -> str:
        """Where the store lives (a path or a URL), for error messages."""
        ...

    @property
    def has_dense(self) -> bool: ...

    @property
    def hybrid(self) -> HybridConfig:
        """How this store's `hybrid` first stage fuses by default."""
        ...

    def analyze(self, text: str) -> list[str]:
        """The query's terms, analyzed exactly as the passages were when indexed."""
        ...

    def bm25_search(
        self, terms: Sequence[str], k: int, *, allowed: Allowed | None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def vector_search(
        self, vector: np.ndarray, k: int, *, allowed: Allowed | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest rows to an L2-normalised query vector (scores are cosines)."""
        ...

    def filter_mask(self, filter: Filter) -> Allowed:
        """The live rows whose metadata match `filter`, in the store's own form
        (`Allowed`: a boolean row mask for the local index)."""
        ...

    def passages_at(self, rows: Sequence[int] | np.ndarray) -> list[Passage]:
        """Passages for `rows`, in the given order."""
        ...


@runtime_checkable
class RescoresBM25(Protocol):
    """A store that can score BM25 with other k1/b than it was built with, at query time
    (from stored term frequencies and document lengths; no re-indexing).

    `bm25_search_with` returns what `bm25_search` of the same store built with `k1`/`b`
    would return.
    """

    def bm25_search_with(
        self,
        terms: Sequence[str],
        k: int,
        *,
        allowed: Allowed | None,
        k1: float,
        b: float,
    ) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class ChunkedStore(Protocol):
    """A store that knows how its passages were cut (the local `Index` does); a first stage
    that names a chunking (`chunk=...` in its spec) runs only on a store chunked so."""

    @property
    def chunker(self) -> Chunker: ...

"""Bi-encoder reranking: cosine between the query's and each passage's embedding.

The offline default second stage (all-MiniLM-L6-v2). Embedding passages is most of its
cost, and an index built with the same encoder already holds those vectors, so the
reranker asks a `VectorSource` for them first and only encodes what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.rerank.base import Candidate, build_ranking, calibrate, candidate_text
from shortlist.retrieve.encoder import Encoder, normalized_identity
from shortlist.types import Ranking


@runtime_checkable
class VectorSource(Protocol):
    """Something that stores passage vectors (an index), keyed by passage id.

    `encoder_identity` is the identity of the encoder that wrote the vectors;
    `vectors_for(ids)` returns `(vectors, found)`: an array of shape
    `(len(ids), dim)` and a boolean mask saying which rows are real (rows for ids
    it does not hold are ignored).
    """

    @property
    def encoder_identity(self) -> Mapping[str, Any] | None: ...

    def vectors_for(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


def _load_encoder(spec: str) -> Encoder:
    from shortlist.retrieve.encoders import load_encoder

    return load_encoder(spec)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.where(norms == 0.0, 1.0, norms), dtype=np.float32)


class BiEncoderReranker:
    """Rescore candidates by cosine similarity (raw in [-1, 1], calibrated `(cos + 1) / 2`).

    `model` is an encoder spec for `shortlist.retrieve.encoders.load_encoder`
    (`default`, `hashing[:DIM]`, `sentence-transformers:MODEL`, a path); `encoder`
    passes a ready `Encoder` instead. With a `vector_source`, candidates that carry an
    id (`Hit`, `Passage`, `Document`) reuse the stored vector, but only when the
    source's encoder identity equals this reranker's: vectors from another model are
    never mixed in.
    """

    def __init__(
        self,
        model: str = "default",
        *,
        encoder: Encoder | None = None,
        vector_source: VectorSource | None = None,
        name: str | None = None,
    ) -> None:
        self._model = model
        self._encoder = encoder
        self._source = vector_source
        self._name = name or (f"bi-encoder:{model}" if model != "default" else "bi-encoder")

    @property
    def name(self) -> str:
        return self._name

    @property
    def identity(self) -> str:
        """Pins the model for score caches: the encoder's identity, not just the spec."""
        return json.dumps({"bi-encoder": dict(self.encoder.identity)}, sort_keys=True)

    @property
    def encoder(self) -> Encoder:
        """The encoder, loaded on first use."""
        if self._encoder is None:
            self._encoder = _load_encoder(self._model)
        return self._encoder

    def with_vector_source(self, source: VectorSource | None) -> BiEncoderReranker:
        """A reranker sharing this one's encoder that reuses `source`'s stored vectors.

        When this reranker has not loaded its model yet and `source` (an index) was built
        with the same encoder spec, the index's encoder instance is shared instead of
        loading a second copy of the model (its identity is still checked on use).
        """
        encoder = self._encoder
        if encoder is None and source is not None:
            if getattr(source, "encoder_spec", None) == self._model:
                encoder = source.encoder  # type: ignore[attr-defined]
        return BiEncoderReranker(
            self._model, encoder=encoder or self.encoder, vector_source=source, name=self._name
        )

    def _stored(self, documents: Sequence[Candidate]) -> tuple[np.ndarray | None, np.ndarray]:
        """Stored vectors (or None) and the mask of candidates they cover."""
        found = np.zeros(len(documents), dtype=bool)
        source = self._source
        if source is None or normalized_identity(source.encoder_identity) != normalized_identity(
            self.encoder.identity
        ):
            return None, found
        positions = [i for i, c in enumerate(documents) if not isinstance(c, str)]
        if not positions:
            return None, found
        ids = [documents[i].id for i in positions]  # type: ignore[union-attr]
        vectors, mask = source.vectors_for(ids)
        vectors = np.asarray(vectors)
        mask = np.asarray(mask, dtype=bool)
        if vectors.shape != (len(ids), self.encoder.dim) or mask.shape != (len(ids),):
            raise InvalidInputError(
                f"vector source returned shape {vectors.shape} for {len(ids)} ids of an "
                f"encoder with dim {self.encoder.dim}; its vectors do not fit this encoder"
            )
        out = np.zeros((len(documents), self.encoder.dim), dtype=np.float32)
        idx = np.asarray(positions)
        out[idx[mask]] = vectors[mask]
        found[idx[mask]] = True
        return out, found

    def _passage_vectors(self, documents: Sequence[Candidate]) -> np.ndarray:
        stored, found = self._stored(documents)
        missing = [i for i in range(len(documents)) if not found[i]]
        out = (
            stored
            if stored is not None
            else np.zeros((len(documents), self.encoder.dim), dtype=np.float32)
        )
        if missing:
            out[missing] = self.encoder.encode([candidate_text(documents[i]) for i in missing])
        return _normalise(out)

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        start = time.perf_counter()
        if not documents:
            return build_ranking(query, documents, [], [], top_n, timings_ms={"rerank": 0.0})
        q = _normalise(self.encoder.encode([query]))[0]
        passages = self._passage_vectors(documents)
        raw = np.clip(passages @ q, -1.0, 1.0)
        elapsed = (time.perf_counter() - start) * 1000.0
        return build_ranking(
            query, documents, raw, calibrate(raw, "cosine"), top_n, timings_ms={"rerank": elapsed}
        )

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Cosine of each (query, text) pair; distinct queries and texts are encoded once."""
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        queries = list(dict.fromkeys(q for q, _ in pairs))
        qvec = _normalise(self.encoder.encode(queries))
        row = {q: i for i, q in enumerate(queries)}
        texts = list(dict.fromkeys(t for _, t in pairs))
        tvec = _normalise(self.encoder.encode(texts))
        text_row = {t: i for i, t in enumerate(texts)}
        tvec = tvec[[text_row[t] for _, t in pairs]]
        qmat = qvec[[row[q] for q, _ in pairs]]
        return np.clip(np.einsum("ij,ij->i", qmat, tvec).astype(np.float64), -1.0, 1.0)

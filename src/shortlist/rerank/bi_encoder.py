"""Bi-encoder reranking: cosine between the query's and each passage's embedding.

The offline default second stage (all-MiniLM-L6-v2). Embedding passages is most of its
cost, and an index built with the same encoder already holds those vectors, so a
reranker bound to a `VectorSource` (`bind_vectors`) reads them and encodes only what is
missing. It follows the scoring protocol of `shortlist.rerank.base`: the plan looks up
stored vectors and lists the texts still to embed (the query first), `score_units`
embeds texts (batchable across requests), `finish` takes cosines and calibrates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.rerank.base import (
    NO_OPTIONS,
    Candidate,
    RerankOptions,
    ScoringPlan,
    build_ranking,
    calibrate,
    candidate_text,
    rerank_planned,
)
from shortlist.retrieve.encoder import Encoder, normalized_identity
from shortlist.retrieve.store import VectorSource
from shortlist.types import Ranking
from shortlist.validate import check_candidates

__all__ = ["BiEncoderReranker", "VectorSource"]


@dataclass(frozen=True, slots=True)
class _Stored:
    """Plan context: vectors read from the source, which candidates they cover, and the
    query's vector when the source embedded it (else the query is the plan's first unit)."""

    vectors: np.ndarray | None
    found: np.ndarray
    query: np.ndarray | None = None


def _load_encoder(spec: str) -> Encoder:
    from shortlist.retrieve.encoders import load_encoder

    return load_encoder(spec)


def _estimate_tokens(text: str) -> int:
    # About 4 characters per token; only batch packing uses it.
    return len(text) // 4 + 2


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

    def bind_vectors(self, source: VectorSource) -> BiEncoderReranker:
        """A reranker sharing this one's encoder that reuses `source`'s stored vectors.

        When this reranker has not loaded its model yet and `source` (an index) was built
        with the same encoder spec, the index's encoder instance is shared instead of
        loading a second copy of the model (its identity is still checked on use).
        """
        encoder = self._encoder
        if encoder is None and source.encoder_spec is not None:
            if source.encoder_spec == self._model:
                encoder = source.load_encoder()
        return BiEncoderReranker(
            self._model, encoder=encoder or self.encoder, vector_source=source, name=self._name
        )

    def _matching_source(self) -> VectorSource | None:
        """The vector source, when its vectors come from this reranker's model."""
        source = self._source
        if source is None or normalized_identity(source.encoder_identity) != normalized_identity(
            self.encoder.identity
        ):
            return None
        return source

    def _stored(self, documents: Sequence[Candidate]) -> tuple[np.ndarray | None, np.ndarray]:
        """Stored vectors (or None) and the mask of candidates they cover."""
        found = np.zeros(len(documents), dtype=bool)
        source = self._matching_source()
        if source is None:
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

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        return rerank_planned(self, query, documents, top_n)

    # ---- the scoring protocol (shortlist.rerank.base.PlannedReranker) -------------
    @property
    def supported_options(self) -> frozenset[str]:
        return frozenset()

    def plan(
        self, query: str, documents: Sequence[Candidate], options: RerankOptions = NO_OPTIONS
    ) -> ScoringPlan:
        """Step 1: stored vectors for what the source holds; texts to embed for the rest.

        Units are texts: each candidate without a stored vector, preceded by the query
        (owner -1) unless the bound source embeds it (and keeps it from the first stage).
        """
        if not documents:
            return ScoringPlan(query, 0, context=_Stored(None, np.zeros(0, dtype=bool)))
        check_candidates(query, [candidate_text(d) for d in documents])
        stored, found = self._stored(documents)
        missing = [i for i in range(len(documents)) if not found[i]]
        source = self._matching_source()
        qvec = source.embed_query(query) if source is not None else None
        texts = tuple(candidate_text(documents[i]) for i in missing)
        owner = tuple(missing)
        if qvec is None:
            texts, owner = (query, *texts), (-1, *owner)
        return ScoringPlan(
            query=query,
            n_documents=len(documents),
            units=texts,
            tokens=tuple(_estimate_tokens(t) for t in texts),
            owner=owner,
            context=_Stored(stored, found, qvec),
        )

    def score_units(self, units: Sequence[str]) -> np.ndarray:
        """Step 2: the embedding of each text, shape (len(units), dim)."""
        if not units:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.asarray(self.encoder.encode(list(units)), dtype=np.float32)

    def finish(
        self,
        plan: ScoringPlan,
        scores: np.ndarray,
        documents: Sequence[Candidate],
        top_n: int | None,
    ) -> Ranking:
        """Step 3: cosine of each candidate's vector with the query's, calibrated."""
        if plan.n_documents == 0:
            return build_ranking(plan.query, documents, [], [], top_n)
        context: _Stored = plan.context
        passages = (
            context.vectors.copy()
            if context.vectors is not None
            else np.zeros((plan.n_documents, self.encoder.dim), dtype=np.float32)
        )
        if context.query is not None:
            q = _normalise(context.query[None, :])[0]
            embedded = scores
        else:
            q = _normalise(scores[:1])[0]
            embedded = scores[1:]
        missing = [i for i in plan.owner if i >= 0]
        if missing:
            passages[missing] = embedded
        raw = np.clip(_normalise(passages) @ q, -1.0, 1.0)
        return build_ranking(plan.query, documents, raw, calibrate(raw, "cosine"), top_n)

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

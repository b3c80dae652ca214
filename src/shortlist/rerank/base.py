"""The reranker contract shared by every second-stage model.

`Reranker.rerank(query, documents, top_n)` returns a new `Ranking`; it never mutates
its input and breaks ties stably by input position. Every hit carries:

- `index`: the candidate's position in `documents`;
- `raw_score`: the model's own output (a logit, a cosine, a provider's score);
- `calibrated_score`: a score in [0, 1] (see `calibrate`);
- `score`: what the ranking is sorted by (the calibrated score, so thresholds carry
  across models; the raw score is kept beside it);
- `first_stage_rank`/`first_stage_score` when the candidate was a first-stage `Hit`.

Rerankers that score (query, passage) pairs independently also implement
`PairScorer.score_pairs`, which lets the server batch pairs across requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from shortlist.types import Document, Hit, Passage, Ranking

Candidate = str | Document | Passage | Hit
"""What a reranker accepts: plain text, or a record whose `text` is scored."""


@runtime_checkable
class Reranker(Protocol):
    """Rescores candidates for one query."""

    @property
    def name(self) -> str:
        """The spec string this reranker was built from (e.g. `cross-encoder:/models/x`)."""
        ...

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking: ...


@runtime_checkable
class PairScorer(Protocol):
    """Scores (query, text) pairs; raw scores, one per pair, in input order."""

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


def candidate_text(c: Candidate) -> str:
    """The text a reranker scores for a candidate (title and text for documents)."""
    if isinstance(c, str):
        return c
    title = getattr(c, "title", "")
    return f"{title}\n{c.text}" if title else c.text


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def calibrate(raw: np.ndarray, kind: str) -> np.ndarray:
    """Map raw model scores to [0, 1].

    - `sigmoid`: single-logit cross-encoders (ms-marco-MiniLM, bge-reranker).
    - `softmax`: two-label models; `raw` has shape (n, 2) and the result is
      P(label 1) = softmax over the two logits.
    - `cosine`: bi-encoder cosine similarity in [-1, 1] -> (cos + 1) / 2.
    - `identity`: already in [0, 1] (hosted APIs return relevance scores), clipped.
    """
    raw = np.asarray(raw, dtype=np.float64)
    if kind == "sigmoid":
        return sigmoid(raw)
    if kind == "softmax":
        z = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e[:, 1] / e.sum(axis=1))
    if kind == "cosine":
        return np.clip((raw + 1.0) / 2.0, 0.0, 1.0)
    if kind == "identity":
        return np.clip(raw, 0.0, 1.0)
    raise ValueError(f"unknown calibration {kind!r}; expected sigmoid, softmax, cosine or identity")


def build_ranking(
    query: str,
    documents: Sequence[Candidate],
    raw_scores: Sequence[float] | np.ndarray,
    calibrated_scores: Sequence[float] | np.ndarray,
    top_n: int | None = None,
    windows: Sequence[int | None] | None = None,
    timings_ms: dict[str, float] | None = None,
) -> Ranking:
    """Turn per-candidate scores into a Ranking, sorted by calibrated score then raw score.

    Ties are broken by input position (stable). `top_n=None` keeps all; a `top_n`
    larger than the candidate count keeps all. NaN scores sort last.
    """
    n = len(documents)
    if top_n is not None and top_n < 0:
        raise ValueError("top_n must be >= 0")
    raw = [float(s) for s in raw_scores]
    cal = [float(s) for s in calibrated_scores]
    if len(raw) != n or len(cal) != n:
        raise ValueError(f"got {len(raw)} scores for {n} documents")

    def key(i: int) -> tuple[float, float, int]:
        c = cal[i] if not math.isnan(cal[i]) else -math.inf
        r = raw[i] if not math.isnan(raw[i]) else -math.inf
        return (-c, -r, i)

    order = sorted(range(n), key=key)
    if top_n is not None:
        order = order[:top_n]
    hits = []
    for rank, i in enumerate(order, start=1):
        c = documents[i]
        window = windows[i] if windows is not None else None
        if isinstance(c, Hit):
            hits.append(
                c.with_(
                    score=cal[i],
                    rank=rank,
                    index=i,
                    raw_score=raw[i],
                    calibrated_score=cal[i],
                    window=window,
                    first_stage_rank=c.first_stage_rank
                    if c.first_stage_rank is not None
                    else c.rank,
                    first_stage_score=(
                        c.first_stage_score if c.first_stage_score is not None else c.score
                    ),
                )
            )
        else:
            cid = str(i) if isinstance(c, str) else c.id
            doc_id = cid if isinstance(c, str | Document) else c.doc_id
            hits.append(
                Hit(
                    id=cid,
                    doc_id=doc_id,
                    text=candidate_text(c) if isinstance(c, str) else c.text,
                    metadata={} if isinstance(c, str) else c.metadata,
                    score=cal[i],
                    rank=rank,
                    index=i,
                    raw_score=raw[i],
                    calibrated_score=cal[i],
                    window=window,
                )
            )
    return Ranking(query=query, hits=tuple(hits), timings_ms=timings_ms or {})

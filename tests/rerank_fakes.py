"""Small deterministic fakes for reranker tests (no model, no download)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from shortlist.rerank.base import Candidate, build_ranking, calibrate, candidate_text
from shortlist.types import Ranking


class BagOfWordsEncoder:
    """Hashes lower-cased words into `dim` buckets and L2-normalises: texts sharing words
    have a positive cosine, texts sharing none have cosine 0 (barring bucket collisions)."""

    def __init__(self, dim: int = 256, name: str = "bow") -> None:
        self._dim = dim
        self._name = name
        self.encoded: list[str] = []  # every text encoded, to check vector reuse

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> dict[str, Any]:
        return {"name": self._name, "dim": self._dim}

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.sha1(word.encode()).digest()[:4], "little")
                out[row, h % self._dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


class OverlapScorer:
    """A PairScorer reranker: raw score = number of query words in the text; counts calls."""

    def __init__(self, name: str = "overlap") -> None:
        self._name = name
        self.scored: list[tuple[str, str]] = []

    @property
    def name(self) -> str:
        return self._name

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.scored.extend(pairs)
        out = []
        for q, t in pairs:
            words = set(re.findall(r"\w+", t.lower()))
            out.append(float(sum(w in words for w in re.findall(r"\w+", q.lower()))))
        return np.asarray(out, dtype=np.float64)

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        raw = self.score_pairs([(query, candidate_text(d)) for d in documents])
        return build_ranking(query, documents, raw, calibrate(raw - 1.0, "sigmoid"), top_n)

"""Fakes and a real-server harness for the serve tests.

`make_app()` is an app factory for `uvicorn --factory serve_fakes:make_app` in a
subprocess; its settings come from SERVE_FAKE_* environment variables (test-only).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shortlist.rerank.base import Candidate, build_ranking, calibrate, candidate_text
from shortlist.types import Hit, Ranking

_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


@dataclass
class OverlapScorer:
    """A deterministic PairScorer + Reranker: raw score = shared words - 0.1 * other words."""

    name: str = "fake:overlap"
    calibration: str = "sigmoid"
    delay_s: float = 0.0
    batches: list[int] = field(default_factory=list)
    fail_on: str | None = None

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.batches.append(len(pairs))
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for q, t in pairs:
            if self.fail_on is not None and self.fail_on in t:
                raise RuntimeError("boom")
            qw, tw = words(q), words(t)
            out.append(len(qw & tw) - 0.1 * len(tw - qw))
        return np.asarray(out, dtype=np.float64)

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        raw = self.score_pairs([(query, candidate_text(d)) for d in documents])
        return build_ranking(query, documents, raw, calibrate(raw, self.calibration), top_n)


@dataclass
class WindowedScorer(OverlapScorer):
    """An OverlapScorer with a window plan: documents are split into windows of N words."""

    name: str = "fake:windowed"
    window_words: int = 4

    def plan(self, query: str, texts: Sequence[str], max_tokens_per_doc: int | None = None):
        size = max_tokens_per_doc or self.window_words
        pairs: list[tuple[str, str]] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            toks = text.split() or [""]
            for start in range(0, len(toks), size):
                pairs.append((query, " ".join(toks[start : start + size])))
                owners.append(i)

        def aggregate(scores: np.ndarray) -> tuple[np.ndarray, list[int | None]]:
            best = np.full(len(texts), -np.inf)
            window: list[int | None] = [None] * len(texts)
            seen = [0] * len(texts)
            for s, i in zip(scores, owners, strict=True):
                if s > best[i]:
                    best[i], window[i] = s, seen[i]
                seen[i] += 1
            return best, window

        return pairs, aggregate


@dataclass
class ApiLikeReranker:
    """A reranker that is not a PairScorer (like a hosted API): reversed input order."""

    name: str = "fake:api"

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        n = len(documents)
        scores = np.linspace(0.1, 0.9, n) if n > 1 else np.asarray([0.5] * n)
        return build_ranking(query, documents, scores, scores, top_n)


@dataclass
class FakeIndex:
    """First stage over a fixed corpus: BM25-ish word overlap; `filter` matches metadata."""

    docs: dict[str, tuple[str, dict[str, Any]]]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def search(
        self, query: str, k: int = 10, mode: str = "bm25", filter: dict[str, Any] | None = None
    ) -> Ranking:
        self.calls.append({"query": query, "k": k, "mode": mode, "filter": filter})
        qw = words(query)
        scored = []
        for doc_id, (text, meta) in self.docs.items():
            if filter and any(meta.get(key) != v for key, v in filter.items()):
                continue
            # Favours short documents, unlike the reranker, so reranking reorders.
            scored.append((len(qw & words(text)) / (1 + len(words(text))) ** 2, doc_id, text, meta))
        scored.sort(key=lambda s: (-s[0], s[1]))
        hits = tuple(
            Hit(id=d, doc_id=d, text=t, metadata=m, score=s, rank=r)
            for r, (s, d, t, m) in enumerate(scored[:k], start=1)
        )
        return Ranking(query=query, hits=hits, timings_ms={"bm25": 0.5})


QUERY = "big cat in the garden"
DOCS = [
    "the cat sat on the mat",
    "a dog chased the cat around the big garden",
    "stock prices fell sharply",
    "garden cat",
    "the big garden has a cat",
]
"""A query and documents for /v2/rerank: `OverlapScorer` ranks them 4, 1, 3, 0, 2."""

CORPUS = {
    "d1": ("the cat sat on the mat", {"lang": "en"}),
    "d2": ("a dog chased the cat around the big garden all day long", {"lang": "en"}),
    "d3": ("cats and dogs are pets", {"lang": "en"}),
    "d4": ("le chat est sur le tapis", {"lang": "fr"}),
    "d5": ("the garden has a big cat and a small dog and a cat door", {"lang": "en"}),
}


def make_app() -> Any:
    """App factory for a uvicorn subprocess; configured by SERVE_FAKE_* variables."""
    from shortlist.serve.app import ServeConfig, create_app

    scorer = OverlapScorer(delay_s=float(os.environ.get("SERVE_FAKE_DELAY_S", "0")))
    config = ServeConfig(queue_size=int(os.environ.get("SERVE_FAKE_QUEUE", "64")))
    return create_app(config, {"overlap": scorer}, FakeIndex(dict(CORPUS)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve `app` with a real uvicorn server on a free loopback port; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)

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
from pathlib import Path
from typing import Any

import numpy as np

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
from shortlist.store.index import Index
from shortlist.types import Document, Ranking

_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


@dataclass
class OverlapScorer:
    """A deterministic planned reranker: raw score = shared words - 0.1 * other words.

    Follows the scoring protocol with one (query, text) unit per document, calibrated
    with a sigmoid; `batches` records the size of every scoring call.
    """

    name: str = "fake:overlap"
    delay_s: float = 0.0
    batches: list[int] = field(default_factory=list)
    fail_on: str | None = None

    @property
    def supported_options(self) -> frozenset[str]:
        return frozenset()

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

    def plan(
        self, query: str, documents: Sequence[Candidate], options: RerankOptions = NO_OPTIONS
    ) -> ScoringPlan:
        pairs = tuple((query, candidate_text(d)) for d in documents)
        return ScoringPlan(
            query, len(pairs), pairs, tuple(len(t) // 4 + 1 for _, t in pairs),
            tuple(range(len(pairs))),
        )

    def score_units(self, units: Sequence[tuple[str, str]]) -> np.ndarray:
        return self.score_pairs(units) if units else np.zeros(0)

    def finish(
        self, plan: ScoringPlan, scores: np.ndarray, documents: Sequence[Candidate],
        top_n: int | None,
    ) -> Ranking:
        return build_ranking(plan.query, documents, scores, calibrate(scores, "sigmoid"), top_n)

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        return rerank_planned(self, query, documents, top_n)


@dataclass
class WindowedScorer(OverlapScorer):
    """An OverlapScorer that windows documents into N words and keeps the best window.

    `max_tokens_per_doc` sets the window size (one word = one token here).
    """

    name: str = "fake:windowed"
    window_words: int = 4

    @property
    def supported_options(self) -> frozenset[str]:
        return frozenset({"max_tokens_per_doc"})

    def plan(
        self, query: str, documents: Sequence[Candidate], options: RerankOptions = NO_OPTIONS
    ) -> ScoringPlan:
        size = options.max_tokens_per_doc or self.window_words
        pairs: list[tuple[str, str]] = []
        owners: list[int] = []
        for i, d in enumerate(documents):
            toks = candidate_text(d).split() or [""]
            for start in range(0, len(toks), size):
                pairs.append((query, " ".join(toks[start : start + size])))
                owners.append(i)
        return ScoringPlan(query, len(documents), tuple(pairs), (1,) * len(pairs), tuple(owners))

    def finish(
        self, plan: ScoringPlan, scores: np.ndarray, documents: Sequence[Candidate],
        top_n: int | None,
    ) -> Ranking:
        best = np.full(plan.n_documents, -np.inf)
        window: list[int | None] = [None] * plan.n_documents
        seen = [0] * plan.n_documents
        for score, i in zip(scores, plan.owner, strict=True):
            if score > best[i]:
                best[i], window[i] = score, seen[i]
            seen[i] += 1
        return build_ranking(
            plan.query, documents, best, calibrate(best, "sigmoid"), top_n, windows=window
        )


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


def make_index(path: Path) -> Index:
    """A real index over `CORPUS` (hashing encoder: no model files)."""
    docs = [Document(doc_id, text, metadata=meta) for doc_id, (text, meta) in CORPUS.items()]
    return Index.create(path, docs, encoder="hashing:64")


def make_app() -> Any:
    """App factory for a uvicorn subprocess; configured by SERVE_FAKE_* variables."""
    from shortlist.serve.app import ServeConfig, create_app

    scorer = OverlapScorer(delay_s=float(os.environ.get("SERVE_FAKE_DELAY_S", "0")))
    config = ServeConfig(queue_size=int(os.environ.get("SERVE_FAKE_QUEUE", "64")))
    return create_app(config, {"overlap": scorer})


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

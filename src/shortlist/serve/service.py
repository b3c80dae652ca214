"""Reranking for the server: one `ModelSlot` per served reranker, batched when it can be.

How a request is scored (`ModelSlot.rerank`):

1. If the reranker has a `plan(query, texts, **options) -> (pairs, aggregate)` method, the
   server asks it for the (query, text) pairs to score, long-document windows included,
   and for `aggregate(raw_pair_scores) -> doc_raw_scores` (or `(doc_raw_scores, windows)`,
   `windows[i]` naming the window that decided document i), which folds pair scores back
   to one raw score per document (e.g. the best window's score, as Cohere does). `options`
   holds the request's `max_tokens_per_doc` (Cohere v2) / `max_chunks_per_doc` (Cohere v1)
   and is passed only for the keywords `plan` declares; options it does not declare are
   reported back in the response's `meta.warnings`, never silently dropped.
2. Else, if the reranker is a `PairScorer`, each document is one pair `(query, text)`:
   a reranker that windows long documents internally should provide `plan` so that the
   server batches its windows too (the lead wires the cross-encoder's window plan here).
3. The pairs go to the model's `DynamicBatcher`, which scores them in batches shared with
   other requests; the raw scores are calibrated with the reranker's `calibration`
   attribute (default `sigmoid`; see `shortlist.rerank.base.calibrate`) and turned into a
   `Ranking` by `build_ranking`, exactly as the reranker's own `rerank` would.
4. With batching off, a `PairScorer`'s pairs are planned the same way but scored per
   request, one `score_pairs` call at a time on a single model thread (two concurrent
   forward passes on the same cores only slow each other down). A reranker that is not
   a `PairScorer` (a hosted API) is called through `rerank(query, documents, top_n)` in
   a worker thread.

For `softmax` calibration `score_pairs` may return `(n, 2)` logits or the 1-D margin
(label-1 minus label-0 logit, as the cross-encoder does); either way the raw score kept per
document is that margin and the calibrated score is P(label 1).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from shortlist.errors import ShortlistError
from shortlist.rerank.base import (
    Candidate,
    PairScorer,
    Reranker,
    build_ranking,
    calibrate,
    candidate_text,
)
from shortlist.serve.batching import DynamicBatcher
from shortlist.types import Ranking

Pair = tuple[str, str]
Aggregate = Callable[[np.ndarray], Any]


@dataclass
class ModelSlot:
    """One served reranker, with its batcher (None when batching is off or impossible)."""

    reranker: Reranker
    batcher: DynamicBatcher | None = None
    _lane: ThreadPoolExecutor | None = field(default=None, repr=False)

    @property
    def batchable(self) -> bool:
        return isinstance(self.reranker, PairScorer)

    @property
    def calibration(self) -> str:
        return str(getattr(self.reranker, "calibration", "sigmoid"))

    async def start(self) -> None:
        if self.batcher is not None:
            await self.batcher.start()
        elif self.batchable:
            self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shortlist-model")

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()
        if self._lane is not None:
            self._lane.shutdown(wait=True)

    async def rerank(
        self,
        query: str,
        documents: Sequence[Candidate],
        top_n: int | None,
        options: dict[str, int | None] | None = None,
    ) -> tuple[Ranking, list[str]]:
        """Rerank `documents`; returns the ranking and warnings about ignored options.

        `options` with value None are not set by the request and are dropped.
        """
        given = {k: v for k, v in (options or {}).items() if v is not None}
        started = time.perf_counter()
        if not self.batchable:
            ranking = await run_in_threadpool(self.reranker.rerank, query, documents, top_n)
            return ranking, [_ignored(k) for k in given]

        texts = [candidate_text(d) for d in documents]
        pairs, aggregate, warnings = self._plan(query, texts, given)
        if self.batcher is not None:
            raw_pairs = await self.batcher.score(pairs)
        else:  # batching off: this request's pairs alone, one model call at a time
            scorer: Any = self.reranker
            loop = asyncio.get_running_loop()
            raw_pairs = np.asarray(
                await loop.run_in_executor(self._lane, scorer.score_pairs, pairs)
            )
        doc_raw, windows = _aggregated(aggregate(raw_pairs), len(documents))
        if doc_raw.ndim == 2:
            calibrated = calibrate(doc_raw, self.calibration)
            doc_raw = doc_raw[:, 1] - doc_raw[:, 0]
        elif self.calibration == "softmax":
            # A two-label model that already returns the label-1 minus label-0 margin:
            # softmax over (0, margin) is the sigmoid of the margin.
            calibrated = calibrate(doc_raw, "sigmoid")
        else:
            calibrated = calibrate(doc_raw, self.calibration)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        ranking = build_ranking(
            query,
            documents,
            doc_raw,
            calibrated,
            top_n=top_n,
            windows=windows,
            timings_ms={"rerank": elapsed_ms},
        )
        return ranking, warnings

    def _plan(
        self, query: str, texts: list[str], options: dict[str, int]
    ) -> tuple[list[Pair], Aggregate, list[str]]:
        plan = getattr(self.reranker, "plan", None)
        if plan is None:
            return [(query, t) for t in texts], _identity, [_ignored(k) for k in options]
        accepted = _keywords(plan)
        passed = {k: v for k, v in options.items() if k in accepted}
        warnings = [_ignored(k) for k in options if k not in accepted]
        pairs, aggregate = plan(query, texts, **passed)
        return list(pairs), aggregate, warnings


def _identity(scores: np.ndarray) -> np.ndarray:
    return scores


def _ignored(option: str) -> str:
    return f"{option} is not supported by this model and was ignored"


def _keywords(fn: Callable[..., Any]) -> set[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _aggregated(out: Any, n_docs: int) -> tuple[np.ndarray, list[int | None] | None]:
    windows: list[int | None] | None = None
    if isinstance(out, tuple):
        scores, raw_windows = out
        windows = list(raw_windows)
    else:
        scores = out
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 0 or scores.shape[0] != n_docs:
        raise ShortlistError(f"reranker plan returned {scores.shape} scores for {n_docs} documents")
    return scores, windows

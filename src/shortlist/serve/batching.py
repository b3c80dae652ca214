"""Dynamic batching of scoring units across concurrent requests.

A unit is what a reranker's scoring step takes (`PlannedReranker.score_units`): a
cross-encoder's tokenized window, a bi-encoder's text to embed, or a (query, text) pair
for a plain `PairScorer`. A request submits one *scoring job*: the units it needs
scored, with their token counts from the reranker's plan. One worker task
per model takes the oldest job, then keeps adding queued jobs (oldest first) while the
batch stays under a token budget and a pair count, waiting at most `max_wait_ms` for
more to arrive when the model is idle. It runs the scoring function on the whole
batch in a single dedicated thread (one batch at a time: the model is the bottleneck,
and two batches on the same CPU cores only fight each other), then resolves each job's
future with exactly its own slice of the scores. While a batch runs, new jobs queue up
and form the next batch, so under load batches fill without any waiting.

Token counts come with the job (the plan's exact counts); without them each unit is
counted by `count_tokens` (default: a (query, text) pair estimated by
`estimate_pair_tokens`, shortlist's one token estimate on both texts plus the special
tokens). Counts only decide packing; the scorer does its own length-sorted sub-batching.

With `active_requests` (how many requests are between arriving and finishing, each
submitting at most one job at a time), the batcher stops waiting as soon as every active
request's job is in the batch: a lone request is scored at once, not `max_wait_ms` later.

The queue is bounded in jobs: a full queue raises `QueueFullError` (HTTP 503 with
`Retry-After`) at once instead of letting latency grow without bound. `close()` stops
taking jobs and finishes every queued and running one before returning.

If a mixed batch fails, each of its jobs is retried alone, so one bad request cannot
fail the requests it happened to share a batch with.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shortlist.corpus.tokenizer import estimate_tokens
from shortlist.errors import ShortlistError

Pair = tuple[str, str]
ScoreUnits = Callable[[list[Any]], np.ndarray]
"""Scores a batch of units: one row per unit, in order."""


class QueueFullError(ShortlistError):
    """The scoring queue is full (or the server is shutting down); retry later."""

    http_status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


PAIR_SPECIAL_TOKENS = 3
"""[CLS] query [SEP] text [SEP]: the special tokens a cross-encoder adds to a pair."""


def estimate_pair_tokens(query: str, text: str) -> int:
    """The estimated tokens of one (query, text) pair: both texts plus the special tokens."""
    return estimate_tokens(query) + estimate_tokens(text) + PAIR_SPECIAL_TOKENS


def _pair_tokens(pair: Pair) -> int:
    return estimate_pair_tokens(*pair)


@dataclass
class _Job:
    pairs: Sequence[Any]
    tokens: int
    future: asyncio.Future[np.ndarray]
    enqueued: float


@dataclass
class BatcherStats:
    """Counters for metrics. `queue_depth` is jobs waiting, not counting the running batch."""

    queue_depth: int = 0
    batches: int = 0
    jobs: int = 0
    pairs: int = 0
    last_batch_pairs: int = 0
    last_batch_jobs: int = 0
    batch_pairs_history: list[int] = field(default_factory=list)


class DynamicBatcher:
    """Packs scoring jobs from concurrent requests into model batches.

    Use from one event loop: `await start()`, then `await score(units)` from any number
    of concurrent tasks, then `await close()`. Callbacks (`on_batch(pairs, jobs,
    seconds)`, `on_queue_wait(seconds)`) run on the event loop and must be cheap.
    """

    def __init__(
        self,
        score_units: ScoreUnits,
        *,
        max_batch_tokens: int = 16384,
        max_batch_pairs: int = 512,
        max_wait_ms: float = 5.0,
        queue_size: int = 256,
        count_tokens: Callable[[Any], int] | None = None,
        on_batch: Callable[[int, int, float], None] | None = None,
        on_queue_wait: Callable[[float], None] | None = None,
        history: int = 0,
        active_requests: Callable[[], int] | None = None,
    ) -> None:
        if max_batch_tokens < 1 or max_batch_pairs < 1 or queue_size < 1 or max_wait_ms < 0:
            raise ValueError("batch limits and queue size must be positive, max_wait_ms >= 0")
        self._score_units = score_units
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_pairs = max_batch_pairs
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self._count_tokens = count_tokens or _pair_tokens
        self._on_batch = on_batch
        self._on_queue_wait = on_queue_wait
        self._history = history
        self._active_requests = active_requests
        self._jobs: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self.stats = BatcherStats()

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done() and not self._closing

    @property
    def queue_depth(self) -> int:
        return len(self._jobs)

    async def start(self) -> None:
        if self._worker is not None:
            raise RuntimeError("batcher already started")
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shortlist-model")
        self._worker = asyncio.create_task(self._run(), name="shortlist-batcher")

    async def score(self, pairs: Sequence[Any], tokens: Sequence[int] | None = None) -> np.ndarray:
        """Rows for the units `pairs`, in order, scored in a batch shared with other requests.

        `tokens` are the units' token counts (else `count_tokens` per unit). Raises
        `QueueFullError` when the queue is full or the batcher is closing, and whatever
        the scoring function raised for this job.
        """
        if self._worker is None or self._wakeup is None:
            raise RuntimeError("batcher not started")
        if self._closing:
            raise QueueFullError("the server is shutting down", retry_after=5)
        if len(self._jobs) >= self.queue_size:
            raise QueueFullError(
                f"scoring queue is full ({self.queue_size} requests waiting; "
                "server limit --queue-size); retry later"
            )
        pairs = list(pairs)
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        total = sum(tokens) if tokens is not None else sum(map(self._count_tokens, pairs))
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(pairs, total, future, time.perf_counter()))
        self.stats.queue_depth = len(self._jobs)
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Stop accepting jobs and finish every queued and running one."""
        if self._worker is None:
            return
        self._closing = True
        assert self._wakeup is not None
        self._wakeup.set()
        await self._worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def _next_job(self, timeout: float | None) -> _Job | None:
        """The oldest job, waiting up to `timeout` seconds (forever when None)."""
        assert self._wakeup is not None
        while not self._jobs:
            if self._closing:
                return None
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                return None
        return self._jobs[0]

    def _nobody_else(self, jobs_in_batch: int) -> bool:
        """Whether every request that could still submit a job already has one in the batch
        (then waiting `max_wait_ms` for more only adds latency)."""
        return self._active_requests is not None and self._active_requests() <= jobs_in_batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next_job(None)
            if first is None:
                return  # closing and drained
            batch = [self._jobs.popleft()]
            tokens, n_pairs = first.tokens, len(first.pairs)
            deadline = loop.time() + self.max_wait_s
            while tokens < self.max_batch_tokens and n_pairs < self.max_batch_pairs:
                remaining = deadline - loop.time()
                nxt = self._jobs[0] if self._jobs else None
                if nxt is None:
                    if remaining <= 0 or self._closing or self._nobody_else(len(batch)):
                        break
                    nxt = await self._next_job(remaining)
                    if nxt is None:
                        break
                if (
                    tokens + nxt.tokens > self.max_batch_tokens
                    or n_pairs + len(nxt.pairs) > self.max_batch_pairs
                ):
                    break  # it starts the next batch
                batch.append(self._jobs.popleft())
                tokens += nxt.tokens
                n_pairs += len(nxt.pairs)
            self.stats.queue_depth = len(self._jobs)
            await self._execute(batch, n_pairs)

    async def _execute(self, batch: list[_Job], n_pairs: int) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        if self._on_queue_wait is not None:
            for job in batch:
                self._on_queue_wait(started - job.enqueued)
        pairs = [p for job in batch for p in job.pairs]
        try:
            scores = await loop.run_in_executor(self._executor, self._score, pairs)
        except Exception as exc:  # noqa: BLE001 - forwarded to the requests
            if len(batch) == 1:
                _resolve(batch[0].future, exc=exc)
            else:
                for job in batch:  # isolate the failing request
                    await self._execute([job], len(job.pairs))
            return
        seconds = time.perf_counter() - started
        offset = 0
        for job in batch:
            _resolve(job.future, result=scores[offset : offset + len(job.pairs)])
            offset += len(job.pairs)
        s = self.stats
        s.batches += 1
        s.jobs += len(batch)
        s.pairs += n_pairs
        s.last_batch_pairs, s.last_batch_jobs = n_pairs, len(batch)
        if self._history:
            s.batch_pairs_history.append(n_pairs)
            del s.batch_pairs_history[: -self._history]
        if self._on_batch is not None:
            self._on_batch(n_pairs, len(batch), seconds)

    def _score(self, pairs: list[Any]) -> np.ndarray:
        scores = np.asarray(self._score_units(pairs))
        if scores.ndim == 0 or scores.shape[0] != len(pairs):
            raise ShortlistError(f"reranker returned {scores.shape} scores for {len(pairs)} units")
        return scores


def _resolve(
    future: asyncio.Future[np.ndarray],
    *,
    result: np.ndarray | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the request was cancelled (client went away)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)

"""Reranking for the server: one `ModelSlot` per served reranker, batched when it can be.

The server never scores, aggregates or calibrates on its own. A request runs the
library's code (`shortlist.rerank.base.run_reranker`, or `Pipeline.run` for
`/v1/search`) in a worker thread, with the slot's `executor` plugged in for the one
step that may be shared across requests: scoring the planned units.

- A `PlannedReranker` (cross-encoder, bi-encoder, and each stage of a cascade) plans
  its units, the slot's `DynamicBatcher` for that stage scores them in batches shared
  with other requests (with the plan's token counts), and the reranker finishes
  (aggregates windows, calibrates, ranks) itself. So a served score is the library's.
- With batching off, the units are scored per request, one call at a time on a single
  model thread (two forward passes on the same cores only slow each other down).
- Any other reranker (a hosted API, `none`, a score cache) is called through
  `rerank(query, documents, top_n)` in the worker thread.

Request options (Cohere v2's `max_tokens_per_doc`, v1's `max_chunks_per_doc`) reach the
reranker's plan as `RerankOptions`; the ones it does not support
(`supported_options`) are reported back in `meta.warnings`, never silently dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from shortlist.rerank.base import (
    Candidate,
    Executor,
    PlannedReranker,
    Reranker,
    RerankOptions,
    ScoringPlan,
    flatten_stages,
    run_reranker,
    supported_options,
)
from shortlist.serve.batching import DynamicBatcher
from shortlist.types import Ranking

BatcherFactory = Callable[[PlannedReranker, Callable[[], int]], DynamicBatcher]
"""Makes the batcher of a planned stage; the second argument counts the slot's active
requests (`DynamicBatcher(active_requests=...)`)."""


@dataclass
class ModelSlot:
    """One served reranker: a batcher per planned stage (none when batching is off)."""

    reranker: Reranker
    batchers: Mapping[str, DynamicBatcher] = field(default_factory=dict)
    active: int = 0
    """Requests using this slot right now (read by the batchers; event-loop thread only)."""
    _lane: ThreadPoolExecutor | None = field(default=None, repr=False)

    @classmethod
    def build(cls, reranker: Reranker, make_batcher: BatcherFactory | None) -> ModelSlot:
        """A slot for `reranker`; `make_batcher` (None: batching off) makes one batcher
        per planned stage, keyed by the stage's name."""
        batchers: dict[str, DynamicBatcher] = {}
        slot = cls(reranker, batchers)
        if make_batcher is not None:
            for stage in flatten_stages(reranker):
                if isinstance(stage, PlannedReranker) and stage.name not in batchers:
                    batchers[stage.name] = make_batcher(stage, slot.active_requests)
        return slot

    def active_requests(self) -> int:
        return self.active

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Counts a request as active on this slot while it runs."""
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    @property
    def batcher(self) -> DynamicBatcher | None:
        """The first stage's batcher (None when batching is off or impossible)."""
        return next(iter(self.batchers.values()), None)

    @property
    def plans(self) -> bool:
        """Whether any stage follows the scoring protocol (its units can be batched)."""
        return any(isinstance(s, PlannedReranker) for s in flatten_stages(self.reranker))

    async def start(self) -> None:
        for batcher in self.batchers.values():
            await batcher.start()
        if not self.batchers and self.plans:
            self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shortlist-model")

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.close()
        if self._lane is not None:
            self._lane.shutdown(wait=True)

    def executor(self, loop: asyncio.AbstractEventLoop) -> Executor:
        """Step 2 of the scoring protocol for this slot, called from a worker thread:
        through the stage's batcher on `loop`, else on the slot's model thread."""

        def score(stage: PlannedReranker, plan: ScoringPlan) -> np.ndarray:
            batcher = self.batchers.get(stage.name)
            if batcher is not None:
                job = batcher.score(plan.units, plan.tokens)
                return asyncio.run_coroutine_threadsafe(job, loop).result()
            if self._lane is not None:
                return self._lane.submit(stage.score_units, plan.units).result()
            return stage.score_units(plan.units)

        return score

    async def rerank(
        self,
        query: str,
        documents: Sequence[Candidate],
        top_n: int | None,
        options: RerankOptions | None = None,
    ) -> tuple[Ranking, list[str]]:
        """Rerank `documents`; returns the ranking and warnings about ignored options."""
        options = options or RerankOptions()
        executor = self.executor(asyncio.get_running_loop())
        async with self.serving():
            ranking = await run_in_threadpool(
                lambda: run_reranker(
                    self.reranker, query, documents, top_n, options=options, executor=executor
                )
            )
        return ranking, self.warnings(options)

    def warnings(self, options: RerankOptions) -> list[str]:
        """One warning per request option the reranker does not support."""
        supported = supported_options(self.reranker)
        return [
            f"{name} is not supported by this model and was ignored"
            for name in options.given()
            if name not in supported
        ]

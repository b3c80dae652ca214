"""The reranker contract shared by every second-stage model.

`Reranker.rerank(query, documents, top_n)` returns a new `Ranking`; it never mutates
its input and breaks ties stably by input position. Every hit carries:

- `index`: the candidate's position in `documents`;
- `raw_score`: the model's own output (a logit, a cosine, a provider's score);
- `calibrated_score`: a score in [0, 1] (see `calibrate`);
- `score`: what the ranking is sorted by (the calibrated score, so thresholds carry
  across models; the raw score is kept beside it);
- `first_stage_rank`/`first_stage_score` when the candidate was a first-stage `Hit`.

One scoring protocol (`PlannedReranker`) for every reranker that scores candidates
with a local model, in three steps:

1. `plan(query, documents, options) -> ScoringPlan`: the units to score (a
   cross-encoder's tokenized windows after truncation, a bi-encoder's texts still to
   embed), their token counts and the candidate each belongs to;
2. `score_units(units) -> array`: one row per unit, independent of the other units,
   so an executor may batch units of many requests together (the server's batcher);
3. `finish(plan, scores, documents, top_n) -> Ranking`: aggregate unit scores per
   candidate (best window), calibrate, rank.

`rerank()` of such a reranker is `rerank_planned(self, ...)`: those three steps with the
local executor. The server runs the very same steps with its batcher as the executor
(`run_reranker(..., executor=...)`), so served and library scores cannot diverge.
A reranker made of rerankers (a cascade) is a `ComposedReranker`: it passes the
executor on to its stages. Other rerankers (hosted APIs, `none`) are called through
`rerank()`.

Capabilities are typed protocols, checked with `isinstance`, never by attribute name:
`ReusesIndexVectors` (binds to a store's vectors), `ReportsCost` (billed providers),
`PairScorer` (scores raw (query, text) pairs; what score caches wrap).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.retrieve.store import VectorSource
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


@dataclass(frozen=True, slots=True)
class RerankOptions:
    """Per-request options a reranker may honour (Cohere's API names them).

    `max_tokens_per_doc` (v2) keeps each document's first N tokens; `max_chunks_per_doc`
    (v1) keeps the part covered by its first N windows. None means not set.
    """

    max_tokens_per_doc: int | None = None
    max_chunks_per_doc: int | None = None

    def given(self) -> tuple[str, ...]:
        """Names of the options that are set."""
        values = {
            "max_tokens_per_doc": self.max_tokens_per_doc,
            "max_chunks_per_doc": self.max_chunks_per_doc,
        }
        return tuple(name for name, value in values.items() if value is not None)

    def check_window_limits(self) -> None:
        """Raise `InvalidInputError` unless each option that is set is >= 1."""
        for option, value in (
            ("max_tokens_per_doc", self.max_tokens_per_doc),
            ("max_chunks_per_doc", self.max_chunks_per_doc),
        ):
            if value is not None and value < 1:
                raise InvalidInputError(f"{option} must be >= 1, got {value}")


NO_OPTIONS = RerankOptions()


@dataclass(frozen=True, slots=True)
class ScoringPlan:
    """Step 1's output: what to score for one query and how to fold it back.

    - `units`: what `score_units` receives (reranker-specific, e.g. token windows);
    - `tokens[u]`: unit u's token count (batch packing; an estimate where no tokenizer);
    - `owner[u]`: the candidate unit u belongs to (-1 for a unit shared by all, such as
      a bi-encoder's query);
    - `context`: reranker-private data step 3 needs (e.g. vectors found in the index).
    """

    query: str
    n_documents: int
    units: tuple[Any, ...] = ()
    tokens: tuple[int, ...] = ()
    owner: tuple[int, ...] = ()
    context: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not len(self.units) == len(self.tokens) == len(self.owner):
            raise ValueError(
                f"a plan needs one token count and one owner per unit: {len(self.units)} "
                f"units, {len(self.tokens)} token counts, {len(self.owner)} owners"
            )


@runtime_checkable
class PlannedReranker(Reranker, Protocol):
    """A reranker that scores with the three-step protocol (module docstring)."""

    @property
    def supported_options(self) -> frozenset[str]:
        """The `RerankOptions` fields this reranker honours."""
        ...

    def plan(
        self, query: str, documents: Sequence[Candidate], options: RerankOptions = NO_OPTIONS
    ) -> ScoringPlan: ...

    def score_units(self, units: Sequence[Any]) -> np.ndarray:
        """One row per unit, in order; a unit's row never depends on the other units."""
        ...

    def finish(
        self,
        plan: ScoringPlan,
        scores: np.ndarray,
        documents: Sequence[Candidate],
        top_n: int | None,
    ) -> Ranking: ...


Executor = Callable[[PlannedReranker, ScoringPlan], np.ndarray]
"""Runs step 2 for a plan of a (stage) reranker: in-process, or through a batcher."""


def local_executor(reranker: PlannedReranker, plan: ScoringPlan) -> np.ndarray:
    """Score the plan's units in this thread, now."""
    return reranker.score_units(plan.units)


@runtime_checkable
class ComposedReranker(Reranker, Protocol):
    """A reranker made of reranker stages (a cascade), run with one executor."""

    @property
    def stages(self) -> tuple[Reranker, ...]: ...

    @property
    def supported_options(self) -> frozenset[str]: ...

    def rerank_with(
        self,
        query: str,
        documents: Sequence[Candidate],
        top_n: int | None,
        *,
        executor: Executor,
        options: RerankOptions,
    ) -> Ranking: ...


@runtime_checkable
class ReusesIndexVectors(Protocol):
    """Can read candidates' stored vectors instead of re-encoding them (a bi-encoder)."""

    def bind_vectors(self, source: VectorSource) -> Reranker:
        """A reranker like this one that reuses `source`'s vectors where they fit."""
        ...


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """What reranking one query would be billed, in the provider's own units.

    - `requests`: HTTP requests sent (after splitting to the provider's limits);
    - `search_units`: Cohere's billing unit (0 for providers that bill otherwise);
    - `tokens`: estimated billed tokens for token-billed providers (Voyage, Jina, a
      listwise LLM), 0 for the others;
    - `usd`: the money, when the reranker knows its own prices (a listwise LLM given
      prices in its spec); None otherwise.

    Multiply by a price table to get money (unless `usd` is given).
    """

    requests: int
    search_units: int = 0
    tokens: int = 0
    usd: float | None = None


@runtime_checkable
class ReportsCost(Protocol):
    """A billed reranker (hosted API) that can say what a call would cost, without calling."""

    def cost_units(self, query: str, documents: Sequence[Candidate]) -> CostEstimate: ...


@runtime_checkable
class Closeable(Protocol):
    """Holds something to release when done (a hosted reranker's connection pool)."""

    def close(self) -> None: ...


def close_reranker(reranker: Reranker) -> None:
    """Release what `reranker` (or any stage of it) holds; a no-op for the others."""
    for stage in flatten_stages(reranker):
        if isinstance(stage, Closeable):
            stage.close()


def bind_to_store(reranker: Reranker, source: VectorSource) -> Reranker:
    """`reranker` bound to `source`'s stored vectors when it can reuse them, else itself."""
    if isinstance(reranker, ReusesIndexVectors):
        return reranker.bind_vectors(source)
    return reranker


def supported_options(reranker: Reranker) -> frozenset[str]:
    """The request options `reranker` honours (none for rerankers outside the protocol)."""
    if isinstance(reranker, PlannedReranker | ComposedReranker):
        return reranker.supported_options
    return frozenset()


def rerank_planned(
    reranker: PlannedReranker,
    query: str,
    documents: Sequence[Candidate],
    top_n: int | None = None,
    *,
    options: RerankOptions = NO_OPTIONS,
    executor: Executor = local_executor,
) -> Ranking:
    """The three steps: plan, score (through `executor`), finish. Timing key `rerank`."""
    if top_n is not None and top_n < 0:
        raise InvalidInputError("top_n must be >= 0")
    started = time.perf_counter()
    plan = reranker.plan(query, documents, options)
    scores = np.asarray(executor(reranker, plan)) if plan.units else np.zeros(0)
    if scores.shape[:1] != (len(plan.units),):
        raise InvalidInputError(
            f"{reranker.name} scored {scores.shape[:1]} rows for {len(plan.units)} units"
        )
    ranking = reranker.finish(plan, scores, documents, top_n)
    return ranking.with_timings(rerank=(time.perf_counter() - started) * 1000.0)


def run_reranker(
    reranker: Reranker,
    query: str,
    documents: Sequence[Candidate],
    top_n: int | None = None,
    *,
    options: RerankOptions = NO_OPTIONS,
    executor: Executor = local_executor,
) -> Ranking:
    """Rerank through the protocol the reranker implements, with `executor` for step 2.

    Planned rerankers run `rerank_planned`, composed ones pass the executor to their
    stages, any other reranker is called as `rerank(query, documents, top_n)` (it
    ignores `options`: see `supported_options`).
    """
    if isinstance(reranker, PlannedReranker):
        return rerank_planned(
            reranker, query, documents, top_n, options=options, executor=executor
        )
    if isinstance(reranker, ComposedReranker):
        return reranker.rerank_with(query, documents, top_n, executor=executor, options=options)
    return reranker.rerank(query, documents, top_n)


def flatten_stages(reranker: Reranker) -> tuple[Reranker, ...]:
    """The leaf rerankers of `reranker`, first stage first (itself when not composed)."""
    if isinstance(reranker, ComposedReranker):
        return tuple(leaf for stage in reranker.stages for leaf in flatten_stages(stage))
    return (reranker,)


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

"""What the windowed local rerankers share (cross-encoder, LLM reranker, ColBERT).

A document longer than the model's window is scored as overlapping windows, and its
score is an aggregate of its windows' scores (`AGGREGATES`); identical windows are scored
once (`distinct_units`); batches are cut by a token budget (`default_batch_tokens`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.rerank.base import Candidate, ScoringPlan, build_ranking
from shortlist.runtime.models import on_cpu
from shortlist.types import Ranking

AGGREGATES = ("max", "mean", "first")
"""How a long document's window scores become its score."""



# Measured with benchmarks/rerank_latency.py (MiniLM-L6 shape, 50 pairs of ~220 tokens,
# 2 threads, docs/RESULTS.md): on CPU, batches of 2k padded tokens ran 1.2-1.3x faster
# than 8k ones for every backend, since a batch's activations then stay in cache.
# Accelerators want big batches to fill the device.
CPU_BATCH_TOKENS = 2048
GPU_BATCH_TOKENS = 32768


def default_batch_tokens(device: str | None) -> int:
    """`CPU_BATCH_TOKENS` on the CPU (`device` None or "cpu..."), else `GPU_BATCH_TOKENS`."""
    return CPU_BATCH_TOKENS if on_cpu(device) else GPU_BATCH_TOKENS


def check_model_options(aggregate: str, num_threads: int | None) -> None:
    """The constructor options every windowed local reranker takes: `aggregate` one of
    `AGGREGATES`, `num_threads` None or >= 1. Raises `InvalidInputError` otherwise."""
    if aggregate not in AGGREGATES:
        raise InvalidInputError(
            f"unknown aggregate {aggregate!r}; choose one of: {', '.join(AGGREGATES)}"
        )
    if num_threads is not None and num_threads < 1:
        raise InvalidInputError("num_threads must be >= 1")


Unit = TypeVar("Unit")


def distinct_units(
    units: Sequence[Unit], key: Callable[[Unit], Hashable]
) -> tuple[list[Unit], np.ndarray]:
    """The distinct units (first occurrences, in order) and each unit's index among them.

    Identical windows (a document repeated in a request, or across the requests a batcher
    merged) are then run once and share one score: no wasted forward passes, and equal
    inputs tie exactly, whatever row of a multi-threaded matmul they landed in.
    """
    slot_of: dict[Hashable, int] = {}
    distinct: list[Unit] = []
    inverse = np.empty(len(units), dtype=np.int64)
    for i, unit in enumerate(units):
        slot = slot_of.setdefault(key(unit), len(distinct))
        if slot == len(distinct):
            distinct.append(unit)
        inverse[i] = slot
    return distinct, inverse


def rank_windows(
    plan: ScoringPlan,
    scores: np.ndarray,
    documents: Sequence[Candidate],
    top_n: int | None,
    aggregate: str,
    calibrate: Callable[[np.ndarray], np.ndarray],
) -> Ranking:
    """Step 3 of a windowed reranker: each candidate's window scores aggregated, the
    aggregate calibrated, the candidates ranked (the deciding window kept on each hit)."""
    owner = np.asarray(plan.owner, dtype=np.int64)
    raw, windows = aggregate_windows(
        np.asarray(scores, dtype=np.float64), owner, plan.n_documents, aggregate
    )
    return build_ranking(plan.query, documents, raw, calibrate(raw), top_n, windows=windows)


def aggregate_windows(
    window_scores: np.ndarray, owner: np.ndarray, n: int, how: str
) -> tuple[np.ndarray, list[int | None]]:
    """Per-pair scores from per-window scores, and the deciding window of split pairs.

    `owner[w]` is the pair of window `w`; a pair's windows are consecutive and in order.
    """
    scores = np.zeros(n, dtype=np.float64)
    windows: list[int | None] = [None] * n
    starts = np.searchsorted(owner, np.arange(n + 1))
    for i in range(n):
        s = window_scores[starts[i] : starts[i + 1]]
        if how == "max":
            best = int(np.argmax(s))
            scores[i], deciding = s[best], best
        elif how == "mean":
            scores[i], deciding = float(s.mean()), None
        else:
            scores[i], deciding = s[0], 0
        if len(s) > 1:
            windows[i] = deciding
    return scores, windows

"""Many queries through one pipeline: in this process, or spread over a Ray cluster.

    job = BatchJob(index_dir="my-index", pipeline="hybrid+cross-encoder", k=100, top_n=10)
    outcomes = rank_queries(job, queries)                          # here
    outcomes = rank_queries(job, queries, ray=RayOptions())        # local Ray
    outcomes = rank_queries(job, queries, ray=RayOptions("ray://head:10001"))

A `BatchJob` holds everything a worker needs to rebuild the pipeline by itself: the index
folder (a local index present at that path on every node, or a folder that points at a
shared Milvus collection), the pipeline spec, K, top N and the thread count.
`QueryWorker` opens the index and loads the reranker once, then ranks batches of queries.
On Ray it is the class of a Ray Data `map_batches` actor pool, so each actor loads the
model once and keeps it. Both paths run the same `QueryWorker.rank`, which is also what
the evaluation harness runs per query (`rank_candidates`), so the outcomes are equal;
only the timings differ. Results are bit-identical when both sides compute with the
same number of threads (BLAS reductions may otherwise round differently).

Nothing here imports `ray` unless `rank_queries` is given `RayOptions`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from shortlist._optional import require
from shortlist.errors import InvalidInputError, ShortlistError
from shortlist.rerank.base import ReportsCost, Reranker
from shortlist.types import Hit, Ranking

if TYPE_CHECKING:
    from shortlist.pipeline import Pipeline


def doc_run(hits: Sequence[Hit]) -> dict[str, float]:
    """Passage hits to a document run: a document scores its best passage (MaxP), with a
    rank-derived score, so ties and score scales never reorder what the stage ranked."""
    out: dict[str, float] = {}
    n = len(hits)
    for i, h in enumerate(hits):
        score = float(n - i)
        if h.doc_id not in out:
            out[h.doc_id] = score
    return out


def best_passage_scores(hits: Sequence[Hit]) -> dict[str, float]:
    """Passage hits to a document run with the hits' own scores (each document's best)."""
    out: dict[str, float] = {}
    for h in hits:
        out.setdefault(h.doc_id, float(h.score))
    return out


@dataclass(frozen=True)
class QueryOutcome:
    """One query through one configuration.

    `first` and `final` are document runs (doc id -> score) of the candidates and of the
    reranked list (rank-derived scores, `doc_run`); `scores` is the reranked list with its
    own scores (`best_passage_scores`). `units` are the reranker's cost units (billed
    providers only; `usd` when the reranker prices itself). `stats` are the reranker's
    counters for this query (`Ranking.stats`, e.g. a listwise reranker's repairs).
    `retrieve_ms`/`rerank_ms` are timings, the only fields that differ between runs.
    """

    qid: str
    first: dict[str, float]
    final: dict[str, float]
    scores: dict[str, float]
    units: dict[str, float] = field(default_factory=dict)
    retrieve_ms: float = 0.0
    rerank_ms: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> QueryOutcome:
        return cls(**json.loads(text))


def rank_candidates(
    pipeline: Pipeline,
    qid: str,
    text: str,
    first: Ranking,
    k: int,
    *,
    ignore_identical_ids: bool = False,
    top_n: int | None = None,
) -> QueryOutcome:
    """Rerank the top `k` of a first-stage ranking and keep the `top_n` (None: all).

    With `ignore_identical_ids` (doc-to-doc tasks) the query's own document is dropped
    before reranking, as BEIR does for ArguAna and Quora."""
    candidates = first.top(k)
    if ignore_identical_ids:
        kept = tuple(h for h in candidates.hits if h.doc_id != qid)
        candidates = Ranking(text, kept, candidates.timings_ms)
    final = pipeline.rerank(text, candidates, top_n=top_n)
    units: dict[str, float] = {}
    reranker = pipeline.reranker
    if isinstance(reranker, ReportsCost) and len(candidates):
        est = reranker.cost_units(text, [h.text for h in candidates.hits])
        for unit, v in (
            ("searches", est.search_units),
            ("tokens", est.tokens),
            ("requests", est.requests),
        ):
            units[unit] = units.get(unit, 0.0) + float(v)
        if est.usd is not None:  # the reranker knows its own prices
            units["usd"] = units.get("usd", 0.0) + est.usd
    return QueryOutcome(
        qid,
        doc_run(candidates.hits),
        doc_run(final.hits),
        best_passage_scores(final.hits),
        units,
        first.timings_ms["retrieve"],
        final.timings_ms.get("rerank", 0.0),
        dict(final.stats),
    )


@dataclass(frozen=True)
class BatchJob:
    """What every worker rebuilds: the index at `index_dir`, the pipeline `pipeline`
    (`FIRST_STAGE[+RERANKER_SPEC]`), the first stage's depth `first_k` (default `k`),
    K candidates reranked, `top_n` kept (None: all K), `threads` per worker."""

    index_dir: str
    pipeline: str
    k: int
    top_n: int | None = None
    first_k: int | None = None
    threads: int | None = None
    ignore_identical_ids: bool = False

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InvalidInputError(f"k must be >= 1, got {self.k}")
        if self.first_k is not None and self.first_k < self.k:
            raise InvalidInputError(f"first_k ({self.first_k}) must be >= k ({self.k})")


def _load_reranker(spec: str, threads: int | None) -> Reranker:
    from shortlist.rerank.registry import REGISTRY, load_reranker

    kind = REGISTRY.get(spec.strip().partition(":")[0])
    if threads is not None and kind is not None and "num_threads" in kind.options:
        return load_reranker(spec, num_threads=threads)
    return load_reranker(spec)


class QueryWorker:
    """Opens `job`'s index and builds its pipeline once; ranks queries with it.

    Called with a Ray Data batch (`{"qid": [...], "text": [...]}`), it returns
    `{"outcome": [QueryOutcome.to_json(), ...]}`.
    """

    def __init__(
        self, job: BatchJob, load_reranker: Callable[[str], Reranker] | None = None
    ) -> None:
        from shortlist.pipeline import Pipeline, parse_pipeline
        from shortlist.retrieve.stages import first_stage
        from shortlist.store.index import Index

        self.job = job
        self.index = Index.open(job.index_dir, num_threads=job.threads)
        loader = load_reranker or (lambda spec: _load_reranker(spec, job.threads))
        self.pipeline = Pipeline.from_spec(
            job.pipeline, self.index, k=job.k, top_n=None, load_reranker=loader
        )
        self.retriever = first_stage(self.index, parse_pipeline(job.pipeline).first_stage)
        self._warm = False

    def rank(self, qid: str, text: str) -> QueryOutcome:
        first = self.retriever.run(text, k=self.job.first_k or self.job.k)
        return rank_candidates(
            self.pipeline,
            qid,
            text,
            first,
            self.job.k,
            ignore_identical_ids=self.job.ignore_identical_ids,
            top_n=self.job.top_n,
        )

    def rank_all(self, queries: Mapping[str, str]) -> list[QueryOutcome]:
        billed = isinstance(self.pipeline.reranker, ReportsCost)
        if queries and not self._warm and not billed:
            # Untimed warm-up: loading models must not be charged to the first query (a
            # hosted reranker is not warmed up: that would be a paid call).
            self.rank(*next(iter(queries.items())))
        self._warm = True
        out = []
        for qid, text in queries.items():
            self.index.forget_queries()  # each query pays its own embedding
            out.append(self.rank(qid, text))
        return out

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[str]]:
        queries = {str(q): str(t) for q, t in zip(batch["qid"], batch["text"], strict=True)}
        return {"outcome": [o.to_json() for o in self.rank_all(queries)]}

    def close(self) -> None:
        self.index.close()


class _ActorWorker(QueryWorker):
    """A `QueryWorker` in a Ray actor: its own process, so this is the edge where the
    job's thread count is applied process-wide (`shortlist.threads.apply_threads`)."""

    def __init__(self, job: BatchJob) -> None:
        from shortlist.threads import apply_threads

        if job.threads is not None:
            apply_threads(job.threads)
        super().__init__(job)


class BatchError(ShortlistError):
    """A batch run failed for a reason that is not a shortlist error (Ray itself)."""


def shortlist_cause(exc: BaseException) -> ShortlistError | None:
    """The `ShortlistError` behind `exc` (Ray wraps what an actor raised in its own
    exceptions, as `__cause__` or `.cause`), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ShortlistError):
            return current
        seen.add(id(current))
        wrapped = getattr(current, "cause", None)
        current = (
            wrapped if isinstance(wrapped, BaseException)
            else current.__cause__ or current.__context__
        )
    return None


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run on Ray.

    `address`: None starts a private local Ray on 127.0.0.1 (no dashboard) for the call
    and shuts it down after; `"auto"` or `"ray://host:10001"` joins a running cluster.
    `actors`: the actor pool's size (each holds one copy of the model); `cpus_per_actor`;
    `batch_size`: queries per batch handed to an actor.
    """

    address: str | None = None
    actors: int = 2
    cpus_per_actor: float = 1.0
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.actors < 1 or self.batch_size < 1 or self.cpus_per_actor <= 0:
            raise InvalidInputError(
                "Ray options: actors and batch size must be >= 1 and CPUs per actor > 0"
            )


def local_ray_settings(num_cpus: int) -> dict[str, Any]:
    """`ray.init` arguments for a private Ray that listens on loopback only: the node's
    address is 127.0.0.1 (so GCS, raylet and object manager bind there), no dashboard,
    and worker logs are not streamed to this process."""
    return {
        "num_cpus": num_cpus,
        "include_dashboard": False,
        "_node_ip_address": "127.0.0.1",
        "log_to_driver": False,
        "configure_logging": False,
    }


def rank_queries(
    job: BatchJob,
    queries: Mapping[str, str],
    *,
    ray: RayOptions | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> list[QueryOutcome]:
    """Every query of `queries` (id -> text) through `job`, in the order given.

    Without `ray`, one `QueryWorker` in this process; with it, Ray Data's `map_batches`
    over an actor pool of `QueryWorker`s (see `RayOptions`)."""
    if ray is None:
        worker = QueryWorker(job)
        try:
            return worker.rank_all(queries)
        finally:
            worker.close()
    outcomes = {o.qid: o for o in _rank_on_ray(job, queries, ray, progress)}
    return [outcomes[q] for q in queries]


def _rank_on_ray(
    job: BatchJob,
    queries: Mapping[str, str],
    options: RayOptions,
    progress: Callable[[str], None],
) -> list[QueryOutcome]:
    ray = require("ray", "ray", "--ray (Ray Data batch runs)")
    require("ray.data", "ray", "--ray (Ray Data batch runs)")
    with ray_session(options):
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        progress(f"ranking {len(queries)} queries on Ray with {options.actors} actors")
        items = [{"qid": q, "text": t} for q, t in queries.items()]
        ds = ray.data.from_items(items).map_batches(
            _ActorWorker,
            fn_constructor_args=(job,),
            batch_size=options.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=options.actors),
            num_cpus=options.cpus_per_actor,
        )
        try:
            rows = ds.take_all()
        except Exception as exc:
            cause = shortlist_cause(exc)
            if cause is not None:  # e.g. an actor could not load the model: say why
                raise cause from None
            raise BatchError(f"the Ray job failed: {exc}") from exc
    return [QueryOutcome.from_json(str(r["outcome"])) for r in rows]


@contextmanager
def ray_session(options: RayOptions) -> Iterator[None]:
    """Ray for the duration of the block: joins `options.address`, or starts a private
    local Ray (`local_ray_settings`) and shuts it down at the end. Calls of `rank_queries`
    inside share it (one start instead of one per call). Already connected: left as is.

    A private local Ray listens on loopback only when `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`
    was in the environment before `ray` was imported (Ray otherwise replaces 127.0.0.1 by
    the machine's address); the command line sets it at its edge (`--ray` with no address).
    """
    ray = require("ray", "ray", "--ray (Ray Data batch runs)")
    if ray.is_initialized():
        yield
        return
    if options.address is None:
        cpus = max(1, math.ceil(options.actors * options.cpus_per_actor))
        ray.init(**local_ray_settings(cpus))
    else:
        ray.init(address=options.address, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()

"""A pipeline: a first stage, an optional reranker, a cutoff, composed and run as one.

    index = Index.open("my-index")
    pipeline = Pipeline(first_stage(index, "hybrid"), load_reranker("bi-encoder"), k=50, top_n=10)
    pipeline = Pipeline.from_spec("hybrid+bi-encoder", index, k=50, top_n=10)   # the same
    print(pipeline)            # hybrid+bi-encoder
    pipeline.describe()        # 'hybrid(k=50) > bi-encoder > top(10)'
    ranking = pipeline.run("how do I rotate logs?")

The stages (`stages`) are flat: a cascade reranker contributes its own stages in order,
as PyTerrier's `Compose` flattens nested compositions. A spec string names the first
stage and the reranker: `FIRST_STAGE[+RERANKER_SPEC]`, e.g. `bm25`,
`hybrid+bi-encoder`, `bm25+cross-encoder:/path?backend=onnx-int8`. The first stage may
carry parameters (`shortlist.retrieve.stages.FIRST_STAGE_PARAMS`):
`hybrid?fusion=zscore&w=0.3+bi-encoder`, `bm25?k1=1.5&b=0.75`. A pipeline file
(`shortlist.pipeline_file.PipelineConfig`) holds a whole pipeline with its K and N;
`Pipeline.from_config` builds it.

The library (`run`), the HTTP server's `/v1/search` (`run` with the server's batcher
as `executor`) and the evaluation harness (`first_stage.run` once per query, cached,
then `rerank` per reranker) all run this code.

Timing keys (milliseconds, in `Ranking.timings_ms`), the one vocabulary used by the
library, the server and the harness:

- `retrieve.bm25`, `retrieve.encode` (query embedding), `retrieve.dense`,
  `retrieve.fusion`: the parts of the first stage that ran;
- `retrieve`: the whole first stage;
- `rerank.first`, `rerank.second`: a cascade's stages;
- `rerank`: the whole second stage (absent without a reranker);
- `total`: the whole pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from shortlist.errors import InvalidInputError, SpecError
from shortlist.rerank.base import (
    NO_OPTIONS,
    Executor,
    Reranker,
    RerankOptions,
    bind_to_store,
    flatten_stages,
    local_executor,
    run_reranker,
)
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.retrieve.stages import MODES, Retriever, first_stage, parse_first_stage
from shortlist.retrieve.store import Filter, PassageStore
from shortlist.types import Ranking

if TYPE_CHECKING:
    from shortlist.pipeline_file import PipelineConfig

FIRST_STAGES: tuple[str, ...] = MODES


@dataclass(frozen=True)
class PipelineSpec:
    """`first_stage` is the canonical first-stage spec (mode and parameters)."""

    first_stage: str
    reranker: str | None

    @property
    def mode(self) -> str:
        """The first stage's mode (`bm25`, `dense`, `hybrid`), without parameters."""
        return self.first_stage.partition("?")[0]

    def __str__(self) -> str:
        return self.first_stage + (f"+{self.reranker}" if self.reranker else "")


def parse_pipeline(spec: str) -> PipelineSpec:
    """Split `FIRST_STAGE[?PARAMS][+RERANKER_SPEC]`; the first stage's parameters are
    checked here (`parse_first_stage`), the reranker spec by the registry."""
    first, _, rerank = spec.strip().partition("+")
    if first.partition("?")[0] not in FIRST_STAGES:
        raise SpecError(
            f"unknown first stage {first!r} in pipeline {spec!r}; expected one of "
            f"{', '.join(FIRST_STAGES)} (optionally with ?KEY=VALUE parameters), "
            "optionally followed by +RERANKER_SPEC"
        )
    first = str(parse_first_stage(first))
    rerank = rerank.strip()
    if spec.strip().endswith("+") or (rerank == "" and "+" in spec):
        raise SpecError(
            f"pipeline {spec!r} ends with '+': name a reranker after it, or drop the '+'"
        )
    return PipelineSpec(first, None if rerank in ("", "none") else rerank)


@dataclass(frozen=True)
class Cutoff:
    """Keeps the first `n` hits (all when `n` is None): PyTerrier's `RankCutoff`."""

    n: int | None

    @property
    def name(self) -> str:
        return "all" if self.n is None else f"top({self.n})"

    def apply(self, ranking: Ranking) -> Ranking:
        return ranking.top(self.n)


def _describe(reranker: Reranker) -> str:
    from shortlist.rerank.cascade import CascadeReranker

    if isinstance(reranker, CascadeReranker):
        first, second = _describe(reranker.first), _describe(reranker.second)
        return f"{first} > top({reranker.keep}) > {second}"
    return reranker.name


@dataclass(frozen=True)
class Pipeline:
    """`first_stage` retrieves `k`, `reranker` reorders them, the best `top_n` are kept.

    A reranker that can reuse stored vectors (`ReusesIndexVectors`) is bound to the first
    stage's store on construction. `top_n=None` keeps every candidate.
    """

    first_stage: Retriever
    reranker: Reranker | None = None
    k: int = 50
    top_n: int | None = 10
    cutoff: Cutoff = field(init=False)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InvalidInputError(f"k must be >= 1, got {self.k}")
        if self.top_n is not None and self.top_n < 0:
            raise InvalidInputError(f"top_n must be >= 0, got {self.top_n}")
        if self.reranker is not None:
            object.__setattr__(
                self, "reranker", bind_to_store(self.reranker, self.first_stage.store)
            )
        object.__setattr__(self, "cutoff", Cutoff(self.top_n))

    @classmethod
    def from_spec(
        cls,
        spec: str,
        store: PassageStore,
        *,
        k: int = 50,
        top_n: int | None = 10,
        hybrid: HybridConfig | None = None,
        load_reranker: Callable[[str], Reranker] | None = None,
    ) -> Pipeline:
        """The pipeline a spec string names, over `store`.

        `load_reranker` builds the reranker from its spec (default: the registry's).
        """
        parsed = parse_pipeline(spec)
        reranker = None
        if parsed.reranker is not None:
            if load_reranker is None:
                from shortlist.rerank.registry import load_reranker as registry_load

                load_reranker = registry_load
            reranker = load_reranker(parsed.reranker)
        return cls(
            first_stage(store, parsed.first_stage, hybrid=hybrid), reranker, k=k, top_n=top_n
        )

    @classmethod
    def from_config(
        cls,
        config: PipelineConfig,
        store: PassageStore,
        *,
        load_reranker: Callable[[str], Reranker] | None = None,
        by: Literal["passage", "document"] = "passage",
    ) -> Pipeline:
        """The pipeline a pipeline file describes (`PipelineConfig.load(path)`), over
        `store`: its first stage with its parameters, K, reranker and top N."""
        reranker = None
        if config.reranker is not None:
            if load_reranker is None:
                from shortlist.rerank.registry import load_reranker as registry_load

                load_reranker = registry_load
            reranker = load_reranker(config.reranker)
        stage = first_stage(store, config.first_stage_spec(), by=by)
        return cls(stage, reranker, k=config.k, top_n=config.top_n)

    @property
    def spec(self) -> PipelineSpec:
        return PipelineSpec(
            self.first_stage.name, self.reranker.name if self.reranker is not None else None
        )

    def __str__(self) -> str:
        return str(self.spec)

    @property
    def stages(self) -> tuple[Retriever | Reranker | Cutoff, ...]:
        """Every stage in order, flat: first stage, reranker stages, cutoff."""
        rerankers = flatten_stages(self.reranker) if self.reranker is not None else ()
        return (self.first_stage, *rerankers, self.cutoff)

    def describe(self) -> str:
        """The pipeline in one line, e.g. `hybrid(k=50) > bi-encoder > top(10)`; a cascade
        shows as its stages with the cut between them."""
        parts = [f"{self.first_stage.name}(k={self.k})"]
        if self.reranker is not None:
            parts.append(_describe(self.reranker))
        parts.append(self.cutoff.name)
        return " > ".join(parts)

    def run(
        self,
        query: str,
        *,
        filter: Filter | None = None,
        k: int | None = None,
        top_n: int | None = None,
        options: RerankOptions = NO_OPTIONS,
        executor: Executor = local_executor,
    ) -> Ranking:
        """Retrieve, rerank, cut. Every hit keeps its first-stage rank and score.

        `k`/`top_n` override the pipeline's for this call; `executor` runs the
        reranker's scoring step (the server passes its batcher).
        """
        started = time.perf_counter()
        first = self.first_stage.run(query, k=self.k if k is None else k, filter=filter)
        final = self.rerank(query, first, top_n=top_n, options=options, executor=executor)
        return final.with_timings(total=(time.perf_counter() - started) * 1000.0)

    def run_many(
        self, queries: Sequence[str], *, filter: Filter | None = None
    ) -> list[Ranking]:
        return [self.run(q, filter=filter) for q in queries]

    def rerank(
        self,
        query: str,
        candidates: Ranking,
        *,
        top_n: int | None = None,
        options: RerankOptions = NO_OPTIONS,
        executor: Executor = local_executor,
    ) -> Ranking:
        """Everything after the first stage, on its `candidates` (reranker, then cutoff).

        The returned timings hold the candidates' `retrieve*` timings and `rerank`.
        """
        cutoff = self.cutoff if top_n is None else Cutoff(top_n)
        timings = dict(candidates.timings_ms)
        timings.pop("total", None)
        if self.reranker is None or not len(candidates):
            return Ranking(query, cutoff.apply(candidates).hits, timings)
        started = time.perf_counter()
        reranked = run_reranker(
            self.reranker,
            query,
            candidates.hits,
            cutoff.n,
            options=options,
            executor=executor,
        )
        timings.update(reranked.timings_ms)
        timings["rerank"] = (time.perf_counter() - started) * 1000.0
        return Ranking(
            query,
            cutoff.apply(reranked).hits,
            timings,
            stats=reranked.stats,
            warnings=reranked.warnings,
        )

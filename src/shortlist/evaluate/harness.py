"""The evaluation harness: which pipeline and which K win on a dataset, at what latency and cost.

For every pipeline spec (`FIRST_STAGE[+RERANKER_SPEC]`) and every K it:

1. retrieves the top K with the first stage (retrieved once per first stage at the
   largest K and sliced, so smaller K reuse the same candidates; the first stage's
   own latency barely depends on K);
2. reranks those K candidates and records the full reranked list as the run (so
   Recall@K is the first stage's recall and the ranking metrics show the reranker's
   effect; `top_n` only matters for prompts);

   Both steps are the library's `Pipeline` (`shortlist.pipeline`): its `first_stage.run`
   is the cached prefix, its `rerank` runs on the cached candidates, so the harness
   measures exactly what `Pipeline.run` and the server's `/v1/search` execute;
3. records per-query metrics and per-stage latency (retrieve, rerank, total); each
   stage is called once, untimed, before the timed queries, so one-off model loading
   is not charged to the first query.

Each (pipeline, K) configuration is saved as a TREC run plus a JSON sidecar with
latencies as soon as it completes, keyed by everything that determines it; a rerun
reuses it, and an interrupted run loses only the unfinished configuration.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.batch import QueryOutcome, rank_candidates
from shortlist.errors import InvalidInputError
from shortlist.evaluate.trec import read_trec_run, write_trec_run
from shortlist.pipeline import Pipeline, PipelineSpec, parse_pipeline
from shortlist.progress import NoProgress, Progress
from shortlist.rerank.base import ReportsCost, Reranker
from shortlist.retrieve.stages import first_stage
from shortlist.types import Qrels, Ranking, Run

if TYPE_CHECKING:
    from shortlist.store.index import Index

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "recall@100")

RemoteRanker = Callable[[str, int, int], list[QueryOutcome]]
"""(pipeline spec, K, the largest K) -> every query's outcome, ranked elsewhere."""

# List prices in USD, for cost per 1,000 queries of hosted rerankers. They change:
# pass your own table (`--prices FILE.json`) for real budgeting. Units are those the
# reranker reports through `cost_units()`: "searches" (Cohere search units), "tokens" or
# "requests".
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "cohere": {"searches": 2.00 / 1000},
    "voyage": {"tokens": 0.05 / 1_000_000},
    "jina": {"tokens": 0.02 / 1_000_000},
}


@dataclass(frozen=True)
class ConfigResult:
    """One (pipeline, K) configuration: per-query metrics, latencies and cost."""

    name: str
    spec: str
    k: int
    metrics: Mapping[str, Mapping[str, float]]  # metric -> query id -> value
    latency_ms: Mapping[str, Mapping[str, float]]  # stage -> query id -> ms
    cost_per_1k: float | None
    run: Run
    first_stage_run: Run

    def mean(self, metric: str) -> float:
        vals = list(self.metrics[metric].values())
        return float(np.mean(vals)) if vals else 0.0

    def latency_percentile(self, q: float, stage: str = "total") -> float:
        vals = list(self.latency_ms.get(stage, {}).values())
        return float(np.percentile(vals, q)) if vals else 0.0


@dataclass
class EvalResult:
    dataset: str
    n_queries: int
    metrics: tuple[str, ...]
    primary: str
    configs: list[ConfigResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def file_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class Harness:
    """Runs pipelines over a dataset's queries with one shared index."""

    def __init__(
        self,
        index: Index,
        queries: Mapping[str, str],
        qrels: Qrels,
        *,
        ignore_identical_ids: bool = False,
        cache_dir: Path,
        dataset_fingerprint: str,
        metrics: Sequence[str] = DEFAULT_METRICS,
        top_n: int = 10,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        load_reranker: Callable[[str], Reranker] | None = None,
        progress: Callable[[str], None] | None = None,
        stages: Progress | None = None,
        remote: RemoteRanker | None = None,
    ) -> None:
        """`progress` receives one-line messages; `stages` shows the per-query loops
        (a bar on a terminal, see `shortlist.progress`). `remote` ranks a configuration's
        queries elsewhere (`shortlist eval --ray`: Ray actors) instead of in this process;
        it runs the same per-query code, so only the latencies differ."""
        self.index = index
        self.queries = dict(queries)
        self.qrels = qrels
        self.ignore_identical_ids = ignore_identical_ids
        self.cache_dir = cache_dir
        self.dataset_fingerprint = dataset_fingerprint
        self.metrics = tuple(metrics)
        self.top_n = top_n
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)
        if load_reranker is None:
            from shortlist.rerank.registry import load_reranker as _load

            load_reranker = _load
        self._load_reranker = load_reranker
        self._progress = progress or (lambda _msg: None)
        self._stages: Progress = stages or NoProgress()
        self._first_stage_cache: dict[tuple[str, int], tuple[dict[str, Ranking], float]] = {}
        self._rerankers: dict[str, Reranker] = {}
        self._remote = remote

    # ---- the pipeline's first stage, shared by every reranker -------------------
    def _first_stage(self, mode: str, k: int) -> dict[str, Ranking]:
        """Every query's first-stage ranking at depth >= k (cached; slice to use less)."""
        for (m, kk), (cached, _) in self._first_stage_cache.items():
            if m == mode and kk >= k:
                return cached
        retriever = first_stage(self.index, mode)
        if self.queries:
            # Untimed warm-up: loading the encoder must not be charged to the first query.
            retriever.run(next(iter(self.queries.values())), k=k)
        # Cold memo: each query's embedding is paid here, as a lone request would pay it
        # (another pipeline's earlier pass must not make this one look faster). A reranker
        # that reuses it afterwards (bi-encoder) finds it, as in `Pipeline.run`.
        self.index.forget_queries()
        started = time.perf_counter()
        rankings: dict[str, Ranking] = {}
        with self._stages.stage(f"search {mode} k={k}", len(self.queries), "queries") as stage:
            for qid, text in self.queries.items():
                rankings[qid] = retriever.run(text, k=k)
                stage.advance()
        self._first_stage_cache[(mode, k)] = (rankings, time.perf_counter() - started)
        return rankings

    def _reranker(self, spec: str) -> Reranker:
        if spec not in self._rerankers:
            self._rerankers[spec] = self._load_reranker(spec)
        return self._rerankers[spec]

    def pipeline(self, spec: str, k: int) -> Pipeline:
        """The library pipeline a spec names over this harness's index (all hits kept)."""
        return Pipeline.from_spec(
            spec, self.index, k=k, top_n=None, load_reranker=self._reranker
        )

    # ---- one configuration ---------------------------------------------------------
    def run_config(self, name: str, spec: str, k: int, max_k: int) -> ConfigResult:
        from shortlist.evaluate.metrics import evaluate

        parsed: PipelineSpec = parse_pipeline(spec)
        key = _fingerprint(
            # The trailing number versions how runs are measured; bump it to invalidate saved runs.
            spec,
            k,
            self.dataset_fingerprint,
            dict(self.index.manifest),
            sorted(self.queries),
            3,  # 3: first stages timed with a cold query-embedding memo
        )
        stem = self.cache_dir / "runs" / f"{_slug(name)}@k{k}.{key}"
        trec, side = stem.with_suffix(".trec"), stem.with_suffix(".json")
        if trec.exists() and side.exists():
            meta = json.loads(side.read_text(encoding="utf-8"))
            run = read_trec_run(trec)
            first_run = {
                q: {d: float(s) for d, s in v.items()} for q, v in meta["first_stage_run"].items()
            }
            self._progress(f"{name} k={k}: reused saved run {trec.name}")
            latency, cost = meta["latency_ms"], meta["cost_per_1k"]
        else:
            if self._remote is not None:
                outcomes = self._remote(spec, k, max_k)
            else:
                first = self._first_stage(parsed.first_stage, max_k)
                outcomes = self._execute(self.pipeline(spec, k), first, k, parsed.reranker)
            run, first_run, latency, cost = self._collect(outcomes, parsed.reranker)
            stem.parent.mkdir(parents=True, exist_ok=True)
            write_trec_run(trec, run, _slug(name))
            payload = {
                "name": name,
                "spec": spec,
                "k": k,
                "latency_ms": latency,
                "cost_per_1k": cost,
                "first_stage_run": first_run,
            }
            tmp = side.with_suffix(".tmp")
            tmp.write_text(json.dumps(payload), encoding="utf-8")
            os.replace(tmp, side)
        per_query = evaluate(self.qrels, _complete(run, self.queries), list(self.metrics))
        return ConfigResult(name, spec, k, per_query, latency, cost, run, first_run)

    def _execute(
        self, pipeline: Pipeline, first: Mapping[str, Ranking], k: int, spec: str | None
    ) -> list[QueryOutcome]:
        reranker = pipeline.reranker
        if reranker is not None and not isinstance(reranker, ReportsCost):
            # Untimed warm-up: model loading and export are one-off costs, not per-query latency.
            # Hosted (billed) rerankers are not warmed up: that would be a paid call.
            for qid, text in self.queries.items():
                if len(first[qid]):
                    pipeline.rerank(text, first[qid].top(k))
                    break
        # Only reranking is slow enough to be worth a bar; scoring a first stage is instant.
        stages = self._stages if reranker is not None else NoProgress()
        outcomes = []
        with stages.stage(f"rerank {spec} k={k}", len(self.queries), "queries") as stage:
            for qid, text in self.queries.items():
                outcomes.append(
                    rank_candidates(
                        pipeline,
                        qid,
                        text,
                        first[qid],
                        k,
                        ignore_identical_ids=self.ignore_identical_ids,
                    )
                )
                stage.advance()
        return outcomes

    def _collect(
        self, outcomes: Sequence[QueryOutcome], spec: str | None
    ) -> tuple[Run, Run, dict[str, dict[str, float]], float | None]:
        """Runs, latencies and cost of a configuration from its queries' outcomes."""
        run: Run = {}
        first_run: Run = {}
        lat: dict[str, dict[str, float]] = {"retrieve": {}, "rerank": {}, "total": {}}
        units: dict[str, float] = {}
        for o in outcomes:
            first_run[o.qid] = dict(o.first)
            run[o.qid] = dict(o.final)
            for unit, v in o.units.items():
                units[unit] = units.get(unit, 0.0) + v
            lat["retrieve"][o.qid] = o.retrieve_ms
            lat["rerank"][o.qid] = o.rerank_ms
            lat["total"][o.qid] = o.retrieve_ms + o.rerank_ms
        cost = self._cost(spec, units, len(self.queries))
        return run, first_run, lat, cost

    def _cost(self, spec: str | None, units: Mapping[str, float], n_queries: int) -> float | None:
        if spec is None or not units or n_queries == 0:
            return None if spec is None or not units else 0.0
        kind = spec.split(":", 1)[0]
        table = self.prices.get(kind, {})
        total = sum(units.get(u, 0.0) * price for u, price in table.items())
        return total / n_queries * 1000


def _complete(run: Run, queries: Mapping[str, str]) -> Run:
    """Every evaluated query appears in the run, even with no results (it then scores 0)."""
    return {q: dict(run.get(q, {})) for q in queries}


def run_harness(
    harness: Harness,
    pipelines: Sequence[tuple[str, str]],
    ks: Sequence[int],
    *,
    dataset: str,
    primary: str,
) -> EvalResult:
    if not pipelines:
        raise InvalidInputError("give at least one --pipeline NAME=SPEC")
    for _name, spec in pipelines:
        parse_pipeline(spec)
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise InvalidInputError("-k values must be positive integers, e.g. -k 20,50,100")
    result = EvalResult(dataset, len(harness.queries), harness.metrics, primary)
    for name, spec in pipelines:
        for k in ks:
            t = time.perf_counter()
            cfg = harness.run_config(name, spec, k, max(ks))
            harness._progress(
                f"{name} k={k}: {primary}={cfg.mean(primary):.4f} "
                f"p95={cfg.latency_percentile(95):.1f}ms ({time.perf_counter() - t:.1f}s)"
            )
            result.configs.append(cfg)
    return result


# ---- analysis -------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    name: str
    k: int
    delta: float
    p_value: float
    p_adjusted: float
    wins: int
    losses: int
    ties: int


def compare_to_baseline(result: EvalResult, metric: str, *, seed: int = 0) -> list[Comparison]:
    """Paired randomization test of each configuration against the baseline (first
    pipeline at the same K), Holm–Bonferroni adjusted over all comparisons."""
    from shortlist.evaluate import stats

    base_name = result.configs[0].name if result.configs else ""
    base = {c.k: c for c in result.configs if c.name == base_name}
    rows = []
    for c in result.configs:
        if c.name == base_name or c.k not in base:
            continue
        qids = sorted(base[c.k].metrics[metric])
        a = np.asarray([c.metrics[metric][q] for q in qids])
        b = np.asarray([base[c.k].metrics[metric][q] for q in qids])
        p = stats.randomization_test(a, b, seed=seed).p_value
        wins, losses, ties = stats.win_loss_tie(
            {q: float(x) for q, x in zip(qids, a, strict=True)},
            {q: float(x) for q, x in zip(qids, b, strict=True)},
        ).counts
        rows.append((c, float(a.mean() - b.mean()), p, wins, losses, ties))
    adjusted = stats.holm_bonferroni([r[2] for r in rows])[0] if rows else []
    return [
        Comparison(c.name, c.k, d, p, float(adj), wins, losses, ties)
        for (c, d, p, wins, losses, ties), adj in zip(rows, adjusted, strict=True)
    ]


@dataclass(frozen=True)
class Hurt:
    name: str
    k: int
    query_id: str
    query: str
    before: float
    after: float
    relevant_rank_before: int | None
    relevant_rank_after: int | None


def where_reranking_hurts(
    result: EvalResult, queries: Mapping[str, str], qrels: Qrels, metric: str, top: int = 10
) -> list[Hurt]:
    """Queries where a reranker lowered `metric` most against its own first stage,
    with the best relevant document's rank before and after reranking."""
    from shortlist.evaluate.metrics import evaluate

    out: list[Hurt] = []
    for c in result.configs:
        if parse_pipeline(c.spec).reranker is None:
            continue
        before = evaluate(qrels, _complete(c.first_stage_run, queries), [metric])[metric]
        for qid, after in c.metrics[metric].items():
            b = before.get(qid, 0.0)
            if after < b:
                out.append(
                    Hurt(
                        c.name,
                        c.k,
                        qid,
                        queries[qid],
                        b,
                        after,
                        _best_relevant_rank(c.first_stage_run.get(qid, {}), qrels.get(qid, {})),
                        _best_relevant_rank(c.run.get(qid, {}), qrels.get(qid, {})),
                    )
                )
    out.sort(key=lambda h: (h.after - h.before, h.name, h.query_id))
    return out[:top]


def _best_relevant_rank(run: Mapping[str, float], rels: Mapping[str, int]) -> int | None:
    ranked = sorted(run.items(), key=lambda kv: (-kv[1], kv[0]))
    for rank, (doc, _s) in enumerate(ranked, start=1):
        if rels.get(doc, 0) > 0:
            return rank
    return None


@dataclass(frozen=True)
class Recommendation:
    name: str | None
    k: int | None
    reason: str
    frontier: tuple[tuple[str, int, float, float], ...]  # (name, k, quality, p95)


def recommend(result: EvalResult, budget_ms: float, metric: str | None = None) -> Recommendation:
    """The best configuration whose p95 total latency fits `budget_ms`, from the
    quality/latency Pareto frontier, with the reason in words."""
    metric = metric or result.primary
    points = [(c.name, c.k, c.mean(metric), c.latency_percentile(95)) for c in result.configs]
    frontier = tuple(
        p
        for p in sorted(points, key=lambda p: (p[3], -p[2]))
        if not any((q[2] >= p[2] and q[3] < p[3]) or (q[2] > p[2] and q[3] <= p[3]) for q in points)
    )
    fits = [p for p in frontier if p[3] <= budget_ms]
    if not fits:
        fastest = min(points, key=lambda p: p[3]) if points else None
        reason = f"no configuration has p95 <= {budget_ms:g} ms" + (
            f"; the fastest is {fastest[0]} k={fastest[1]} at p95 {fastest[3]:.1f} ms"
            if fastest
            else ""
        )
        return Recommendation(None, None, reason, frontier)
    best = max(fits, key=lambda p: (p[2], -p[3]))
    slower_better = [p for p in frontier if p[2] > best[2]]
    reason = (
        f"{best[0]} at k={best[1]} has the highest mean {metric} ({best[2]:.4f}) among "
        f"configurations whose p95 latency ({best[3]:.1f} ms) fits the {budget_ms:g} ms budget"
    )
    if slower_better:
        nxt = min(slower_better, key=lambda p: p[3])
        reason += (
            f"; the next better one, {nxt[0]} at k={nxt[1]} ({metric} {nxt[2]:.4f}), "
            f"needs p95 {nxt[3]:.1f} ms"
        )
    return Recommendation(best[0], best[1], reason, frontier)


@dataclass(frozen=True)
class Sweep:
    """Configurations that differ only in one numeric first-stage parameter (`w`, `k1`,
    `rrf_k`, ...): `base` is their common pipeline spec with that parameter left out, and
    `points` maps each K to (value, mean metric) pairs by ascending value."""

    param: str
    base: str
    points: Mapping[int, tuple[tuple[float, float], ...]]


_SWEEPABLE = ("w", "wd", "rrf_k", "depth", "k1", "b")


def find_sweeps(result: EvalResult, metric: str | None = None) -> list[Sweep]:
    """Every parameter sweep among `result`'s configurations (at least two values of one
    parameter, everything else equal), in the order they first appear."""
    from shortlist.retrieve.stages import parse_first_stage

    metric = metric or result.primary
    groups: dict[tuple[str, str], dict[int, dict[float, float]]] = {}
    for c in result.configs:
        parsed = parse_pipeline(c.spec)
        params = parse_first_stage(parsed.first_stage).params()
        for param in _SWEEPABLE:
            if param not in params:
                continue
            rest = "&".join(f"{k}={v}" for k, v in params.items() if k != param)
            base = parsed.mode + (f"?{rest}" if rest else "")
            base += f"+{parsed.reranker}" if parsed.reranker else ""
            series = groups.setdefault((param, base), {}).setdefault(c.k, {})
            series[float(params[param])] = c.mean(metric)
    sweeps = []
    for (param, base), by_k in groups.items():
        points = {k: tuple(sorted(v.items())) for k, v in sorted(by_k.items()) if len(v) >= 2}
        if points:
            sweeps.append(Sweep(param, base, points))
    return sweeps


def summary_rows(result: EvalResult) -> list[dict[str, Any]]:
    """One row per configuration with every number the report and the JSON show."""
    from shortlist.evaluate import stats

    rows = []
    for c in result.configs:
        row: dict[str, Any] = {"pipeline": c.name, "spec": c.spec, "k": c.k}
        for m in result.metrics:
            ci = stats.mean_ci([c.metrics[m][q] for q in sorted(c.metrics[m])])
            row[m] = ci.mean
            row[f"{m}_ci"] = [nan_to_none(ci.low), nan_to_none(ci.high)]
        for stage in ("retrieve", "rerank", "total"):
            for q in (50, 95, 99):
                row[f"{stage}_p{q}_ms"] = c.latency_percentile(q, stage)
        row["cost_per_1k_queries_usd"] = c.cost_per_1k
        rows.append(row)
    return rows


def nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x

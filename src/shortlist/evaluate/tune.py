"""Tuning a pipeline on your own queries, with k-fold cross-validation (`shortlist tune`).

    table = score_settings(index, queries, qrels, grid, metric="ndcg@10")
    folds = make_folds(list(queries), n_folds=5, seed=0)
    result = tune(table, folds, default=..., singles=...)

1. **Cache the first-stage runs once** (`SideRuns`): per query, BM25's result list for
   every (k1, b) of the grid (BM25 is rescored from stored term frequencies, nothing is
   re-indexed) and the dense result list, each at the largest depth any setting needs.
   Every fusion setting is then a pure function of those cached lists
   (`shortlist.retrieve.stages.fuse_rows`, the code `HybridRetriever` runs): the grid
   costs no re-encoding and no re-search.
2. **Score every setting on every query** (`score_settings`): first stage (BM25 alone,
   dense alone, or hybrid with a fusion method, weights and RRF k) at K, optionally
   reranked (each reranker scores each query's union of candidates once; a setting's
   order is those scores over its own top K, which is what a pointwise reranker gives),
   as a document run scored with the harness's metrics.
3. **Cross-validate** (`cross_validate`): queries are split into k folds by a seeded
   permutation; for each fold the selection function sees *only the other folds'
   queries*, picks the setting with the best mean, and that setting is scored on the
   held-out fold. The mean over all queries of their held-out scores is the
   out-of-sample estimate, set beside the default pipeline's and the better single first
   stage's scores on the same queries.
4. **Choose the final setting on all queries** and write it as a pipeline file
   (`shortlist.pipeline_file.PipelineConfig`), which `Pipeline.from_config` runs exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.pipeline import Pipeline
from shortlist.pipeline_file import PipelineConfig
from shortlist.rerank.base import Reranker
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.retrieve.stages import (
    BM25Params,
    BM25Retriever,
    DenseRetriever,
    FirstStageSpec,
    RowHits,
    dense_weight,
    fuse_rows,
    hits_at,
)
from shortlist.retrieve.store import PassageStore
from shortlist.types import Qrels, Ranking

DEFAULT_K1S: tuple[float, ...] = (0.9, 1.2, 1.5, 2.0)
DEFAULT_BS: tuple[float, ...] = (0.4, 0.75, 0.9)
DEFAULT_WEIGHTS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_RRF_KS: tuple[int, ...] = (10, 60)
DEFAULT_METHODS: tuple[str, ...] = ("rrf", "minmax", "zscore", "dbsf")


@dataclass(frozen=True)
class Setting:
    """One point of the grid: a first stage with every parameter fixed, K and a reranker."""

    first: FirstStageSpec
    k: int
    reranker: str | None = None

    @property
    def label(self) -> str:
        first = str(self.first)
        if self.first.method not in (None, "rrf"):
            first = first.replace(f"&rrf_k={self.first.rrf_k}", "")  # unused by this method
        rerank = f"+{self.reranker}" if self.reranker else ""
        return f"{first}{rerank} k={self.k}"

    def config(self, top_n: int) -> PipelineConfig:
        """The pipeline file for this setting."""
        fusion = None
        if self.first.mode == "hybrid":
            fusion = self.first.hybrid_config(HybridConfig())
        return PipelineConfig(
            self.first.mode, self.k, top_n, self.reranker, self.first.bm25, fusion
        )


@dataclass(frozen=True)
class TuneGrid:
    """What `tune` searches. Hybrid settings: every (k1, b) x method x BM25 weight `w`
    (dense `1 - w`) x RRF k (RRF only); plus BM25 alone for every (k1, b) and dense
    alone. Each with every K in `ks` and every reranker (None: no reranker)."""

    k1s: tuple[float, ...] = DEFAULT_K1S
    bs: tuple[float, ...] = DEFAULT_BS
    methods: tuple[str, ...] = DEFAULT_METHODS
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    rrf_ks: tuple[int, ...] = DEFAULT_RRF_KS
    depth: int = 100
    ks: tuple[int, ...] = (50,)
    rerankers: tuple[str | None, ...] = (None,)

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise InvalidInputError(f"K values must be positive integers, got {self.ks}")
        if not self.k1s or not self.bs:
            raise InvalidInputError("give at least one BM25 k1 and one b to search")
        for w in self.weights:
            if not 0.0 < w < 1.0:
                raise InvalidInputError(
                    f"fusion weight {w} must be strictly between 0 and 1 (BM25 weight; dense "
                    "is 1 - w); BM25 alone and dense alone are always in the grid"
                )

    def bm25_params(self) -> list[BM25Params]:
        return [BM25Params(k1, b) for k1 in self.k1s for b in self.bs]

    def first_stages(self, *, has_dense: bool) -> list[FirstStageSpec]:
        out = [FirstStageSpec("bm25", bm25=p) for p in self.bm25_params()]
        if not has_dense:
            return out
        out.append(FirstStageSpec("dense"))
        for p in self.bm25_params():
            for method in self.methods:
                for w in self.weights:
                    for rrf_k in self.rrf_ks if method == "rrf" else (60,):
                        out.append(
                            FirstStageSpec(
                                "hybrid",
                                bm25=p,
                                method=method,
                                weights=(w, dense_weight(w)),
                                rrf_k=rrf_k,
                                depth=self.depth,
                            )
                        )
        return out


def full_spec(store: PassageStore, spec: FirstStageSpec) -> FirstStageSpec:
    """`spec` with every parameter filled from `store` (its k1/b, its fusion settings),
    so that two specs meaning the same pipeline compare equal."""
    if spec.mode == "dense":
        return spec
    bm25 = spec.bm25 or store_bm25_params(store)
    if spec.mode == "bm25":
        return FirstStageSpec("bm25", bm25=bm25)
    c = spec.hybrid_config(store.hybrid)
    return FirstStageSpec("hybrid", bm25, c.method, c.weights, c.rrf_k, c.depth, c.long_weights)


def store_bm25_params(store: PassageStore) -> BM25Params:
    """The k1/b a store scores with by default (an `Index`'s manifest), else Lucene's."""
    manifest = getattr(store, "manifest", None)
    params = manifest.get("bm25", {}) if isinstance(manifest, Mapping) else {}
    from shortlist.retrieve.bm25 import DEFAULT_B, DEFAULT_K1

    return BM25Params(float(params.get("k1", DEFAULT_K1)), float(params.get("b", DEFAULT_B)))


# ---- 1. cached first-stage runs --------------------------------------------------------
@dataclass(frozen=True)
class SideRuns:
    """Each query's BM25 list per (k1, b) and dense list, at `depth`, in store rows, and
    the query texts (the default fusion's weights depend on the query's length)."""

    depth: int
    bm25: Mapping[BM25Params, Mapping[str, RowHits]]
    dense: Mapping[str, RowHits] | None
    doc_of_row: Mapping[int, str]
    queries: Mapping[str, str]


def cache_side_runs(
    store: PassageStore,
    queries: Mapping[str, str],
    bm25_params: Sequence[BM25Params],
    depth: int,
    *,
    dense: bool,
    progress: Callable[[str], None] = lambda _m: None,
) -> SideRuns:
    """Run BM25 (each k1/b) and dense once per query at `depth` (see `SideRuns`)."""
    bm25: dict[BM25Params, dict[str, RowHits]] = {}
    for params in bm25_params:
        retriever = BM25Retriever(store, params)
        bm25[params] = {
            q: retriever.search_rows(t, depth, allowed=None) for q, t in queries.items()
        }
    progress(f"cached BM25 runs for {len(bm25_params)} (k1, b) settings at depth {depth}")
    dense_runs: dict[str, RowHits] | None = None
    if dense:
        retriever_d = DenseRetriever(store)
        dense_runs = {
            q: retriever_d.search_rows(t, depth, allowed=None) for q, t in queries.items()
        }
        progress(f"cached dense runs for {len(queries)} queries at depth {depth}")
    rows: set[int] = set()
    for runs in (*bm25.values(), *([dense_runs] if dense_runs else [])):
        for hits in runs.values():
            rows.update(hits.rows.tolist())
    ordered = sorted(rows)
    passages = store.passages_at(np.asarray(ordered, dtype=np.int64))
    doc_of_row = {r: p.doc_id for r, p in zip(ordered, passages, strict=True)}
    return SideRuns(depth, bm25, dense_runs, doc_of_row, dict(queries))


def setting_rows(sides: SideRuns, first: FirstStageSpec, qid: str, k: int) -> np.ndarray:
    """The rows the first stage `first` returns at `k` for query `qid`, from the cache:
    what `first_stage(store, first).search_rows(query, k)` returns."""
    if first.mode == "dense":
        assert sides.dense is not None
        return sides.dense[qid].rows[:k]
    assert first.bm25 is not None
    bm25 = sides.bm25[first.bm25][qid]
    if first.mode == "bm25":
        return bm25.rows[:k]
    assert sides.dense is not None
    config = first.hybrid_config(HybridConfig())
    depth = max(k, config.depth)
    if depth > sides.depth:
        raise InvalidInputError(f"cached runs have depth {sides.depth}, {depth} needed")
    dense = sides.dense[qid]
    left = RowHits(bm25.rows[:depth], bm25.scores[:depth])
    right = RowHits(dense.rows[:depth], dense.scores[:depth])
    rows, _scores = fuse_rows(config, [left, right], k, query=sides.queries[qid])
    return rows


# ---- 2. every setting on every query ---------------------------------------------------------
Table = Mapping[Setting, Mapping[str, float]]
"""Setting -> query id -> metric value."""


def score_settings(
    store: PassageStore,
    queries: Mapping[str, str],
    qrels: Qrels,
    settings: Sequence[Setting],
    sides: SideRuns,
    *,
    metric: str,
    load_reranker: Callable[[str], Reranker] | None = None,
    ignore_identical_ids: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[Setting, dict[str, float]]:
    """The metric of every setting on every query, as document runs (a document scores
    its best passage), exactly as `shortlist eval` scores a pipeline."""
    from shortlist.evaluate.metrics import evaluate

    rerank_scores = _rerank_scores(
        store, queries, settings, sides, load_reranker, ignore_identical_ids, progress
    )
    judged = {q: qrels.get(q, {}) for q in queries}
    table: dict[Setting, dict[str, float]] = {}
    for setting in settings:
        run: dict[str, dict[str, float]] = {}
        for qid in queries:
            rows = _candidates(sides, setting, qid, ignore_identical_ids)
            if setting.reranker is not None:
                scores = rerank_scores[setting.reranker][qid]
                order = sorted(range(len(rows)), key=lambda i: (-scores[rows[i]], i))
                rows = [rows[i] for i in order]
            run[qid] = _doc_run([sides.doc_of_row[r] for r in rows])
        table[setting] = evaluate(judged, run, [metric])[metric]
        if len(table) % 100 == 0 and len(table) < len(settings):
            progress(f"scored {len(table)}/{len(settings)} settings")
    progress(f"scored {len(settings)} settings on {len(queries)} queries")
    return table


def _candidates(sides: SideRuns, setting: Setting, qid: str, drop_self: bool) -> list[int]:
    rows = setting_rows(sides, setting.first, qid, setting.k).tolist()
    if drop_self:
        # As the harness does for doc-to-doc tasks: the query's own document is dropped.
        rows = [r for r in rows if sides.doc_of_row[r] != qid]
    return rows


def _doc_run(doc_ids: Sequence[str]) -> dict[str, float]:
    """Ranked passages' documents to a run: each document at its best rank (MaxP)."""
    out: dict[str, float] = {}
    n = len(doc_ids)
    for i, doc in enumerate(doc_ids):
        out.setdefault(doc, float(n - i))
    return out


def _rerank_scores(
    store: PassageStore,
    queries: Mapping[str, str],
    settings: Sequence[Setting],
    sides: SideRuns,
    load_reranker: Callable[[str], Reranker] | None,
    drop_self: bool,
    progress: Callable[[str], None],
) -> dict[str, dict[str, dict[int, float]]]:
    """Reranker spec -> query -> row -> score, over each query's union of candidates."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    specs = sorted({s.reranker for s in settings if s.reranker is not None})
    for spec in specs:
        if spec.startswith("cascade:"):
            raise InvalidInputError(
                "tune scores each candidate once per reranker, which a cascade does not "
                "allow; tune its stages separately"
            )
        pipeline = Pipeline.from_spec(
            f"bm25+{spec}", store, k=1, top_n=None, load_reranker=load_reranker
        )
        mine = [s for s in settings if s.reranker == spec]
        per_query: dict[str, dict[int, float]] = {}
        for qid, text in queries.items():
            union = sorted({r for s in mine for r in _candidates(sides, s, qid, drop_self)})
            if not union:
                per_query[qid] = {}
                continue
            rows = np.asarray(union, dtype=np.int64)
            hits = hits_at(store, rows, np.zeros(len(rows), dtype=np.float32))
            reranked = pipeline.rerank(text, Ranking(text, tuple(hits)))
            row_of = {h.id: int(r) for h, r in zip(hits, union, strict=True)}
            per_query[qid] = {row_of[h.id]: h.score for h in reranked.hits}
        out[spec] = per_query
        progress(f"reranked every query's candidates with {spec}")
    return out


# ---- 3. cross-validation -------------------------------------------------------------------------
Select = Callable[[Table, Sequence[str]], Setting]
"""A selection function: the best setting, judged on the given queries only."""


def mean_over(scores: Mapping[str, float], queries: Sequence[str]) -> float:
    return float(np.mean([scores[q] for q in queries])) if queries else 0.0


def select_best(table: Table, queries: Sequence[str]) -> Setting:
    """The setting with the highest mean over `queries`; ties go to the earliest in
    `table`'s order (put the default first, so a tie keeps it)."""
    if not table:
        raise InvalidInputError("nothing to choose from: the grid is empty")
    best, best_score = None, -np.inf
    for setting, scores in table.items():
        score = mean_over(scores, queries)
        if score > best_score:
            best, best_score = setting, score
    assert best is not None
    return best


def make_folds(queries: Sequence[str], n_folds: int, seed: int = 0) -> list[list[str]]:
    """Split query ids into `n_folds` folds of near-equal size by a permutation seeded
    with `seed` (of the sorted ids, so the input order never matters).

    Raises `InvalidInputError` for fewer than 2 folds or more folds than queries.
    """
    ids = sorted(set(queries))
    if n_folds < 2:
        raise InvalidInputError(f"--folds must be >= 2, got {n_folds}")
    if n_folds > len(ids):
        raise InvalidInputError(
            f"--folds {n_folds} is more than the {len(ids)} queries; use fewer folds"
        )
    perm = np.random.default_rng(seed).permutation(len(ids))
    return [sorted(ids[i] for i in perm[f::n_folds]) for f in range(n_folds)]


@dataclass(frozen=True)
class FoldResult:
    fold: int
    train: tuple[str, ...]
    test: tuple[str, ...]
    chosen: Setting
    train_score: float
    test_score: float
    baselines: Mapping[str, float]  # baseline name -> held-out score
    rivals: Mapping[str, tuple[Setting, float]] = field(default_factory=dict)
    """Rival name -> (its choice on this fold's training queries, held-out score)."""


@dataclass(frozen=True)
class TuneResult:
    metric: str
    n_queries: int
    n_settings: int
    folds: tuple[FoldResult, ...]
    out_of_sample: Mapping[str, float]  # "tuned", each baseline and rival -> held-out mean
    baselines: Mapping[str, Setting]
    final: Setting
    final_score: float
    rivals: tuple[str, ...] = ()

    def gain(self, baseline: str) -> float:
        """Out-of-sample mean of tuned minus that of `baseline` (or of a rival)."""
        return self.out_of_sample["tuned"] - self.out_of_sample[baseline]


def cross_validate(
    table: Table,
    folds: Sequence[Sequence[str]],
    *,
    metric: str,
    baselines: Mapping[str, Setting],
    rivals: Mapping[str, Sequence[Setting]] | None = None,
    select: Select = select_best,
) -> TuneResult:
    """k-fold cross-validation of `select` over `table`, then the final choice on all
    queries. `select` is only ever shown training queries; each fold's choice is scored
    on its held-out queries, and `out_of_sample` averages every query's held-out score.

    `baselines` are fixed settings scored on the same held-out queries; `rivals` are
    restricted grids (e.g. the single first stages) cross-validated the same way, so
    "tuned hybrid" is compared with "tuned single" out of sample too."""
    rivals = rivals or {}
    all_queries = sorted(q for fold in folds for q in fold)
    results: list[FoldResult] = []
    held: dict[str, list[float]] = {
        "tuned": [],
        **{name: [] for name in baselines},
        **{name: [] for name in rivals},
    }
    rival_tables = {name: {s: table[s] for s in subset} for name, subset in rivals.items()}
    for i, test in enumerate(folds):
        test_set = set(test)
        train = [q for q in all_queries if q not in test_set]
        chosen = select(table, train)
        scores = table[chosen]
        rival_choice = {name: select(t, train) for name, t in rival_tables.items()}
        result = FoldResult(
            i + 1,
            tuple(train),
            tuple(sorted(test)),
            chosen,
            mean_over(scores, train),
            mean_over(scores, list(test)),
            {name: mean_over(table[s], list(test)) for name, s in baselines.items()},
            {name: (c, mean_over(table[c], list(test))) for name, c in rival_choice.items()},
        )
        results.append(result)
        held["tuned"].extend(scores[q] for q in test)
        for name, s in baselines.items():
            held[name].extend(table[s][q] for q in test)
        for name, c in rival_choice.items():
            held[name].extend(table[c][q] for q in test)
    final = select(table, all_queries)
    return TuneResult(
        metric,
        len(all_queries),
        len(table),
        tuple(results),
        {name: float(np.mean(v)) if v else 0.0 for name, v in held.items()},
        dict(baselines),
        final,
        mean_over(table[final], all_queries),
        tuple(rivals),
    )


def better_single(table: Table, candidates: Sequence[Setting], queries: Sequence[str]) -> Setting:
    """The better of the single first stages (BM25 at the index's k1/b, dense) over all
    `queries`: a baseline that knows which side wins, so beating it is a real gain."""
    return max(candidates, key=lambda s: (mean_over(table[s], queries), -candidates.index(s)))


# ---- the whole procedure ----------------------------------------------------------------------
def run_tune(
    store: PassageStore,
    queries: Mapping[str, str],
    qrels: Qrels,
    grid: TuneGrid,
    *,
    metric: str = "ndcg@10",
    n_folds: int = 5,
    seed: int = 0,
    load_reranker: Callable[[str], Reranker] | None = None,
    ignore_identical_ids: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
    select: Select = select_best,
) -> TuneResult:
    """Cache the first-stage runs, score the grid, cross-validate, choose (see module)."""
    if not queries:
        raise InvalidInputError("no judged queries to tune on")
    folds = make_folds(list(queries), n_folds, seed)
    has_dense = store.has_dense
    own = store_bm25_params(store)
    bm25_params = list(dict.fromkeys([own, *grid.bm25_params()]))
    default_first = full_spec(store, FirstStageSpec("hybrid" if has_dense else "bm25"))
    default_k = 50 if 50 in grid.ks else max(grid.ks)
    default_reranker = grid.rerankers[0]
    default = Setting(default_first, default_k, default_reranker)
    singles = [Setting(FirstStageSpec("bm25", bm25=own), default_k, default_reranker)]
    if has_dense:
        singles.append(Setting(FirstStageSpec("dense"), default_k, default_reranker))
    firsts = grid.first_stages(has_dense=has_dense)
    ks = sorted(set(grid.ks)) if any(grid.rerankers) else [max(grid.ks)]
    settings = list(
        dict.fromkeys(
            [
                default,
                *singles,
                *(Setting(f, k, r) for r in grid.rerankers for k in ks for f in firsts),
            ]
        )
    )
    depth = max([grid.depth, default_first.depth or 0, *grid.ks])
    progress(f"tuning {len(settings)} settings on {len(queries)} queries, {n_folds} folds")
    sides = cache_side_runs(store, queries, bm25_params, depth, dense=has_dense, progress=progress)
    table = score_settings(
        store,
        queries,
        qrels,
        settings,
        sides,
        metric=metric,
        load_reranker=load_reranker,
        ignore_identical_ids=ignore_identical_ids,
        progress=progress,
    )
    single = better_single(table, singles, sorted(queries))
    baselines = {"default": default, "single": single}
    rivals = {}
    if has_dense:
        rivals["tuned single"] = [s for s in settings if s.first.mode != "hybrid"]
    return cross_validate(
        table, folds, metric=metric, baselines=baselines, rivals=rivals, select=select
    )


def format_tune(result: TuneResult) -> str:
    """The fold-by-fold table and the out-of-sample summary, as text."""
    names = list(result.baselines)
    shown = [_baseline_name(result, n) for n in names]
    head = ["fold", "n", "chosen setting", "train", "held-out", *(f"{n} held-out" for n in shown)]
    head += [f"{r} held-out (its choice)" for r in result.rivals]
    rows = [
        [
            str(f.fold),
            str(len(f.test)),
            f.chosen.label,
            f"{f.train_score:.4f}",
            f"{f.test_score:.4f}",
            *(f"{f.baselines[n]:.4f}" for n in names),
            *(f"{f.rivals[r][1]:.4f} ({f.rivals[r][0].label})" for r in result.rivals),
        ]
        for f in result.folds
    ]
    oos = result.out_of_sample
    rows.append(
        ["all", str(result.n_queries), "(out of sample)", "", f"{oos['tuned']:.4f}"]
        + [f"{oos[n]:.4f}" for n in names]
        + [f"{oos[r]:.4f}" for r in result.rivals]
    )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        f"{result.metric}, {len(result.folds)}-fold cross-validation over "
        f"{result.n_queries} queries, {result.n_settings} settings",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for n, title in zip(names, shown, strict=True):
        lines.append(
            f"out-of-sample gain over {title} ({result.baselines[n].label}): {result.gain(n):+.4f}"
        )
    for r in result.rivals:
        lines.append(f"out-of-sample gain over {r} (chosen per fold): {result.gain(r):+.4f}")
    lines.append(
        f"final (chosen on all queries): {result.final.label}, "
        f"{result.metric} {result.final_score:.4f} in sample"
    )
    return "\n".join(lines)


def _baseline_name(result: TuneResult, name: str) -> str:
    if name == "single":
        return f"better single ({result.baselines[name].first.mode})"
    return name


def tune_json(result: TuneResult) -> dict[str, Any]:
    return {
        "metric": result.metric,
        "n_queries": result.n_queries,
        "n_settings": result.n_settings,
        "folds": [
            {
                "fold": f.fold,
                "n_test": len(f.test),
                "chosen": f.chosen.label,
                "train": f.train_score,
                "held_out": f.test_score,
                "baselines_held_out": dict(f.baselines),
                "rivals": {r: {"chosen": c.label, "held_out": v} for r, (c, v) in f.rivals.items()},
            }
            for f in result.folds
        ],
        "out_of_sample": dict(result.out_of_sample),
        "baselines": {n: s.label for n, s in result.baselines.items()},
        "gain": {n: result.gain(n) for n in (*result.baselines, *result.rivals)},
        "final": result.final.label,
        "final_in_sample": result.final_score,
    }


__all__ = [
    "FoldResult",
    "SideRuns",
    "Setting",
    "TuneGrid",
    "TuneResult",
    "cache_side_runs",
    "cross_validate",
    "format_tune",
    "make_folds",
    "run_tune",
    "score_settings",
    "select_best",
    "setting_rows",
    "tune_json",
]

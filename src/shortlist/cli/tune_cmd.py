"""`shortlist tune`: choose a pipeline on your own judged queries, with cross-validation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from shortlist.cli._common import threads_option
from shortlist.errors import InvalidInputError


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InvalidInputError(f"{what} {text!r} must be comma-separated numbers") from None
    if not values:
        raise InvalidInputError(f"{what} {text!r} lists no values")
    return values


@click.command("tune")
@click.argument("dataset_dir", type=click.Path())
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Tune over this index (default: build or reuse one under --cache-dir, as eval does).",
)
@click.option("--folds", default=5, show_default=True, type=int, help="Cross-validation folds.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the fold split.")
@click.option("--metric", default="ndcg@10", show_default=True, help="What to maximise.")
@click.option(
    "--rerank",
    "rerankers",
    multiple=True,
    metavar="SPEC",
    help="Reranker(s) to tune K for (repeat; 'none' adds no reranker). Default: none.",
)
@click.option(
    "--k",
    "-k",
    "ks",
    default="20,50,100",
    show_default=True,
    help="First-stage depths K to search (with a reranker; without, the largest is used).",
)
@click.option("--top-n", default=10, show_default=True, type=click.IntRange(min=1),
              help="Results the tuned pipeline keeps (written to the pipeline file).")
@click.option("--k1", "k1s", default="0.9,1.2,1.5,2.0", show_default=True, help="BM25 k1 grid.")
@click.option("--b", "bs", default="0.4,0.75,0.9", show_default=True, help="BM25 b grid.")
@click.option(
    "--weights",
    default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
    show_default=True,
    help="BM25 weights w of the hybrid (dense 1 - w).",
)
@click.option(
    "--fusions", default="rrf,minmax,zscore,dbsf", show_default=True, help="Fusion methods."
)
@click.option("--rrf-k", "rrf_ks", default="10,60", show_default=True, help="RRF constants.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default="shortlist.toml",
    show_default=True,
    help="Where to write the chosen pipeline file.",
)
@click.option("--json", "json_path", type=click.Path(), default=None, help="Every number as JSON.")
@click.option("--split", default="test", show_default=True, help="Qrels split (qrels/SPLIT.tsv).")
@click.option(
    "--cache-dir", type=click.Path(), default=None, help="Default: DATASET_DIR/.shortlist"
)
@click.option("--model", default="default", show_default=True, help="Dense encoder for the index.")
@click.option("--no-dense", is_flag=True, help="Tune BM25 only (no dense vectors).")
@click.option("--max-queries", type=int, default=None, help="Tune on the first N queries only.")
@threads_option
def tune_cmd(
    dataset_dir: str,
    index_dir: str | None,
    folds: int,
    seed: int,
    metric: str,
    rerankers: tuple[str, ...],
    ks: str,
    top_n: int,
    k1s: str,
    bs: str,
    weights: str,
    fusions: str,
    rrf_ks: str,
    out_path: str,
    json_path: str | None,
    split: str,
    cache_dir: str | None,
    model: str,
    no_dense: bool,
    max_queries: int | None,
    threads: int | None,
) -> None:
    """Search fusion method and weights, RRF k, BM25 k1/b and K (with a reranker) on
    DATASET_DIR's judged queries; report k-fold cross-validated (out-of-sample) scores
    and write the setting chosen on all queries as a pipeline file."""
    from shortlist.cli.eval_cmd import _parse_ks, dataset_index
    from shortlist.evaluate.beir import load_beir
    from shortlist.evaluate.metrics import parse_metric
    from shortlist.evaluate.tune import TuneGrid, format_tune, run_tune, tune_json
    from shortlist.rerank.registry import parse_spec
    from shortlist.retrieve.fusion import FUSIONS
    from shortlist.store.index import Index

    parse_metric(metric)
    specs: list[str | None] = []
    for spec in rerankers or ("none",):
        if spec.strip() in ("", "none"):
            specs.append(None)
        else:
            parse_spec(spec)
            specs.append(spec)
    methods = tuple(m.strip() for m in fusions.split(",") if m.strip())
    for m in methods:
        if m not in FUSIONS:
            raise InvalidInputError(
                f"--fusions: unknown method {m!r}; valid: {', '.join(sorted(FUSIONS))}"
            )
    try:
        rrf_values = tuple(int(x) for x in rrf_ks.split(",") if x.strip())
    except ValueError:
        raise InvalidInputError(f"--rrf-k {rrf_ks!r} must be comma-separated integers") from None
    grid = TuneGrid(
        k1s=_floats(k1s, "--k1"),
        bs=_floats(bs, "--b"),
        methods=methods,
        weights=_floats(weights, "--weights"),
        rrf_ks=rrf_values,
        ks=tuple(_parse_ks(ks)),
        rerankers=tuple(dict.fromkeys(specs)),
    )

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    root = Path(dataset_dir)
    dataset = load_beir(root, split=split)
    queries = {q: t for q, t in sorted(dataset.queries.items()) if q in dataset.qrels}
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])
    if not queries:
        raise InvalidInputError(
            f"{root}: no query has relevance judgements in qrels/{split}.tsv; nothing to tune on"
        )
    if index_dir is not None:
        index = Index.open(index_dir, num_threads=threads)
        fixed = getattr(index, "fixed_bm25", None)  # a store that cannot rescore BM25
        ctx = click.get_current_context()
        if fixed is not None and all(
            ctx.get_parameter_source(p) == click.core.ParameterSource.DEFAULT
            for p in ("k1s", "bs")
        ):
            grid = dataclasses.replace(grid, k1s=(fixed[0],), bs=(fixed[1],))
            progress(
                f"BM25 k1={fixed[0]:g}, b={fixed[1]:g} are fixed by the index's store "
                "(Milvus); tuning the rest"
            )
    else:
        cache = Path(cache_dir) if cache_dir else root / ".shortlist"
        index = dataset_index(
            root, dataset.corpus, cache, model, dense=not no_dense, progress=progress,
            threads=threads,
        )
    result = run_tune(
        index,
        queries,
        dataset.qrels,
        grid,
        metric=metric,
        n_folds=folds,
        seed=seed,
        ignore_identical_ids=dataset.ignore_identical_ids,
        progress=progress,
    )
    click.echo(format_tune(result))
    oos = result.out_of_sample
    notes = {
        "dataset": root.name or str(root),
        "metric": result.metric,
        "queries": result.n_queries,
        "folds": len(result.folds),
        "seed": seed,
        "settings": result.n_settings,
        "in_sample": round(result.final_score, 6),
        "out_of_sample": {name: round(v, 6) for name, v in oos.items()},
    }
    config = result.final.config(top_n)
    config = type(config)(
        config.mode, config.k, config.top_n, config.reranker, config.bm25, config.fusion, notes
    )
    header = (
        f"written by shortlist tune on {root.name or root}: {len(queries)} queries, "
        f"{len(result.folds)}-fold cross-validation (seed {seed}), {result.metric} "
        f"{oos['tuned']:.4f} out of sample (default {oos['default']:.4f}, better single "
        f"first stage {oos['single']:.4f})"
    )
    config.save(out_path, header=header)
    click.echo(f"wrote {out_path}: {config.spec} k={config.k} top_n={config.top_n}", err=True)
    if json_path:
        Path(json_path).write_text(json.dumps(tune_json(result), indent=2), encoding="utf-8")
        click.echo(f"wrote {json_path}", err=True)

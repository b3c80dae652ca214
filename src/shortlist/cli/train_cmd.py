"""`shortlist train-reranker`: fine-tune a cross-encoder on (query, positive) pairs."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from shortlist.train.config import LOSSES


def command_line(ctx: click.Context) -> str:
    """The command with every argument and every option that differs from its default,
    in declaration order: what reproduces this run (sys.argv is the test runner's under
    click's CliRunner, so it is rebuilt from the parsed parameters)."""
    words = ["shortlist", "train-reranker"]
    for param in ctx.command.params:
        if param.name is None:
            continue
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            words.append(str(value))
        elif isinstance(param, click.Option):
            flag = max(param.opts, key=len)
            if param.is_flag:
                if value:
                    words.append(flag)
            elif value is not None and value != param.default:
                words += [flag, str(value)]
    return shlex.join(words)


@click.command("train-reranker")
@click.argument("train", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Output model folder.")
@click.option("--split", default="train", show_default=True, help="BEIR qrels split to train on.")
@click.option(
    "--dev",
    type=click.Path(),
    default=None,
    help="Dev pairs (JSONL or BEIR folder); default: TRAIN/qrels/DEV_SPLIT.tsv when it exists.",
)
@click.option("--dev-split", default="dev", show_default=True, help="BEIR qrels split for dev.")
@click.option(
    "--corpus",
    type=click.Path(),
    default=None,
    help="Extra passages for the negative pool (JSONL, BEIR corpus, CSV, folder).",
)
@click.option(
    "--init",
    default=None,
    help="HF model folder or hub id to start from (default: offline all-MiniLM-L6-v2).",
)
@click.option("--negatives-bm25", default=4, show_default=True, help="BM25 negatives per group.")
@click.option("--negatives-dense", default=4, show_default=True, help="Dense negatives per group.")
@click.option(
    "--no-dense-negatives",
    is_flag=True,
    help="Mine BM25 negatives only (the dense encoder is not loaded).",
)
@click.option("--depth", default=30, show_default=True, help="Sample negatives from ranks 1..N.")
@click.option(
    "--encoder", default="default", show_default=True, help="Dense encoder spec for mining."
)
@click.option("--loss", type=click.Choice(LOSSES), default="listwise", show_default=True,
              help="listwise (softmax cross-entropy over each query's group), margin-mse "
              "(distil --teacher's scores), or both.")
@click.option("--teacher", default=None, help="Reranker spec to distil from (margin-mse, both).")
@click.option(
    "--distill-weight", default=1.0, show_default=True, help="MarginMSE weight in --loss both."
)
@click.option(
    "--teacher-scale",
    default=1.0,
    show_default=True,
    help="Multiply teacher scores (e.g. 20 for bi-encoder cosines).",
)
@click.option("--max-length", default=256, show_default=True, help="Tokens per pair.")
@click.option("--batch-groups", default=8, show_default=True, help="Groups per micro-batch.")
@click.option("--grad-accum", default=1, show_default=True, help="Micro-batches per step.")
@click.option("--lr", default=2e-5, show_default=True, help="Peak learning rate (AdamW).")
@click.option("--weight-decay", default=0.01, show_default=True, help="AdamW weight decay.")
@click.option("--warmup-ratio", default=0.1, show_default=True, help="Linear warmup share.")
@click.option("--epochs", default=1, show_default=True, help="Passes over the training queries.")
@click.option("--max-steps", type=int, default=None, help="Optimizer steps (overrides --epochs).")
@click.option("--seed", default=0, show_default=True,
              help="Random seed: negative sampling, the new head's initialisation, the "
              "trainer's shuffling.")
@click.option(
    "--device",
    default=None,
    help="cpu or cuda (default: cuda if available; pick a GPU with CUDA_VISIBLE_DEVICES).",
)
@click.option("--save-every", default=500, show_default=True, help="Checkpoint every N steps.")
@click.option("--eval-every", default=500, show_default=True, help="Dev evaluation every N steps.")
@click.option("--eval-depth", default=30, show_default=True, help="Dev candidates per query.")
@click.option("--max-dev-queries", default=500, show_default=True, help="Cap on dev queries.")
@click.option(
    "--keep-checkpoints", default=2, show_default=True, help="Newest checkpoint-N folders kept."
)
@click.option(
    "--resume", is_flag=True, help="Continue from the latest OUT/checkpoints/checkpoint-N."
)
@click.option("--overwrite", is_flag=True, help="Start again even if --out holds a model.")
@click.option(
    "--work-dir", type=click.Path(), default=None, help="Index and caches (default: OUT/work)."
)
@click.option("--no-onnx", is_flag=True, help="Skip the int8 ONNX export.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or status lines.")
def train_reranker_cmd(
    train: str,
    out: str,
    split: str,
    dev: str | None,
    dev_split: str,
    corpus: str | None,
    init: str | None,
    negatives_bm25: int,
    negatives_dense: int,
    no_dense_negatives: bool,
    depth: int,
    encoder: str,
    loss: str,
    teacher: str | None,
    distill_weight: float,
    teacher_scale: float,
    max_length: int,
    batch_groups: int,
    grad_accum: int,
    lr: float,
    weight_decay: float,
    warmup_ratio: float,
    epochs: int,
    max_steps: int | None,
    seed: int,
    device: str | None,
    save_every: int,
    eval_every: int,
    eval_depth: int,
    max_dev_queries: int,
    keep_checkpoints: int,
    resume: bool,
    overwrite: bool,
    work_dir: str | None,
    no_onnx: bool,
    quiet: bool,
) -> None:
    """Fine-tune a cross-encoder on TRAIN: a JSONL file of {"query", "positive"} pairs
    or a BEIR folder (qrels/SPLIT.tsv). Hard negatives come from shortlist's own BM25
    and dense first stage over the corpus (or the positives plus --corpus). Writes an HF
    model folder usable as `cross-encoder:OUT` (and `?backend=onnx-int8`), with a card."""
    from shortlist.cli._common import interactive
    from shortlist.train import TrainConfig, train_reranker

    config = TrainConfig(
        train=Path(train),
        out=Path(out),
        split=split,
        dev=Path(dev) if dev else None,
        dev_split=dev_split,
        corpus=Path(corpus) if corpus else None,
        init=init,
        negatives_bm25=negatives_bm25,
        negatives_dense=0 if no_dense_negatives else negatives_dense,
        depth=depth,
        encoder=encoder,
        loss=loss,
        teacher=teacher,
        distill_weight=distill_weight,
        teacher_scale=teacher_scale,
        max_length=max_length,
        batch_groups=batch_groups,
        grad_accum=grad_accum,
        lr=lr,
        weight_decay=weight_decay,
        warmup_ratio=warmup_ratio,
        epochs=epochs,
        max_steps=max_steps,
        seed=seed,
        device=device,
        save_every=save_every,
        eval_every=eval_every,
        eval_depth=eval_depth,
        max_dev_queries=max_dev_queries,
        keep_checkpoints=keep_checkpoints,
        resume=resume,
        overwrite=overwrite,
        work_dir=Path(work_dir) if work_dir else None,
        export_int8=not no_onnx,
        show_progress=not quiet and interactive(),
        command_line=command_line(click.get_current_context()),
    )

    def log(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    result = train_reranker(config, log=log)
    best = result.evals.get(result.best_step) if result.best_step is not None else None
    metrics = "  ".join(f"{k}={v:.4f}" for k, v in (best or {}).items())
    click.echo(
        f"trained {result.steps} steps on {result.num_groups} groups -> {result.out}"
        + (f" (step {result.best_step}: {metrics})" if metrics else "")
    )

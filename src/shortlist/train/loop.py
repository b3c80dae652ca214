"""`train_reranker`: fine-tune a cross-encoder on groups of 1 positive + n mined negatives.

The run, in order: read the pairs (and dev set), index the negative pool and mine the
groups (both cached in the work dir), compute teacher scores when distilling (cached),
then optimise with sentence-transformers' `CrossEncoderTrainer` (`shortlist.train.trainer`
holds the glue). Every `save_every` steps the trainer writes `checkpoints/checkpoint-N`,
every `eval_every` steps the dev set is reranked and scored; the best dev step (nDCG@10,
step 0 included) is published at the output folder's root, followed by its int8 ONNX
file and model card.

Reproducibility: the seed goes to the model's new head (seeded before loading) and to
the trainer (`seed`, `data_seed`), which shuffles the groups with a seeded sampler. A
resumed run is transformers' `resume_from_checkpoint`: model, optimizer, scheduler, RNG
states and the position in the data are restored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.train.config import Prepared, TrainConfig, TrainResult
from shortlist.train.data import PairSet, load_pairs, merge_pools, with_corpus
from shortlist.train.evaluation import DEV_METRICS, build_devset, first_stage_metrics
from shortlist.train.negatives import (
    Group,
    cached_groups,
    first_stage,
    mine_groups,
    open_pool_index,
    passage_texts,
    pool_fingerprint,
)
from shortlist.train.quiet import quiet_transformers

Log = Callable[[str], None]

INT8_FILE = "model_int8.onnx"
"""The int8 ONNX model shipped in `OUT/onnx/` (used by `cross-encoder:OUT?backend=onnx-int8`)."""

PARAMS_FILE = "shortlist-params.json"
"""In `OUT/checkpoints/`: the parameters of the run that writes the checkpoints."""

# Parameters a resumed run must share with the run that wrote the checkpoint.
_RESUME_KEYS = (
    "train", "split", "corpus", "init", "negatives_bm25", "negatives_dense", "depth",
    "encoder", "loss", "teacher", "distill_weight", "teacher_scale", "max_length", "batch_groups",
    "grad_accum", "lr", "weight_decay", "warmup_ratio", "epochs", "max_steps", "seed",
)  # fmt: skip


def train_reranker(
    config: TrainConfig, *, log: Log | None = None, load_teacher: Any = None
) -> TrainResult:
    """Run the training `config` describes; see the module docstring.

    `log` receives one-line status messages (default: none). `load_teacher` builds the
    teacher from its spec (default `shortlist.rerank.registry.load_reranker`).
    Raises `InvalidInputError`/`CorpusFormatError` for bad data or options,
    `ModelLoadError` when the initial model cannot be loaded and
    `MissingDependencyError` without the `train` extra (datasets, accelerate).
    """
    say: Log = log or (lambda _msg: None)
    _require_trainer()
    _check_out(config)
    prepared = prepare(config, say, load_teacher)
    return _fit(config, prepared, say)


def prepare(config: TrainConfig, say: Log, load_teacher: Any = None) -> Prepared:
    """Read the data, mine the groups and score them with the teacher (all cached)."""
    train = load_pairs(config.train, split=config.split)
    if config.corpus is not None:
        from shortlist.corpus.readers import read_corpus

        train = with_corpus(train, read_corpus(config.corpus), config.corpus)
    dev_pairs = _dev_pairs(config, train)
    pool = merge_pools(train, *([dev_pairs] if dev_pairs is not None else []))
    for warning in train.warnings:
        say(f"train data: {warning}")
    say(
        f"train: {len(train.queries)} queries, {train.num_pairs} pairs; "
        f"negative pool: {len(pool)} passages"
        + (f"; dev: {len(dev_pairs.queries)} queries" if dev_pairs is not None else "")
    )
    dense = config.negatives_dense > 0
    work = config.work
    say(f"indexing the negative pool in {work}")
    index = open_pool_index(pool, work, dense=dense, encoder=config.encoder)
    fingerprint = _groups_fingerprint(config, train, pool_fingerprint(pool, config.encoder))

    def mine() -> list[Group]:
        say("mining hard negatives")
        stages = [("bm25", config.negatives_bm25)]
        if dense:
            stages.append(("dense", config.negatives_dense))
        ranked = {
            mode: first_stage(index, train.queries, mode=mode, depth=config.depth)
            for mode, _ in stages
        }
        candidates = {q: [ranked[mode][q] for mode, _ in stages] for q in train.queries}
        return mine_groups(train, pool, candidates, [n for _, n in stages], seed=config.seed)

    groups = cached_groups(work / f"groups-{fingerprint}.jsonl", mine)
    passages = passage_texts(groups, pool)
    teacher = None
    if config.loss != "listwise":
        from shortlist.train.teacher import teacher_scores

        assert config.teacher is not None
        say(f"scoring {len(groups)} groups with the teacher {config.teacher}")
        teacher = teacher_scores(config.teacher, groups, passages, work, load=load_teacher)
    dev = None
    dev_first = None
    if dev_pairs is not None:
        mode = "hybrid" if dense else "bm25"
        candidates = first_stage(index, dev_pairs.queries, mode=mode, depth=config.eval_depth)
        dev = build_devset(
            dev_pairs.queries,
            dev_pairs.qrels(),
            candidates,
            pool,
            max_queries=config.max_dev_queries,
            seed=config.seed,
        )
        dev_first = first_stage_metrics(dev)
    return Prepared(train, dev_pairs, groups, passages, teacher, dev, dev_first)


def _dev_pairs(config: TrainConfig, train: PairSet) -> PairSet | None:
    """The dev set: `--dev`, else the training BEIR folder's dev split when it has one.
    A dev split of the training folder shares the already-read corpus."""
    same_folder = config.train.is_dir()
    if config.dev is not None:
        same_folder = same_folder and config.dev.resolve() == config.train.resolve()
        return load_pairs(
            config.dev, split=config.dev_split, corpus_of=train if same_folder else None
        )
    if same_folder and (config.train / "qrels" / f"{config.dev_split}.tsv").is_file():
        return load_pairs(config.train, split=config.dev_split, corpus_of=train)
    return None


def _groups_fingerprint(config: TrainConfig, train: PairSet, pool_fp: str) -> str:
    h = hashlib.sha256(pool_fp.encode())
    params = [config.negatives_bm25, config.negatives_dense, config.depth, config.seed]
    h.update(json.dumps(params).encode())
    for qid in train.queries:
        h.update(json.dumps([qid, train.queries[qid], list(train.positives[qid])]).encode())
    return h.hexdigest()[:24]


def checkpoints_dir(out: Path) -> Path:
    """Where the trainer writes `checkpoint-N` folders."""
    return out / "checkpoints"


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete `checkpoints/checkpoint-N`: one with `trainer_state.json`,
    which transformers writes last (its `get_last_checkpoint` takes the highest number,
    complete or not)."""
    root = checkpoints_dir(out)
    if not root.is_dir():
        return None
    found = [
        (int(p.name.split("-", 1)[1]), p)
        for p in root.glob("checkpoint-*")
        if p.name.split("-", 1)[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def _check_out(config: TrainConfig) -> None:
    out = config.out
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} exists and is not a folder")
    used = (out / "config.json").exists() or checkpoints_dir(out).exists()
    if used and not (config.resume or config.overwrite):
        raise InvalidInputError(
            f"{out} already holds a model or checkpoints; pass --resume to continue that "
            "run or --overwrite to start again"
        )
    if used and config.overwrite and not config.resume:
        shutil.rmtree(checkpoints_dir(out), ignore_errors=True)


def resolve_device(device: str | None) -> str:
    """`device` ("cpu" or "cuda"), or "cuda" when available, else "cpu".

    transformers' `Trainer` places the model on the current CUDA device itself, so
    `cuda:N` is refused with the way to pick a GPU (CUDA_VISIBLE_DEVICES).
    """
    import torch

    if device:
        if device not in ("cpu", "cuda", "cuda:0"):
            raise InvalidInputError(
                f"--device {device}: use cpu or cuda (pick a GPU with CUDA_VISIBLE_DEVICES=N)"
            )
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidInputError(f"--device {device}: CUDA is not available here; use cpu")
        return "cuda" if device.startswith("cuda") else "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and random, before the new head is initialised."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def total_steps(config: TrainConfig, num_groups: int) -> int:
    """Optimizer steps of the run: `max_steps`, else epochs over the groups (the count
    transformers' `Trainer` arrives at; used for the warmup length)."""
    if config.max_steps is not None:
        return config.max_steps
    batches = math.ceil(num_groups / config.batch_groups)
    return max(1, config.epochs * math.ceil(batches / config.grad_accum))


def _fit(config: TrainConfig, prep: Prepared, say: Log) -> TrainResult:
    from sentence_transformers.cross_encoder import CrossEncoderTrainer

    from shortlist.train import trainer as st

    device = resolve_device(config.device)
    out = config.out
    if not prep.groups:
        raise InvalidInputError("no training groups; the training data has no pairs")
    steps = total_steps(config, len(prep.groups))
    latest = latest_checkpoint(out) if config.resume else None
    if config.resume and latest is None:
        say(f"no checkpoint in {checkpoints_dir(out)}; starting from the beginning")
    if latest is not None:
        _check_resumable(config, checkpoints_dir(out) / PARAMS_FILE)
        say(f"resuming from {latest}")
    _write_params(config, checkpoints_dir(out) / PARAMS_FILE)
    seed_everything(config.seed)
    model = st.load_model(
        config.init or _default_init(), max_length=config.max_length, device=device
    )
    teacher = prep.teacher * config.teacher_scale if prep.teacher is not None else None
    dataset = st.group_dataset(prep.groups, prep.passages, teacher)
    has_dev = prep.dev is not None
    args = st.training_args(
        config,
        output_dir=checkpoints_dir(out),
        steps=steps,
        device=device,
        has_dev=has_dev,
        resuming=latest is not None,
    )
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=st.build_loss(config.loss, model, config.distill_weight),
        evaluator=st.DevEvaluator(prep.dev) if prep.dev is not None else None,
        callbacks=[st.PublishBest(lambda m: publish(m, out), say)],
    )
    st.quiet_console(trainer, config.show_progress)
    with quiet_transformers():
        trainer.train(resume_from_checkpoint=str(latest) if latest is not None else None)
    history = trainer.state.log_history
    if not has_dev:
        publish(model, out)
    best = st.best_eval(history)
    done = int(trainer.state.global_step)
    onnx_path = None
    if config.export_int8:
        from shortlist.runtime.onnx import INT8, ship_artifact

        say("exporting the int8 ONNX model")
        onnx_path = ship_artifact(out, INT8, INT8_FILE, cache_dir=config.work / "onnx-cache")
    from shortlist.train.card import write_card

    result = TrainResult(
        out=out,
        steps=done,
        losses=tuple(float(e["loss"]) for e in history if "loss" in e),
        evals={
            int(e["step"]): {m: float(e[f"eval_{m}"]) for m in DEV_METRICS}
            for e in history
            if st.EVAL_KEY in e
        },
        best_step=best[1] if best is not None else done,
        onnx_int8=onnx_path,
        num_groups=len(prep.groups),
    )
    write_card(out, config, prep, result)
    return result


def _require_trainer() -> None:
    """Fail before indexing and mining when the trainer's dependencies are missing."""
    from shortlist._optional import require

    for module in ("datasets", "accelerate"):
        require(module, "train", "training a reranker")


def _default_init() -> str:
    from shortlist.retrieve.encoder import default_model_path

    return default_model_path()


def _resume_params(config: TrainConfig) -> dict[str, Any]:
    now = config.to_dict()
    return {k: now[k] for k in _RESUME_KEYS}


def _write_params(config: TrainConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_resume_params(config), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _check_resumable(config: TrainConfig, path: Path) -> None:
    saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    now = _resume_params(config)
    changed = [k for k in _RESUME_KEYS if k in saved and saved[k] != now[k]]
    if changed:
        details = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in changed)
        raise InvalidInputError(
            f"cannot resume: the checkpoint was trained with other parameters ({details}); "
            "use the original parameters, or --overwrite to start again"
        )


def publish(model: Any, out: Path) -> None:
    """Save the cross-encoder's transformers model and tokenizer at `out`'s root (a plain
    HF folder), each file renamed into place."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".publish-", dir=out))
    try:
        with quiet_transformers():
            model.model.save_pretrained(str(tmp))
            model.tokenizer.save_pretrained(str(tmp))
        for item in tmp.iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

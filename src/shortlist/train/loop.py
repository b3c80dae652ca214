"""`train_reranker`: fine-tune a cross-encoder on groups of 1 positive + n mined negatives.

The run, in order: read the pairs (and dev set), index the negative pool and mine the
groups (both cached in the work dir), compute teacher scores when distilling (cached),
then optimise. Every `save_every` steps a checkpoint is written, every `eval_every`
steps the dev set is reranked and scored; the best dev checkpoint (nDCG@10) is
published at the output folder's root, followed by its int8 ONNX file and model card.

Reproducibility: torch, numpy and random are seeded from `seed`; the order of groups in
epoch e is a permutation drawn from a generator seeded with (seed, e), so the batch of
any step is known without replaying the run, and a resumed run (which restores the
global RNG states, model, optimizer and scheduler) ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.errors import InvalidInputError, ModelLoadError
from shortlist.train import checkpoint as ckpt
from shortlist.train.config import Prepared, TrainConfig, TrainResult
from shortlist.train.data import PairSet, load_pairs, merge_pools, with_corpus
from shortlist.train.evaluation import (
    DEV_METRICS,
    build_devset,
    evaluate_reranking,
    first_stage_metrics,
)
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

LABEL = "relevance"
"""The single label of a trained cross-encoder (its logit is the relevance score)."""

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
    Raises `InvalidInputError`/`CorpusFormatError` for bad data or options and
    `ModelLoadError` when the initial model cannot be loaded.
    """
    say: Log = log or (lambda _msg: None)
    _check_out(config)
    prepared = prepare(config, say, load_teacher)
    return _optimise(config, prepared, say)


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


def _check_out(config: TrainConfig) -> None:
    out = config.out
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} exists and is not a folder")
    used = (out / "config.json").exists() or ckpt.checkpoints_dir(out).exists()
    if used and not (config.resume or config.overwrite):
        raise InvalidInputError(
            f"{out} already holds a model or checkpoints; pass --resume to continue that "
            "run or --overwrite to start again"
        )
    if used and config.overwrite and not config.resume:
        shutil.rmtree(ckpt.checkpoints_dir(out), ignore_errors=True)


def resolve_device(device: str | None) -> str:
    """`device`, or "cuda" when available, else "cpu"."""
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidInputError(f"--device {device}: CUDA is not available here; use cpu")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and random: training draws from their global RNGs."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_model(source: str | Path) -> tuple[Any, Any]:
    """A 1-label sequence classifier and its fast tokenizer from an HF folder or hub id.

    An encoder without a classification head (e.g. a sentence-transformers folder) gets
    a freshly initialised one; transformers' report of those new weights is expected
    here and kept off the console.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from shortlist.rerank.cross_encoder import resolve_model_path

    path = resolve_model_path(str(source))
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                str(path), num_labels=1, ignore_mismatched_sizes=True
            )
            tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a model to fine-tune from {path}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{source}: a fast tokenizer (tokenizer.json) is required")
    model.config.id2label = {0: LABEL}
    model.config.label2id = {LABEL: 0}
    return model, tokenizer


def group_scores(
    model: Any,
    tokenizer: Any,
    batch: Sequence[Group],
    passages: Mapping[str, str],
    max_length: int,
    device: str,
) -> Any:
    """The model's logits for every (query, passage) of `batch`, shape (groups, 1 + n)."""
    queries = [g.query for g in batch for _ in g.passage_ids]
    texts = [t for g in batch for t in g.texts(passages)]
    logits = _logits(model, tokenizer, queries, texts, max_length, device)
    return logits.view(len(batch), -1)


def _logits(
    model: Any,
    tokenizer: Any,
    queries: Sequence[str],
    texts: Sequence[str],
    max_length: int,
    device: str,
) -> Any:
    import torch

    enc = tokenizer(
        list(queries),
        list(texts),
        truncation="longest_first",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    ).to(device)
    if device.startswith("cuda"):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return model(**enc).logits[:, 0].float()
    return model(**enc).logits[:, 0]


def pair_scorer(
    model: Any, tokenizer: Any, max_length: int, device: str, batch_size: int = 64
) -> Callable[[Sequence[tuple[str, str]]], np.ndarray]:
    """Score pairs with the model in eval mode and no gradients (for dev evaluation)."""
    import torch

    def score(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        was_training = model.training
        model.eval()
        out = np.zeros(len(pairs), dtype=np.float64)
        try:
            with torch.no_grad():
                for start in range(0, len(pairs), batch_size):
                    chunk = pairs[start : start + batch_size]
                    logits = _logits(
                        model,
                        tokenizer,
                        [q for q, _ in chunk],
                        [p for _, p in chunk],
                        max_length,
                        device,
                    )
                    out[start : start + len(chunk)] = logits.float().cpu().numpy()
        finally:
            model.train(was_training)
        return out

    return score


def compute_loss(config: TrainConfig, scores: Any, teacher: Any) -> Any:
    from shortlist.train import losses

    if config.loss == "listwise":
        return losses.listwise_ce(scores)
    if config.loss == "margin-mse":
        return losses.margin_mse(scores, teacher)
    return losses.combined(scores, teacher, config.distill_weight)


def total_steps(config: TrainConfig, num_groups: int) -> int:
    """Optimizer steps of the run: `max_steps`, else epochs over the groups."""
    if config.max_steps is not None:
        return config.max_steps
    batches = math.ceil(num_groups / config.batch_groups)
    return max(1, math.ceil(config.epochs * batches / config.grad_accum))


class _Order:
    """Which groups micro-batch m holds: epoch e is a permutation seeded by (seed, e)."""

    def __init__(self, num_groups: int, batch_groups: int, seed: int) -> None:
        self._n = num_groups
        self._bg = batch_groups
        self._seed = seed
        self._per_epoch = math.ceil(num_groups / batch_groups)
        self._perms: dict[int, list[int]] = {}

    def batch(self, micro: int) -> list[int]:
        import torch

        epoch, pos = divmod(micro, self._per_epoch)
        if epoch not in self._perms:
            gen = torch.Generator().manual_seed(self._seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self._n, generator=gen).tolist()}
        return self._perms[epoch][pos * self._bg : (pos + 1) * self._bg]


def _optimizer(config: TrainConfig, model: Any) -> Any:
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr)


def _optimise(config: TrainConfig, prep: Prepared, say: Log) -> TrainResult:
    import torch
    from transformers import get_linear_schedule_with_warmup

    device = resolve_device(config.device)
    out = config.out
    groups = prep.groups
    if not groups:
        raise InvalidInputError("no training groups; the training data has no pairs")
    steps = total_steps(config, len(groups))
    seed_everything(config.seed)
    latest = ckpt.latest_checkpoint(out) if config.resume else None
    if config.resume and latest is None:
        say(f"no checkpoint in {ckpt.checkpoints_dir(out)}; starting from the beginning")
    state: dict[str, Any] = {}
    if latest is not None:
        state = ckpt.load_state(latest)
        _check_resumable(config, state)
        say(f"resuming from {latest} (step {state['step']} of {steps})")
    source: str | Path = latest if latest is not None else (config.init or _default_init())
    model, tokenizer = load_model(source)
    model.to(device)
    model.train()
    optimizer = _optimizer(config, model)
    warmup = int(config.warmup_ratio * steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, steps)
    start = 0
    losses: list[float] = []
    evals: dict[int, dict[str, float]] = {}
    best: tuple[float, int] | None = None
    if latest is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        start = int(state["step"])
        losses = [float(x) for x in state["losses"]]
        evals = {int(k): dict(v) for k, v in state["evals"].items()}
        saved_best = state.get("best")
        best = (float(saved_best[0]), int(saved_best[1])) if saved_best is not None else None
    teacher = (
        torch.as_tensor(prep.teacher * config.teacher_scale, dtype=torch.float32)
        if prep.teacher is not None
        else None
    )
    order = _Order(len(groups), config.batch_groups, config.seed)
    score_fn = pair_scorer(model, tokenizer, config.max_length, device)

    def evaluate(step: int) -> None:
        nonlocal best
        if prep.dev is None:
            return
        metrics = evaluate_reranking(prep.dev, score_fn)
        evals[step] = metrics
        main = metrics[DEV_METRICS[0]]
        say(f"step {step}: dev " + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        if best is None or main > best[0]:
            best = (main, step)
            publish(model, tokenizer, out)

    def save(step: int) -> None:
        payload = {
            "step": step,
            "losses": list(losses),
            "evals": {str(k): v for k, v in evals.items()},
            "best": list(best) if best is not None else None,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": ckpt.rng_state(),
            "config": {k: config.to_dict()[k] for k in _RESUME_KEYS},
        }
        with quiet_transformers():
            ckpt.save_checkpoint(out, step, model, tokenizer, payload)
        ckpt.prune_checkpoints(out, config.keep_checkpoints)

    if start == 0 and prep.dev is not None and 0 not in evals:
        evaluate(0)
    bar = _progress(config, steps, start)
    try:
        for step in range(start, steps):
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for micro in range(config.grad_accum):
                idx = order.batch(step * config.grad_accum + micro)
                batch = [groups[i] for i in idx]
                scores = group_scores(
                    model, tokenizer, batch, prep.passages, config.max_length, device
                )
                target = teacher[idx].to(device) if teacher is not None else None
                loss = compute_loss(config, scores, target) / config.grad_accum
                loss.backward()
                step_loss += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(step_loss)
            done = step + 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            if config.eval_every and done % config.eval_every == 0 and done < steps:
                evaluate(done)
            if config.save_every and done % config.save_every == 0 and done < steps:
                save(done)
    finally:
        bar.close()
    if steps not in evals and prep.dev is not None:
        evaluate(steps)
    if start < steps or latest is None:
        save(steps)
    if prep.dev is None:
        publish(model, tokenizer, out)
    best_step = best[1] if best is not None else steps
    onnx_path = None
    if config.export_int8:
        from shortlist.rerank.backends.onnx import INT8, ship_artifact

        say("exporting the int8 ONNX model")
        onnx_path = ship_artifact(out, INT8, INT8_FILE, cache_dir=config.work / "onnx-cache")
    from shortlist.train.card import write_card

    result = TrainResult(
        out=out,
        steps=steps,
        losses=tuple(losses),
        evals=evals,
        best_step=best_step,
        onnx_int8=onnx_path,
        num_groups=len(groups),
    )
    write_card(out, config, prep, result)
    return result


def _default_init() -> str:
    from shortlist.retrieve.encoder import default_model_path

    return default_model_path()


def _check_resumable(config: TrainConfig, state: Mapping[str, Any]) -> None:
    saved = state.get("config", {})
    now = config.to_dict()
    changed = [k for k in _RESUME_KEYS if k in saved and saved[k] != now[k]]
    if changed:
        details = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in changed)
        raise InvalidInputError(
            f"cannot resume: the checkpoint was trained with other parameters ({details}); "
            "use the original parameters, or --overwrite to start again"
        )


def publish(model: Any, tokenizer: Any, out: Path) -> None:
    """Save model and tokenizer at `out`'s root, each file renamed into place."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".publish-", dir=out))
    try:
        with quiet_transformers():
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
        for item in tmp.iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _progress(config: TrainConfig, steps: int, start: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=steps,
        initial=start,
        desc="train",
        unit="step",
        file=sys.stderr,
        disable=not config.show_progress,
        dynamic_ncols=True,
    )

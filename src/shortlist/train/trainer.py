"""The sentence-transformers side of a run: the model, the dataset of groups, the losses,
the dev evaluator and the callback that publishes the best dev step.

`CrossEncoderTrainer` (transformers' `Trainer` underneath) does the optimisation: AdamW
with linear warmup and decay, gradient clipping, gradient accumulation, checkpoints,
resuming (model, optimizer, scheduler, RNG states, data position) and logging. What is
left here is what it does not know: our group layout, our losses' exact form, and our
dev metrics over first-stage candidates.

This module imports sentence-transformers, datasets and torch at import time; `loop`
imports it only inside `train_reranker`, so `import shortlist.train` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers.base.evaluation import BaseEvaluator
from sentence_transformers.base.modules import Transformer
from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainingArguments
from sentence_transformers.cross_encoder.losses import (
    MarginMSELoss,
    MultipleNegativesRankingLoss,
)
from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from shortlist.errors import ModelLoadError
from shortlist.train.config import TrainConfig
from shortlist.train.evaluation import DEV_METRICS, DevSet, evaluate_reranking
from shortlist.train.negatives import Group
from shortlist.train.quiet import quiet_transformers

LABEL = "relevance"
"""The single label of a trained cross-encoder (its logit is the relevance score)."""

EVAL_KEY = f"eval_{DEV_METRICS[0]}"
"""The trainer's log key of the metric that picks the best step."""


def load_model(source: str | Path, *, max_length: int, device: str) -> CrossEncoder:
    """A 1-label `CrossEncoder` over an HF folder or hub id.

    Built from an explicit sequence-classification `Transformer` module rather than
    `CrossEncoder(path)`, so a sentence-transformers bi-encoder folder (the default
    all-MiniLM-L6-v2) is read as a backbone with a fresh head instead of as its own
    pooling pipeline. transformers' report of the new head's weights is expected here
    and kept off the console.
    """
    from shortlist.runtime.models import resolve_model_path

    path = resolve_model_path(str(source))
    try:
        with quiet_transformers():
            transformer = Transformer(
                str(path),
                transformer_task="sequence-classification",
                config_kwargs={"num_labels": 1},
                model_kwargs={"ignore_mismatched_sizes": True},
                max_seq_length=max_length,
            )
            model = CrossEncoder(modules=[transformer], device=device)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a model to fine-tune from {path}: {exc}") from exc
    if not getattr(transformer.tokenizer, "is_fast", False):
        raise ModelLoadError(f"{source}: a fast tokenizer (tokenizer.json) is required")
    config = transformer.model.config
    config.id2label = {0: LABEL}
    config.label2id = {LABEL: 0}
    return model


def training_args(
    config: TrainConfig,
    *,
    output_dir: Path,
    steps: int,
    device: str,
    has_dev: bool,
    resuming: bool,
) -> CrossEncoderTrainingArguments:
    """The trainer's arguments for `config`: AdamW with linear warmup (`warmup_ratio` of
    `steps`) and decay, clipping at 1.0, a log entry per step (the loss curve), dev
    evaluation at step 0 (unless resuming), every `eval_every` steps and at the end,
    checkpoints every `save_every` steps and at the end (0: only at the end)."""
    return CrossEncoderTrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_groups,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=int(config.warmup_ratio * steps),
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="steps",
        save_steps=config.save_every or steps,
        save_total_limit=config.keep_checkpoints,
        eval_strategy="steps" if has_dev else "no",
        eval_steps=(config.eval_every or steps) if has_dev else None,
        eval_on_start=has_dev and not resuming,
        logging_strategy="steps",
        logging_steps=1,
        report_to="none",
        disable_tqdm=not config.show_progress,
        use_cpu=device == "cpu",
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        dataloader_drop_last=False,
    )


def group_dataset(
    groups: Sequence[Group], passages: Mapping[str, str], teacher: np.ndarray | None
) -> Any:
    """A `datasets.Dataset` with columns query, positive, negative_1..n (and label: the
    teacher's scores of the group, positive first, when distilling). The column order
    is the loss's input order. Texts are copied per group into Arrow memory."""
    from datasets import Dataset

    width = len(groups[0].passage_ids)
    columns: dict[str, list[Any]] = {"query": [g.query for g in groups]}
    names = ["positive", *(f"negative_{j}" for j in range(1, width))]
    for j, name in enumerate(names):
        columns[name] = [passages[g.passage_ids[j]] for g in groups]
    if teacher is not None:
        columns["label"] = teacher.astype(np.float32).tolist()
    return Dataset.from_dict(columns)


class ListwiseLoss(MultipleNegativesRankingLoss):
    """Softmax cross-entropy over one group, the positive first, hard negatives only.

    ``loss = mean_g [ -log( exp(s_g0) / sum_j exp(s_gj) ) ]``: the "localized
    contrastive estimation" loss of Gao, Dai and Callan, ECIR 2021
    (https://arxiv.org/abs/2101.08751). It is sentence-transformers'
    `MultipleNegativesRankingLoss` on raw logits (no activation, scale 1) without its
    random in-batch negatives (ST's `num_negatives` cannot be 0). `ListNetLoss` would
    not do: its target is the softmax of the labels, so a 1/0 label gives the positive
    e/(e + n), not 1.

    All (1 + n) x groups pairs of a batch go through the model in one call, where ST
    makes one call per column: measured in benchmarks/train_speed.py.
    """

    def __init__(self, model: CrossEncoder) -> None:
        super().__init__(model, num_negatives=None, scale=1, activation_fn=None)

    def get_in_batch_negatives(
        self, anchors: list[str], candidates: list[list[str]]
    ) -> Generator[list[str], None, None]:
        yield from ()

    def column_scores(self, inputs: list[list[str]]) -> list[torch.Tensor]:
        """The logits of (query, column) for every passage column, positive first."""
        anchors = inputs[0]
        pairs = [
            [a, text] for column in inputs[1:] for a, text in zip(anchors, column, strict=True)
        ]
        scores = self.call_model_with_pairs(pairs)
        return list(scores.view(len(inputs) - 1, len(anchors)))

    def forward(
        self,
        inputs: list[list[str]],
        labels: torch.Tensor | list[torch.Tensor] | None = None,
        prompt: str | None = None,
        task: str | None = None,
    ) -> torch.Tensor:
        # ST annotates `logits` as a Tensor; it is the list of per-column logits.
        return self.calculate_loss(self.column_scores(inputs), len(inputs[0]))  # type: ignore[arg-type]


class ListwiseWithMarginMSE(ListwiseLoss):
    """``listwise + distill_weight * MarginMSE`` over the same forward pass.

    The MarginMSE term is ST's `MarginMSELoss` formula (Hofstätter et al. 2020,
    https://arxiv.org/abs/2010.02666) with the teacher's scores, positive first, as
    labels; calling the two ST losses one after the other would run the model twice.
    """

    def __init__(self, model: CrossEncoder, distill_weight: float) -> None:
        super().__init__(model)
        self.distill_weight = distill_weight

    def forward(
        self,
        inputs: list[list[str]],
        labels: torch.Tensor | list[torch.Tensor] | None = None,
        prompt: str | None = None,
        task: str | None = None,
    ) -> torch.Tensor:
        if labels is None:
            raise ValueError("listwise + MarginMSE needs teacher scores as labels")
        columns = self.column_scores(inputs)
        # ST annotates `logits` as a Tensor; it is the list of per-column logits.
        listwise = self.calculate_loss(columns, len(inputs[0]))  # type: ignore[arg-type]
        scores = torch.stack(columns, dim=1).float()
        teacher = torch.stack(list(labels)) if isinstance(labels, list) else labels
        teacher = teacher.to(scores.device).float()
        margins = scores[:, :1] - scores[:, 1:]
        target = teacher[:, :1] - teacher[:, 1:]
        return listwise + self.distill_weight * torch.nn.functional.mse_loss(margins, target)

    def get_config_dict(self) -> dict[str, Any]:
        return {"distill_weight": self.distill_weight}


def build_loss(kind: str, model: CrossEncoder, distill_weight: float) -> torch.nn.Module:
    """The loss named by `TrainConfig.loss`: listwise, margin-mse (ST's `MarginMSELoss`,
    labels = teacher scores positive first) or both."""
    if kind == "listwise":
        return ListwiseLoss(model)
    if kind == "margin-mse":
        return MarginMSELoss(model)
    return ListwiseWithMarginMSE(model, distill_weight)


class DevEvaluator(BaseEvaluator):
    """nDCG@10 / MRR@10 of reranking each dev query's first-stage candidates
    (`shortlist.train.evaluation`), as a sentence-transformers evaluator."""

    def __init__(self, dev: DevSet, batch_size: int = 64) -> None:
        super().__init__()
        self.dev = dev
        self.batch_size = batch_size
        self.primary_metric = DEV_METRICS[0]

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        def score(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
            raw = model.predict(
                list(pairs),
                batch_size=self.batch_size,
                activation_fn=torch.nn.Identity(),
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            return np.asarray(raw, dtype=np.float64)

        return evaluate_reranking(self.dev, score)


def best_eval(log_history: Sequence[Mapping[str, Any]]) -> tuple[float, int] | None:
    """(value, step) of the best `EVAL_KEY` in the trainer's log; the earliest step wins
    a tie, as the first model to reach a value is the one kept."""
    evals = [(float(e[EVAL_KEY]), int(e["step"])) for e in log_history if EVAL_KEY in e]
    return max(evals, key=lambda vs: (vs[0], -vs[1])) if evals else None


class PublishBest(TrainerCallback):
    """After each dev evaluation, reports it and publishes the model at the output root
    when it is the best so far. The trainer's log history (saved with each checkpoint)
    holds every evaluation, so a resumed run knows the best step before the resume."""

    def __init__(self, publish: Callable[[CrossEncoder], None], say: Callable[[str], None]):
        self._publish = publish
        self._say = say

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        metrics: Mapping[str, float] = kwargs["metrics"]
        step = state.global_step
        shown = {k[len("eval_") :]: v for k, v in metrics.items() if k[5:] in DEV_METRICS}
        self._say(f"step {step}: dev " + "  ".join(f"{k}={v:.4f}" for k, v in shown.items()))
        best = best_eval(state.log_history)
        if best is not None and best[1] == step and EVAL_KEY in metrics:
            self._publish(kwargs["model"])


class _QuietProgress(ProgressCallback):
    """transformers' progress bar without its `on_log`, which writes every log entry
    (here one per step, for the loss curve) under the bar."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        return None


def quiet_console(trainer: Any, show_progress: bool) -> None:
    """Keep per-step log lines off the console: transformers prints each one, through
    its progress bar or, with the bar off, its `PrinterCallback`."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if show_progress:
        trainer.add_callback(_QuietProgress())

"""`TrainConfig`: every parameter of a training run; `Prepared`: the inputs computed before
its first step; `TrainResult`: what it produced.

`Prepared` lives here, not in `loop`, so that the model card (`card`) can describe a run
without importing the loop that writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shortlist.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from shortlist.train.data import PairSet
    from shortlist.train.evaluation import DevSet
    from shortlist.train.negatives import Group

LOSSES = ("listwise", "margin-mse", "both")
"""Names accepted by `TrainConfig.loss`."""


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Paths may be str or Path; `None` means "use the default".

    Data
        `train`: JSONL of pairs or a BEIR folder; `split`: its qrels split (BEIR);
        `dev`: JSONL or BEIR folder for evaluation (None: the BEIR folder's `dev_split`
        when it exists); `corpus`: extra passages for the negative pool (any format
        `shortlist.corpus.read_corpus` reads).
    Negatives
        `negatives_bm25`, `negatives_dense` per group, sampled from ranks 1..`depth`
        of each first stage, skipping the query's positives; `encoder`: the dense
        encoder spec (`shortlist.retrieve.encoders.load_encoder`); a group is topped up
        with random pool passages when the first stage has too few.
    Model and loss
        `init`: HF folder or hub id (None: the offline all-MiniLM-L6-v2 folder);
        `loss`: one of `LOSSES`; `teacher`: a reranker spec (needed for margin-mse/both);
        `distill_weight`: weight of MarginMSE in `both`; `teacher_scale` multiplies the
        teacher's raw scores before margins are taken (a bi-encoder's cosines differ by
        tenths where a cross-encoder's logits differ by units; ~20 puts them on a par).
    Optimisation (sentence-transformers' `CrossEncoderTrainer`)
        AdamW with `lr`, `weight_decay`, linear warmup over `warmup_ratio` of the steps
        then linear decay; `batch_groups` groups per micro-batch, `grad_accum`
        micro-batches per optimizer step; `epochs` or `max_steps` (which wins when set);
        `device`: "cpu" or "cuda" (None: cuda when available).
    Bookkeeping
        `save_every`, `eval_every` in optimizer steps (0: only at the end);
        `keep_checkpoints`: how many `checkpoints/checkpoint-N` to keep; `resume`:
        continue from the latest complete checkpoint in `out`; `work_dir`: index, mined groups and
        teacher scores (None: `out/work`).
    """

    train: Path
    out: Path
    split: str = "train"
    dev: Path | None = None
    dev_split: str = "dev"
    corpus: Path | None = None
    init: str | None = None
    negatives_bm25: int = 4
    negatives_dense: int = 4
    depth: int = 30
    encoder: str = "default"
    loss: str = "listwise"
    teacher: str | None = None
    distill_weight: float = 1.0
    teacher_scale: float = 1.0
    max_length: int = 256
    batch_groups: int = 8
    grad_accum: int = 1
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    epochs: int = 1
    max_steps: int | None = None
    seed: int = 0
    device: str | None = None
    save_every: int = 500
    eval_every: int = 500
    eval_depth: int = 30
    max_dev_queries: int | None = 500
    keep_checkpoints: int = 2
    resume: bool = False
    work_dir: Path | None = None
    export_int8: bool = True
    show_progress: bool = False
    command_line: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name in ("train", "out", "dev", "corpus", "work_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.loss not in LOSSES:
            raise InvalidInputError(
                f"unknown loss {self.loss!r}; choose one of: {', '.join(LOSSES)}"
            )
        if self.loss != "listwise" and not self.teacher:
            raise InvalidInputError(
                f"loss {self.loss!r} distils from a teacher; pass --teacher SPEC "
                "(e.g. bi-encoder or cross-encoder:PATH)"
            )
        positive = {
            "max_length": self.max_length,
            "batch_groups": self.batch_groups,
            "grad_accum": self.grad_accum,
            "depth": self.depth,
            "eval_depth": self.eval_depth,
            "keep_checkpoints": self.keep_checkpoints,
        }
        for name, value in positive.items():
            if value < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {value}")
        for name in ("negatives_bm25", "negatives_dense", "save_every", "eval_every", "epochs"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.negatives_bm25 + self.negatives_dense < 1:
            raise InvalidInputError("a group needs at least one negative (--negatives-bm25/dense)")
        if self.max_steps is not None and self.max_steps < 1:
            raise InvalidInputError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.max_steps is None and self.epochs < 1:
            raise InvalidInputError("give --epochs >= 1 or --max-steps")
        if not self.lr > 0:
            raise InvalidInputError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise InvalidInputError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not self.teacher_scale > 0:
            raise InvalidInputError(f"teacher_scale must be > 0, got {self.teacher_scale}")
        if self.distill_weight < 0:
            raise InvalidInputError(f"distill_weight must be >= 0, got {self.distill_weight}")

    @property
    def negatives(self) -> int:
        """Negatives per group."""
        return self.negatives_bm25 + self.negatives_dense

    @property
    def work(self) -> Path:
        return self.work_dir if self.work_dir is not None else self.out / "work"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Prepared:
    """Everything computed before the first step: data, groups (and the texts of their
    passages, by id), teacher scores, dev set."""

    train: PairSet
    dev_pairs: PairSet | None
    groups: list[Group]
    passages: Mapping[str, str]
    teacher: np.ndarray | None
    dev: DevSet | None
    dev_first_stage: Mapping[str, float] | None


@dataclass(frozen=True)
class TrainResult:
    """What a run produced.

    `out`: the final model folder (the best dev checkpoint, or the last step without a
    dev set); `steps`: optimizer steps done; `losses`: the loss of every optimizer step
    (resumed runs include the steps before the resume); `evals`: step -> metrics;
    `best_step`: the step whose weights are in `out`; `onnx_int8`: the shipped int8 file.
    """

    out: Path
    steps: int
    losses: tuple[float, ...]
    evals: Mapping[int, Mapping[str, float]] = field(default_factory=dict)
    best_step: int | None = None
    onnx_int8: Path | None = None
    num_groups: int = 0

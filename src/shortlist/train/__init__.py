"""Fine-tuning cross-encoder rerankers on (query, positive passage) pairs.

The pieces, one per module:

- `data`: training pairs from JSONL or a BEIR folder (`PairSet`);
- `negatives`: hard negatives mined with shortlist's own first stage (`Group`);
- `teacher`: teacher scores for distillation, computed once and cached;
- `evaluation`: nDCG@10 / MRR@10 of reranking first-stage candidates of dev queries;
- `trainer`: the sentence-transformers glue: model, dataset, losses, dev evaluator,
  best-step callback (optimisation, checkpoints and resume are `CrossEncoderTrainer`'s);
- `card`: the model card (`README.md`);
- `config`: `TrainConfig`, `Prepared`, `TrainResult`;
- `loop`: `train_reranker`: prepare the groups, then run the trainer.

torch, datasets and sentence-transformers are imported lazily inside functions (the
`trainer` module is imported only by `train_reranker`), so importing this package is cheap.
"""

from __future__ import annotations

from shortlist.train.config import TrainConfig, TrainResult
from shortlist.train.data import PairSet, load_pairs
from shortlist.train.loop import train_reranker

__all__ = ["PairSet", "TrainConfig", "TrainResult", "load_pairs", "train_reranker"]

"""Fine-tuning cross-encoder rerankers on (query, positive passage) pairs.

The pieces, one per module:

- `data`: training pairs from JSONL or a BEIR folder (`PairSet`);
- `negatives`: hard negatives mined with shortlist's own first stage (`Group`);
- `teacher`: teacher scores for distillation, computed once and cached;
- `losses`: listwise cross-entropy and MarginMSE, pure torch functions;
- `checkpoint`: atomic checkpoints with optimizer, scheduler and RNG state;
- `evaluation`: nDCG@10 / MRR@10 of reranking first-stage candidates of dev queries;
- `card`: the model card (`README.md`);
- `loop`: `TrainConfig`, `train_reranker`, `TrainResult`.

torch is imported lazily inside functions, so importing this package is cheap.
"""

from __future__ import annotations

from shortlist.train.config import TrainConfig, TrainResult
from shortlist.train.data import PairSet, load_pairs
from shortlist.train.loop import train_reranker

__all__ = ["PairSet", "TrainConfig", "TrainResult", "load_pairs", "train_reranker"]

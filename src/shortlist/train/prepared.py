"""`Prepared`: what a training run computes before its first step.

Its own module so that the training loop and the model card both use it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shortlist.train.data import PairSet
from shortlist.train.evaluation import DevSet
from shortlist.train.negatives import Group


class Prepared:
    """Everything computed before the first step: data, groups (and the texts of their
    passages, by id), teacher scores, dev set."""

    def __init__(
        self,
        train: PairSet,
        dev_pairs: PairSet | None,
        groups: list[Group],
        passages: Mapping[str, str],
        teacher: np.ndarray | None,
        dev: DevSet | None,
        dev_first_stage: Mapping[str, float] | None,
    ) -> None:
        self.train = train
        self.dev_pairs = dev_pairs
        self.groups = groups
        self.passages = passages
        self.teacher = teacher
        self.dev = dev
        self.dev_first_stage = dev_first_stage

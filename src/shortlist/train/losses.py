"""Training losses for cross-encoders over groups of one positive and n negatives.

Every function takes the student's scores as a `(groups, 1 + n)` tensor whose column 0
is the positive passage and columns 1..n the negatives of the same query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def listwise_ce(scores: torch.Tensor) -> torch.Tensor:
    """Listwise softmax cross-entropy with the positive at index 0, averaged over groups.

    ``loss = mean_g [ -log( exp(s_g0) / sum_j exp(s_gj) ) ]``

    This is the "localized contrastive estimation" loss of Gao, Dai and Callan,
    "Rethink Training of BERT Rerankers in Multi-Stage Retrieval Pipeline", ECIR 2021
    (https://arxiv.org/abs/2101.08751), with negatives mined from the first stage.
    """
    import torch

    _check(scores)
    target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return torch.nn.functional.cross_entropy(scores.float(), target)


def margin_mse(scores: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MarginMSE: mean squared error between student and teacher score margins.

    ``loss = mean_{g,j>=1} [ ((s_g0 - s_gj) - (t_g0 - t_gj))^2 ]``

    Hofstätter, Althammer, Schröder, Sertkan and Hanbury, "Improving Efficient Neural
    Ranking Models with Cross-Architecture Knowledge Distillation", 2020
    (https://arxiv.org/abs/2010.02666), generalised from one negative to n per group
    (each (positive, negative) margin is one term). Only margins are matched, so the
    teacher's score scale may differ from the student's by a constant shift.
    """
    import torch

    _check(scores)
    if teacher.shape != scores.shape:
        raise ValueError(f"teacher scores {tuple(teacher.shape)} != student {tuple(scores.shape)}")
    student_margin = scores[:, :1].float() - scores[:, 1:].float()
    teacher_margin = teacher[:, :1].float() - teacher[:, 1:].float()
    return torch.nn.functional.mse_loss(student_margin, teacher_margin)


def combined(scores: torch.Tensor, teacher: torch.Tensor, distill_weight: float) -> torch.Tensor:
    """``listwise_ce(scores) + distill_weight * margin_mse(scores, teacher)``."""
    return listwise_ce(scores) + distill_weight * margin_mse(scores, teacher)


def _check(scores: torch.Tensor) -> None:
    if scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"scores must be (groups, 1 + negatives) with >= 1 negative, got {tuple(scores.shape)}"
        )

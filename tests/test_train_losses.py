"""Training losses against values worked out by hand."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from shortlist.train.losses import combined, listwise_ce, margin_mse  # noqa: E402


def test_listwise_ce_hand_computed() -> None:
    # Group 1: softmax of [2, 0, 0] at index 0 = e^2 / (e^2 + 2) -> loss log(1 + 2 e^-2).
    # Group 2: equal scores -> loss log(3).
    scores = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    expected = (math.log(1 + 2 * math.exp(-2)) + math.log(3)) / 2
    assert listwise_ce(scores).item() == pytest.approx(expected, rel=1e-6)


def test_listwise_ce_is_small_when_the_positive_dominates() -> None:
    assert listwise_ce(torch.tensor([[30.0, 0.0, 0.0, 0.0]])).item() < 1e-10


def test_margin_mse_hand_computed() -> None:
    # student margins 3-1=2, 3-2=1; teacher margins 5-4=1, 5-1=4; errors 1 and -3.
    scores = torch.tensor([[3.0, 1.0, 2.0]])
    teacher = torch.tensor([[5.0, 4.0, 1.0]])
    assert margin_mse(scores, teacher).item() == pytest.approx((1 + 9) / 2)


def test_margin_mse_ignores_a_constant_shift_of_the_teacher() -> None:
    scores = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, 0.0]])
    assert margin_mse(scores, scores + 7.0).item() == pytest.approx(0.0, abs=1e-6)


def test_combined_weights_the_distillation_term() -> None:
    scores = torch.tensor([[3.0, 1.0, 2.0]])
    teacher = torch.tensor([[5.0, 4.0, 1.0]])
    expected = listwise_ce(scores).item() + 0.5 * 5.0
    assert combined(scores, teacher, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_losses_have_gradients_for_the_student() -> None:
    scores = torch.tensor([[0.0, 1.0]], requires_grad=True)
    listwise_ce(scores).backward()
    assert scores.grad is not None
    # d/ds0 of -log softmax_0 = p0 - 1 < 0: raising the positive lowers the loss.
    assert scores.grad[0, 0].item() < 0 < scores.grad[0, 1].item()


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        listwise_ce(torch.zeros(4, 1))
    with pytest.raises(ValueError, match="teacher"):
        margin_mse(torch.zeros(2, 3), torch.zeros(2, 4))

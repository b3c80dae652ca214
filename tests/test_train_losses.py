"""The training losses (sentence-transformers losses over our group layout) against
values worked out by hand.

The model's scores are replaced by a table (query, passage) -> logit, so each loss is
checked on exact numbers; a tiny random BERT is only there because ST's losses require
a 1-label `CrossEncoder`.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

from models import build_tiny_encoder  # noqa: E402
from shortlist.train.trainer import (  # noqa: E402
    ListwiseLoss,
    ListwiseWithMarginMSE,
    build_loss,
    load_model,
)

Table = dict[tuple[str, str], float]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = build_tiny_encoder(tmp_path_factory.mktemp("loss-model") / "bert")
    return load_model(folder, max_length=16, device="cpu")


def _scored(loss: Any, table: Table, calls: list[int] | None = None) -> Any:
    """`loss` with its model calls answered from `table` (scores with gradients)."""
    leaf = {k: torch.tensor(v, requires_grad=True) for k, v in table.items()}

    def pairs(pairs: list[tuple[str, str]], **_: Any) -> Any:
        if calls is not None:
            calls.append(len(pairs))
        return torch.stack([leaf[(a, c)] for a, c in pairs])

    loss.call_model_with_pairs = pairs
    loss.logits_from_pairs = pairs
    loss.leaf = leaf
    return loss


def _inputs(groups: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Columns query, positive, negative_1.. from (query, [positive, negatives...])."""
    width = len(groups[0][1])
    return [[q for q, _ in groups]] + [[texts[j] for _, texts in groups] for j in range(width)]


GROUPS = [("q1", ["p1", "n11", "n12"]), ("q2", ["p2", "n21", "n22"])]
SCORES: Table = {
    ("q1", "p1"): 2.0, ("q1", "n11"): 0.0, ("q1", "n12"): 0.0,
    ("q2", "p2"): 1.0, ("q2", "n21"): 1.0, ("q2", "n22"): 1.0,
}  # fmt: skip


def test_listwise_is_softmax_cross_entropy_over_the_group(model: Any) -> None:
    # Group 1: softmax of [2, 0, 0] at index 0 = e^2 / (e^2 + 2) -> loss log(1 + 2 e^-2).
    # Group 2: equal scores -> loss log(3).
    calls: list[int] = []
    loss = _scored(ListwiseLoss(model), SCORES, calls)
    expected = (math.log(1 + 2 * math.exp(-2)) + math.log(3)) / 2
    assert loss(_inputs(GROUPS), None).item() == pytest.approx(expected, rel=1e-6)
    # One model call over the 2 x 3 pairs: no in-batch negatives from the other group.
    assert calls == [6]


def test_listwise_is_small_when_the_positive_dominates(model: Any) -> None:
    table = {("q", "p"): 30.0, ("q", "a"): 0.0, ("q", "b"): 0.0}
    loss = _scored(ListwiseLoss(model), table)
    assert loss(_inputs([("q", ["p", "a", "b"])]), None).item() < 1e-10


def test_listwise_gradient_raises_the_positive(model: Any) -> None:
    table = {("q", "p"): 0.0, ("q", "n"): 1.0}
    loss = _scored(ListwiseLoss(model), table)
    loss(_inputs([("q", ["p", "n"])]), None).backward()
    # d/ds0 of -log softmax_0 = p0 - 1 < 0: raising the positive lowers the loss.
    assert loss.leaf[("q", "p")].grad.item() < 0 < loss.leaf[("q", "n")].grad.item()


def test_margin_mse_takes_teacher_scores_positive_first(model: Any) -> None:
    # student margins 3-1=2, 3-2=1; teacher margins 5-4=1, 5-1=4; errors 1 and -3.
    table = {("q", "p"): 3.0, ("q", "a"): 1.0, ("q", "b"): 2.0}
    loss = _scored(build_loss("margin-mse", model, 1.0), table)
    teacher = torch.tensor([[5.0, 4.0, 1.0]])
    assert loss(_inputs([("q", ["p", "a", "b"])]), teacher).item() == pytest.approx(5.0)
    shifted = loss(_inputs([("q", ["p", "a", "b"])]), teacher + 7.0).item()
    assert shifted == pytest.approx(5.0)  # only margins count


def test_both_adds_the_weighted_distillation_term(model: Any) -> None:
    table = {("q", "p"): 3.0, ("q", "a"): 1.0, ("q", "b"): 2.0}
    inputs = _inputs([("q", ["p", "a", "b"])])
    teacher = [torch.tensor([5.0, 4.0, 1.0])]  # the collator's form: one tensor per row
    listwise = _scored(ListwiseLoss(model), table)(inputs, None).item()
    both = _scored(build_loss("both", model, 0.5), table)
    assert isinstance(both, ListwiseWithMarginMSE)
    assert both(inputs, teacher).item() == pytest.approx(listwise + 0.5 * 5.0, rel=1e-6)


def test_build_loss_kinds(model: Any) -> None:
    from sentence_transformers.cross_encoder.losses import MarginMSELoss

    assert type(build_loss("listwise", model, 1.0)) is ListwiseLoss
    assert isinstance(build_loss("margin-mse", model, 1.0), MarginMSELoss)


def test_loaded_model_has_one_relevance_label(model: Any) -> None:
    assert model.num_labels == 1
    assert model.model.config.id2label == {0: "relevance"}

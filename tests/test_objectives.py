"""Objectives: losses, gradients, numerical stability and score direction."""

import pytest
import torch

from ffoc.objectives import OBJECTIVES, LayerState, get_objective, goodness, squared_distance


def _state(width: int) -> LayerState:
    return LayerState(center=torch.full((width,), 0.5), radius2=1.0, theta=2.0, scale=1.0)


@pytest.mark.parametrize("name", ["goodness", "goodness-sigmoid", "hb-svdd", "svdd"])
def test_objective_loss_and_gradient_finite_for_huge_activations(name):
    objective = get_objective(name)
    h = torch.full((4, 3), 1e18, requires_grad=True)
    h_negative = torch.full((4, 3), -1e18, requires_grad=True)
    loss = objective.loss(h, _state(3), h_negative)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(h.grad).all()
    assert torch.isfinite(h_negative.grad).all()


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_loss_finite_for_large_but_representable_activations(name):
    objective = get_objective(name)
    h = torch.full((4, 3), 1e6, requires_grad=True)
    loss = objective.loss(h, _state(3), torch.zeros(4, 3))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(h.grad).all()


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_gradient_matches_finite_differences(name):
    objective = get_objective(name, nu=0.2)
    torch.manual_seed(0)
    h = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    h_negative = torch.rand(5, 3, dtype=torch.float64)
    state = LayerState(center=torch.full((3,), 0.4, dtype=torch.float64), radius2=0.3, theta=1.0, scale=0.7)
    assert torch.autograd.gradcheck(lambda t: objective.loss(t, state, h_negative), (h,))


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_score_grows_with_distance_or_goodness(name):
    objective = get_objective(name)
    state = LayerState(center=torch.zeros(2), radius2=1.0, theta=1.0)
    # Points along a ray from the center outwards: the score must rise strictly.
    h = torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    scores = objective.score(h, state)
    assert torch.all(scores[1:] > scores[:-1]), scores


def test_soft_boundary_loss_is_flat_inside_but_score_is_not():
    objective = get_objective("svdd")
    state = LayerState(center=torch.zeros(2), radius2=4.0)
    inside = torch.tensor([[0.5, 0.0], [1.0, 0.0]])
    losses = objective.positive_loss(inside, state)
    assert losses[0] == losses[1]
    scores = objective.score(inside, state)
    assert scores[0] < scores[1]


def test_goodness_and_distance_helpers():
    h = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert goodness(h).tolist() == [5.0, 25.0]
    assert squared_distance(h, torch.tensor([1.0, 2.0])).tolist() == [0.0, 8.0]


def test_goodness_negative_loss_pushes_negatives_up():
    objective = get_objective("goodness")
    state = LayerState(theta=1.0, scale=1.0)
    h_negative = torch.full((3, 2), 0.1, requires_grad=True)
    objective.negative_loss(h_negative, state).mean().backward()
    # Gradient descent moves activations against the gradient: negative grad means growing goodness.
    assert torch.all(h_negative.grad < 0)


def test_get_objective_rejects_unknown_name():
    with pytest.raises(ValueError, match="Unknown objective 'svm'"):
        get_objective("svm")

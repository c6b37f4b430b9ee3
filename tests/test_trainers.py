"""Trainers: forward-forward locality, equivalence to per-layer steps, backprop reach."""

import copy

import pytest
import torch

from ffoc.negatives import make_negatives
from ffoc.nn import build_mlp
from ffoc.objectives import get_objective
from ffoc.trainers import TrainConfig, bp_step, estimate_states, ff_step


def _setup(objective_name="hb-svdd", sizes=(8, 6, 4)):
    generator = torch.Generator().manual_seed(0)
    layers = build_mlp(5, list(sizes), generator=generator)
    X = torch.randn(64, 5, generator=generator)
    objective = get_objective(objective_name)
    states = estimate_states(layers, objective, X, nu=0.05)
    config = TrainConfig(objective=objective)
    return layers, states, X, config, generator


@pytest.mark.parametrize("objective_name", ["goodness", "hb-svdd", "svdd", "ls-svdd"])
def test_ff_step_gradient_of_each_layer_comes_from_its_own_loss_only(objective_name):
    layers, states, X, config, generator = _setup(objective_name)
    x_negative = make_negatives(X, "shuffle", generator=generator)
    optimizer = torch.optim.SGD(layers.parameters(), lr=0.0)
    ff_step(layers, states, X, x_negative, config, optimizer)
    ff_gradients = [layer.linear.weight.grad.clone() for layer in layers]

    # Recompute each layer's own loss alone, on the detached output of the layer below.
    x, x_neg = X, x_negative
    for k, layer in enumerate(layers):
        layer.zero_grad()
        h, h_neg = layer(x), layer(x_neg)
        config.objective.loss(h, states[k], h_neg).backward()
        assert torch.allclose(layer.linear.weight.grad, ff_gradients[k], atol=1e-6), f"layer {k}"
        x, x_neg = h.detach(), h_neg.detach()


def test_ff_layer_loss_leaves_lower_layer_gradients_at_zero():
    layers, states, X, config, _ = _setup()
    h0 = layers[0](X)
    h1 = layers[1](h0.detach())
    config.objective.loss(h1, states[1]).backward()
    assert layers[0].linear.weight.grad is None
    assert layers[1].linear.weight.grad.abs().sum() > 0


def test_ff_step_equals_stepping_each_layer_right_after_its_forward_pass():
    layers, states, X, config, generator = _setup()
    x_negative = make_negatives(X, "noise", generator=generator)
    reference = copy.deepcopy(layers)

    ff_step(layers, states, X, x_negative, config, torch.optim.Adam(layers.parameters(), lr=0.01))

    # Reference: one optimizer per layer, stepped before the next layer runs; the
    # next layer gets the output computed before the step.
    x, x_neg = X, x_negative
    for k, layer in enumerate(reference):
        optimizer = torch.optim.Adam(layer.parameters(), lr=0.01)
        h, h_neg = layer(x), layer(x_neg)
        config.objective.loss(h, states[k], h_neg).backward()
        optimizer.step()
        x, x_neg = h.detach(), h_neg.detach()

    for trained, expected in zip(layers, reference):
        assert torch.allclose(trained.linear.weight, expected.linear.weight, atol=1e-7)


def test_ff_step_with_layer_indices_trains_only_those_layers():
    layers, states, X, config, _ = _setup()
    before = [layer.linear.weight.clone() for layer in layers]
    optimizer = torch.optim.SGD(layers[1].parameters(), lr=0.1)
    ff_step(layers, states, X, None, config, optimizer, layer_indices=[1])
    assert torch.equal(layers[0].linear.weight, before[0])
    assert not torch.equal(layers[1].linear.weight, before[1])
    assert torch.equal(layers[2].linear.weight, before[2])


@pytest.mark.parametrize("step", [ff_step, bp_step])
def test_steps_reuse_the_gradient_buffers(step):
    """Gradients are zeroed in place, not reallocated, so a step's peak memory does not include new buffers."""
    layers, states, X, config, generator = _setup()
    optimizer = torch.optim.Adam(layers.parameters(), lr=0.01)
    step(layers, states, X, make_negatives(X, "mixed", generator=generator), config, optimizer)
    buffers = [p.grad.data_ptr() for p in layers.parameters()]
    step(layers, states, X, make_negatives(X, "mixed", generator=generator), config, optimizer)
    assert [p.grad.data_ptr() for p in layers.parameters()] == buffers


def test_bp_step_changes_every_layer():
    layers, states, X, config, generator = _setup()
    before = [layer.linear.weight.clone() for layer in layers]
    optimizer = torch.optim.SGD(layers.parameters(), lr=0.1)
    bp_step(layers, states, X, make_negatives(X, "mixed", generator=generator), config, optimizer)
    for k, layer in enumerate(layers):
        assert not torch.equal(layer.linear.weight, before[k]), f"layer {k} did not change"


def test_estimate_states_center_components_moved_away_from_zero():
    layers, states, X, _, _ = _setup()
    for state in states:
        assert torch.all(state.center.abs() >= 0.1 - 1e-7)
        assert state.radius2 > 0


def test_estimate_states_radius_is_whole_set_quantile():
    layers, _, X, config, _ = _setup()
    states = estimate_states(layers, config.objective, X, nu=0.25, batch_size=7)
    h = layers[0](X).detach()
    distances = (h - states[0].center).square().sum(dim=1).double().numpy()
    import numpy as np

    assert states[0].radius2 == pytest.approx(float(np.quantile(distances, 0.75)), rel=1e-5)


def test_layerwise_later_phase_outlasts_first():
    """A later layer-wise phase may run more epochs than the first one stopped at."""
    import math

    from ffoc.trainers import train_ff

    generator = torch.Generator().manual_seed(0)
    layers = build_mlp(5, [8, 8], generator=generator)
    objective = get_objective("hb-svdd", nu=0.05)
    X = torch.randn(64, 5, generator=generator)
    states = estimate_states(layers, objective, X, nu=0.05)
    config = TrainConfig(objective=objective, epochs=6, batch_size=32, schedule="layerwise",
                         early_stopping=True, n_iter_no_change=1)
    # The validation loss rises in the first phase, which stops after epoch 1, and falls in the second.
    values = iter([1.0, 2.0] + [10.0 - k for k in range(6)])
    states, history = train_ff(layers, states, X, config, generator=generator, nu=0.05,
                               validation_loss=lambda: next(values))
    assert len(history.layer_losses) == 6
    assert all(len(row) == 2 for row in history.layer_losses)
    assert not math.isnan(history.layer_losses[5][1])
    assert math.isnan(history.layer_losses[5][0])

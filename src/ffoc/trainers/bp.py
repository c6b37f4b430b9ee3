"""Backprop training of the same network: one loss on the last layer, every layer updated."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..objectives import LayerState
from .common import (
    TrainConfig,
    TrainHistory,
    _EarlyStopping,
    batches,
    check_finite,
    end_epoch,
    make_optimizer,
    negatives_for,
)

__all__ = ["bp_step", "train_bp"]


def bp_step(
    layers: Sequence[nn.Module],
    states: Sequence[LayerState],
    x: torch.Tensor,
    x_negative: torch.Tensor | None,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
) -> torch.Tensor:
    """Run one backprop step: forward through all layers, loss on the last, step all layers.

    Returns the loss as a 0-dimensional tensor.
    """
    # Zero the gradient buffers in place rather than free them. Freed and reallocated each
    # step, they made the measured step peak grow with depth (2.3x from 2 to 32 layers).
    optimizer.zero_grad(set_to_none=False)
    h = x
    h_negative = x_negative
    for layer in layers:
        h = layer(h)
        h_negative = None if h_negative is None else layer(h_negative)
    loss = config.objective.loss(h, states[-1], h_negative, config.negative_weight)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_bp(
    layers: Sequence[nn.Module],
    states: list[LayerState],
    X: torch.Tensor,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    nu: float,
    validation_loss: Callable[[], float] | None = None,
    progress=None,
) -> tuple[list[LayerState], TrainHistory]:
    """Train ``layers`` end to end by backprop on the standardised normal data ``X``.

    Same objective, negatives, optimizer and center rule as :func:`train_ff`; the
    loss sits on the last layer only. ``layer_losses`` has one value per epoch.
    """
    if config.schedule == "layerwise":
        raise ValueError("schedule='layerwise' applies to trainer='ff' only; use schedule='interleaved'.")
    history = TrainHistory()
    params = [p for layer in layers for p in layer.parameters()]
    optimizer = make_optimizer(config.optimizer, params, config.learning_rate)
    stopper = _EarlyStopping(layers, config, validation_loss) if validation_loss is not None else None
    for epoch in range(config.epochs):
        total = torch.zeros(())
        n_batches = 0
        for index in batches(X.shape[0], config.batch_size, generator):
            x = X[index]
            total += bp_step(layers, states, x, negatives_for(x, config, generator), config, optimizer)
            n_batches += 1
        check_finite(total, epoch, "backprop", layers)
        mean = float(total) / max(n_batches, 1)
        history.layer_losses.append([mean])
        states = end_epoch(layers, states, X, config, nu=nu, progress=progress, loss=mean)
        if stopper is not None and stopper.stop_after(epoch, history):
            break
    if stopper is not None:
        history.best_epoch = stopper.restore_best()
    return states, history

"""Pieces shared by the forward-forward and backprop trainers."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..negatives import make_negatives
from ..objectives import LayerState, Objective, squared_distance

__all__ = [
    "TrainConfig",
    "TrainHistory",
    "TrainingDivergedError",
    "batches",
    "estimate_states",
    "forward_layers",
    "layer_scores",
    "make_optimizer",
]

# Center components smaller than this in magnitude are moved to +-CENTER_EPS, as in
# Ruff et al. (2018): a zero component lets a unit die and still sit on the center.
CENTER_EPS = 0.1
# Floor of the per-layer scale, so that a layer with no activity gives no division by zero.
_MIN_SCALE = 1e-12
# Score given to samples whose activations overflow float32.
OVERFLOW_SCORE = float(np.finfo(np.float32).max)


class TrainingDivergedError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite."""


@dataclass
class TrainConfig:
    """Settings of one training run, resolved from the estimator's parameters."""

    objective: Objective
    learning_rate: float = 1e-3
    epochs: int = 50
    batch_size: int = 128
    optimizer: str = "adam"
    schedule: str = "interleaved"
    center_update: str = "fixed"
    negatives: str = "mixed"
    negative_weight: float = 1.0
    noise_scale: float = 1.0
    theta: float | None = None
    early_stopping: bool = False
    n_iter_no_change: int = 10
    tol: float = 1e-4
    verbose: int = 0


@dataclass
class TrainHistory:
    """Losses recorded during training.

    ``layer_losses[e][k]`` is layer ``k``'s mean training loss in epoch ``e``
    (forward-forward), or the single end-to-end loss (backprop, one entry per
    epoch). ``validation_losses`` has one value per epoch when validation data
    were given. ``best_epoch`` is the epoch whose weights early stopping kept.

    A layer-wise forward-forward schedule trains in phases, one per layer.
    ``phase_epochs[k]`` is the number of epochs phase ``k`` ran and, with early
    stopping, ``phase_best_epochs[k]`` the epoch it kept; ``best_epoch`` is then
    the last phase's. The interleaved schedule records one phase, and backprop none.
    """

    layer_losses: list[list[float]] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    stopped_epoch: int | None = None
    best_epoch: int | None = None
    phase_epochs: list[int] = field(default_factory=list)
    phase_best_epochs: list[int] = field(default_factory=list)


def batches(
    n_samples: int, batch_size: int, generator: torch.Generator | None, *, shuffle: bool = True
) -> Iterator[torch.Tensor | slice]:
    """Yield mini-batch row indices: a random permutation cut in pieces, the last one shorter."""
    if shuffle:
        order = torch.randperm(n_samples, generator=generator)
        for start in range(0, n_samples, batch_size):
            yield order[start : start + batch_size]
    else:
        for start in range(0, n_samples, batch_size):
            yield slice(start, start + batch_size)


def forward_layers(layers: Sequence[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    """Return every layer's output for input ``x``."""
    outputs = []
    for layer in layers:
        x = layer(x)
        outputs.append(x)
    return outputs


def make_optimizer(name: str, params, learning_rate: float) -> torch.optim.Optimizer:
    """Return Adam or SGD over ``params``."""
    params = list(params)
    if name == "adam":
        return torch.optim.Adam(params, lr=learning_rate)
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate)
    raise ValueError(f"Unknown optimizer {name!r}; choose 'adam' or 'sgd'.")


@torch.no_grad()
def estimate_states(
    layers: Sequence[nn.Module],
    objective: Objective,
    X: torch.Tensor,
    *,
    nu: float,
    batch_size: int = 8192,
    previous: Sequence[LayerState] | None = None,
    theta: float | None = None,
    keep_center: bool = False,
) -> list[LayerState]:
    """Estimate each layer's center, radius and threshold from the whole training set.

    Update rule: the center is the mean activation over the training data, with
    components smaller than ``CENTER_EPS`` in magnitude moved to ``+-CENTER_EPS``;
    the squared radius is the ``(1 - nu)`` quantile of the squared distances to
    that center over the whole training set (not one batch); ``theta`` is the
    user's value, or else the mean goodness of the training data. ``scale`` is kept
    from ``previous`` when given (it is fixed at initialisation).

    Parameters
    ----------
    layers : sequence of nn.Module
        The network's blocks.
    objective : Objective
        The objective whose state is estimated.
    X : torch.Tensor of shape (n_samples, ...)
        Standardised training data.
    nu : float
        Fraction of training samples allowed outside the sphere.
    batch_size : int
        Rows per forward pass.
    previous : sequence of LayerState or None
        States to refresh; their ``scale`` and ``theta`` are kept.
    theta : float or None
        User-given goodness threshold.
    keep_center : bool
        Keep the centers of ``previous`` and refresh only the radii.
    """
    n_layers = len(layers)
    sums: list[torch.Tensor | None] = [None] * n_layers
    goodness_sums = [0.0] * n_layers
    n_samples = X.shape[0]

    # Pass 1: mean activation and mean goodness of each layer.
    for index in batches(n_samples, batch_size, None, shuffle=False):
        for k, h in enumerate(forward_layers(layers, X[index])):
            flat = h.flatten(1).double()
            sums[k] = flat.sum(dim=0) if sums[k] is None else sums[k] + flat.sum(dim=0)
            goodness_sums[k] += float(flat.square().sum())

    states = []
    for k in range(n_layers):
        state = LayerState()
        if previous is not None:
            state.scale = previous[k].scale
            state.theta = previous[k].theta
        if objective.uses_theta:
            mean_goodness = goodness_sums[k] / n_samples
            if state.theta is None:
                state.theta = float(theta) if theta is not None else mean_goodness
            if previous is None:
                state.scale = max(abs(mean_goodness), _MIN_SCALE)
        if objective.uses_center and keep_center and previous is not None:
            state.center = previous[k].center
        elif objective.uses_center:
            center = (sums[k] / n_samples).float().to(X.device)
            small = center.abs() < CENTER_EPS
            center[small & (center >= 0)] = CENTER_EPS
            center[small & (center < 0)] = -CENTER_EPS
            state.center = center
        states.append(state)

    # Pass 2: the (1 - nu) quantile of the squared distances to the center.
    if objective.uses_radius:
        distances: list[list[np.ndarray]] = [[] for _ in range(n_layers)]
        for index in batches(n_samples, batch_size, None, shuffle=False):
            for k, h in enumerate(forward_layers(layers, X[index])):
                distances[k].append(squared_distance(h, states[k].center).double().cpu().numpy())
        for k in range(n_layers):
            # Distances that overflowed float32 make the radius NaN, which callers report as divergence.
            with np.errstate(invalid="ignore"):
                radius2 = float(np.quantile(np.concatenate(distances[k]), 1.0 - nu))
            states[k].radius2 = radius2
            if previous is None:
                states[k].scale = max(radius2, _MIN_SCALE)
    return states


@torch.inference_mode()
def layer_scores(
    layers: Sequence[nn.Module],
    objective: Objective,
    states: Sequence[LayerState],
    X: torch.Tensor,
    *,
    batch_size: int = 8192,
) -> np.ndarray:
    """Return the anomaly score of every sample at every layer, shape (n_samples, n_layers).

    Higher means more anomalous. Computed in float64 from float32 activations.
    """
    scores = torch.empty((X.shape[0], len(layers)), dtype=torch.float64)
    for index in batches(X.shape[0], batch_size, None, shuffle=False):
        for k, h in enumerate(forward_layers(layers, X[index])):
            scores[index, k] = objective.score(h, states[k]).to("cpu", torch.float64)
    out = scores.numpy()
    # Inputs are finite and trained weights are checked, so a non-finite score can only
    # come from float32 overflow on an extreme input: rank it as the most anomalous.
    np.nan_to_num(out, copy=False, nan=OVERFLOW_SCORE, posinf=OVERFLOW_SCORE, neginf=-OVERFLOW_SCORE)
    return out


_DIVERGED_ADVICE = "Lower learning_rate (or raise nu for svdd and ls-svdd), or check the input for extreme values."


def check_finite(value: torch.Tensor, epoch: int, where: str, layers: Sequence[nn.Module] = ()) -> None:
    """Raise :class:`TrainingDivergedError` if a loss or a parameter is NaN or infinite.

    A loss can stay finite while the weights overflow (softplus and sigmoid
    saturate), so the parameters of ``layers`` are checked too.
    """
    if not math.isfinite(float(value)):
        raise TrainingDivergedError(
            f"Training diverged in epoch {epoch + 1} ({where}): the loss is {float(value)}. {_DIVERGED_ADVICE}"
        )
    for k, layer in enumerate(layers):
        for name, parameter in layer.named_parameters():
            if not torch.isfinite(parameter).all():
                raise TrainingDivergedError(
                    f"Training diverged in epoch {epoch + 1} ({where}): layer {k}'s {name} is no longer "
                    f"finite. {_DIVERGED_ADVICE}"
                )


def end_epoch(
    layers: Sequence[nn.Module],
    states: list[LayerState],
    X: torch.Tensor,
    config: TrainConfig,
    *,
    nu: float,
    progress,
    loss: float,
) -> list[LayerState]:
    """Return the states for the next epoch, re-estimated when ``center_update="epoch"``, and advance ``progress``."""
    if config.center_update == "epoch":
        states = estimate_states(layers, config.objective, X, nu=nu, previous=states)
    if progress is not None:
        progress.update(1)
        progress.set_postfix(loss=f"{loss:.4g}")
    return states


class _EarlyStopping:
    """Stop when the validation loss has not improved by ``tol`` for ``n_iter_no_change`` epochs."""

    def __init__(self, layers: Sequence[nn.Module], config: TrainConfig, validation_loss) -> None:
        self.layers = layers
        self.validation_loss = validation_loss
        self.patience = config.n_iter_no_change
        self.tol = config.tol
        self.best = float("inf")
        self.best_epoch = -1
        self.best_weights = None

    def stop_after(self, epoch: int, history: TrainHistory) -> bool:
        """Record the validation loss of ``epoch`` in ``history`` and return whether training should stop."""
        value = self.validation_loss()
        history.validation_losses.append(value)
        if self.should_stop(value, epoch):
            history.stopped_epoch = epoch
            return True
        return False

    def should_stop(self, value: float, epoch: int) -> bool:
        if value < self.best - self.tol * max(abs(self.best), 1.0) or self.best_weights is None:
            self.best = value
            self.best_epoch = epoch
            self.best_weights = [
                {name: t.detach().clone() for name, t in layer.state_dict().items()} for layer in self.layers
            ]
            return False
        return epoch - self.best_epoch >= self.patience

    def restore_best(self) -> int:
        if self.best_weights is not None:
            for layer, weights in zip(self.layers, self.best_weights):
                layer.load_state_dict(weights)
        return self.best_epoch


def negatives_for(x: torch.Tensor, config: TrainConfig, generator: torch.Generator | None):
    """Return the negatives of a mini-batch, or ``None`` when training without them."""
    if config.negative_weight <= 0:
        return None
    return make_negatives(x, config.negatives, generator=generator, noise_scale=config.noise_scale)


__all__ += ["check_finite", "end_epoch", "negatives_for", "CENTER_EPS", "_EarlyStopping"]

"""Per-layer loss landscapes along the training path.

A :class:`ParameterRecorder` stores each layer's flattened parameters before
every optimizer step. :func:`compute_landscapes` then projects each layer's
path on its two principal directions and evaluates a loss on a grid in that
plane, centred on the trained parameters:

* forward-forward: the layer's own loss, with the layer's inputs held fixed at
  the trained network's outputs of the layers below. This is the loss the
  layer descended, with the centers and radii of the trained detector;
* backprop: the end-to-end loss (on the last layer) as a function of this
  layer's parameters, with every other layer held at its trained values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector

from ..negatives import make_negatives

__all__ = ["LayerLandscape", "ParameterRecorder", "compute_landscapes"]

# Share of the path's extent added on each side of the grid.
_GRID_MARGIN = 0.25
# Seed of the negatives drawn once for the landscape's loss. One fixed set keeps
# the surface from changing between grid points.
_NEGATIVES_SEED = 0
# Parameter vectors evaluated together; bounds memory to about
# _CHUNK * n_samples * width floats per layer.
_CHUNK = 32


class ParameterRecorder:
    """Record each layer's flattened parameters before every optimizer step.

    A hook on each layer's weight fires once its gradient is accumulated, which
    is before the optimizer steps, so the entry recorded at step ``n`` contains
    the parameters after ``n - 1`` steps. :meth:`finish` appends the parameters
    the detector ends with (after any weights were restored by early stopping).
    To bound memory, once a layer has ``2 * max_points`` entries every other
    entry is dropped and the recording stride doubles.

    Parameters
    ----------
    max_points : int, default=500
        Number of entries per layer kept at least, up to twice that many.

    Attributes
    ----------
    paths : list of list of ndarray
        ``paths[k]`` contains layer ``k``'s recorded parameter vectors.
    steps : list of list of int
        ``steps[k][i]`` is the number of optimizer steps before ``paths[k][i]``.
    """

    def __init__(self, max_points: int = 500) -> None:
        if max_points < 2:
            raise ValueError(f"max_points={max_points!r} must be at least 2.")
        self.max_points = int(max_points)
        self.paths: list[list[np.ndarray]] = []
        self.steps: list[list[int]] = []
        self._counts: list[int] = []
        self._strides: list[int] = []
        self._handles: list = []
        self._versions: list = []

    def attach(self, layers) -> None:
        """Record the initial parameters of ``layers`` and hook their weights."""
        self.detach()
        self.paths = [[_flat(layer)] for layer in layers]
        self.steps = [[0] for _ in layers]
        self._counts = [0] * len(layers)
        self._strides = [1] * len(layers)
        self._versions = [None] * len(layers)
        for k, layer in enumerate(layers):
            weight = next(layer.parameters())
            self._handles.append(weight.register_post_accumulate_grad_hook(self._make_hook(k, layer)))

    def detach(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def finish(self, layers) -> None:
        """Append the parameters ``layers`` end with, so each path ends at the trained network."""
        for k, layer in enumerate(layers):
            self.paths[k].append(_flat(layer))
            self.steps[k].append(self._counts[k])

    def _make_hook(self, k: int, layer):
        def hook(parameter) -> None:
            # A step may accumulate gradients more than once (forward-forward backpropagates
            # the normal rows' and the negatives' parts separately); count it once. The
            # optimizer's in-place update bumps the weight's version between steps.
            if parameter._version == self._versions[k]:
                return
            self._versions[k] = parameter._version
            self._counts[k] += 1
            done = self._counts[k] - 1  # steps taken before this one
            if done == 0 or done % self._strides[k]:
                return
            self.paths[k].append(_flat(layer))
            self.steps[k].append(done)
            if len(self.paths[k]) >= 2 * self.max_points:
                self._thin(k)

        return hook

    def _thin(self, k: int) -> None:
        stride = 2 * self._strides[k]
        kept = [i for i, step in enumerate(self.steps[k]) if step % stride == 0]
        self.paths[k] = [self.paths[k][i] for i in kept]
        self.steps[k] = [self.steps[k][i] for i in kept]
        self._strides[k] = stride


@dataclass
class LayerLandscape:
    """A layer's loss on the plane of its parameter path.

    Attributes
    ----------
    layer : int
        Layer index, from 0.
    trainer : str
        ``"ff"`` (the layer's own loss) or ``"bp"`` (the end-to-end loss).
    x, y : ndarray of shape (resolution,)
        Grid coordinates along the first and second principal direction; the
        trained parameters are at (0, 0).
    loss : ndarray of shape (resolution, resolution)
        ``loss[i, j]`` is the loss at ``(x[j], y[i])``.
    path : ndarray of shape (n_points, 2)
        The recorded parameters projected on the plane.
    path_loss : ndarray of shape (n_points,)
        The same loss at the recorded (unprojected) parameters.
    steps : ndarray of shape (n_points,)
        Optimizer steps taken before each path point.
    explained_variance : ndarray of shape (2,)
        Share of the path's variance along each direction.
    """

    layer: int
    trainer: str
    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    path: np.ndarray
    path_loss: np.ndarray
    steps: np.ndarray
    explained_variance: np.ndarray


def compute_landscapes(detector, X, recorder: ParameterRecorder, *, resolution: int = 25) -> list[LayerLandscape]:
    """Return one :class:`LayerLandscape` per layer of a fitted detector.

    Parameters
    ----------
    detector : RecordingOneClass
        The fitted detector whose training ``recorder`` recorded.
    X : array-like of shape (n_samples, n_features)
        The training rows (raw; the detector's scaler is applied).
    recorder : ParameterRecorder
        The recorded parameter paths.
    resolution : int, default=25
        Grid points along each direction.

    Returns
    -------
    list of LayerLandscape
    """
    if resolution < 2:
        raise ValueError(f"resolution={resolution!r} must be at least 2 grid points per direction.")
    if len(recorder.paths) != len(detector.layers_):
        raise ValueError(
            f"The recorder contains {len(recorder.paths)} layer paths but the detector has "
            f"{len(detector.layers_)} layers; record the same fit."
        )
    layers = detector.layers_
    objective = detector._get_objective()
    states = detector.states_
    X_tensor = detector._to_tensor(detector._check_X(X, reset=False))
    config = detector.train_config_
    X_negative = None
    if config.negatives != "none" and config.negative_weight > 0:
        generator = torch.Generator().manual_seed(_NEGATIVES_SEED)
        X_negative = make_negatives(X_tensor, config.negatives, generator=generator)

    landscapes = []
    with torch.no_grad():
        # Inputs of each layer under the trained network, held fixed on the grid.
        inputs = [(X_tensor, X_negative)]
        for layer in layers:
            x, x_negative = inputs[-1]
            inputs.append((layer(x), None if x_negative is None else layer(x_negative)))

        for k, layer in enumerate(layers):
            upper_layers = [layer] if detector.trainer == "ff" else list(layers[k:])
            state = states[k] if detector.trainer == "ff" else states[-1]
            loss_of = _batched_loss(
                layer, upper_layers, objective, state, inputs[k], config.negative_weight
            )
            trained = parameters_to_vector(layer.parameters()).detach().double()
            landscapes.append(_layer_landscape(k, detector.trainer, recorder, trained, loss_of, resolution))
    return landscapes


def _batched_loss(layer, upper_layers, objective, state, layer_inputs, negative_weight):
    """Return a function mapping parameter vectors (batch, n_parameters) of ``layer`` to losses (batch,).

    ``upper_layers`` starts with ``layer``; the others keep their trained
    parameters. The loss is evaluated on the fixed ``layer_inputs``.
    """
    names = [name for name, _ in layer.named_parameters()]
    shapes = [parameter.shape for _, parameter in layer.named_parameters()]
    sizes = [parameter.numel() for _, parameter in layer.named_parameters()]
    x, x_negative = layer_inputs

    def loss_one(vector: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(vector, sizes)
        parameters = {name: piece.view(shape) for name, piece, shape in zip(names, pieces, shapes)}
        h = torch.func.functional_call(layer, parameters, (x,))
        h_negative = None if x_negative is None else torch.func.functional_call(layer, parameters, (x_negative,))
        for upper in upper_layers[1:]:
            h = upper(h)
            h_negative = None if h_negative is None else upper(h_negative)
        return objective.loss(h, state, h_negative, negative_weight)

    batched = torch.func.vmap(loss_one)

    def loss_of(vectors: torch.Tensor) -> np.ndarray:
        values = [batched(chunk.float()) for chunk in torch.split(vectors, _CHUNK)]
        return torch.cat(values).double().numpy()

    return loss_of


def _layer_landscape(k, trainer, recorder, trained, loss_of, resolution) -> LayerLandscape:
    path = np.stack(recorder.paths[k]).astype(np.float64)  # (n_points, n_parameters)
    directions, explained = _principal_directions(path)

    # Coordinates of the path relative to the trained parameters.
    final = trained.numpy()
    path_2d = (path - final) @ directions.T  # (n_points, 2)
    axes = []
    for column in range(2):
        low, high = path_2d[:, column].min(), path_2d[:, column].max()
        span = high - low
        if span <= 0:
            span = max(abs(high), 1.0)
        axes.append(np.linspace(low - _GRID_MARGIN * span, high + _GRID_MARGIN * span, resolution))
    grid_x, grid_y = axes

    # Grid point (i, j) is trained + x[j] * direction_1 + y[i] * direction_2.
    a, b = np.meshgrid(grid_x, grid_y)  # (resolution, resolution) each
    points = final + a.reshape(-1, 1) * directions[0] + b.reshape(-1, 1) * directions[1]
    loss = loss_of(torch.as_tensor(points)).reshape(resolution, resolution)
    path_loss = loss_of(torch.as_tensor(path))
    return LayerLandscape(
        layer=k,
        trainer=trainer,
        x=grid_x,
        y=grid_y,
        loss=loss,
        path=path_2d,
        path_loss=path_loss,
        steps=np.asarray(recorder.steps[k]),
        explained_variance=explained,
    )


def _principal_directions(path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the path's two principal directions (rows, unit length) and their variance shares.

    A path with fewer than two independent moves gets a fixed orthonormal
    completion, with variance share 0.
    """
    centred = torch.as_tensor(path - path.mean(axis=0), dtype=torch.float64)  # (n_points, n_parameters)
    n_parameters = path.shape[1]

    # Eigenvectors of the small Gram matrix give the principal directions
    # without a decomposition of the (n_points, n_parameters) matrix.
    eigenvalues, eigenvectors = torch.linalg.eigh(centred @ centred.T)
    order = torch.argsort(eigenvalues, descending=True)
    eigenvalues = eigenvalues[order].clamp_min(0.0)
    total = float(eigenvalues.sum())
    directions = []
    shares = []
    for i in range(min(2, len(eigenvalues))):
        if total > 0 and float(eigenvalues[i]) > 1e-12 * float(eigenvalues[0]):
            direction = centred.T @ eigenvectors[:, order[i]]
            directions.append((direction / direction.norm()).numpy())
            shares.append(float(eigenvalues[i]) / total)

    # Complete with coordinate axes made orthogonal to the directions found.
    for axis in range(n_parameters):
        if len(directions) == 2:
            break
        candidate = np.zeros(n_parameters)
        candidate[axis] = 1.0
        for direction in directions:
            candidate = candidate - (candidate @ direction) * direction
        norm = np.linalg.norm(candidate)
        if norm > 1e-6:
            directions.append(candidate / norm)
            shares.append(0.0)
    return np.stack(directions), np.asarray(shares)


def _flat(layer) -> np.ndarray:
    return parameters_to_vector(layer.parameters()).detach().cpu().double().numpy().copy()

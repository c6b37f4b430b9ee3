"""Nearest-neighbour scores on the activations of trained blocks.

A detector that scores by nearest neighbours keeps the activations of some
training samples (the *references*) at every block. The anomaly score of a
sample at a block is the Euclidean distance from its activation to the
``n_neighbors``-th nearest reference activation: far from every normal
sample means anomalous. This follows the k-nearest-neighbour detector of
Ramaswamy et al. (SIGMOD 2000), applied to learned features as in Bergman,
Cohen and Hoshen, "Deep Nearest Neighbor Anomaly Detection" (2020).

Distances are computed in float64 from float32 activations, as
``|a|^2 + |b|^2 - 2 a.b`` clipped at zero, which keeps the cost of one
matrix product per batch.

Examples
--------
>>> import torch
>>> from ffoc.neighbors import kth_neighbor_distance
>>> references = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
>>> kth_neighbor_distance(torch.tensor([[0.0, 1.0]]), references, 1)
array([1.])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .trainers.common import OVERFLOW_SCORE, batches, forward_layers

__all__ = ["kth_neighbor_distance", "layer_features", "neighbor_layer_scores"]


def kth_neighbor_distance(
    x: torch.Tensor,
    references: torch.Tensor,
    n_neighbors: int,
    *,
    self_columns: torch.Tensor | None = None,
    reference_norms: torch.Tensor | None = None,
) -> np.ndarray:
    """Return the distance from each row of ``x`` to its ``n_neighbors``-th nearest reference.

    Parameters
    ----------
    x : torch.Tensor of shape (n_samples, n_features)
        Activations to score.
    references : torch.Tensor of shape (n_references, n_features)
        Reference activations; ``n_neighbors`` must not exceed their number
        (less one per row when ``self_columns`` excludes a reference).
    n_neighbors : int
        Which neighbour: 1 is the nearest.
    self_columns : torch.Tensor of shape (n_samples,), optional
        For each row of ``x``, the index of the reference that is that same
        sample, or -1; that reference is skipped, so that training samples are
        not their own neighbours.
    reference_norms : torch.Tensor of shape (n_references,), optional
        Squared lengths of ``references`` in float64. Pass them only when
        ``references`` is already float64 on ``x``'s device, so that repeated
        calls skip the conversion; otherwise they are computed.

    Returns
    -------
    ndarray of shape (n_samples,)
        Distances in float64; a non-finite one (an activation that overflowed
        float32) is replaced by the largest score, ``OVERFLOW_SCORE``.
    """
    points = x.to(torch.float64)
    reference_points = references.to(device=points.device, dtype=torch.float64)
    if reference_norms is None:
        reference_norms = reference_points.square().sum(dim=1)
    cross = points @ reference_points.T
    squared = (points.square().sum(dim=1, keepdim=True) + reference_norms - 2.0 * cross).clamp_min_(0.0)

    if self_columns is not None:
        columns = self_columns.to(squared.device)
        rows = torch.nonzero(columns >= 0).flatten()
        squared[rows, columns[rows]] = float("inf")
    kth = squared.topk(n_neighbors, dim=1, largest=False).values[:, -1]
    out = kth.sqrt().cpu().numpy()
    np.nan_to_num(out, copy=False, nan=OVERFLOW_SCORE, posinf=OVERFLOW_SCORE, neginf=OVERFLOW_SCORE)
    return out


@torch.inference_mode()
def layer_features(layers: Sequence[nn.Module], X: torch.Tensor, *, batch_size: int = 1024) -> list[torch.Tensor]:
    """Return every layer's activations for ``X``, flattened per sample, in float32 on the CPU.

    Examples
    --------
    >>> import torch
    >>> from ffoc.neighbors import layer_features
    >>> layers = [torch.nn.Identity(), torch.nn.Flatten()]
    >>> [f.shape for f in layer_features(layers, torch.zeros(3, 2, 2))]
    [torch.Size([3, 4]), torch.Size([3, 4])]
    """
    parts: list[list[torch.Tensor]] = [[] for _ in layers]
    for index in batches(X.shape[0], batch_size, None, shuffle=False):
        for k, h in enumerate(forward_layers(layers, X[index])):
            parts[k].append(h.flatten(1).to("cpu", torch.float32))
    return [torch.cat(p) if p else torch.empty((0, 0)) for p in parts]


@torch.inference_mode()
def neighbor_layer_scores(
    layers: Sequence[nn.Module],
    references: Sequence[torch.Tensor],
    X: torch.Tensor,
    n_neighbors: int,
    *,
    self_columns: torch.Tensor | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Return the nearest-neighbour anomaly score of every sample at every layer.

    Parameters
    ----------
    layers : sequence of torch.nn.Module
        The trained layers or blocks, applied in order.
    references : sequence of torch.Tensor
        One (n_references, n_features_k) tensor of reference activations per layer.
    X : torch.Tensor
        Samples, already scaled as the first layer expects.
    n_neighbors : int
        Which neighbour's distance is the score.
    self_columns : torch.Tensor of shape (n_samples,), optional
        See :func:`kth_neighbor_distance`.
    batch_size : int
        Samples per forward pass.

    Returns
    -------
    ndarray of shape (n_samples, n_layers)
        Higher means more anomalous.
    """
    # Convert the references and their squared lengths once, not per batch.
    # NOTE: tested on the CPU only. On a GPU the references are copied to the device once per call.
    references = [r.to(device=X.device, dtype=torch.float64) for r in references]
    norms = [r.square().sum(dim=1) for r in references]
    scores = np.empty((X.shape[0], len(layers)), dtype=np.float64)
    for index in batches(X.shape[0], batch_size, None, shuffle=False):
        columns = None if self_columns is None else self_columns[index]
        for k, h in enumerate(forward_layers(layers, X[index])):
            scores[index, k] = kth_neighbor_distance(
                h.flatten(1), references[k], n_neighbors, self_columns=columns, reference_norms=norms[k]
            )
    return scores

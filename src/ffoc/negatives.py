"""Negatives made from the training data itself.

Trained on normal data alone, the goodness objectives have a trivial minimiser
(all activity driven to zero) and the distance objectives can shrink every
representation onto the center. Forward-forward (Hinton, 2022) trains each
layer on negatives too: each layer pushes them to *high* goodness, or
out of the hypersphere, while normal data stays low or inside. ffoc makes the
negatives from the mini-batch itself, in the standardised input space, so no
labels and no outside data are needed:

``"shuffle"``
    Each feature is permuted independently across the batch. The marginals stay
    those of normal data, and the dependencies between features are broken.
``"noise"``
    Gaussian noise of standard deviation ``noise_scale`` is added to every
    feature (the data are standardised, so this is in units of the feature's
    standard deviation).
``"scale"``
    Each sample is multiplied by a factor drawn uniformly from ``[1.5, 3]``,
    which teaches that rows far from the bulk are abnormal.
``"mixed"``
    Each negative is a ``"shuffle"`` or a ``"noise"`` negative, at random. The
    ``"scale"`` kind is left out of the mix: on the tuning data it taught the
    layers to rank by magnitude alone and lowered AUROC.

Examples
--------
>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> make_negatives(torch.randn(5, 3, generator=g), "shuffle", generator=g).shape
torch.Size([5, 3])
"""

from __future__ import annotations

import torch

__all__ = ["NEGATIVE_KINDS", "make_negatives"]

NEGATIVE_KINDS = ("mixed", "shuffle", "noise", "scale", "none")

_SCALE_RANGE = (1.5, 3.0)


def _shuffle(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    flat = x.flatten(1)  # (n, d)
    n, d = flat.shape
    # One independent permutation of the rows per feature: argsort of uniform noise.
    order = torch.rand((n, d), generator=generator, device=x.device).argsort(dim=0)
    return flat.gather(0, order).view_as(x)


def _noise(x: torch.Tensor, generator: torch.Generator | None, noise_scale: float) -> torch.Tensor:
    return x + noise_scale * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _scale(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    low, high = _SCALE_RANGE
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    factor = low + (high - low) * torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
    return x * factor


def make_negatives(
    x: torch.Tensor,
    kind: str = "mixed",
    *,
    generator: torch.Generator | None = None,
    noise_scale: float = 1.0,
) -> torch.Tensor | None:
    """Return one negative per row of ``x``, or ``None`` when ``kind`` is ``"none"``.

    Parameters
    ----------
    x : torch.Tensor of shape (n_samples, ...)
        A mini-batch of standardised normal samples.
    kind : {"mixed", "shuffle", "noise", "scale", "none"}
        How to make the negatives (see the module docstring).
    generator : torch.Generator or None
        Source of randomness, so that training is reproducible.
    noise_scale : float
        Standard deviation of the noise of ``"noise"`` negatives.
    """
    if kind == "none":
        return None
    if kind == "shuffle":
        return _shuffle(x, generator)
    if kind == "noise":
        return _noise(x, generator, noise_scale)
    if kind == "scale":
        return _scale(x, generator)
    if kind != "mixed":
        raise ValueError(f"Unknown negatives kind {kind!r}; choose one of {list(NEGATIVE_KINDS)}.")

    # Draw both kinds, then keep one per sample.
    use_noise = torch.rand((x.shape[0],), generator=generator, device=x.device) < 0.5
    use_noise = use_noise.view(-1, *([1] * (x.dim() - 1)))
    return torch.where(use_noise, _noise(x, generator, noise_scale), _shuffle(x, generator))

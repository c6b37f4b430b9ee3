"""Network layers for forward-forward training.

A network is a list of :class:`FFLayer` blocks. Each block optionally scales its
input to unit length, applies a linear map, then an activation. Forward-forward
trains each block on its own output; backprop trains the whole stack.

Length normalisation between layers (Hinton, 2022) removes the previous layer's
goodness from the next layer's input, so that the next layer cannot solve its
objective by copying the magnitude it receives and has to use the direction of
the activity vector. It is off on the raw input by default, because the
magnitude of a standardised row is often the main anomaly cue in tabular data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "FFLayer", "build_mlp", "length_normalize"]

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "identity")

_LENGTH_EPS = 1e-8


def length_normalize(x: torch.Tensor) -> torch.Tensor:
    """Scale each sample (flattened) to unit Euclidean length.

    A sample that is all zero stays zero instead of becoming NaN.

    Examples
    --------
    >>> length_normalize(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    flat = x.flatten(1)
    norm = flat.norm(dim=1, keepdim=True).clamp_min(_LENGTH_EPS)
    return (flat / norm).view_as(x)


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    if name == "tanh":
        return nn.Tanh()
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"Unknown activation {name!r}; choose one of {list(ACTIVATIONS)}.")


@torch.no_grad()
def _init_weights(
    weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int, activation: str, generator: torch.Generator | None
) -> None:
    """Draw ``weight`` in place from Kaiming's uniform distribution for ``activation``, and set ``bias`` to zero."""
    gain = math.sqrt(2.0) if activation in ("relu", "leaky_relu") else 1.0
    bound = gain * math.sqrt(3.0 / fan_in)
    sample = torch.rand(weight.shape, generator=generator, dtype=torch.float32)
    weight.copy_(sample.mul_(2 * bound).sub_(bound))
    if bias is not None:
        bias.zero_()


class FFLayer(nn.Module):
    """One block: optional length normalisation, linear map, activation.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    activation : str, default="relu"
        One of :data:`ACTIVATIONS`.
    bias : bool, default=False
        Whether the linear map has a bias. Bias terms let a layer map every
        input to one constant vector (the hypersphere collapse of Deep SVDD).
    normalize_input : bool, default=True
        Whether to scale the block's input to unit length first.
    generator : torch.Generator or None
        Generator for the weight initialisation (Kaiming uniform).

    Examples
    --------
    >>> layer = FFLayer(4, 3, generator=torch.Generator().manual_seed(0))
    >>> layer(torch.ones(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: str = "relu",
        bias: bool = False,
        normalize_input: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.normalize_input = normalize_input
        self.activation_name = activation
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation = _activation(activation)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the weights from Kaiming's uniform distribution, biases at zero."""
        _init_weights(self.linear.weight, self.linear.bias, self.in_features, self.activation_name, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_input:
            x = length_normalize(x)
        return self.activation(self.linear(x))  # (n, out_features)

    def extra_repr(self) -> str:
        return f"normalize_input={self.normalize_input}"


def build_mlp(
    n_features: int,
    hidden_layer_sizes: Sequence[int],
    *,
    activation: str = "relu",
    bias: bool = False,
    normalize_input: bool = False,
    normalize_hidden: bool = True,
    generator: torch.Generator | None = None,
) -> nn.ModuleList:
    """Build the MLP's blocks; ``normalize_input`` and ``normalize_hidden`` set which scale their input to unit length.

    Examples
    --------
    >>> layers = build_mlp(4, [8, 8], generator=torch.Generator().manual_seed(0))
    >>> [layer.normalize_input for layer in layers]
    [False, True]
    """
    layers = nn.ModuleList()
    width = n_features
    for index, size in enumerate(hidden_layer_sizes):
        layers.append(
            FFLayer(
                width,
                int(size),
                activation=activation,
                bias=bias,
                normalize_input=normalize_input if index == 0 else normalize_hidden,
                generator=generator,
            )
        )
        width = int(size)
    return layers

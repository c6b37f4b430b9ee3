"""Convolutional blocks for forward-forward training on images.

A convolutional network here is a list of blocks, like the MLP of
:mod:`ffoc.nn`, so the same trainers (:func:`ffoc.trainers.ff_step`,
:func:`ffoc.trainers.bp_step`) and the same per-layer statistics
(:func:`ffoc.trainers.estimate_states`, :func:`ffoc.trainers.layer_scores`)
apply unchanged. A :class:`ConvBlock` maps a batch of images of shape
``(n, C, H, W)`` to an activation map of shape ``(n, C', H', W')``. The
objectives flatten that map per sample, so a block's goodness or distance to
its center is taken over the whole map. A :class:`DenseBlock` flattens its input and
then acts as an :class:`ffoc.nn.FFLayer`, so dense layers can follow the
convolutional ones.

Each block after the first scales its input to unit length per sample (over the
whole map), as the MLP's layers do: the next block then cannot read the
previous block's goodness or distance from the magnitude of its input.

Examples
--------
>>> import torch
>>> layers = build_convnet((1, 8, 8), (4, 8), hidden_layer_sizes=(16,),
...                        generator=torch.Generator().manual_seed(0))
>>> [tuple(layer.output_shape) for layer in layers]
[(4, 4, 4), (8, 2, 2), (16,)]
>>> layers[2](layers[1](layers[0](torch.rand(3, 1, 8, 8)))).shape
torch.Size([3, 16])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .nn import FFLayer, _activation, _init_weights, length_normalize

__all__ = ["POOLING", "ConvBlock", "DenseBlock", "build_convnet"]

POOLING = ("max", "avg", "none")


class ConvBlock(nn.Module):
    """One convolutional block: optional length normalisation, convolution, activation, pooling.

    Parameters
    ----------
    input_shape : tuple of 3 int
        Shape ``(channels, height, width)`` of one input sample.
    out_channels : int
        Number of convolution filters.
    kernel_size : int, default=3
        Side of the square filters. The convolution pads with zeros so that it
        keeps the height and width (``padding = kernel_size // 2``; an even
        kernel size then adds one row and one column).
    pooling : {"max", "avg", "none"}, default="max"
        Pooling after the activation.
    pool_size : int, default=2
        Side and stride of the pooling window. A map smaller than the window
        is not pooled.
    activation : str, default="relu"
        One of :data:`ffoc.nn.ACTIVATIONS`.
    bias : bool, default=False
        Whether the convolution has a bias. Off for the same reason as in
        :class:`ffoc.nn.FFLayer`: a bias lets a block map every input to one
        constant map.
    normalize_input : bool, default=True
        Whether to scale each input sample (the whole map) to unit length first.
    generator : torch.Generator or None
        Generator for the weight initialisation (Kaiming uniform).

    Attributes
    ----------
    output_shape : tuple of 3 int
        Shape ``(out_channels, height, width)`` of one output sample.
    out_features : int
        Number of output channels, as ``ffoc info`` reports a layer's width.

    Examples
    --------
    >>> block = ConvBlock((1, 8, 8), 4, generator=torch.Generator().manual_seed(0))
    >>> block(torch.ones(2, 1, 8, 8)).shape
    torch.Size([2, 4, 4, 4])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_channels: int,
        *,
        kernel_size: int = 3,
        pooling: str = "max",
        pool_size: int = 2,
        activation: str = "relu",
        bias: bool = False,
        normalize_input: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLING:
            raise ValueError(f"Unknown pooling {pooling!r}; choose one of {list(POOLING)}.")
        channels, height, width = (int(s) for s in input_shape)
        self.input_shape = (channels, height, width)
        self.out_features = int(out_channels)
        self.normalize_input = normalize_input
        self.activation_name = activation
        self.conv = nn.Conv2d(channels, int(out_channels), int(kernel_size), padding=int(kernel_size) // 2, bias=bias)
        self.activation = _activation(activation)

        # Output size of the convolution (padding keeps it, or adds one for an even kernel).
        conv_height = height + 2 * (kernel_size // 2) - kernel_size + 1
        conv_width = width + 2 * (kernel_size // 2) - kernel_size + 1
        # Pool only when the map is at least one window wide and high.
        self.pooling = pooling if pool_size > 1 and min(conv_height, conv_width) >= pool_size else "none"
        self.pool_size = int(pool_size)
        if self.pooling != "none":
            conv_height, conv_width = conv_height // pool_size, conv_width // pool_size
        self.output_shape = (int(out_channels), conv_height, conv_width)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the weights from Kaiming's uniform distribution, biases at zero."""
        fan_in = self.conv.in_channels * self.conv.kernel_size[0] * self.conv.kernel_size[1]
        _init_weights(self.conv.weight, self.conv.bias, fan_in, self.activation_name, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_input:
            x = length_normalize(x)
        h = self.activation(self.conv(x))  # (n, C', H, W)
        if self.pooling == "max":
            h = F.max_pool2d(h, self.pool_size)
        elif self.pooling == "avg":
            h = F.avg_pool2d(h, self.pool_size)
        return h  # (n, C', H', W')

    def extra_repr(self) -> str:
        return f"normalize_input={self.normalize_input}, pooling={self.pooling!r}, pool_size={self.pool_size}"


class DenseBlock(FFLayer):
    """A dense :class:`ffoc.nn.FFLayer` that first flattens each sample, to follow convolutional blocks.

    Examples
    --------
    >>> block = DenseBlock(4 * 2 * 2, 3, generator=torch.Generator().manual_seed(0))
    >>> block(torch.ones(5, 4, 2, 2)).shape
    torch.Size([5, 3])
    """

    @property
    def output_shape(self) -> tuple[int]:
        """Shape ``(out_features,)`` of one output sample."""
        return (self.out_features,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))


def build_convnet(
    input_shape: Sequence[int],
    conv_channels: Sequence[int],
    *,
    hidden_layer_sizes: Sequence[int] = (),
    kernel_size: int = 3,
    pooling: str = "max",
    pool_size: int = 2,
    activation: str = "relu",
    bias: bool = False,
    normalize_input: bool = False,
    generator: torch.Generator | None = None,
) -> nn.ModuleList:
    """Build convolutional blocks followed by dense blocks.

    Every block except the first normalises its input to unit length; the first
    does so only when ``normalize_input`` is true.

    Parameters
    ----------
    input_shape : tuple of 3 int
        ``(channels, height, width)`` of one image.
    conv_channels : sequence of int
        Filters of each convolutional block.
    hidden_layer_sizes : sequence of int, default=()
        Widths of the dense blocks after the convolutional ones.
    kernel_size, pooling, pool_size, activation, bias
        As in :class:`ConvBlock`; the same for every convolutional block.
    normalize_input : bool, default=False
        Whether the first block scales each input image to unit length.
    generator : torch.Generator or None
        Generator for the weight initialisation.

    Returns
    -------
    torch.nn.ModuleList
        The blocks, in order.

    Examples
    --------
    >>> layers = build_convnet((3, 16, 16), (8,), generator=torch.Generator().manual_seed(0))
    >>> layers[0](torch.rand(2, 3, 16, 16)).shape
    torch.Size([2, 8, 8, 8])
    """
    layers = nn.ModuleList()
    shape = tuple(int(s) for s in input_shape)
    for index, channels in enumerate(conv_channels):
        block = ConvBlock(
            shape,
            int(channels),
            kernel_size=kernel_size,
            pooling=pooling,
            pool_size=pool_size,
            activation=activation,
            bias=bias,
            normalize_input=normalize_input if index == 0 else True,
            generator=generator,
        )
        layers.append(block)
        shape = block.output_shape
    width = math.prod(shape)
    for size in hidden_layer_sizes:
        layers.append(
            DenseBlock(
                width,
                int(size),
                activation=activation,
                bias=bias,
                normalize_input=normalize_input if len(layers) == 0 else True,
                generator=generator,
            )
        )
        width = int(size)
    return layers

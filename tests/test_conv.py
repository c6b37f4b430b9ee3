"""Convolutional blocks: shapes, input normalisation and use with the FF/BP trainers."""

import pytest
import torch

from ffoc.conv import ConvBlock, DenseBlock, build_convnet
from ffoc.objectives import get_objective
from ffoc.trainers import TrainConfig, bp_step, estimate_states, ff_step, layer_scores


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("kernel_size", "pooling", "expected"),
    [(3, "max", (4, 4, 5)), (5, "avg", (4, 4, 5)), (3, "none", (4, 8, 10)), (4, "max", (4, 4, 5))],
)
def test_conv_block_output_shape(kernel_size, pooling, expected):
    block = ConvBlock((2, 8, 10), 4, kernel_size=kernel_size, pooling=pooling, generator=_generator())
    output = block(torch.rand(3, 2, 8, 10, generator=_generator(1)))
    assert block.output_shape == expected
    assert tuple(output.shape) == (3, *expected)


def test_conv_block_skips_pooling_on_small_map():
    block = ConvBlock((1, 1, 1), 2, kernel_size=3, pool_size=2, generator=_generator())
    assert block.pooling == "none"
    assert block(torch.ones(2, 1, 1, 1)).shape == (2, 2, 1, 1)


def test_conv_block_normalized_input_ignores_scale():
    block = ConvBlock((1, 6, 6), 3, normalize_input=True, generator=_generator())
    x = torch.rand(4, 1, 6, 6, generator=_generator(1))
    assert torch.allclose(block(x), block(7.0 * x), atol=1e-6)


def test_conv_block_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="Unknown pooling 'median'"):
        ConvBlock((1, 4, 4), 2, pooling="median")


def test_conv_block_same_seed_same_weights():
    first = ConvBlock((1, 4, 4), 2, generator=_generator(3))
    second = ConvBlock((1, 4, 4), 2, generator=_generator(3))
    assert torch.equal(first.conv.weight, second.conv.weight)
    assert first.conv.bias is None


def test_dense_block_flattens_maps():
    block = DenseBlock(12, 5, generator=_generator())
    assert block(torch.rand(2, 3, 2, 2)).shape == (2, 5)
    assert block.output_shape == (5,)


def test_build_convnet_shapes_and_normalization():
    layers = build_convnet((1, 8, 8), (4, 6), hidden_layer_sizes=(10, 3), generator=_generator())
    assert [tuple(layer.output_shape) for layer in layers] == [(4, 4, 4), (6, 2, 2), (10,), (3,)]
    assert [layer.normalize_input for layer in layers] == [False, True, True, True]
    h = torch.rand(5, 1, 8, 8, generator=_generator(1))
    for layer in layers:
        h = layer(h)
    assert h.shape == (5, 3)


def test_build_convnet_dense_only_normalizes_first_when_asked():
    layers = build_convnet((1, 4, 4), (), hidden_layer_sizes=(3,), normalize_input=True, generator=_generator())
    assert len(layers) == 1
    assert layers[0].normalize_input is True


def test_convnet_trains_with_ff_step_layer_by_layer():
    """Each block's gradient comes from its own loss only: the trainers work on image blocks unchanged."""
    layers = build_convnet((1, 8, 8), (4, 4), generator=_generator())
    objective = get_objective("hb-svdd")
    x = torch.rand(16, 1, 8, 8, generator=_generator(1))
    states = estimate_states(layers, objective, x, nu=0.1)
    assert states[0].center.shape == (4 * 4 * 4,)
    config = TrainConfig(objective=objective, learning_rate=1e-2)
    optimizer = torch.optim.Adam(layers.parameters(), lr=1e-2)
    negatives = torch.rand(16, 1, 8, 8, generator=_generator(2))
    losses = ff_step(layers, states, x, negatives, config, optimizer, layer_indices=[1])
    assert losses[0] == 0
    assert losses[1] > 0
    assert layers[0].conv.weight.grad is None
    assert layers[1].conv.weight.grad is not None
    scores = layer_scores(layers, objective, states, x)
    assert scores.shape == (16, 2)


def test_convnet_trains_with_bp_step():
    layers = build_convnet((1, 8, 8), (4,), hidden_layer_sizes=(6,), generator=_generator())
    objective = get_objective("hb-svdd")
    x = torch.rand(16, 1, 8, 8, generator=_generator(1))
    states = estimate_states(layers, objective, x, nu=0.1)
    config = TrainConfig(objective=objective)
    optimizer = torch.optim.Adam(layers.parameters(), lr=1e-2)
    loss = bp_step(layers, states, x, None, config, optimizer)
    assert torch.isfinite(loss)
    assert layers[0].conv.weight.grad is not None

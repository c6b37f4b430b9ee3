"""Tests of ffoc.multiseed: several seeds trained as one batch match separate fits."""

import numpy as np
import pytest

from ffoc import FFOneClass
from ffoc.multiseed import fit_batch, fit_seeds
from ffoc.objectives import OBJECTIVES


def _max_weight_difference(a: FFOneClass, b: FFOneClass) -> float:
    return max(
        float((la.linear.weight - lb.linear.weight).detach().abs().max()) for la, lb in zip(a.layers_, b.layers_)
    )


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
@pytest.mark.parametrize("center_update", ["fixed", "epoch"])
def test_fit_seeds_matches_separate_fits(objective, center_update, rng):
    """Each batched model ends where fitting its seed alone ends, up to float32 rounding."""
    X = rng.normal(size=(90, 4))
    X_test = 1.5 * rng.normal(size=(30, 4))
    template = FFOneClass(
        objective, hidden_layer_sizes=(12, 12), epochs=3, batch_size=32, center_update=center_update
    )
    seeds = [0, 7]
    batched = fit_seeds(template, X, seeds)
    for seed, model in zip(seeds, batched):
        alone = FFOneClass(
            objective, hidden_layer_sizes=(12, 12), epochs=3, batch_size=32, center_update=center_update,
            random_state=seed,
        ).fit(X)
        assert model.random_state == seed
        assert _max_weight_difference(model, alone) < 1e-5
        np.testing.assert_allclose(model.score_samples(X_test), alone.score_samples(X_test), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(
            np.asarray(model.history_.layer_losses), np.asarray(alone.history_.layer_losses), rtol=1e-4, atol=1e-6
        )
        assert model.offset_ == pytest.approx(alone.offset_, rel=1e-4, abs=1e-4)


def test_fit_seeds_models_differ_between_seeds(rng):
    """Different seeds give different networks: the batch does not share weights."""
    X = rng.normal(size=(60, 3))
    first, second = fit_seeds(FFOneClass(hidden_layer_sizes=(8,), epochs=2), X, [1, 2])
    assert _max_weight_difference(first, second) > 1e-3


def test_fit_batch_per_model_data_and_bias(rng):
    """Each model trains on its own data set; biases are batched too."""
    Xs = [rng.normal(size=(70, 3)), rng.normal(size=(70, 3)) + 2.0]
    params = dict(hidden_layer_sizes=(10, 6), epochs=2, batch_size=16, bias=True)
    models = fit_batch([FFOneClass(random_state=s, **params) for s in (3, 4)], Xs)
    for seed, X, model in zip((3, 4), Xs, models):
        alone = FFOneClass(random_state=seed, **params).fit(X)
        np.testing.assert_allclose(model.scaler_.mean_, alone.scaler_.mean_)
        np.testing.assert_allclose(model.score_samples(X), alone.score_samples(X), rtol=1e-4, atol=1e-4)
        bias_difference = max(
            float((a.linear.bias - b.linear.bias).detach().abs().max()) for a, b in zip(model.layers_, alone.layers_)
        )
        assert bias_difference < 1e-5


def test_fit_batch_rejects_different_parameters(rng):
    X = rng.normal(size=(40, 3))
    estimators = [FFOneClass(epochs=1, random_state=0), FFOneClass(epochs=2, random_state=1)]
    with pytest.raises(ValueError, match=r"differs from estimators\[0\] in \['epochs'\]"):
        fit_batch(estimators, [X, X])


def test_fit_batch_rejects_different_shapes(rng):
    estimators = [FFOneClass(epochs=1, random_state=s) for s in (0, 1)]
    with pytest.raises(ValueError, match="different shapes"):
        fit_batch(estimators, [rng.normal(size=(40, 3)), rng.normal(size=(41, 3))])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"trainer": "bp"}, "trainer='bp' is not batched"),
        ({"schedule": "layerwise"}, "schedule='layerwise' is not batched"),
        ({"early_stopping": True}, "early_stopping=True is not batched"),
    ],
)
def test_fit_seeds_rejects_options_not_batched(params, message, rng):
    with pytest.raises(ValueError, match=message):
        fit_seeds(FFOneClass(epochs=1, **params), rng.normal(size=(40, 3)), [0, 1])


def test_fit_seeds_rejects_no_seeds(rng):
    with pytest.raises(ValueError, match="random_states is empty"):
        fit_seeds(FFOneClass(epochs=1), rng.normal(size=(40, 3)), [])


def test_fit_batch_rejects_mismatched_lengths(rng):
    with pytest.raises(ValueError, match="one training set per estimator"):
        fit_batch([FFOneClass(epochs=1)], [])


def test_fit_seeds_rejects_int_seed_count():
    with pytest.raises(TypeError, match=r"sequence of seeds such as range\(3\)"):
        fit_seeds(FFOneClass(), np.zeros((10, 2)), 3)

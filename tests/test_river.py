"""River adapter: learn_one / score_one in a progressive validation loop."""

import numpy as np
import pytest

river = pytest.importorskip("river", reason="the River adapter needs the optional river package")

from river import evaluate, metrics  # noqa: E402

from ffoc import FFOneClass  # noqa: E402
from ffoc.river import FFOneClassRiver  # noqa: E402


def _stream(n_rows=900, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3))
    y = rng.random(n_rows) < 0.05
    X[y] += 5.0
    return [({f"x{j}": float(v) for j, v in enumerate(row)}, bool(label)) for row, label in zip(X, y)]


def _detector():
    return FFOneClass(hidden_layer_sizes=(16, 16), batch_size=32, random_state=0)


def test_river_progressive_validation():
    model = FFOneClassRiver(_detector())
    metric = evaluate.progressive_val_score(_stream(), model, metrics.ROCAUC())
    assert metric.get() > 0.8, f"progressive ROC AUC {metric.get():.3f}"
    assert model.model_.n_samples_seen_ == 896  # 28 full mini-batches of 32


def test_river_high_score_is_anomalous():
    model = FFOneClassRiver(_detector())
    for x, label in _stream():
        if not label:
            model.learn_one(x)
    normal = model.score_one({"x0": 0.0, "x1": 0.0, "x2": 0.0})
    outlier = model.score_one({"x0": 6.0, "x1": 6.0, "x2": 6.0})
    assert 0.0 <= normal < 0.5 < outlier <= 1.0


def test_river_score_before_learning_is_zero():
    model = FFOneClassRiver(seed=0)
    assert model.score_one({"a": 1.0}) == 0.0
    model.learn_one({"a": 1.0})
    assert model.score_one({"a": 1.0}) == 0.0, "nothing learned until a mini-batch is full"


def test_river_missing_feature_raises():
    model = FFOneClassRiver(_detector())
    model.learn_one({"a": 1.0, "b": 2.0})
    with pytest.raises(ValueError, match=r"\['b'\] are missing"):
        model.learn_one({"a": 1.0})


def test_river_clone_is_unfitted():
    model = FFOneClassRiver(_detector())
    for x, _ in _stream(100):
        model.learn_one(x)
    clone = model.clone()
    assert clone.detector.batch_size == 32
    assert not hasattr(clone.model_, "layers_")
    assert hasattr(model.model_, "layers_")


def test_river_rejects_other_detectors():
    with pytest.raises(TypeError, match="ffoc.FFOneClass"):
        FFOneClassRiver(detector="hst")

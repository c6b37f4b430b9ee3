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


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "feature 'b' is nan, not a finite float64"),
        (float("-inf"), "feature 'b' is -inf, not a finite float64"),
        (10**400, "feature 'b' is 1000.*, not a finite float64"),
        ("x", "numeric features, but feature 'b' is the text 'x'"),
        (None, "numeric features, but feature 'b' is None"),
    ],
    ids=["nan", "-inf", "huge-int", "text", "none"],
)
def test_river_learn_one_rejects_bad_value(value, message):
    """A bad value raises in its own learn_one call, names the feature, and keeps the pending rows."""
    model = FFOneClassRiver(FFOneClass(hidden_layer_sizes=(4,), batch_size=3, random_state=0))
    model.learn_one({"a": 1.0, "b": 2.0})
    with pytest.raises(ValueError, match=message):
        model.learn_one({"a": 0.5, "b": value})
    assert len(model._pending) == 1, "the valid row learned before stays pending"

    # The next two valid rows fill the mini-batch, which then trains on all three.
    model.learn_one({"a": 0.5, "b": 1.0})
    model.learn_one({"a": 0.7, "b": 1.5})
    assert model._pending == []
    assert model.model_.n_samples_seen_ == 3


def test_river_first_row_rejected_sets_nothing():
    model = FFOneClassRiver(seed=0)
    with pytest.raises(ValueError, match="feature 'a' is nan"):
        model.learn_one({"a": float("nan")})
    assert model.feature_names_ is None
    assert model._pending == []


def test_river_score_one_rejects_bad_value():
    """score_one checks the row too, also before anything is learned."""
    model = FFOneClassRiver(_detector())
    with pytest.raises(ValueError, match="feature 'x1' is nan"):
        model.score_one({"x0": 0.0, "x1": float("nan")})
    for x, _ in _stream(100):
        model.learn_one(x)
    with pytest.raises(ValueError, match="feature 'x2' is inf"):
        model.score_one({"x0": 0.0, "x1": 0.0, "x2": float("inf")})
    assert 0.0 <= model.score_one({"x0": 0.0, "x1": 0.0, "x2": 0.0}) <= 1.0


def test_river_failed_batch_stays_pending(monkeypatch):
    """When partial_fit raises, the mini-batch's rows wait for the next learn_one."""
    model = FFOneClassRiver(FFOneClass(hidden_layer_sizes=(4,), batch_size=3, random_state=0))
    model.learn_one({"a": 1.0})
    model.learn_one({"a": 2.0})

    def fail(X):
        raise RuntimeError("training failed")

    monkeypatch.setattr(model.model_, "partial_fit", fail)
    with pytest.raises(RuntimeError, match="training failed"):
        model.learn_one({"a": 3.0})
    assert len(model._pending) == 3
    monkeypatch.undo()

    model.learn_one({"a": 4.0})
    assert model._pending == []
    assert model.model_.n_samples_seen_ == 4


def test_river_rejects_numeric_text():
    from ffoc.river import FFOneClassRiver

    model = FFOneClassRiver()
    with pytest.raises(ValueError, match=r"feature 'a' is the text '1.5'"):
        model.learn_one({"a": "1.5", "b": 2.0})

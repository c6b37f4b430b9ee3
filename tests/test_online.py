"""Online training: partial_fit, fit_stream and the running statistics."""

import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from ffoc import FFOneClass
from ffoc.online import RESERVOIR_SIZE, WARM_UP_ROWS

SMALL = dict(hidden_layer_sizes=(16, 16), batch_size=32, random_state=0)


def _chunks(rng, n_chunks, rows=300, shift=0.0):
    return [rng.normal(size=(rows, 4)) + shift for _ in range(n_chunks)]


def _snapshot(detector):
    """Copy everything that scoring could change by mistake."""
    stream = detector._stream
    return {
        "weights": {k: v.clone() for k, v in detector.layers_.state_dict().items()},
        "centers": [None if s.center is None else s.center.clone() for s in detector.states_],
        "radii": [s.radius2 for s in detector.states_],
        "scaler": (detector.scaler_.mean_.copy(), detector.scaler_.var_.copy()),
        "score_stats": (detector.layer_score_mean_.copy(), detector.layer_score_std_.copy()),
        "offset": detector.offset_,
        "generator": stream.generator.get_state().clone(),
        "reservoir": stream.reservoir[: stream.reservoir_filled].copy(),
        "counters": (stream.n_seen, stream.n_steps, stream.n_calls),
        "optimizer": {
            index: {key: value.clone() for key, value in entries.items()}
            for index, entries in stream.optimizer.state_dict()["state"].items()
        },
    }


def _assert_same(before, after):
    for name, tensor in before["weights"].items():
        assert torch.equal(tensor, after["weights"][name]), f"weight {name} changed"
    for a, b in zip(before["centers"], after["centers"]):
        assert a is None or torch.equal(a, b), "a center changed"
    assert before["radii"] == after["radii"]
    for a, b in zip(before["scaler"] + before["score_stats"], after["scaler"] + after["score_stats"]):
        assert np.array_equal(a, b)
    assert before["offset"] == after["offset"]
    assert torch.equal(before["generator"], after["generator"]), "the random generator advanced"
    assert np.array_equal(before["reservoir"], after["reservoir"])
    assert before["counters"] == after["counters"]
    for index, entries in before["optimizer"].items():
        for key, value in entries.items():
            assert torch.equal(value, after["optimizer"][index][key]), f"optimizer state {key} changed"


def test_partial_fit_scoring_before_data_raises(rng):
    detector = FFOneClass(**SMALL)
    with pytest.raises(NotFittedError, match="not fitted"):
        detector.score_samples(rng.normal(size=(3, 4)))
    with pytest.raises(NotFittedError, match="not fitted"):
        detector.predict(rng.normal(size=(3, 4)))


def test_partial_fit_batch_of_one(rng):
    detector = FFOneClass(**SMALL)

    # A first call with one row starts the stream, and the detector can score.
    detector.partial_fit(rng.normal(size=(1, 4)))
    assert detector.n_samples_seen_ == 1
    assert np.isfinite(detector.score_samples(rng.normal(size=(5, 4)))).all()
    assert detector._stream.n_steps == 0, "no step before the warm-up is complete"

    # After the warm-up, every one-row call takes one step on every layer.
    detector.partial_fit(rng.normal(size=(WARM_UP_ROWS, 4)))
    steps = detector._stream.n_steps
    weights = [layer.linear.weight.clone() for layer in detector.layers_]
    detector.partial_fit(rng.normal(size=(1, 4)))
    assert detector._stream.n_steps == steps + 1
    for k, layer in enumerate(detector.layers_):
        assert not torch.equal(layer.linear.weight, weights[k]), f"layer {k} did not step"


def test_partial_fit_warm_up_trains_on_kept_rows(rng):
    detector = FFOneClass(**SMALL)
    detector.partial_fit(rng.normal(size=(WARM_UP_ROWS - 10, 4)))
    assert detector._stream.n_steps == 0
    detector.partial_fit(rng.normal(size=(10, 4)))
    assert detector._stream.warmed_up
    assert detector._stream.n_steps == -(-WARM_UP_ROWS // SMALL["batch_size"])


def test_partial_fit_scoring_leaves_state_unchanged(rng):
    detector = FFOneClass(**SMALL)
    for chunk in _chunks(rng, 3):
        detector.partial_fit(chunk)
    before = _snapshot(detector)
    X = rng.normal(size=(50, 4))
    detector.score_samples(X)
    detector.decision_function(X)
    detector.predict(X)
    detector.layer_scores(X)
    _assert_same(before, _snapshot(detector))


def test_partial_fit_detects_shifted_rows(shifted_blobs):
    normal, anomalies = shifted_blobs
    rng = np.random.default_rng(1)
    detector = FFOneClass(**SMALL)
    for _ in range(4):
        detector.partial_fit(rng.normal(size=(300, 5)))
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomalies))]
    auc = roc_auc_score(y, -detector.score_samples(np.vstack([normal, anomalies])))
    assert auc > 0.95, f"AUROC {auc:.3f} on rows shifted by 6 standard deviations"


def test_partial_fit_threshold_follows_nu(rng):
    detector = FFOneClass(nu=0.1, **SMALL)
    for chunk in _chunks(rng, 6, rows=500):
        detector.partial_fit(chunk)
    share = (detector.predict(rng.normal(size=(4000, 4))) == -1).mean()
    assert 0.05 < share < 0.15, f"{share:.3f} of fresh normal rows flagged with nu=0.1"


def test_partial_fit_backprop_trainer(rng):
    detector = FFOneClass(trainer="bp", **SMALL)
    for chunk in _chunks(rng, 3):
        detector.partial_fit(chunk)
    assert detector._stream.n_steps > 0
    assert len(detector.history_.layer_losses[-1]) == 1


def test_partial_fit_layerwise_raises(rng):
    detector = FFOneClass(schedule="layerwise", **SMALL)
    with pytest.raises(ValueError, match="schedule='layerwise'.*interleaved"):
        detector.partial_fit(rng.normal(size=(10, 4)))


def test_partial_fit_feature_count_mismatch_raises(rng):
    detector = FFOneClass(**SMALL).partial_fit(rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="features"):
        detector.partial_fit(rng.normal(size=(10, 3)))


def test_partial_fit_rejects_nan(rng):
    X = rng.normal(size=(10, 4))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        FFOneClass(**SMALL).partial_fit(X)


def test_partial_fit_after_fit_continues(rng):
    X = rng.normal(size=(600, 4))
    detector = FFOneClass(epochs=2, **SMALL).fit(X)
    weights = detector.layers_[0].linear.weight.clone()
    detector.partial_fit(rng.normal(size=(200, 4)))
    assert not torch.equal(detector.layers_[0].linear.weight, weights)
    assert detector.scaler_.n_samples_seen_ == 800


def test_fit_stream_equals_partial_fit_calls(rng):
    chunks = _chunks(rng, 4)
    streamed = FFOneClass(**SMALL).fit_stream(iter(chunks))
    stepped = FFOneClass(**SMALL)
    for chunk in chunks:
        stepped.partial_fit(chunk)
    X = rng.normal(size=(20, 4))
    assert np.array_equal(streamed.score_samples(X), stepped.score_samples(X))


def test_fit_stream_starts_afresh(rng):
    chunks = _chunks(rng, 3)
    detector = FFOneClass(**SMALL).fit_stream(chunks)
    detector.fit_stream(chunks)
    fresh = FFOneClass(**SMALL).fit_stream(chunks)
    X = rng.normal(size=(20, 4))
    assert np.array_equal(detector.score_samples(X), fresh.score_samples(X))
    assert detector.n_samples_seen_ == 900


def test_fit_stream_rejects_single_array(rng):
    with pytest.raises(TypeError, match="iterable of 2-D batches"):
        FFOneClass(**SMALL).fit_stream(rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="no batches"):
        FFOneClass(**SMALL).fit_stream([])


def test_reservoir_stays_bounded(rng):
    detector = FFOneClass(**SMALL)
    for chunk in _chunks(rng, 3, rows=2000):
        detector.partial_fit(chunk)
    assert detector._stream.reservoir.shape == (RESERVOIR_SIZE, 4)
    assert detector._stream.reservoir_filled == RESERVOIR_SIZE


def test_reservoir_is_uniform_without_forgetting(rng):
    detector = FFOneClass(**SMALL)
    # Rows carry their position in the stream in column 0.
    for start in range(0, 20_000, 2000):
        chunk = rng.normal(size=(2000, 4))
        chunk[:, 0] = np.arange(start, start + 2000)
        detector.partial_fit(chunk)
    positions = detector._stream.reservoir[:, 0]
    assert abs(np.median(positions) - 10_000) < 1000, "Algorithm R keeps a uniform sample"


def test_forgetting_follows_drift(rng):
    before, after = _chunks(rng, 5, rows=1000), _chunks(rng, 5, rows=1000, shift=5.0)
    plain = FFOneClass(**SMALL).fit_stream(before + after)
    forgetful = FFOneClass(forgetting=1e-3, **SMALL).fit_stream(before + after)
    assert abs(plain.scaler_.mean_.mean() - 2.5) < 0.2, "without forgetting the mean covers all rows"
    assert abs(forgetful.scaler_.mean_.mean() - 5.0) < 0.2, "with forgetting the mean follows the drift"
    recent = np.median(forgetful._stream.reservoir[:, 1])
    assert recent > 4.0, f"the biased reservoir keeps recent rows (median {recent:.2f})"


def test_forgetting_parameter_checked(rng):
    with pytest.raises(ValueError, match="forgetting"):
        FFOneClass(forgetting=1.0, **SMALL).partial_fit(rng.normal(size=(10, 4)))


# ---------------------------------------------------------------- failed calls


def test_partial_fit_divergence_rolls_back(rng, tmp_path):
    """A partial_fit call that diverges leaves the detector as it was before the call."""
    from ffoc import load
    from ffoc.trainers import TrainingDivergedError

    detector = FFOneClass(
        objective="goodness", optimizer="sgd", learning_rate=1e4, hidden_layer_sizes=(16,), batch_size=32,
        random_state=0,
    )
    X = rng.normal(size=(600, 3))
    for call in range(20):
        before = _snapshot(detector) if call else None
        n_losses = len(detector.history_.layer_losses) if call else 0
        try:
            detector.partial_fit(X[(call % 6) * 100 : (call % 6 + 1) * 100])
        except TrainingDivergedError as error:
            message = str(error)
            break
    else:
        pytest.fail("learning_rate=1e4 with SGD should diverge within 20 calls")
    assert call > 0, "the first call diverged, so there is no earlier state to compare with"
    assert "keeps its state from before this call" in message

    _assert_same(before, _snapshot(detector))
    assert len(detector.history_.layer_losses) == n_losses
    for name, parameter in detector.layers_.named_parameters():
        assert torch.isfinite(parameter).all(), f"{name} is not finite after the rollback"
    scores = detector.score_samples(X)
    assert np.isfinite(scores).all()
    assert np.ptp(scores) > 0, "every row gets the same score"

    path = tmp_path / "model.safetensors"
    detector.save(path)
    assert np.array_equal(load(path).score_samples(X), scores)


@pytest.mark.parametrize("objective", ["hb-svdd", "svdd", "goodness"])
@pytest.mark.parametrize("learning_rate", [1e2, 1e4])
def test_partial_fit_pass_matches_one_epoch_fit(objective, learning_rate, rng):
    """Large SGD steps: one partial_fit pass diverges exactly when fit(epochs=1) does, else scores alike."""
    from ffoc.trainers import TrainingDivergedError

    params = dict(objective=objective, optimizer="sgd", learning_rate=learning_rate, hidden_layer_sizes=(16, 16),
                  random_state=0)
    X = rng.normal(size=(WARM_UP_ROWS + 88, 4))
    outcomes = []
    for train in (lambda: FFOneClass(epochs=1, **params).fit(X), lambda: FFOneClass(**params).partial_fit(X)):
        try:
            outcomes.append(train().score_samples(X))
        except TrainingDivergedError:
            outcomes.append(None)
    if outcomes[0] is None:
        assert outcomes[1] is None, "fit(epochs=1) diverged but the partial_fit pass did not"
    else:
        assert outcomes[1] is not None, "the partial_fit pass diverged but fit(epochs=1) did not"
        assert np.array_equal(outcomes[0], outcomes[1])


def test_partial_fit_large_sgd_steps_never_overflow(rng):
    """Calls with SGD at learning_rate=1e4 leave finite radii and unclipped scores, or raise and roll back."""
    from ffoc.trainers import TrainingDivergedError
    from ffoc.trainers.common import OVERFLOW_SCORE

    detector = FFOneClass(optimizer="sgd", learning_rate=1e4, hidden_layer_sizes=(16, 16), random_state=0)
    X = rng.normal(size=(3000, 4))
    diverged = False
    accepted = []
    for chunk in np.split(X, 5):
        try:
            detector.partial_fit(chunk)
            accepted.append(chunk)
        except TrainingDivergedError:
            diverged = True
        seen = np.concatenate(accepted)
        radii = [state.radius2 for state in detector.states_]
        assert np.isfinite(radii).all(), f"radii {radii} after {detector.n_samples_seen_} rows"
        assert np.abs(detector.layer_scores(seen)).max() < OVERFLOW_SCORE
        assert np.isfinite(detector.score_samples(seen)).all()
        assert np.isfinite(detector.offset_)
    assert diverged, "fit diverges with these settings, so the stream should raise too"
    with pytest.raises(TrainingDivergedError):
        FFOneClass(optimizer="sgd", learning_rate=1e4, hidden_layer_sizes=(16, 16), random_state=0).fit(X)


def test_partial_fit_interrupted_call_rolls_back(rng, monkeypatch):
    """Any error in the middle of a call, after steps and reservoir replacements, undoes the call."""
    first, second, failing, after = (
        rng.normal(size=(RESERVOIR_SIZE + 100, 4)), rng.normal(size=(100, 4)),
        rng.normal(size=(2000, 4)) + 3.0, rng.normal(size=(200, 4)),
    )
    detector = FFOneClass(**SMALL).partial_fit(first).partial_fit(second)  # Adam's state now exists
    before = _snapshot(detector)
    n_losses = len(detector.history_.layer_losses)
    scaler = detector.scaler_

    train_one_pass = detector._train_one_pass

    def train_then_fail(X):
        train_one_pass(X)
        raise KeyboardInterrupt

    monkeypatch.setattr(detector, "_train_one_pass", train_then_fail)
    with pytest.raises(KeyboardInterrupt):
        detector.partial_fit(failing)
    monkeypatch.undo()

    # The failed call had stepped every layer and replaced reservoir rows: all of it is undone.
    _assert_same(before, _snapshot(detector))
    assert detector.scaler_ is scaler
    assert len(detector.history_.layer_losses) == n_losses

    # The next call continues exactly as if the failed one never happened.
    detector.partial_fit(after)
    twin = FFOneClass(**SMALL).partial_fit(first).partial_fit(second).partial_fit(after)
    _assert_same(_snapshot(twin), _snapshot(detector))
    assert np.array_equal(twin.score_samples(after), detector.score_samples(after))


def test_partial_fit_failed_first_call_leaves_unfitted(rng, monkeypatch):
    """A first call that fails leaves no half-built stream behind."""
    from sklearn.exceptions import NotFittedError

    detector = FFOneClass(**SMALL)

    def fail(X):
        raise RuntimeError("stop")

    monkeypatch.setattr(detector, "_train_one_pass", fail)
    with pytest.raises(RuntimeError, match="stop"):
        detector.partial_fit(rng.normal(size=(WARM_UP_ROWS, 4)))
    monkeypatch.undo()
    assert not hasattr(detector, "layers_")
    assert not hasattr(detector, "n_features_in_")
    with pytest.raises(NotFittedError):
        detector.score_samples(rng.normal(size=(3, 4)))


# ---------------------------------------------------------------- running scaler


@pytest.mark.parametrize("scale", [1e-300, 1e-30, 1e-13, 1e160, 1e300])
def test_partial_fit_extreme_scales(rng, scale):
    """The running scaler standardises rows of any finite magnitude as it does at unit scale."""
    import warnings

    X = rng.normal(size=(600, 3))
    queries = np.array([[8.0, 8.0, 8.0], [0.0, 0.0, 0.0]])
    unit = FFOneClass(**SMALL)
    scaled = FFOneClass(**SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for start in range(0, 600, 100):
            unit.partial_fit(X[start : start + 100])
            scaled.partial_fit(X[start : start + 100] * scale)
        scores = scaled.score_samples(queries * scale)
        predictions = scaled.predict(queries * scale)

    np.testing.assert_allclose(scaled.scaler_.scale_, X.std(axis=0) * scale, rtol=1e-9)
    np.testing.assert_allclose(scaled.scaler_.mean_, X.mean(axis=0) * scale, rtol=1e-9)
    assert np.isfinite(scores).all()
    assert list(predictions) == [-1, 1], f"scores {scores} at scale {scale:g}"
    np.testing.assert_allclose(scores, unit.score_samples(queries), rtol=1e-6)


def test_partial_fit_constant_columns_relative_to_magnitude(rng):
    """A column is constant when its deviation is tiny next to its mean, not next to 1."""
    X = rng.normal(size=(600, 4))
    X[:, 1] = 5.0
    X[:, 2] = 0.0
    X[:, 3] *= 1e-20  # varies, at a tiny scale
    detector = FFOneClass(**SMALL)
    for start in range(0, 600, 100):
        detector.partial_fit(X[start : start + 100])
    assert detector.scaler_.scale_[1] == 1.0, "a constant column keeps scale 1"
    assert detector.scaler_.scale_[2] == 1.0, "a zero column keeps scale 1"
    np.testing.assert_allclose(detector.scaler_.scale_[[0, 3]], X[:, [0, 3]].std(axis=0), rtol=1e-9)


def test_partial_fit_after_structural_set_params_raises(rng):
    X = rng.normal(size=(600, 3))
    detector = FFOneClass(hidden_layer_sizes=(8,), random_state=0)
    detector.partial_fit(X)
    detector.set_params(objective="svdd")
    with pytest.raises(ValueError, match=r"objective \('hb-svdd' at fit, 'svdd' now\) changed after fit"):
        detector.partial_fit(X)
    detector.set_params(objective="hb-svdd", learning_rate=1e-4)
    with pytest.raises(ValueError, match=r"learning_rate \(0.001 at fit, 0.0001 now\)"):
        detector.partial_fit(X)  # the stream's optimizer was built with the first call's rate
    detector.set_params(learning_rate=1e-3, batch_size=64)
    detector.partial_fit(X)


@pytest.mark.parametrize("scale", [1e-160, 1e-200, 1e-300])
def test_partial_fit_tiny_values_after_fit(rng, scale):
    X = rng.normal(size=(1200, 4))
    detector = FFOneClass(hidden_layer_sizes=(8, 8), epochs=2, random_state=0).fit(X[:600] * scale)
    detector.partial_fit(X[600:] * scale)
    np.testing.assert_allclose(detector.scaler_.scale_ / scale, 1.0, rtol=0.2)


@pytest.mark.parametrize("value", [1e60, 1e200, 1e300])
def test_partial_fit_accepts_huge_constant_column(rng, value):
    X = rng.normal(size=(600, 3))
    X[:, 2] = value
    detector = FFOneClass(hidden_layer_sizes=(8,), random_state=0)
    detector.partial_fit(X)
    detector.partial_fit(X[:100])
    assert np.isfinite(detector.score_samples(X[:5])).all()


def test_partial_fit_one_row_warns_flat_scores(rng):
    with pytest.warns(UserWarning, match="after 1 row seen, every training row so far gets nearly the same score"):
        FFOneClass(**SMALL).partial_fit(rng.normal(size=(1, 4)))


def _messages(record, text: str) -> list[str]:
    return [str(w.message) for w in record if text in str(w.message)]


def test_fit_stream_one_row_chunks_no_flat_warning(rng):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        detector = FFOneClass(**SMALL).fit_stream(rng.normal(size=(1, 4)) for _ in range(300))
    assert _messages(record, "nearly the same score") == []
    assert detector._flat_layers == ()


def test_fit_stream_shorter_than_warm_up_warns(rng):
    with pytest.warns(UserWarning, match=r"ended after 300 rows, fewer than the warm-up of 512 rows"):
        detector = FFOneClass(**SMALL).fit_stream(rng.normal(size=(100, 4)) for _ in range(3))
    assert detector._training_summary()["n_optimizer_steps"] == 0

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FFOneClass(**SMALL).fit_stream(rng.normal(size=(300, 4)) for _ in range(2))


def test_fit_stream_flat_at_end_warns_once():
    chunks = [np.tile([[1.0, 2.0, 3.0, 4.0]], (3, 1)) for _ in range(2)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        FFOneClass(**SMALL).fit_stream(chunks)
    flat = _messages(record, "nearly the same score")
    assert len(flat) == 1
    assert "after 6 rows seen" in flat[0]


@pytest.mark.parametrize(
    ("score_layers", "column", "expected"),
    [
        ("last", 0, None),
        ("last", 1, "at layer 1 .* no scale"),
        ("all", 0, "at layer 0 .* not comparable across the scored layers"),
        ([0, -1], 1, "at layer 1 .* not comparable across the scored layers"),
    ],
)
def test_flat_warning_names_scored_layers_only(rng, score_layers, column, expected):
    detector = FFOneClass(score_layers=score_layers, epochs=1, **SMALL).fit(rng.normal(size=(64, 4)))
    scores = rng.normal(size=(64, 2))
    scores[:, column] = 3.0
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        detector._set_score_statistics(scores)
    flat = _messages(record, "nearly the same score")
    if expected is None:
        assert flat == []
    else:
        assert len(flat) == 1
        assert re.search(expected, flat[0])


def test_fit_stream_flat_scores_warn_once():
    chunks = [np.tile([[1.0, 2.0, 3.0, 4.0]], (10, 1)) for _ in range(5)]
    with pytest.warns(UserWarning, match="nearly the same score") as record:
        FFOneClass(**SMALL).fit_stream(chunks)
    flat_warnings = [w for w in record if "nearly the same score" in str(w.message)]
    assert len(flat_warnings) == 1


def test_partial_fit_varied_rows_do_not_warn_flat(rng):
    detector = FFOneClass(**SMALL)
    with pytest.warns(UserWarning, match="nearly the same score"):
        detector.partial_fit(rng.normal(size=(1, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector.partial_fit(rng.normal(size=(WARM_UP_ROWS, 4)))
        detector.partial_fit(rng.normal(size=(100, 4)))


def test_training_summary_survives_save_and_continue(rng, tmp_path):
    from ffoc import load
    from ffoc.checkpoint import load_checkpoint, save_checkpoint

    X = rng.normal(size=(600, 4))
    detector = FFOneClass(epochs=2, **SMALL).fit(X)
    assert detector._training_summary() == {"trained_with": "fit", "epochs_trained": 2}

    detector.partial_fit(X[:100])
    after_fit = {"trained_with": "partial_fit", "n_samples_seen": 700, "n_partial_fit_calls": 1,
                 "n_optimizer_steps": 4, "continued_from": {"trained_with": "fit", "epochs_trained": 2}}
    assert detector._training_summary() == after_fit

    detector.save(tmp_path / "model.safetensors")
    assert load(tmp_path / "model.safetensors")._training_summary() == after_fit

    save_checkpoint(detector, tmp_path / "checkpoint.safetensors")
    resumed, _ = load_checkpoint(tmp_path / "checkpoint.safetensors")
    resumed.partial_fit(X[:100])
    assert resumed._training_summary() == {**after_fit, "n_samples_seen": 800, "n_partial_fit_calls": 2,
                                           "n_optimizer_steps": 8}

    resumed.fit(X)
    assert resumed._training_summary() == {"trained_with": "fit", "epochs_trained": 2}

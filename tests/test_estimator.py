"""FFOneClass: scikit-learn outlier contract, learning, determinism and input checks."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from ffoc import FFOneClass

FAST = dict(epochs=5, hidden_layer_sizes=(16, 16))


@pytest.fixture(scope="module")
def fitted(shifted_blobs):
    normal, _ = shifted_blobs
    return FFOneClass(random_state=0, **FAST).fit(normal)


def test_ffoneclass_fit_returns_self(shifted_blobs):
    detector = FFOneClass(random_state=0, **FAST)
    assert detector.fit(shifted_blobs[0]) is detector


def test_ffoneclass_init_only_stores_parameters():
    detector = FFOneClass(nu=7.0, device="cuda:99", hidden_layer_sizes="bad")
    assert detector.nu == 7.0
    assert not hasattr(detector, "layers_")


def test_ffoneclass_decision_function_is_score_samples_minus_offset(fitted, shifted_blobs):
    X = np.vstack(shifted_blobs)
    assert np.allclose(fitted.decision_function(X), fitted.score_samples(X) - fitted.offset_)


def test_ffoneclass_predict_sign_of_decision_function(fitted, shifted_blobs):
    X = np.vstack(shifted_blobs)
    decision = fitted.decision_function(X)
    assert set(np.unique(fitted.predict(X))) <= {-1, 1}
    assert np.array_equal(fitted.predict(X), np.where(decision >= 0, 1, -1))


def test_ffoneclass_separates_shifted_anomalies(shifted_blobs):
    normal, anomalies = shifted_blobs
    for trainer in ("ff", "bp"):
        detector = FFOneClass(trainer=trainer, random_state=0).fit(normal)
        scores = detector.score_samples(np.vstack([normal, anomalies]))
        labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalies))]
        assert np.unique(scores).size > 1, "scores must not all be equal"
        assert roc_auc_score(labels, -scores) > 0.9, trainer
        assert (detector.predict(anomalies) == -1).mean() > 0.9, trainer


@pytest.mark.parametrize("objective", ["goodness", "goodness-sigmoid", "hb-svdd", "svdd", "ls-svdd"])
def test_ffoneclass_every_objective_scores_anomalies_lower(objective, shifted_blobs):
    normal, anomalies = shifted_blobs
    detector = FFOneClass(objective=objective, random_state=0, **FAST).fit(normal)
    assert detector.score_samples(anomalies).mean() < detector.score_samples(normal).mean()


def test_ffoneclass_auto_contamination_flags_nu_of_training_rows(fitted, shifted_blobs):
    share = (fitted.predict(shifted_blobs[0]) == -1).mean()
    assert share == pytest.approx(fitted.nu, abs=0.01)


def test_ffoneclass_zero_contamination_flags_all_far_points(shifted_blobs):
    normal, _ = shifted_blobs
    detector = FFOneClass(contamination=0.0, random_state=0, **FAST).fit(normal)
    far = np.random.default_rng(1).normal(size=(50, 5)) + 20.0
    assert np.all(detector.predict(far) == -1)
    assert np.all(detector.predict(normal) == 1)


def test_ffoneclass_fit_ignores_y(shifted_blobs):
    normal, _ = shifted_blobs
    y = np.r_[np.zeros(150), np.ones(150)]
    a = FFOneClass(random_state=3, **FAST).fit(normal).score_samples(normal)
    b = FFOneClass(random_state=3, **FAST).fit(normal, y).score_samples(normal)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("trainer,schedule", [("ff", "interleaved"), ("ff", "layerwise"), ("bp", "interleaved")])
def test_ffoneclass_random_state_makes_results_bit_identical(trainer, schedule, shifted_blobs):
    normal, _ = shifted_blobs
    params = dict(trainer=trainer, schedule=schedule, random_state=11, **FAST)
    a = FFOneClass(**params).fit(normal).score_samples(normal)
    b = FFOneClass(**params).fit(normal).score_samples(normal)
    assert np.array_equal(a, b)


def test_ffoneclass_different_seeds_differ(shifted_blobs):
    normal, _ = shifted_blobs
    a = FFOneClass(random_state=1, **FAST).fit(normal).score_samples(normal)
    b = FFOneClass(random_state=2, **FAST).fit(normal).score_samples(normal)
    assert not np.array_equal(a, b)


def test_ffoneclass_constant_column_warns_and_scores_finite(rng):
    X = rng.normal(size=(200, 5))
    X[:, 2] = 3.0
    with pytest.warns(UserWarning, match="constant column"):
        detector = FFOneClass(random_state=0, **FAST).fit(X)
    assert np.isfinite(detector.score_samples(X)).all()


def test_ffoneclass_fewer_rows_than_batch_size_trains(rng):
    X = rng.normal(size=(20, 3))
    detector = FFOneClass(batch_size=32, random_state=0, epochs=3).fit(X)
    assert detector.score_samples(X).shape == (20,)
    assert np.isfinite(detector.score_samples(X)).all()


def test_ffoneclass_batch_of_one(rng):
    X = rng.normal(size=(50, 3))
    detector = FFOneClass(batch_size=1, epochs=1, random_state=0).fit(X)
    assert detector.predict(X[:1]).shape == (1,)
    single_row = FFOneClass(epochs=2, random_state=0).fit(X[:1])
    assert np.isfinite(single_row.score_samples(X)).all()


def test_ffoneclass_dataframe_sets_feature_names(rng):
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    detector = FFOneClass(random_state=0, **FAST).fit(frame)
    assert detector.n_features_in_ == 3
    assert list(detector.feature_names_in_) == ["a", "b", "c"]
    assert detector.score_samples(frame).shape == (60,)


def test_ffoneclass_layer_scores_shape_and_direction(fitted, shifted_blobs):
    normal, anomalies = shifted_blobs
    scores = fitted.layer_scores(anomalies)
    assert scores.shape == (15, 2)
    # The first layer gets the standardised magnitude, so shifted rows score high there;
    # later layers get only the direction of the previous layer's activity.
    assert scores[:, 0].min() > np.median(fitted.layer_scores(normal)[:, 0])


def test_ffoneclass_score_layers_last_uses_last_layer(shifted_blobs):
    normal, anomalies = shifted_blobs
    detector = FFOneClass(score_layers="last", random_state=0, **FAST).fit(normal)
    last = detector.layer_scores(anomalies)[:, -1]
    expected = -(last - detector.layer_score_mean_[-1]) / detector.layer_score_std_[-1]
    assert np.allclose(detector.score_samples(anomalies), expected)


def test_ffoneclass_early_stopping_records_validation_losses(shifted_blobs):
    normal, _ = shifted_blobs
    detector = FFOneClass(early_stopping=True, epochs=200, n_iter_no_change=3, random_state=0).fit(normal)
    assert len(detector.history_.validation_losses) >= 1
    assert len(detector.history_.validation_losses) < 200


@pytest.mark.parametrize("trainer", ["ff", "bp"])
def test_early_stopping_best_epoch_saved(trainer, tmp_path):
    from ffoc import load

    X = np.random.default_rng(0).normal(size=(1000, 5))
    detector = FFOneClass(epochs=200, early_stopping=True, n_iter_no_change=2, hidden_layer_sizes=(8, 8),
                          trainer=trainer, random_state=0).fit(X)
    best, n_run = detector.history_.best_epoch, len(detector.history_.layer_losses)
    assert best is not None
    assert best + 1 < n_run
    summary = detector._training_summary()
    assert summary == {"trained_with": "fit", "epochs_trained": n_run, "epochs_kept": best + 1}

    detector.save(tmp_path / "model.safetensors")
    loaded = load(tmp_path / "model.safetensors")
    assert loaded.history_.best_epoch == best
    assert loaded._training_summary() == summary


def test_layerwise_summary_counts_each_layer(tmp_path):
    from ffoc import load

    X = np.random.default_rng(0).normal(size=(1000, 5))
    detector = FFOneClass(schedule="layerwise", epochs=200, early_stopping=True, n_iter_no_change=2,
                          hidden_layer_sizes=(8, 8, 8), random_state=0).fit(X)
    history = detector.history_
    assert len(history.phase_epochs) == 3
    assert len(history.phase_best_epochs) == 3
    assert all(best < run <= 200 for best, run in zip(history.phase_best_epochs, history.phase_epochs))
    # The loss table is as long as the longest phase.
    assert len(history.layer_losses) == max(history.phase_epochs)
    summary = detector._training_summary()
    assert summary == {"trained_with": "fit", "epochs_trained": history.phase_epochs,
                       "epochs_kept": [best + 1 for best in history.phase_best_epochs]}
    detector.save(tmp_path / "model.safetensors")
    assert load(tmp_path / "model.safetensors")._training_summary() == summary


def test_layerwise_summary_without_early_stopping():
    X = np.random.default_rng(0).normal(size=(200, 4))
    detector = FFOneClass(schedule="layerwise", epochs=3, hidden_layer_sizes=(8, 8), random_state=0).fit(X)
    assert detector._training_summary() == {"trained_with": "fit", "epochs_trained": [3, 3]}
    with pytest.warns(UserWarning, match="epochs=0"):
        untrained = FFOneClass(epochs=0, hidden_layer_sizes=(8,), random_state=0).fit(X)
    assert untrained._training_summary() == {"trained_with": "fit", "epochs_trained": 0}


def test_summary_without_early_stopping(fitted):
    assert fitted.history_.best_epoch is None
    assert "epochs_kept" not in fitted._training_summary()


def test_ffoneclass_validation_data_used_for_stopping(shifted_blobs):
    normal, _ = shifted_blobs
    detector = FFOneClass(epochs=4, random_state=0).fit(normal[:200], X_val=normal[200:])
    assert len(detector.history_.validation_losses) == 4


def test_ffoneclass_training_memory_does_not_keep_graphs(shifted_blobs):
    normal, _ = shifted_blobs
    detector = FFOneClass(epochs=3, random_state=0).fit(normal)
    for layer in detector.layers_:
        assert layer.linear.weight.grad is None or layer.linear.weight.grad.grad_fn is None
    assert all(isinstance(v, float) for epoch in detector.history_.layer_losses for v in epoch)


def test_ffoneclass_verbose_zero_prints_nothing(capsys, shifted_blobs):
    FFOneClass(random_state=0, **FAST).fit(shifted_blobs[0])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_ffoneclass_scoring_before_fit_raises():
    with pytest.raises(NotFittedError):
        FFOneClass().score_samples(np.zeros((2, 2)))


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[1.0, np.nan], [2.0, 3.0]]), r"NaN at row 0, column 1"),
        (np.array([[1.0, 2.0], [np.inf, 3.0]]), r"inf at row 1, column 0"),
        (np.empty((0, 3)), r"0 sample"),
        (np.array([1.0, 2.0, 3.0]), r"expects a 2-D array"),
        (np.zeros((2, 2, 2)), r"dim 3|3D|3 dimensions|Found array with dim 3"),
        (np.array([["a", "b"], ["c", "d"]]), r"numeric"),
    ],
)
def test_ffoneclass_fit_rejects_bad_input(X, message):
    with pytest.raises(ValueError, match=message):
        FFOneClass(**FAST).fit(X)


def test_ffoneclass_rejects_nan_with_column_name():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, np.nan, 0.5]})
    with pytest.raises(ValueError, match=r"NaN at row 1, column 'b'"):
        FFOneClass(**FAST).fit(frame)


def test_nan_location_shows_plain_index_label():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0]}, index=pd.Index(np.array([10, 11, 12], dtype=np.int64)))
    with pytest.raises(ValueError, match=r"NaN at row 11, column 'a'"):
        FFOneClass(**FAST).fit(frame)


def test_ffoneclass_rejects_non_numeric_column_by_name():
    frame = pd.DataFrame({"a": [1.0, 2.0], "kind": ["x", "y"]})
    with pytest.raises(ValueError, match=r"not numeric: 'kind'"):
        FFOneClass(**FAST).fit(frame)


def test_ffoneclass_rejects_wrong_feature_count_at_scoring(fitted):
    with pytest.raises(ValueError, match=r"4 features.*expecting 5|expecting 5 features"):
        fitted.score_samples(np.zeros((3, 4)))


def test_ffoneclass_rejects_nan_at_scoring(fitted):
    X = np.zeros((3, 5))
    X[2, 4] = np.nan
    with pytest.raises(ValueError, match=r"NaN at row 2, column 4"):
        fitted.predict(X)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(nu=1.5), r"'nu' parameter"),
        (dict(contamination=0.7), r"'contamination' parameter"),
        (dict(objective="svm"), r"'objective' parameter"),
        (dict(hidden_layer_sizes=(16, 0)), r"hidden_layer_sizes"),
        (dict(hidden_layer_sizes=()), r"hidden_layer_sizes"),
        (dict(batch_size=0), r"'batch_size' parameter"),
        (dict(score_layers=[5]), r"score_layers"),
        (dict(device="tpu"), r"Unknown device 'tpu'"),
    ],
)
def test_ffoneclass_rejects_bad_parameters(params, message, rng):
    with pytest.raises(ValueError, match=message):
        FFOneClass(epochs=1, **params).fit(rng.normal(size=(20, 5))).score_samples(rng.normal(size=(2, 5)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where CUDA is missing")
def test_ffoneclass_cuda_without_gpu_is_clear_error(rng):
    with pytest.raises(ValueError, match="CUDA is not available"):
        FFOneClass(device="cuda", epochs=1).fit(rng.normal(size=(20, 3)))


def test_ffoneclass_layerwise_schedule_with_bp_is_clear_error(rng):
    with pytest.raises(ValueError, match="layerwise"):
        FFOneClass(trainer="bp", schedule="layerwise", epochs=1).fit(rng.normal(size=(20, 3)))


def test_ffoneclass_huge_values_are_rejected_or_finite(rng):
    X = rng.normal(size=(100, 3)) * 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        detector = FFOneClass(epochs=2, random_state=0).fit(X)
    assert np.isfinite(detector.score_samples(X)).all()


def test_ffoneclass_normalize_hidden_controls_later_layers(shifted_blobs):
    normal, _ = shifted_blobs
    on = FFOneClass(random_state=0, **FAST).fit(normal)
    off = FFOneClass(normalize_hidden=False, random_state=0, **FAST).fit(normal)
    assert [layer.normalize_input for layer in on.layers_] == [False, True]
    assert [layer.normalize_input for layer in off.layers_] == [False, False]


@pytest.mark.parametrize("n_rows, expected", [(20, 100), (500, 100), (1280, 40), (100_000, 1)])
def test_ffoneclass_auto_epochs_budget(n_rows, expected):
    assert FFOneClass(batch_size=128)._resolve_epochs(n_rows) == expected


@pytest.mark.parametrize(
    "objective, optimizer, learning_rate", [("goodness", "sgd", 1e8), ("goodness-sigmoid", "adam", 1e20)]
)
def test_ffoneclass_divergence_raises_instead_of_nan(objective, optimizer, learning_rate, rng):
    from ffoc.trainers import TrainingDivergedError

    X = rng.normal(size=(40, 3))
    with pytest.raises(TrainingDivergedError, match="diverged"):
        FFOneClass(objective, optimizer=optimizer, learning_rate=learning_rate, epochs=3,
                   hidden_layer_sizes=(8,), random_state=0).fit(X)


def test_ffoneclass_extreme_scoring_input_gets_finite_lowest_score(fitted):
    scores = fitted.score_samples(np.array([[1e30, 0, 0, 0, 0], [0, 0, 0, 0, 0]]))
    assert np.isfinite(scores).all()
    assert scores[0] < scores[1]


def test_ffoneclass_early_stopping_large_holdout_keeps_training_rows(rng):
    detector = FFOneClass(early_stopping=True, validation_fraction=0.99, epochs=2, hidden_layer_sizes=(8,),
                          random_state=0).fit(rng.normal(size=(40, 3)))
    assert np.isfinite(detector.offset_)


def test_ffoneclass_rejects_oversized_network(rng):
    with pytest.raises(ValueError, match="smaller layers"):
        FFOneClass(hidden_layer_sizes=(10**12,), epochs=1).fit(rng.normal(size=(10, 3)))


def test_ffoneclass_rejects_fractional_score_layers(rng):
    with pytest.raises(ValueError, match="integer layer indices"):
        FFOneClass(score_layers=[0.5], epochs=1).fit(rng.normal(size=(10, 3))).score_samples(np.zeros((1, 3)))


def test_ffoneclass_small_network_trains_on_one_thread_and_restores(rng, monkeypatch):
    import ffoc.trainers.ff as ff_module

    seen = []
    original = ff_module.ff_step

    def recording_step(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(ff_module, "ff_step", recording_step)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        FFOneClass(epochs=1, hidden_layer_sizes=(8,), random_state=0).fit(rng.normal(size=(20, 3)))
        assert set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_fit_zero_epochs_warns_untrained(rng):
    with pytest.warns(UserWarning, match="epochs=0 leaves the network untrained"):
        FFOneClass(epochs=0, hidden_layer_sizes=(8,), random_state=0).fit(rng.normal(size=(40, 3)))


def test_fit_header_only_frame_says_no_rows():
    frame = pd.DataFrame(columns=["a", "b"])
    with pytest.raises(ValueError, match="columns but no rows"):
        FFOneClass().fit(frame)


def test_fit_identical_rows_warns_flat_scores():
    X = np.tile([[1.0, 2.0, 3.0]], (20, 1))
    with pytest.warns(UserWarning, match="nearly the same score"):
        FFOneClass(epochs=1, hidden_layer_sizes=(8,), random_state=0).fit(X)


def test_fit_one_dimensional_input_says_reshape():
    with pytest.raises(ValueError, match=r"got a 1-D array of shape \(10,\)"):
        FFOneClass().fit(np.arange(10.0))


def test_fit_tiny_values_no_constant_column_warning(rng):
    X = rng.normal(size=(200, 3)) * 1e-300
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        detector = FFOneClass(epochs=1, hidden_layer_sizes=(8,), random_state=0).fit(X)
    assert np.all(detector.scaler_.var_ > 0)


@pytest.mark.parametrize("param", ["epochs", "batch_size", "n_iter_no_change", "n_threads", "learning_rate"])
def test_fit_rejects_bool_for_number(param, rng):
    with pytest.raises(ValueError, match=rf"'{param}' parameter of FFOneClass .* not a bool \(got True\)"):
        FFOneClass(**{param: True}).fit(rng.normal(size=(20, 3)))


@pytest.mark.parametrize("method", ["partial_fit", "fit_stream"])
def test_online_rejects_bool_for_number(method, rng):
    X = rng.normal(size=(20, 3))
    detector = FFOneClass(batch_size=True)
    with pytest.raises(TypeError, match=r"'batch_size' parameter of FFOneClass .* not a bool \(got True\)"):
        getattr(detector, method)(X if method == "partial_fit" else [X])


def test_fit_accepts_numpy_ints_and_flags(rng):
    detector = FFOneClass(epochs=np.int64(1), batch_size=np.int32(8), bias=True, verbose=False, random_state=0)
    detector.fit(rng.normal(size=(20, 3)))
    assert detector.n_epochs_ == 1

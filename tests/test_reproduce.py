"""The banknote reproduction: protocols, the labelled stopping rule, runs, tables, landscapes and CLI."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ffoc import FFOneClass
from ffoc.cli import main
from ffoc.reproduce import (
    PAPER_SPLIT_SEED,
    PROTOCOLS,
    PaperOneClass,
    ParameterRecorder,
    RecordingOneClass,
    RunSpec,
    compute_landscapes,
    execute_runs,
    labelled_validation_loss,
    run_one,
    run_reproduction,
    summarize,
)
from ffoc.reproduce._runs import SPLIT_FRACTIONS

METRICS_IN_UNIT_RANGE = ("auroc", "auprc", "accuracy", "f1", "auroc_thresholded")


@pytest.fixture(scope="module")
def tiny_reproduction(tmp_path_factory):
    """Both protocols, one objective, both trainers, one seed, two epochs, with landscapes."""
    out = tmp_path_factory.mktemp("reproduce")
    report = run_reproduction(
        out, seeds=1, objectives=["hb-svdd"], epochs=2, jobs=1,
        landscape=True, resolution=4, frames=3,
    )
    return out, report


def test_reproduction_writes_tables(tiny_reproduction):
    out, report = tiny_reproduction
    for name in ("results.csv", "summary.csv", "summary.md"):
        assert (out / name).is_file(), f"{name} missing"
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 1 * 2, "one row per protocol x objective x trainer x seed"
    assert (results["status"] == "ok").all(), results["error"].tolist()


def test_reproduction_summary_shape(tiny_reproduction):
    out, report = tiny_reproduction
    summary = pd.read_csv(out / "summary.csv")
    assert summary.shape[0] == 4, "one row per protocol x objective x trainer"
    assert list(summary[["protocol", "objective", "trainer"]].drop_duplicates().itertuples(index=False)) == list(
        summary[["protocol", "objective", "trainer"]].itertuples(index=False)
    )
    for column in ("auroc_mean", "auroc_std", "auroc_max", "n_runs", "n_failed", "tp_mean"):
        assert column in summary.columns
    markdown = (out / "summary.md").read_text()
    table_rows = [line for line in markdown.splitlines() if line.startswith("| paper") or line.startswith("| ffoc")]
    assert len(table_rows) == 4
    assert "**yes** (stopping rule)" in markdown
    assert "training rows only" in markdown, "the deviation from the original must be stated"
    assert "Quick check, not a reproduction" in markdown


def test_reproduction_metric_ranges(tiny_reproduction):
    _, report = tiny_reproduction
    results = report.results
    for metric in METRICS_IN_UNIT_RANGE:
        values = results[metric].astype(float)
        assert values.between(0.0, 1.0).all(), f"{metric} outside [0, 1]: {values.tolist()}"
    n_test = results[["tn", "fp", "fn", "tp"]].sum(axis=1)
    assert (n_test == n_test.iloc[0]).all(), "every run is scored on a test part of the same size"
    assert (results["epochs_run"] <= 2).all()


def test_reproduction_label_use_marks_paper_only(tiny_reproduction):
    _, report = tiny_reproduction
    summary = report.summary
    assert summary.loc[summary["protocol"] == "paper", "label_use"].all()
    assert not summary.loc[summary["protocol"] == "ffoc", "label_use"].any()


def test_reproduction_images_decode(tiny_reproduction):
    out, _ = tiny_reproduction
    pngs = sorted(out.rglob("*.png"))
    gifs = sorted(out.rglob("*.gif"))
    # Per protocol: 2 histograms, ROC, loss; plus one landscape PNG per setting.
    assert len(pngs) == 2 * 4 + 4, [p.name for p in pngs]
    assert len(gifs) == 4, [p.name for p in gifs]
    for path in pngs + gifs:
        with Image.open(path) as image:
            image.load()
            assert image.format == ("PNG" if path.suffix == ".png" else "GIF"), path
    with Image.open(gifs[0]) as image:
        assert image.n_frames >= 2, "a GIF should animate"


def test_paper_split_is_fixed_and_ffoc_split_varies():
    assert PROTOCOLS["paper"].split_seed(0) == PROTOCOLS["paper"].split_seed(7) == PAPER_SPLIT_SEED
    assert PROTOCOLS["ffoc"].split_seed(3) == 3
    assert SPLIT_FRACTIONS == (0.6, 0.2, 0.2)


def test_paper_detector_has_original_settings():
    detector = PROTOCOLS["paper"].make_detector("svdd", "bp", 4)
    assert isinstance(detector, PaperOneClass)
    params = detector.get_params()
    assert params["hidden_layer_sizes"] == (40, 40, 40)
    assert params["bias"] is True
    assert params["normalize_input"] is True
    assert params["theta"] == 1.0
    assert params["optimizer"] == "sgd"
    assert params["learning_rate"] == 5e-4
    assert params["batch_size"] == 32
    assert params["epochs"] == 1000
    assert params["center_update"] == "epoch"
    assert params["negatives"] == "none"
    assert params["score_layers"] == "last"
    assert params["random_state"] == 4


def test_ffoc_detector_uses_estimator_defaults():
    detector = PROTOCOLS["ffoc"].make_detector("goodness", "ff", 2)
    defaults = FFOneClass().get_params()
    params = detector.get_params()
    for name, value in defaults.items():
        if name not in ("objective", "trainer", "random_state"):
            assert params[name] == value, f"{name} differs from the FFOneClass default"


def test_labelled_validation_loss_is_cross_entropy():
    """Two rows: the normal one at the center (loss 0), the anomaly farthest (probability 1)."""
    from ffoc.nn import build_mlp
    from ffoc.objectives import LayerState, get_objective

    layers = build_mlp(2, [2], activation="identity", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layers[0].linear.weight.copy_(torch.eye(2))
    state = LayerState(center=torch.zeros(2), radius2=1.0, scale=1.0)
    X_val = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    value = labelled_validation_loss(layers, get_objective("hb-svdd"), [state], X_val, np.array([0, 1]))
    assert value == pytest.approx(-np.log(1 - 1e-7), abs=1e-9), "both rows predicted right: loss near 0"
    swapped = labelled_validation_loss(layers, get_objective("hb-svdd"), [state], X_val, np.array([1, 0]))
    assert swapped == pytest.approx(-np.log(1e-7), rel=1e-6), "both rows predicted wrong: loss at the clip"


def test_paper_detector_stops_on_labelled_loss(rng):
    X = rng.normal(size=(120, 4))
    X_val = np.vstack([rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) * 3.0])
    y_val = np.repeat([0, 1], 30)
    detector = PaperOneClass(
        "hb-svdd", epochs=200, n_iter_no_change=3, learning_rate=1e-6, optimizer="sgd", random_state=0
    ).fit(X, X_val=X_val, y_val=y_val)
    history = detector.history_
    assert history.stopped_epoch is not None, "a learning rate of 1e-6 cannot keep improving for 200 epochs"
    assert len(history.validation_losses) == len(history.layer_losses) == history.stopped_epoch + 1
    best = int(np.argmin(history.validation_losses))
    assert history.stopped_epoch - best == 3, "stops after 3 epochs without a new minimum"


def test_paper_detector_rejects_bad_validation_labels(rng):
    X = rng.normal(size=(40, 3))
    with pytest.raises(ValueError, match="y_val without X_val"):
        PaperOneClass(epochs=1).fit(X, y_val=np.zeros(5))
    with pytest.raises(ValueError, match="5 labels"):
        PaperOneClass(epochs=1).fit(X, X_val=X[:4], y_val=np.zeros(5))
    with pytest.raises(ValueError, match="only 0"):
        PaperOneClass(epochs=1).fit(X, X_val=X[:4], y_val=np.array([0, 1, 2, 0]))


def test_recorder_does_not_change_fit(rng):
    X = rng.normal(size=(100, 4))
    plain = RecordingOneClass("hb-svdd", "ff", epochs=3, batch_size=16, random_state=0).fit(X)
    recorder = ParameterRecorder(max_points=4)
    recorded = RecordingOneClass("hb-svdd", "ff", epochs=3, batch_size=16, random_state=0).fit(X, recorder=recorder)
    np.testing.assert_array_equal(plain.score_samples(X), recorded.score_samples(X))
    n_steps = 3 * 7  # 3 epochs of ceil(100 / 16) batches
    for steps in recorder.steps:
        assert steps[0] == 0, steps
        assert steps[-1] == n_steps, steps
        assert len(steps) <= 2 * 4 + 1, "thinning keeps at most 2 * max_points entries plus the final one"
        assert steps == sorted(steps)


def test_landscape_path_ends_at_trained_loss(rng):
    """The last path point is the trained network, so its loss is the layer's loss now."""
    X = rng.normal(size=(80, 4))
    recorder = ParameterRecorder()
    detector = RecordingOneClass(
        "hb-svdd", "ff", hidden_layer_sizes=(6, 5), epochs=4, batch_size=20, negatives="none", random_state=0,
    ).fit(X, recorder=recorder)
    landscapes = compute_landscapes(detector, X, recorder, resolution=5)
    assert len(landscapes) == 2
    X_tensor = detector._to_tensor(X)
    with torch.no_grad():
        h = X_tensor
        for k, layer in enumerate(detector.layers_):
            h = layer(h)
            expected = float(detector._objective.loss(h, detector.states_[k]))
            assert landscapes[k].path_loss[-1] == pytest.approx(expected, rel=1e-4)
            np.testing.assert_allclose(landscapes[k].path[-1], [0.0, 0.0], atol=1e-6)
            assert landscapes[k].loss.shape == (5, 5)
            assert np.isfinite(landscapes[k].loss).all()


def test_failed_run_is_counted(monkeypatch):
    def broken(*args, **kwargs):
        raise FloatingPointError("diverged on purpose")

    monkeypatch.setattr(type(PROTOCOLS["ffoc"]), "make_detector", broken)
    result = run_one(RunSpec("ffoc", "hb-svdd", "ff", 0))
    assert result.row["status"] == "failed"
    assert "diverged on purpose" in result.row["error"]
    results = pd.DataFrame([result.row, {**result.row, "status": "ok", "auroc": 0.9, "auprc": 0.8,
                                         "accuracy": 0.7, "f1": 0.6, "tn": 1, "fp": 2, "fn": 3, "tp": 4,
                                         "auroc_thresholded": 0.5, "epochs_run": 2, "fit_seconds": 0.1}])
    summary = summarize(results)
    assert summary.loc[0, "n_runs"] == 2
    assert summary.loc[0, "n_failed"] == 1
    assert summary.loc[0, "auroc_mean"] == pytest.approx(0.9), "the failed run enters no statistic"


def test_results_independent_of_jobs():
    specs = [RunSpec("paper", "svdd", "ff", 1, epochs=2), RunSpec("ffoc", "goodness", "bp", 2, epochs=2)]
    serial = execute_runs(specs, jobs=1)
    parallel = execute_runs(specs, jobs=2)
    for one, two in zip(serial, parallel):
        for key in ("auroc", "auprc", "tp", "fp", "epochs_run"):
            assert one.row[key] == two.row[key], key
        np.testing.assert_array_equal(one.arrays["test_score"], two.arrays["test_score"])


def test_run_reproduction_rejects_unknown_objective(tmp_path):
    with pytest.raises(ValueError, match="objectives"):
        run_reproduction(tmp_path, objectives=["nope"])


def test_cli_landscape_writes_png_and_gif(tmp_path, capsys):
    code = main([
        "landscape", "--out", str(tmp_path), "--protocol", "ffoc", "--objective", "svdd", "--trainer", "bp",
        "--epochs", "2", "--resolution", "4", "--frames", "2",
    ])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "ffoc_svdd_bp_seed0.png").is_file()
    assert (tmp_path / "ffoc_svdd_bp_seed0.gif").is_file()
    assert "AUROC" in capsys.readouterr().out


def test_cli_reproduce_prints_table(tmp_path, capsys):
    code = main([
        "reproduce", "--out", str(tmp_path), "--seeds", "1", "--epochs", "1", "--protocols", "ffoc",
        "--objectives", "hb-svdd", "--trainers", "ff", "--jobs", "1", "--quiet",
    ])
    assert code == 0, capsys.readouterr().err
    output = capsys.readouterr().out
    assert "| ffoc | hb-svdd | FF | no | 1 (0) |" in output
    assert (tmp_path / "figures" / "ffoc_roc.png").is_file()

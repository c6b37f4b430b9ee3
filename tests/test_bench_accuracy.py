"""ffoc bench accuracy: runs, resume, failure records, report section and the --quick command."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyod")

from ffoc.bench import accuracy  # noqa: E402
from ffoc.bench.accuracy import RUN_COLUMNS, run_accuracy  # noqa: E402
from ffoc.cli import main  # noqa: E402

SHARED_ADBENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "adbench_classical"

# Two cheap PyOD detectors keep these tests fast; the --quick test runs ffoc's.
FAST_DETECTORS = ["PCA", "HBOS"]


def _write_set(folder: Path, name: str, seed: int, n_normal: int = 60, n_anomalies: int = 8) -> None:
    generator = np.random.default_rng(seed)
    X = np.vstack([generator.normal(size=(n_normal, 3)), generator.normal(size=(n_anomalies, 3)) + 5.0])
    y = np.r_[np.zeros(n_normal, dtype=int), np.ones(n_anomalies, dtype=int)]
    np.savez(folder / f"{name}.npz", X=X, y=y)


@pytest.fixture
def adbench_folder(tmp_path):
    folder = tmp_path / "adbench_classical"
    folder.mkdir()
    for seed, name in enumerate(["1_alpha", "4_Arrhythmia", "6_cardio", "28_Parkinson", "30_beta"]):
        _write_set(folder, name, seed)
    return folder


def _run(folder, out, **kwargs):
    options = {"detectors": FAST_DETECTORS, "seeds": 1, "out_dir": out}
    options.update(kwargs)
    return run_accuracy(folder, **options)


def test_accuracy_default_sets_skip_early_variants(adbench_folder, tmp_path):
    result = _run(adbench_folder, tmp_path / "out", protocols=["one-class"])
    assert sorted(result.runs["dataset"].unique()) == ["1_alpha", "30_beta", "6_cardio"]
    assert len(result.runs) == 3 * len(FAST_DETECTORS)
    assert (result.runs["status"] == "ok").all(), result.runs["error"].tolist()
    assert result.runs["auroc"].between(0.0, 1.0).all()


def test_accuracy_writes_tables_and_report(adbench_folder, tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# Benchmarks\n\n<!-- begin other -->\nkept\n<!-- end other -->\n")
    result = _run(adbench_folder, tmp_path / "out", datasets=["1_alpha", "6_cardio"], report=report)

    for kind in ("runs", "figure", "one_class_auroc", "unsupervised_summary_held_out", "unsupervised_wins"):
        assert result.files[kind].is_file(), kind
    assert (tmp_path / "docs" / "figures" / "accuracy_ranks.png").read_bytes()[:4] == b"\x89PNG"
    text = report.read_text()
    assert "<!-- begin other -->\nkept\n<!-- end other -->" in text
    assert text.count("<!-- begin accuracy -->") == 1
    assert "PyOD 3" in text or "PyOD " in text
    assert "Tuning sets (1: 6_cardio)" in text, "tuning sets are reported apart"
    assert "Subset run" in text

    # A second run replaces the section instead of adding one.
    _run(adbench_folder, tmp_path / "out", datasets=["1_alpha", "6_cardio"], report=report, overwrite=True)
    assert report.read_text().count("<!-- begin accuracy -->") == 1


def test_accuracy_summary_ranks_and_wins(adbench_folder, tmp_path):
    result = _run(adbench_folder, tmp_path / "out", protocols=["unsupervised"])
    summary = result.summary["unsupervised"]
    held_out = summary["held_out"]
    assert summary["tuning_sets"] == ["6_cardio"]
    assert summary["held_out_sets"] == ["1_alpha", "30_beta"]
    assert held_out["mean_rank"].between(1.0, len(FAST_DETECTORS)).all()
    assert held_out["mean_rank"].sum() == pytest.approx(sum(range(1, len(FAST_DETECTORS) + 1)))
    wins, ties, losses = (int(v) for v in summary["wins"].loc["PCA", "HBOS"].split("/"))
    assert wins + ties + losses == 2


def test_accuracy_resume_skips_finished_runs(adbench_folder, tmp_path):
    out = tmp_path / "out"
    first = _run(adbench_folder, out, datasets=["1_alpha"])
    assert first.n_skipped == 0

    # Cut the last row in half, as an interruption during a write would.
    runs_path = out / "runs.csv"
    text = runs_path.read_text()
    runs_path.write_text(text[: text.rstrip("\n").rfind("\n") + 20])

    second = _run(adbench_folder, out, datasets=["1_alpha"], resume=True)
    assert second.n_skipped == len(first.runs) - 1, "only the cut row runs again"
    assert len(second.runs) == len(first.runs)
    rows = pd.read_csv(runs_path)
    assert list(rows.columns) == list(RUN_COLUMNS)
    assert len(rows) == len(first.runs)


def test_accuracy_existing_runs_need_resume_or_overwrite(adbench_folder, tmp_path):
    _run(adbench_folder, tmp_path / "out", datasets=["1_alpha"], protocols=["one-class"])
    with pytest.raises(ValueError, match="pass --resume to continue it or --overwrite"):
        _run(adbench_folder, tmp_path / "out", datasets=["1_alpha"], protocols=["one-class"])


def test_accuracy_records_failed_runs(adbench_folder, tmp_path, monkeypatch):
    real = accuracy._make_pyod_detector

    def broken(name, seed, n_features):
        if name == "HBOS":
            raise RuntimeError("HBOS exploded")
        return real(name, seed, n_features)

    monkeypatch.setattr(accuracy, "_make_pyod_detector", broken)
    result = _run(adbench_folder, tmp_path / "out", datasets=["1_alpha", "30_beta"], protocols=["one-class"])
    failed = result.runs[result.runs["detector"] == "HBOS"]
    assert (failed["status"] == "failed").all()
    assert failed["error"].str.contains("RuntimeError: HBOS exploded").all()
    assert failed["auroc"].isna().all()
    held_out = result.summary["one-class"]["held_out"]
    assert held_out.loc["HBOS", "failed_runs"] == 2
    assert held_out.loc["HBOS", "mean_rank"] == len(FAST_DETECTORS), "a failed detector ranks last"


def test_accuracy_subsamples_large_training_sets(tmp_path):
    folder = tmp_path / "adbench_classical"
    folder.mkdir()
    _write_set(folder, "1_big", 0, n_normal=400, n_anomalies=20)
    result = run_accuracy(folder, detectors=["HBOS"], seeds=1, max_train_rows=100, out_dir=tmp_path / "out")
    assert (result.runs["n_train"] == 100).all()
    assert (result.runs["n_train_full"] > 100).all()


def test_accuracy_rejects_unknown_names(adbench_folder, tmp_path):
    with pytest.raises(ValueError, match="data set 'nope' is not in"):
        _run(adbench_folder, tmp_path / "out", datasets=["nope"])
    with pytest.raises(ValueError, match=r"unknown detector\(s\) \['Magic'\]"):
        _run(adbench_folder, tmp_path / "out", detectors=["Magic"])


def test_accuracy_cli_missing_folder_is_one_line(tmp_path, capsys):
    code = main(["bench", "accuracy", "--data-dir", str(tmp_path / "missing"), "--no-report", "-q"])
    error = capsys.readouterr().err
    assert code == 1
    assert error.count("\n") == 1
    assert "not found" in error


def test_accuracy_cli_quick_end_to_end(tmp_path, capsys):
    if not SHARED_ADBENCH.is_dir():
        pytest.skip(f"ADBench data not found at {SHARED_ADBENCH}")
    out, report = tmp_path / "out", tmp_path / "BENCHMARKS.md"
    code = main(["bench", "accuracy", "--data-dir", str(SHARED_ADBENCH), "--quick", "--out", str(out),
                 "--report", str(report), "-q"])
    assert code == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == len(accuracy.QUICK_DATASETS) * 2 * len(accuracy.QUICK_DETECTORS)
    assert (runs["status"] == "ok").all(), runs["error"].dropna().tolist()
    assert (out / "accuracy_ranks.png").is_file()
    assert "<!-- begin accuracy -->" in report.read_text()
    assert "one-class: mean AUROC" in capsys.readouterr().out


def test_write_section_rejects_reversed_markers(tmp_path):
    from ffoc.bench.report import write_section

    path = tmp_path / "B.md"
    text = "# B\n<!-- end accuracy -->\nmiddle\n<!-- begin accuracy -->\nold\n"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"<!-- end accuracy -->.*before.*<!-- begin accuracy -->"):
        write_section(path, "accuracy", "new")
    assert path.read_text() == text

    path.write_text("# B\n<!-- begin accuracy -->\nold\n")
    with pytest.raises(ValueError, match=r"<!-- begin accuracy -->.*without.*<!-- end accuracy -->"):
        write_section(path, "accuracy", "new")


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_accuracy_report_keeps_set_with_all_runs_failed(adbench_folder, tmp_path):
    _cut_in_half(adbench_folder / "30_beta.npz")
    report = tmp_path / "BENCHMARKS.md"
    result = _run(adbench_folder, tmp_path / "out", datasets=["1_alpha", "30_beta"], protocols=["one-class"],
                  report=report)
    assert (result.runs.loc[result.runs["dataset"] == "30_beta", "status"] == "failed").all()
    text = report.read_text()
    assert "| 30_beta |  |  |  | fail / fail | fail / fail |" in text
    assert "| 1_alpha |" in text


def test_accuracy_resume_reruns_other_settings(adbench_folder, tmp_path):
    out = tmp_path / "out"
    options = {"datasets": ["1_alpha"], "protocols": ["one-class"]}
    small = _run(adbench_folder, out, max_train_rows=5, **options)
    assert (small.runs["n_train"] == 5).all()

    full = _run(adbench_folder, out, resume=True, **options)
    assert full.n_skipped == 0, "runs made with another max_train_rows are run again"
    assert (full.runs["n_train"] > 5).all()
    assert _run(adbench_folder, out, resume=True, **options).n_skipped == len(FAST_DETECTORS)

    _write_set(adbench_folder, "1_alpha", seed=99)
    changed = _run(adbench_folder, out, resume=True, **options)
    assert changed.n_skipped == 0, "runs on a changed data file are run again"
    rows = pd.read_csv(out / "runs.csv")
    assert len(rows) == 3 * len(FAST_DETECTORS), "earlier rows are kept"
    assert rows["data_sha256"].nunique() == 2


def test_accuracy_resume_reruns_older_runs_csv(adbench_folder, tmp_path):
    out = tmp_path / "out"
    options = {"datasets": ["1_alpha"], "protocols": ["one-class"]}
    _run(adbench_folder, out, **options)
    # A runs.csv written before max_train_rows and data_sha256 were recorded.
    runs_path = out / "runs.csv"
    old_columns = [column for column in RUN_COLUMNS if column not in ("max_train_rows", "data_sha256")]
    pd.read_csv(runs_path, dtype=str, keep_default_na=False)[old_columns].to_csv(runs_path, index=False)

    with pytest.warns(UserWarning, match="older ffoc"):
        result = _run(adbench_folder, out, resume=True, **options)
    assert result.n_skipped == 0
    rows = pd.read_csv(runs_path)
    assert list(rows.columns) == list(RUN_COLUMNS)
    assert len(rows) == 2 * len(FAST_DETECTORS), "the older rows are kept"


def _die_on_hbos(spec, *, max_train_rows):
    """Stand in for run_one in a worker process, which is killed as the out-of-memory killer would."""
    import os
    import signal

    if spec.detector == "HBOS":
        os.kill(os.getpid(), signal.SIGKILL)
    return accuracy.run_one(spec, max_train_rows=max_train_rows)


def test_accuracy_records_killed_worker_runs(adbench_folder, tmp_path, monkeypatch):
    # Worker processes import this module to find the function, by name, as pickle does.
    monkeypatch.setattr(accuracy, "run_one", _die_on_hbos)
    result = _run(adbench_folder, tmp_path / "out", datasets=["1_alpha"], protocols=["one-class"], jobs=2)
    by_detector = result.runs.set_index("detector")
    assert by_detector.loc["PCA", "status"] == "ok", "a run lost along with the killed one runs again"
    assert by_detector.loc["HBOS", "status"] == "failed"
    assert "worker process died (out of memory?)" in by_detector.loc["HBOS", "error"]
    assert len(result.runs) == 2


def test_accuracy_fails_runs_on_one_class_labels(tmp_path):
    folder = tmp_path / "adbench_classical"
    folder.mkdir()
    X = np.random.default_rng(0).normal(size=(40, 3))
    np.savez(folder / "1_normal.npz", X=X, y=np.zeros(40, dtype=int))
    np.savez(folder / "2_anomalous.npz", X=X, y=np.ones(40, dtype=int))
    result = _run(folder, tmp_path / "out")
    assert (result.runs["status"] == "failed").all()
    normal = result.runs[result.runs["dataset"] == "1_normal"]["error"]
    assert normal.str.contains("1_normal has no anomalies").all(), normal.tolist()
    anomalous = result.runs[result.runs["dataset"] == "2_anomalous"]["error"]
    assert anomalous.str.contains("2_anomalous has no normal rows").all(), anomalous.tolist()


def test_accuracy_never_records_nan_metric_as_ok(adbench_folder, tmp_path, monkeypatch):
    import sklearn.metrics

    monkeypatch.setattr(sklearn.metrics, "roc_auc_score", lambda y, scores: float("nan"))
    result = _run(adbench_folder, tmp_path / "out", datasets=["1_alpha"], protocols=["one-class"])
    assert (result.runs["status"] == "failed").all()
    assert result.runs["error"].str.contains("AUROC is not a finite number").all(), result.runs["error"].tolist()


def test_accuracy_resume_reruns_broken_file(adbench_folder, tmp_path):
    _cut_in_half(adbench_folder / "1_alpha.npz")
    options = {"datasets": ["1_alpha"], "detectors": ["DeepSVDD"], "protocols": ["one-class"]}
    first = _run(adbench_folder, tmp_path / "out", **options)
    assert (first.runs["status"] == "failed").all()

    second = _run(adbench_folder, tmp_path / "out", resume=True, **options)
    assert second.n_skipped == 0, "a run that failed to load its data runs again"
    assert second.runs["error"].str.contains("damaged or cut short").all()
    assert len(pd.read_csv(tmp_path / "out" / "runs.csv")) == 2


def _no_runs(*args, **kwargs):
    raise AssertionError("no run may start")


def test_accuracy_rejects_foreign_runs_header(adbench_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy, "run_one", _no_runs)
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.csv").write_text("a,b,c\n")
    with pytest.raises(ValueError, match=r"has columns \['a', 'b', 'c'\]"):
        _run(adbench_folder, out, resume=True)
    assert (out / "runs.csv").read_text() == "a,b,c\n"


def test_accuracy_checks_outputs_before_runs(adbench_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy, "run_one", _no_runs)
    folder = tmp_path / "folder"
    folder.mkdir()
    read_only = tmp_path / "read_only.md"
    read_only.write_text("# Mine\n")
    read_only.chmod(0o444)
    reversed_markers = tmp_path / "reversed.md"
    reversed_markers.write_text("<!-- end accuracy -->\n<!-- begin accuracy -->\n")
    cases = [
        ({"report": folder}, r"^report: .*is a folder"),
        ({"report": tmp_path / "B.md", "figure": folder}, r"^figure: .*is a folder"),
        ({"report": read_only}, r"^report: .*is read-only"),
        ({"report": reversed_markers}, r"^report: .*before"),
        ({"out_dir": read_only}, r"^out_dir: .*must be a folder"),
    ]
    for options, message in cases:
        out = options.pop("out_dir", tmp_path / "out")
        with pytest.raises((ValueError, OSError), match=message):
            _run(adbench_folder, out, **options)
    assert not (tmp_path / "out").exists()


def test_accuracy_cli_names_options_in_errors(adbench_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(accuracy, "run_one", _no_runs)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    folder = tmp_path / "folder"
    folder.mkdir()
    base = ["bench", "accuracy", "--data-dir", str(adbench_folder), "-q", "--out", str(tmp_path / "out")]
    cases = [
        (["--seeds", "0", "--no-report"], "--seeds"),
        (["--jobs", "0", "--no-report"], "--jobs"),
        (["--max-train-rows", "1", "--no-report"], "--max-train-rows"),
        (["--report", str(folder)], "--report"),
        (["--report", str(tmp_path / "B.md"), "--figure", str(folder)], "--figure"),
        (["--no-report", "--out", str(a_file)], "--out"),
    ]
    for options, name in cases:
        assert main(base + options) == 1
        error = capsys.readouterr().err
        assert name in error, error
        assert error.count("\n") == 1, error
    assert "must be a folder" in error


def test_accuracy_cli_rejects_empty_name_lists(adbench_folder, tmp_path, capsys):
    for option in ("--datasets", "--detectors", "--protocols"):
        with pytest.raises(SystemExit) as raised:
            main(["bench", "accuracy", "--data-dir", str(adbench_folder), option, ",", "--no-report",
                  "--out", str(tmp_path / "out")])
        assert raised.value.code == 2
        assert f"argument {option}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="datasets is empty"):
        _run(adbench_folder, tmp_path / "out", datasets=[])


def test_accuracy_deduplicates_datasets(adbench_folder, tmp_path):
    result = _run(adbench_folder, tmp_path / "out", datasets=["1_alpha", "1_alpha.npz"], protocols=["one-class"])
    assert len(result.runs) == len(FAST_DETECTORS)
    assert len(pd.read_csv(tmp_path / "out" / "runs.csv")) == len(FAST_DETECTORS), "each run once"


def test_accuracy_rejects_non_integer_seed_in_runs(adbench_folder, tmp_path):
    out = tmp_path / "out"
    _run(adbench_folder, out, datasets=["1_alpha"], protocols=["one-class"])
    runs_path = out / "runs.csv"
    lines = runs_path.read_text().splitlines()
    lines[2] = lines[2].replace(",0,", ",x,", 1)
    runs_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"runs.csv' line 3: seed 'x' is not an integer"):
        _run(adbench_folder, out, datasets=["1_alpha"], protocols=["one-class"], resume=True)


def test_accuracy_writes_outputs_atomically(adbench_folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _run(adbench_folder, out, datasets=["1_alpha"], protocols=["one-class"])
    runs_path = out / "runs.csv"
    runs_path.write_text(runs_path.read_text() + "1_alpha,one-cl")

    written = []
    real = accuracy.atomic_write_bytes

    def spy(path, data):
        written.append(Path(path).name)
        real(path, data)

    monkeypatch.setattr(accuracy, "atomic_write_bytes", spy)
    _run(adbench_folder, out, datasets=["1_alpha"], protocols=["one-class"], resume=True,
         report=tmp_path / "B.md", figure=tmp_path / "ranks.png")
    assert written[0] == "runs.csv", "the repair of a cut-off last line"
    for name in ("one_class_auroc.csv", "one_class_wins.csv", "accuracy_ranks.png", "ranks.png"):
        assert name in written, name

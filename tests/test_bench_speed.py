"""Tests of ffoc.bench.speed: a tiny configuration end to end, and its helpers (no timing checks)."""

import json

import numpy as np
import pytest
import torch

from ffoc import FFOneClass
from ffoc.bench import BENCH_MODULES
from ffoc.bench.speed import (
    _product_counts,
    _run_worker,
    measure_scaling,
    reference_eager_fit,
    render_markdown,
    run_speed,
    step_worker,
    write_section,
)
from ffoc.cli import build_parser

TINY = {
    "width": 16, "depths": [1, 2], "batch": 32, "steps": 2, "matmul_n": 32,
    "score_rows": 500, "wide": (16,), "small_epochs": 1, "seeds": 2, "wall_epochs": 1,
    "scaling_rows": [300], "scaling_sets": [], "reproduce_seeds": None,
}


def test_speed_registered_under_bench():
    assert "ffoc.bench.speed" in BENCH_MODULES
    args = build_parser().parse_args(["bench", "speed", "--quick", "--parts", "score"])
    assert args.quick
    assert args.parts == "score"


def test_run_speed_tiny_writes_outputs(tmp_path):
    """Every part runs end to end and writes the JSON, the figure and its own BENCHMARKS.md section."""
    benchmarks = tmp_path / "BENCHMARKS.md"
    benchmarks.write_text("# Benchmarks\n\n<!-- begin other -->\nkept\n<!-- end other -->\n", encoding="utf-8")
    results = run_speed(
        settings=TINY, threads=1, out_dir=tmp_path / "out",
        benchmarks_md=benchmarks, figures_dir=tmp_path / "figures", load="test", fresh_process=False,
    )

    saved = json.loads((tmp_path / "out" / "speed.json").read_text(encoding="utf-8"))
    assert sorted(r["depth"] for r in saved["step"]) == [1, 1, 2, 2]
    assert saved["matmul_flops"] > 0
    assert (tmp_path / "out" / "speed_depth.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "speed_depth.png").stat().st_size > 1000
    for row in results["step"]:
        assert len(row["times_s"]) == 2
        assert len(row["working_bytes"]) == 2
    assert [r["network"] for r in results["score"]] == ["4-40-40-40", "4-16"]
    assert results["small"]["seeds"] == 2
    assert [r["name"] for r in results["scaling"]] == ["synthetic"]

    text = benchmarks.read_text(encoding="utf-8")
    assert "<!-- begin other -->\nkept\n<!-- end other -->" in text
    assert text.count("<!-- begin speed -->") == 1
    assert "| depth | FF s/step" in text
    assert "rows/s" in text
    assert "Load: test" in text


def test_measure_scaling_reads_adbench_set(shared_data):
    """Named ADBench sets found in the data folder are fitted on their normal rows."""
    settings = {"scaling_rows": [], "scaling_sets": ["38_thyroid", "not_a_set"]}
    rows = measure_scaling(settings, 1, 0, shared_data / "adbench_classical", lambda message: None, fresh_process=False)
    assert [r["name"] for r in rows] == ["38_thyroid"]
    assert rows[0]["features"] == 6


def test_run_speed_keeps_parts_of_earlier_run(tmp_path):
    """A run of one part keeps the other parts of the earlier run in the same output folder."""
    common = dict(threads=1, out_dir=tmp_path, benchmarks_md=tmp_path / "B.md", figures_dir=None)
    run_speed(parts=("score",), settings=TINY, command="first", **common)
    results = run_speed(parts=("scaling",), settings=TINY, command="second", **common)
    assert results["score"][0]["network"] == "4-40-40-40"
    assert results["earlier"]["score"]["command"] == "first"
    text = (tmp_path / "B.md").read_text(encoding="utf-8")
    assert "Part `score` is from an earlier run: `first`" in text
    assert "s per 100k rows" in text


def test_run_speed_rejects_unknown_part(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown part\(s\) \['speedy'\]"):
        run_speed(parts=("speedy",), out_dir=tmp_path)


def test_run_speed_rejects_missing_data_dir(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        run_speed(parts=("scaling",), data_dir=tmp_path / "missing", out_dir=tmp_path)


def test_write_section_replaces_only_its_markers(tmp_path):
    path = tmp_path / "B.md"
    write_section(path, "speed", "first")
    write_section(path, "other", "theirs")
    write_section(path, "speed", "second")
    text = path.read_text(encoding="utf-8")
    assert "first" not in text
    assert "<!-- begin speed -->\nsecond\n<!-- end speed -->" in text
    assert "<!-- begin other -->\ntheirs\n<!-- end other -->" in text


def test_product_counts_ff_and_bp():
    """FF needs no input-gradient product: 2L against BP's 3L - 1, per pass."""
    assert _product_counts("ff", 4, 1) == 8
    assert _product_counts("bp", 4, 1) == 11
    assert _product_counts("bp", 4, 2) == 22


def test_step_worker_reports_each_step():
    result = step_worker({"trainer": "ff", "depth": 2, "width": 8, "batch": 16, "steps": 3, "threads": 1, "seed": 0})
    assert len(result["times_s"]) == 3
    assert all(t > 0 for t in result["times_s"])
    assert len(result["working_bytes"]) == 3


def test_run_worker_fresh_process():
    """A worker runs in a fresh Python process and sends its result back as JSON."""
    result = _run_worker("scaling_worker", {"rows": 300, "threads": 1, "seed": 0}, threads=1)
    assert result["name"] == "synthetic"
    assert result["rows"] == 300
    assert result["fit_s"] > 0


def test_reference_eager_fit_changes_weights(rng):
    """The reference loop trains the detector's layers (it is a real training loop)."""
    X = rng.normal(size=(64, 4))
    with pytest.warns(UserWarning, match="untrained"):
        detector = FFOneClass(hidden_layer_sizes=(8, 8), epochs=0, batch_size=16, random_state=0).fit(X)
    before = [layer.linear.weight.detach().clone() for layer in detector.layers_]
    reference_eager_fit(detector, X, epochs=1, seed=0)
    for old, layer in zip(before, detector.layers_):
        assert not torch.equal(old, layer.linear.weight.detach())


def test_render_markdown_handles_missing_parts():
    text = render_markdown({"command": "c", "machine": "m", "load": "l", "date": "d"})
    assert "Command: `c`" in text
    assert np.char.count(text, "|") == 0


def test_time_reproduction_runs_the_users_command(monkeypatch):
    """The reproduction is timed through the CLI as a user runs it, and a failed run raises."""
    import subprocess

    from ffoc.bench import speed

    calls = []

    def fake_run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0 if len(calls) == 1 else 2, "", "boom")

    monkeypatch.setattr(speed.subprocess, "run", fake_run)
    result = speed.time_reproduction(3, jobs=2)
    assert calls[0][3:] == ["reproduce", "--out", calls[0][5], "--seeds", "3", "--protocols", "ffoc",
                            "--jobs", "2", "-q"]
    assert result["command"] == "ffoc reproduce --out OUT --seeds 3 --protocols ffoc --jobs 2 -q"
    assert result["wall_s"] >= 0
    with pytest.raises(RuntimeError, match="boom"):
        speed.time_reproduction(3, jobs=2)


def test_targets_use_the_measured_reproduction():
    small = {"train_rows": 10, "epochs": 1, "seeds": 50, "wall_epochs": 1, "fit_epoch_s": 1.0,
             "reference_epoch_s": 1.0, "batched_epoch_per_seed_s": 0.1, "sequential_wall_s": 100.0,
             "batched_wall_s": 10.0, "bp_wall_s": 100.0, "objective": "hb-svdd",
             "reproduce": {"command": "ffoc reproduce", "wall_s": 200.0, "seeds": 50, "jobs": 2}}
    text = render_markdown({"command": "c", "machine": "m", "load": "l", "date": "d", "small": small})
    assert "| `ffoc` half of a 50-seed reproduction < 3 min (`ffoc reproduce`, measured) | 200 s | no |" in text


def test_bench_options_share_names():
    """speed and stream take --report, --no-report and --out like the other benchmarks."""
    parser = build_parser()
    assert parser.parse_args(["bench", "speed", "--no-report"]).benchmarks_md is None
    assert parser.parse_args(["bench", "speed", "--report", "B.md"]).benchmarks_md == "B.md"
    stream = parser.parse_args(["bench", "stream", "--out", "o", "--no-report"])
    assert stream.out_dir == "o"
    assert stream.benchmarks_file is None

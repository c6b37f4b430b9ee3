"""``ffoc bench stream``: online training against ``fit``, memory of ``ffoc fit --stream``, and drift.

Three parts, each selectable with ``--parts``:

``accuracy``
    On the large ADBench sets (cover, donors by default), one-class protocol
    (:func:`ffoc.datasets.one_class_split`, seed 0): ``fit`` with the
    estimator's defaults on the normal training rows, against passes of
    ``partial_fit`` over the same rows in chunks of ``--chunk-size``. Test
    AUROC of both; extra passes are run while one pass is more than 0.02 below.
``memory``
    Peak resident memory (``ru_maxrss`` of a child process) of
    ``ffoc fit CSV --stream`` on generated CSV files of the sizes given by
    ``--sizes-mb``, written to ``--tmp-dir`` and deleted afterwards.
``drift``
    A synthetic stream whose normal cluster moves; test AUROC on rows from the
    cluster's current position, for ``forgetting=0`` and ``forgetting > 0``.

Figures go to the ``streaming`` section of BENCHMARKS.md, raw results to
``OUT_DIR/stream.json`` and the drift curves to ``OUT_DIR/drift.png``. Threads are fixed with ``--threads``, seeds are 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "run_accuracy", "run_memory", "run_drift"]

_PASS_TOLERANCE = 0.02


def _auroc(y, anomaly_score) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, anomaly_score))


def run_accuracy(data_dir, names, *, chunk_size: int, max_passes: int, seed: int = 0) -> list[dict]:
    """Return, per data set and row order, the test AUROC of ``fit`` and of up to ``max_passes`` passes of ``partial_fit``."""
    from ..datasets import load_adbench, one_class_split
    from ..estimator import FFOneClass

    results = []
    for name in names:
        X, y = load_adbench(name, data_dir)
        split = one_class_split(X.astype(np.float64), y, random_state=seed)

        start = time.perf_counter()
        fitted = FFOneClass(random_state=seed).fit(split.X_train)
        fit_seconds = time.perf_counter() - start
        fit_auroc = _auroc(split.y_test, -fitted.score_samples(split.X_test))

        # The split keeps the file's row order, which drifts in some sets because cover
        # comes in blocks. A stream in shuffled order is stationary, like fit's shuffled epochs.
        orders = {"file": np.arange(split.X_train.shape[0]),
                  "shuffled": np.random.default_rng(seed).permutation(split.X_train.shape[0])}
        for order, rows in orders.items():
            online = FFOneClass(random_state=seed)
            passes = []
            start = time.perf_counter()
            for n_pass in range(1, max_passes + 1):
                for begin in range(0, rows.shape[0], chunk_size):
                    online.partial_fit(split.X_train[rows[begin : begin + chunk_size]])
                passes.append({
                    "passes": n_pass,
                    "auroc": _auroc(split.y_test, -online.score_samples(split.X_test)),
                    "seconds": time.perf_counter() - start,
                })
                if passes[-1]["auroc"] >= fit_auroc - _PASS_TOLERANCE:
                    break
            results.append({
                "dataset": name, "order": order, "n_train": int(split.X_train.shape[0]),
                "n_test": int(split.X_test.shape[0]), "fit_auroc": fit_auroc, "fit_seconds": fit_seconds,
                "fit_epochs": len(fitted.history_.layer_losses), "partial_fit": passes,
            })
    return results


def _write_csv(path: Path, size_bytes: int, n_features: int, seed: int) -> int:
    """Write normal rows to ``path`` until it contains about ``size_bytes``; return the row count."""
    rng = np.random.default_rng(seed)
    header = ",".join(f"x{j}" for j in range(n_features))
    n_rows = 0
    with open(path, "w") as file:
        file.write(header + "\n")
        while file.tell() < size_bytes:
            block = rng.normal(size=(50_000, n_features))
            np.savetxt(file, block, fmt="%.6f", delimiter=",")
            n_rows += block.shape[0]
    return n_rows


def _peak_rss_mb(command: list[str]) -> tuple[float, float]:
    """Run ``command`` in a fresh child that reports its children's peak RSS; return (MB, seconds)."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - start)\n"
    )
    output = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True)
    kilobytes, seconds = output.stdout.split()
    return int(kilobytes) / 1024.0, float(seconds)  # Linux reports ru_maxrss in KiB


def run_memory(sizes_mb, *, tmp_dir, chunk_size: int, batch_size: int, n_features: int = 10) -> list[dict]:
    """Return the peak RSS of ``ffoc fit --stream`` on generated CSV files of ``sizes_mb`` megabytes."""
    results = []
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="ffoc-stream-") as folder:
        for size in sizes_mb:
            data = Path(folder) / f"rows_{size}mb.csv"
            n_rows = _write_csv(data, int(size * 1e6), n_features, seed=0)
            command = [sys.executable, "-m", "ffoc.cli", "fit", str(data), "--stream", "--chunk-size",
                       str(chunk_size), "--batch-size", str(batch_size), "--out", str(Path(folder) / "model.safetensors")]
            peak, seconds = _peak_rss_mb(command)
            results.append({"size_mb": size, "file_bytes": data.stat().st_size, "rows": n_rows,
                            "peak_rss_mb": peak, "seconds": seconds,
                            "command": shlex.join(["ffoc", *command[3:]])})
            data.unlink()
    return results


def _drift_rows(rng, centers: np.ndarray, anomaly_share: float, n_features: int):
    """Return rows around ``centers`` (one per row), a share of them displaced by 4 in a random direction."""
    X = centers + rng.normal(size=(centers.shape[0], n_features))
    y = rng.random(centers.shape[0]) < anomaly_share
    direction = rng.normal(size=(int(y.sum()), n_features))
    X[y] += 4.0 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    return X, y.astype(int)


def run_drift(*, n_rows: int, chunk_size: int, forgetting: float, shift: float, n_features: int = 5,
              seed: int = 0) -> dict:
    """Train on a stream whose normal cluster moves by ``shift`` along every axis; return AUROC over time.

    Before each chunk is learned, the detector scores a test set drawn at the
    cluster's position for that chunk (half of it anomalies). The figures are
    the AUROC on the first test set after the warm-up and on the last one.
    """
    from ..estimator import FFOneClass

    rng = np.random.default_rng(seed)
    detectors = {"forgetting=0": FFOneClass(random_state=seed),
                 f"forgetting={forgetting:g}": FFOneClass(random_state=seed, forgetting=forgetting)}
    curves: dict[str, list[float]] = {name: [] for name in detectors}
    positions = []
    for begin in range(0, n_rows, chunk_size):
        progress = np.linspace(begin, begin + chunk_size, chunk_size, endpoint=False) / n_rows
        centers = np.outer(progress * shift, np.ones(n_features))
        X_chunk, _ = _drift_rows(rng, centers, 0.0, n_features)
        X_test, y_test = _drift_rows(rng, np.tile(centers[-1], (2000, 1)), 0.5, n_features)
        if begin > 0:
            positions.append(float(progress[-1] * shift))
            for name, detector in detectors.items():
                curves[name].append(_auroc(y_test, -detector.score_samples(X_test)))
        for detector in detectors.values():
            detector.partial_fit(X_chunk)
    return {"n_rows": n_rows, "chunk_size": chunk_size, "shift": shift, "positions": positions,
            "auroc": curves}


def _plot_drift(drift: dict, path: Path) -> None:
    """Save the drift run's AUROC against the cluster's position as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    for name, curve in drift["auroc"].items():
        axes.plot(drift["positions"], curve, label=name)
    axes.set_xlabel("cluster position along every axis")
    axes.set_ylabel("test AUROC before the chunk is learned")
    axes.set_ylim(0.4, 1.0)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _report(results: dict) -> str:
    from .report import machine_description, markdown_table

    commands = results.get("commands", {})
    lines = [f"Machine: {machine_description()}; measured while other jobs shared the CPU, "
             "so the times are rough. Commands, by part:", ""]
    lines += [f"- {part}: `{command}`" for part, command in commands.items()] + [""]
    if "accuracy" in results:
        rows = []
        for entry in results["accuracy"]:
            first, last = entry["partial_fit"][0], entry["partial_fit"][-1]
            rows.append([entry["dataset"], entry["order"], entry["n_train"], entry["fit_auroc"], entry["fit_epochs"],
                         first["auroc"], first["auroc"] - entry["fit_auroc"], last["passes"], last["auroc"],
                         round(entry["fit_seconds"], 1), round(last["seconds"], 1)])
        lines += ["One-class protocol (normal training rows, seed 0). `fit` uses the estimator's defaults; "
                  "`partial_fit` makes passes over the same rows in chunks, in the file's order (cover's "
                  "rows come in blocks, so that stream drifts) or shuffled once. Passes stop once AUROC is "
                  f"within {_PASS_TOLERANCE} of `fit`.", "",
                  markdown_table(["data set", "row order", "train rows", "fit AUROC", "fit epochs", "1 pass AUROC",
                                  "1 pass - fit", "passes run", "last pass AUROC", "fit s", "partial_fit s"], rows),
                  ""]
    if "memory" in results:
        rows = [[f"{e['file_bytes'] / 1e6:.0f} MB", e["rows"], round(e["peak_rss_mb"], 1), round(e["seconds"], 1)]
                for e in results["memory"]]
        peaks = [e["peak_rss_mb"] for e in results["memory"]]
        lines += ["Peak resident memory of `ffoc fit --stream` (ru_maxrss of the child process):", "",
                  markdown_table(["CSV size", "rows", "peak RSS (MB)", "seconds"], rows), "",
                  f"Largest over smallest peak: {max(peaks) / min(peaks):.3f}. Command of the last run: "
                  f"`{results['memory'][-1]['command']}`.", ""]
    if "drift" in results:
        drift = results["drift"]
        rows = [[name, curve[0], float(np.mean(curve[len(curve) // 2:])), curve[-1]]
                for name, curve in drift["auroc"].items()]
        lines += [f"Drifting stream: {drift['n_rows']} rows in chunks of {drift['chunk_size']}, the normal "
                  f"cluster (5-D, unit variance) moves by {drift['shift']} along every axis; anomalies are "
                  "rows moved 4 units in a random direction. AUROC on 2000 test rows at the cluster's "
                  "current position, before each chunk is learned:", "",
                  markdown_table(["detector", "AUROC after first chunk", "mean AUROC, second half",
                                  "AUROC at the end"], rows), ""]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    import torch

    from .report import write_section

    torch.set_num_threads(args.threads)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - {"accuracy", "memory", "drift"})
    if unknown:
        raise ValueError(f"unknown --parts {unknown}; choose from accuracy, memory, drift")
    if "accuracy" in parts and args.data_dir is None:
        raise ValueError("the accuracy part needs --data-dir, the folder with the ADBench .npz files")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env_threads = {"OMP_NUM_THREADS": str(args.threads)}
    os.environ.update(env_threads)

    # Parts run separately add up: earlier results in OUT_DIR/stream.json are kept.
    results_file = out_dir / "stream.json"
    results: dict = json.loads(results_file.read_text()) if results_file.is_file() else {}
    command = shlex.join(["ffoc", "bench", "stream", *sys.argv[3:]]) if len(sys.argv) > 3 else "ffoc bench stream"
    results.setdefault("commands", {}).update({part: command for part in parts})
    if "accuracy" in parts:
        names = [name.strip() for name in args.datasets.split(",") if name.strip()]
        results["accuracy"] = run_accuracy(args.data_dir, names, chunk_size=args.chunk_size,
                                           max_passes=args.max_passes)
    if "memory" in parts:
        sizes = [float(size) for size in args.sizes_mb.split(",")]
        results["memory"] = run_memory(sizes, tmp_dir=args.tmp_dir, chunk_size=args.chunk_size,
                                       batch_size=args.memory_batch_size)
    if "drift" in parts:
        results["drift"] = run_drift(n_rows=args.drift_rows, chunk_size=1000, forgetting=args.forgetting,
                                     shift=args.drift_shift)
        _plot_drift(results["drift"], out_dir / "drift.png")

    results_file.write_text(json.dumps(results, indent=2))
    body = _report(results)
    if args.benchmarks_file is not None:
        write_section(args.benchmarks_file, "streaming", body)
    if args.verbose:
        print(body)
    return 0


def add_parser(subparsers) -> None:
    """Register ``ffoc bench stream``."""
    parser = subparsers.add_parser("stream", help="online training: accuracy against fit, memory, drift",
                                   description="Online training against fit (accuracy), peak memory of "
                                               "ffoc fit --stream against file size, and accuracy under drift; "
                                               "writes the streaming section of BENCHMARKS.md.")
    parser.add_argument("--parts", default="accuracy,memory,drift",
                        help="comma-separated parts to run (default: %(default)s)")
    parser.add_argument("--data-dir", help="folder with the ADBench .npz files (accuracy part)")
    parser.add_argument("--datasets", default="10_cover,11_donors", help="ADBench sets (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=10_000, help="rows per partial_fit call (default: %(default)s)")
    parser.add_argument("--max-passes", type=int, default=3, help="most partial_fit passes (default: %(default)s)")
    parser.add_argument("--sizes-mb", default="250,1000", help="CSV sizes for the memory part, in MB (default: %(default)s)")
    parser.add_argument("--memory-batch-size", type=int, default=1024,
                        help="mini-batch rows in the memory runs, larger than the default to keep them short "
                             "(default: %(default)s)")
    parser.add_argument("--tmp-dir", default=tempfile.gettempdir(), help="where the CSV files are generated")
    parser.add_argument("--drift-rows", type=int, default=100_000, help="rows of the drifting stream (default: %(default)s)")
    parser.add_argument("--drift-shift", type=float, default=10.0,
                        help="distance the cluster moves along every axis (default: %(default)s)")
    parser.add_argument("--forgetting", type=float, default=1e-3, help="forgetting of the drift run (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--out", "--out-dir", dest="out_dir", default="bench_results/stream",
                        help="folder for stream.json and the figures (default: %(default)s)")
    parser.add_argument("--report", "--benchmarks-file", dest="benchmarks_file", default="BENCHMARKS.md",
                        help="Markdown file whose streaming section is written (default: %(default)s)")
    parser.add_argument("--no-report", dest="benchmarks_file", action="store_const", const=None,
                        help="write only into --out, not into the Markdown file")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="print the section written")
    parser.set_defaults(handler=_run)

"""``ffoc reproduce`` and ``ffoc landscape``: the forward-forward one-class experiment on banknote."""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import plural

__all__ = ["add_parser"]


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected an integer of at least 1")
    return value


def _reproduce(args: argparse.Namespace) -> int:
    from ..reproduce import run_reproduction

    start = time.perf_counter()
    report = run_reproduction(
        args.out,
        seeds=args.seeds,
        protocols=args.protocols,
        objectives=args.objectives,
        trainers=args.trainers,
        jobs=args.jobs,
        epochs=args.epochs,
        landscape=args.landscape,
        resolution=args.resolution,
        frames=args.frames,
        progress=not args.quiet,
    )
    elapsed = time.perf_counter() - start
    n_failed = int((report.results["status"] != "ok").sum())
    print((args.out / "summary.md").read_text(encoding="utf-8"))
    print(
        f"{plural(len(report.results), 'run')} ({n_failed} failed) in {elapsed:.1f} s with "
        f"{plural(args.jobs, 'job')}; {plural(len(report.files), 'file')} written to {args.out}"
    )
    return 0


def _landscape(args: argparse.Namespace) -> int:
    from ..reproduce import run_landscape

    start = time.perf_counter()
    row, files = run_landscape(
        args.out,
        protocol=args.protocol,
        objective=args.objective,
        trainer=args.trainer,
        seed=args.seed,
        epochs=args.epochs,
        resolution=args.resolution,
        frames=args.frames,
    )
    if row["status"] != "ok":
        print(f"ffoc landscape: error: the run failed: {row['error']}", file=sys.stderr)
        return 1
    if row["error"]:
        print(f"ffoc landscape: error: {row['error']}", file=sys.stderr)
        return 1
    print(
        f"{args.protocol} protocol, {args.objective}, {args.trainer.upper()}, seed {args.seed}: "
        f"{plural(row['epochs_run'], 'epoch')}, test AUROC {row['auroc']:.4f}; "
        f"{time.perf_counter() - start:.1f} s"
    )
    for path in files:
        print(path)
    return 0


def _add_landscape_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resolution", type=_positive_int, default=25,
        help="landscape grid points along each principal direction (default: %(default)s)",
    )
    parser.add_argument(
        "--frames", type=_positive_int, default=40, help="frames of each GIF (default: %(default)s)",
    )


def add_parser(subparsers) -> None:
    """Register ``reproduce`` and ``landscape``."""
    from pathlib import Path

    from ..reproduce import OBJECTIVE_NAMES, PROTOCOLS, TRAINER_NAMES

    reproduce = subparsers.add_parser(
        "reproduce",
        help="rerun the forward-forward one-class experiment on banknote (paper and ffoc protocols)",
        description=(
            "Fit the five objectives with forward-forward and backprop over several seeds, under the "
            "paper's protocol (which stops on a labelled validation loss) and under ffoc's defaults. "
            "Writes results.csv, summary.csv, summary.md and figures/ into --out."
        ),
    )
    reproduce.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    reproduce.add_argument("--seeds", type=_positive_int, default=10, help="runs per setting (default: %(default)s)")
    reproduce.add_argument(
        "--jobs", type=_positive_int, default=_available_cpus(),
        help="worker processes; results do not depend on it (default: the CPUs available, %(default)s)",
    )
    reproduce.add_argument(
        "--protocols", nargs="+", choices=list(PROTOCOLS), default=list(PROTOCOLS),
        help="protocols to run (default: all)",
    )
    reproduce.add_argument(
        "--objectives", nargs="+", choices=list(OBJECTIVE_NAMES), default=list(OBJECTIVE_NAMES),
        help="objectives to run (default: all)",
    )
    reproduce.add_argument(
        "--trainers", nargs="+", choices=list(TRAINER_NAMES), default=list(TRAINER_NAMES),
        help="trainers to run (default: both)",
    )
    reproduce.add_argument(
        "--epochs", type=_positive_int, default=None,
        help="cap every run at this many epochs, for quick checks only (default: each protocol's own)",
    )
    reproduce.add_argument(
        "--landscape", action="store_true",
        help="also draw each setting's loss landscapes (first seed) into OUT/landscapes",
    )
    _add_landscape_options(reproduce)
    reproduce.add_argument("-q", "--quiet", action="store_true", help="hide the progress bar")
    reproduce.set_defaults(handler=_reproduce)

    landscape = subparsers.add_parser(
        "landscape",
        help="draw the per-layer loss landscapes (PNG and GIF) of one configuration on banknote",
        description=(
            "Fit one configuration while recording each layer's parameters, project each layer's path "
            "on its two principal directions, and draw the loss on that plane. For FF the loss is the "
            "layer's own, with its inputs held fixed; for BP it is the end-to-end loss with the other "
            "layers at their trained values."
        ),
    )
    landscape.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    landscape.add_argument("--protocol", choices=list(PROTOCOLS), default="paper", help="(default: %(default)s)")
    landscape.add_argument("--objective", choices=list(OBJECTIVE_NAMES), default="hb-svdd", help="(default: %(default)s)")
    landscape.add_argument("--trainer", choices=list(TRAINER_NAMES), default="ff", help="(default: %(default)s)")
    landscape.add_argument("--seed", type=int, default=0, help="model seed (default: %(default)s)")
    landscape.add_argument(
        "--epochs", type=_positive_int, default=None, help="cap the epochs (default: the protocol's own)",
    )
    _add_landscape_options(landscape)
    landscape.set_defaults(handler=_landscape)

"""``ffoc bench NAME``: the benchmarks of :mod:`ffoc.bench`."""

from __future__ import annotations

import importlib

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``bench`` and its sub-commands."""
    from ..bench import BENCH_MODULES

    bench = subparsers.add_parser("bench", help="run a benchmark and write its figures to BENCHMARKS.md")
    bench_commands = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    bench_commands.required = True
    for name in BENCH_MODULES:
        importlib.import_module(name).add_parser(bench_commands)

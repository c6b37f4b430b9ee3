"""Benchmarks run by ``ffoc bench ...``; each writes its figures to BENCHMARKS.md.

Benchmarks are not tests: they measure time, memory and accuracy on real data,
with thread counts and seeds fixed, and report ratios measured side by side in
one run. Each benchmark module has an ``add_parser(subparsers)`` function that
registers its ``ffoc bench NAME`` sub-command.
"""

# Modules that register ``ffoc bench`` sub-commands.
BENCH_MODULES: list[str] = ["ffoc.bench.objectives", "ffoc.bench.accuracy", "ffoc.bench.speed", "ffoc.bench.stream", "ffoc.bench.images"]

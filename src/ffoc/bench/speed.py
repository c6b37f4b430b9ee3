"""``ffoc bench speed``: training time and memory of forward-forward against backprop.

Five measurements, each on the code path users run:

``step``
    Training step time of :func:`ffoc.trainers.ff.ff_step` and
    :func:`ffoc.trainers.bp.bp_step` on the same MLP (width ``width``, depth 2
    to 32), objective, batch and negatives, and the working memory of each step.
    Every (trainer, depth) pair runs in a fresh Python process: one warm-up
    step creates the parameters, gradient buffers and optimizer state, then
    each timed step's working memory is its peak resident memory minus the
    resident memory after the warm-up step. The peak is ``VmHWM`` of
    ``/proc/self/status``, reset before each step by writing ``5`` to
    ``/proc/self/clear_refs``. On CUDA the
    allocator's peak is used the same way. A large square float32 matrix
    product measured in the same run gives the machine's matmul rate, and
    each trainer's achieved rate is reported as a fraction of it.
``score``
    Rows per second of :meth:`FFOneClass.score_samples <ffoc.FFOneClass.score_samples>`
    for a 4-40-40-40 network and a wide one.
``small``
    Seconds per epoch on banknote at batch 32 with a 4-40-40-40 network:
    ``FFOneClass.fit``, a straightforward eager loop with one optimizer per
    layer (the reference, written below), and :func:`ffoc.multiseed.fit_seeds`
    per seed. Then the ``ffoc`` protocol of a reproduction (estimator
    defaults, split seed = model seed): the wall time of 50 FF fits one by one
    and with :func:`ffoc.multiseed.fit_batch`, and of 50 BP fits.
``scaling``
    Fit time and peak memory of one epoch for 10k, 100k and 1M synthetic rows,
    and for the large ADBench sets when ``--data-dir`` contains them.

Results go to ``OUT/speed.json``, the figure to ``docs/figures/speed_depth.png``
(memory and time against depth) and the tables to the ``speed`` section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "run_speed", "matmul_rate", "step_worker", "reference_eager_fit"]

SECTION = "speed"
PARTS = ("step", "score", "small", "scaling")

# Full and --quick settings. The full run took 422 s on 2 idle cores (AMD EPYC), against a budget
# of 15 minutes.
FULL = {
    "width": 1024, "depths": [2, 4, 8, 16, 32], "batch": 4096, "steps": 5, "matmul_n": 4096,
    "score_rows": 1_000_000, "wide": (256, 256, 256), "small_epochs": 20, "seeds": 50, "wall_epochs": None,
    "scaling_rows": [10_000, 100_000, 1_000_000], "scaling_sets": ["11_donors", "10_cover"],
    "reproduce_seeds": 50,
}
QUICK = {
    "width": 128, "depths": [2, 4], "batch": 256, "steps": 3, "matmul_n": 512,
    "score_rows": 20_000, "wide": (64, 64), "small_epochs": 2, "seeds": 3, "wall_epochs": None,
    "scaling_rows": [2_000, 8_000], "scaling_sets": [], "reproduce_seeds": None,
}


# ---------------------------------------------------------------- memory probes

def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the process's peak resident memory (Linux); return False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _release_free_memory() -> None:
    """Return freed heap memory to the system, so that the baseline holds only live data."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------- matmul rate

def matmul_rate(n: int, *, repeats: int = 5, device: str = "cpu", shapes=()) -> float:
    """Return the float32 FLOP/s of the fastest of several matrix products.

    The candidates are an ``n x n`` by ``n x n`` product and each ``(m, k, p)``
    in ``shapes`` (an ``m x k`` by ``k x p`` product, such as a training step's
    batch by width by width). Each is timed ``repeats`` times after a warm-up and
    its best time counts, so the figure is the rate this machine reaches, a
    ceiling for the training steps measured beside it.

    Examples
    --------
    >>> matmul_rate(64, repeats=2, shapes=[(32, 16, 16)]) > 0
    True
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    best = 0.0
    for m, k, p in [(n, n, n), *shapes]:
        a = torch.randn(m, k, generator=generator).to(device)
        b = torch.randn(k, p, generator=generator).to(device)
        times = []
        for repeat in range(repeats + 1):
            _synchronize(device)
            start = time.perf_counter()
            torch.mm(a, b)
            _synchronize(device)
            if repeat > 0:  # the first product is a warm-up
                times.append(time.perf_counter() - start)
        best = max(best, 2.0 * m * k * p / min(times))
    return best


def _synchronize(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ---------------------------------------------------------------- training step

def step_worker(spec: dict) -> dict:
    """Time ``spec["steps"]`` training steps and record each step's working memory.

    Meant to run in a fresh process (see :func:`_run_worker`). ``spec`` has
    ``trainer`` ("ff" or "bp"), ``depth``, ``width``, ``batch``, ``steps``,
    ``threads``, ``seed`` and ``device``. The network, objective, optimizer and
    negatives are the estimator's defaults.
    """
    import torch

    from ..estimator import FFOneClass
    from ..nn import build_mlp
    from ..objectives import get_objective
    from ..trainers import bp_step, estimate_states, ff_step
    from ..trainers.common import make_optimizer, negatives_for

    torch.set_num_threads(spec["threads"])
    device = spec.get("device", "cpu")
    width, depth, batch = spec["width"], spec["depth"], spec["batch"]
    defaults = FFOneClass(hidden_layer_sizes=(width,) * depth)
    defaults._objective = get_objective(defaults.objective, nu=defaults.nu)
    config = _estimator_config(defaults, batch)

    generator = torch.Generator().manual_seed(spec["seed"])
    layers = build_mlp(
        width, [width] * depth, activation=defaults.activation, bias=defaults.bias,
        normalize_input=defaults.normalize_input, generator=generator,
    ).to(device)
    x = torch.randn(batch, width, generator=generator).to(device)
    states = estimate_states(layers, config.objective, x, nu=defaults.nu, theta=defaults.theta)
    x_negative = negatives_for(x, config, generator)  # made once: the step is timed, not the negatives
    params = [p for layer in layers for p in layer.parameters()]
    optimizer = make_optimizer(config.optimizer, params, config.learning_rate)

    def step():
        if spec["trainer"] == "ff":
            ff_step(layers, states, x, x_negative, config, optimizer)
        else:
            bp_step(layers, states, x, x_negative, config, optimizer)

    step()  # warm-up: creates the gradient buffers and the optimizer state
    _synchronize(device)
    cuda = str(device).startswith("cuda")
    _release_free_memory()
    baseline = torch.cuda.memory_allocated() if cuda else _status_kib("VmRSS") * 1024

    times, peaks = [], []
    for _ in range(spec["steps"]):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        elif not _reset_peak():
            raise RuntimeError("cannot reset the peak resident memory (/proc/self/clear_refs); Linux is needed")
        start = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() if cuda else _status_kib("VmHWM") * 1024
        peaks.append(peak - baseline)
    return {
        "trainer": spec["trainer"], "depth": depth, "width": width, "batch": batch,
        "times_s": times, "working_bytes": peaks, "baseline_bytes": baseline,
        "negatives": x_negative is not None,
    }


def _estimator_config(estimator, n_samples: int):
    try:
        return estimator._train_config(n_samples)
    except TypeError:  # versions whose settings do not depend on the number of rows
        return estimator._train_config()


def _run_worker(function: str, spec: dict, threads: int, fresh_process: bool = True) -> dict:
    """Run ``ffoc.bench.speed.<function>(spec)`` in a fresh Python process and return its result.

    With ``fresh_process=False`` the function runs in this process (for tests:
    the memory figures then include what earlier measurements left behind).
    """
    if not fresh_process:
        return json.loads(json.dumps(globals()[function](spec)))
    code = (
        "import json, sys\n"
        f"from ffoc.bench.speed import {function}\n"
        f"print(json.dumps({function}(json.loads(sys.argv[1]))))\n"
    )
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    completed = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark worker {function} failed for {spec}: {completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _product_counts(trainer: str, depth: int, passes: int) -> int:
    """Return the number of (batch x width) by (width x width) products of one training step.

    Forward-forward: one forward and one weight-gradient product per layer.
    Backprop: the same, plus an input-gradient product for every layer but the
    first. Each pass (normal rows, negatives) costs the same.
    """
    per_pass = 2 * depth if trainer == "ff" else 3 * depth - 1
    return per_pass * passes


def measure_steps(settings: dict, threads: int, seed: int, device: str, log, fresh_process: bool = True) -> list[dict]:
    rows = []
    for depth in settings["depths"]:
        for trainer in ("ff", "bp"):
            spec = {
                "trainer": trainer, "depth": depth, "width": settings["width"], "batch": settings["batch"],
                "steps": settings["steps"], "threads": threads, "seed": seed, "device": device,
            }
            result = _run_worker("step_worker", spec, threads, fresh_process)
            passes = 2 if result["negatives"] else 1
            products = _product_counts(trainer, depth, passes)
            result["flop"] = products * 2.0 * settings["batch"] * settings["width"] ** 2
            result["median_s"] = statistics.median(result["times_s"])
            result["max_working_bytes"] = max(result["working_bytes"])
            rows.append(result)
            log(f"step {trainer} depth {depth}: {result['median_s']:.3f} s, "
                f"{result['max_working_bytes'] / 2**20:.0f} MiB working memory")
    return rows


# ---------------------------------------------------------------- scoring

def measure_scoring(settings: dict, seed: int, log) -> list[dict]:
    """Return rows per second of ``score_samples`` for the 4-40-40-40 and the wide network."""
    from ..estimator import FFOneClass

    rng = np.random.default_rng(seed)
    X_fit = rng.normal(size=(2000, 4))
    X_score = rng.normal(size=(settings["score_rows"], 4))
    rows = []
    for hidden in ((40, 40, 40), tuple(settings["wide"])):
        detector = FFOneClass(hidden_layer_sizes=hidden, epochs=1, random_state=seed).fit(X_fit)
        detector.score_samples(X_score[:1000])  # warm-up
        times = []
        for _ in range(3):
            start = time.perf_counter()
            detector.score_samples(X_score)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        matmul_only = _timed(lambda: _matmuls_only(detector, X_score))
        rows.append({"network": "-".join(map(str, (4,) + hidden)), "rows": len(X_score), "median_s": median,
                     "rows_per_s": len(X_score) / median, "matmul_only_rows_per_s": len(X_score) / matmul_only})
        log(f"score {rows[-1]['network']}: {rows[-1]['rows_per_s']:,.0f} rows/s")
    return rows


def _matmuls_only(detector, X: np.ndarray, batch_size: int = 8192) -> None:
    """Run only the network's matrix products over ``X``, in the batches scoring uses: a ceiling on its speed."""
    import torch

    weights = [layer.linear.weight.detach().t() for layer in detector.layers_]
    X_tensor = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        for start in range(0, X_tensor.shape[0], batch_size):
            h = X_tensor[start : start + batch_size]
            for weight in weights:
                h = h @ weight


# ---------------------------------------------------------------- small network

def reference_eager_fit(detector, X_train, epochs: int, seed: int) -> None:
    """Train ``detector``'s fitted network forward-forward with a plain eager loop, for comparison.

    Each layer has its own optimizer. On every mini-batch each layer runs
    forward on the normal rows and the negatives, back-propagates its loss and
    steps its optimizer. Then it hands its detached outputs to the next layer. This is the loop one writes
    first; :func:`ffoc.trainers.ff.ff_step` gives the same update with one
    optimizer call per step.
    """
    import torch

    from ..trainers.common import batches, make_optimizer, negatives_for

    config = _estimator_config(detector, len(X_train))
    X = detector._to_tensor(np.asarray(X_train))
    generator = torch.Generator().manual_seed(seed)
    layers = detector.layers_
    optimizers = [make_optimizer(config.optimizer, layer.parameters(), config.learning_rate) for layer in layers]
    for _ in range(epochs):
        for index in batches(X.shape[0], config.batch_size, generator):
            x = X[index]
            x_negative = negatives_for(x, config, generator)
            for layer, state, optimizer in zip(layers, detector.states_, optimizers):
                optimizer.zero_grad()
                h = layer(x)
                h_negative = None if x_negative is None else layer(x_negative)
                loss = config.objective.loss(h, state, h_negative, config.negative_weight)
                loss.backward()
                optimizer.step()
                x = h.detach()
                x_negative = None if h_negative is None else h_negative.detach()


def _timed(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _interleaved(functions: dict, repeats: int = 3) -> dict:
    """Return the median seconds of each function, timed in turn ``repeats`` times."""
    times: dict = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def measure_small(settings: dict, seed: int, log, threads: int = 1) -> dict:
    """Return seconds per epoch on banknote (batch 32, 4-40-40-40) for each training path."""
    import warnings

    with warnings.catch_warnings():
        # Fits with epochs=0 time the set-up alone; their untrained-network warning is expected.
        warnings.filterwarnings("ignore", message=".*epochs=0 leaves the network untrained")
        return _measure_small(settings, seed, log, threads)


def _measure_small(settings: dict, seed: int, log, threads: int) -> dict:
    from ..datasets import load_banknote, one_class_split
    from ..estimator import FFOneClass
    from ..multiseed import fit_batch, fit_seeds

    X, y = load_banknote(return_X_y=True)
    X_train = one_class_split(X, y, random_state=seed).X_train
    epochs = settings["small_epochs"]
    n_seeds = settings["seeds"]
    params = {"hidden_layer_sizes": (40, 40, 40), "batch_size": 32}

    def fit(n_epochs):
        return FFOneClass(epochs=n_epochs, random_state=seed, **params).fit(X_train)

    detector = fit(0)
    template = FFOneClass(**params)
    fit(1)  # warm-up
    fit_seeds(template.set_params(epochs=1), X_train, range(n_seeds))

    # Round-robin repeats, so that a change of load during the run hits every path alike.
    medians = _interleaved({
        "fit": lambda: fit(epochs),
        "fit_setup": lambda: fit(0),
        "reference": lambda: reference_eager_fit(detector, X_train, epochs, seed),
        "batched": lambda: fit_seeds(template.set_params(epochs=epochs), X_train, range(n_seeds)),
        "batched_setup": lambda: fit_seeds(template.set_params(epochs=0), X_train, range(n_seeds)),
    })
    fit_epoch = (medians["fit"] - medians["fit_setup"]) / epochs
    reference_epoch = medians["reference"] / epochs
    batched_total, batched_setup = medians["batched"], medians["batched_setup"]
    batched_epoch = (batched_total - batched_setup) / (epochs * n_seeds)

    # The ffoc protocol of a reproduction: estimator defaults, split seed = model seed. Wall time of
    # n_seeds FF fits one by one and as one batch, and of n_seeds BP fits one by one.
    wall_epochs = settings.get("wall_epochs") or FFOneClass().epochs
    splits = [one_class_split(X, y, random_state=s).X_train for s in range(n_seeds)]
    walls = {}
    for trainer in ("ff", "bp"):
        start = time.perf_counter()
        for s in range(n_seeds):
            FFOneClass(trainer=trainer, epochs=wall_epochs, random_state=s).fit(splits[s])
        walls[trainer] = time.perf_counter() - start
    start = time.perf_counter()
    fit_batch([FFOneClass(epochs=wall_epochs, random_state=s) for s in range(n_seeds)], splits)
    batched_wall = time.perf_counter() - start
    sequential_wall = walls["ff"]
    result = {
        "train_rows": len(X_train), "epochs": epochs, "seeds": n_seeds, "wall_epochs": wall_epochs,
        "fit_epoch_s": fit_epoch, "reference_epoch_s": reference_epoch, "batched_epoch_per_seed_s": batched_epoch,
        "sequential_wall_s": sequential_wall, "batched_wall_s": batched_wall, "bp_wall_s": walls["bp"],
        "objective": FFOneClass().objective,
    }
    log(f"small: fit {fit_epoch * 1e3:.2f} ms/epoch, reference {reference_epoch * 1e3:.2f}, "
        f"batched {batched_epoch * 1e3:.3f} per seed; {n_seeds} seeds {sequential_wall:.1f} s vs {batched_wall:.1f} s")
    if settings.get("reproduce_seeds"):
        result["reproduce"] = time_reproduction(settings["reproduce_seeds"], jobs=threads)
        log(f"ffoc reproduce, ffoc protocol, {settings['reproduce_seeds']} seeds: "
            f"{result['reproduce']['wall_s']:.1f} s")
    return result


def time_reproduction(n_seeds: int, *, jobs: int) -> dict:
    """Return the wall time of the ``ffoc``-protocol half of ``ffoc reproduce`` as a user runs it.

    The command runs in a fresh process, with ``jobs`` worker processes (its
    default is the number of CPUs), into a temporary folder that is removed after.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ffoc-bench-reproduce-") as folder:
        arguments = ["reproduce", "--out", folder, "--seeds", str(n_seeds), "--protocols", "ffoc",
                     "--jobs", str(jobs), "-q"]
        code = "import sys\nfrom ffoc.cli import main\nsys.exit(main(sys.argv[1:]))\n"
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True,
                                   check=False)
        wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"ffoc {' '.join(arguments)} failed: {completed.stderr.strip()[-2000:]}")
    return {"command": shlex.join(["ffoc", *arguments[:1], "--out", "OUT", *arguments[3:]]), "wall_s": wall,
            "seeds": n_seeds, "jobs": jobs}


# ---------------------------------------------------------------- scaling

def scaling_worker(spec: dict) -> dict:
    """Fit one epoch on ``spec["rows"]`` synthetic rows or an ADBench set, in a fresh process.

    Returns the fit time and the peak resident memory above the memory after
    loading the data.
    """
    import torch

    from ..estimator import FFOneClass

    torch.set_num_threads(spec["threads"])
    if spec.get("dataset"):
        from ..datasets import load_adbench

        X, y = load_adbench(spec["dataset"], spec["data_dir"])
        X = X[y == 0]
    else:
        X = np.random.default_rng(spec["seed"]).normal(size=(spec["rows"], 10))
    FFOneClass(epochs=1, random_state=0).fit(X[:256])  # warm-up imports and kernels
    _release_free_memory()
    baseline = _status_kib("VmRSS") * 1024
    _reset_peak()
    start = time.perf_counter()
    FFOneClass(epochs=1, random_state=spec["seed"]).fit(X)
    elapsed = time.perf_counter() - start
    return {"name": spec.get("dataset") or "synthetic", "rows": int(X.shape[0]), "features": int(X.shape[1]),
            "fit_s": elapsed, "peak_bytes": _status_kib("VmHWM") * 1024 - baseline}


def measure_scaling(settings: dict, threads: int, seed: int, data_dir, log, fresh_process: bool = True) -> list[dict]:
    specs = [{"rows": n, "threads": threads, "seed": seed} for n in settings["scaling_rows"]]
    if data_dir is not None:
        from ..datasets import list_adbench

        available = set(list_adbench(data_dir))
        specs += [{"dataset": name, "data_dir": str(data_dir), "threads": threads, "seed": seed}
                  for name in settings["scaling_sets"] if name in available]
    rows = []
    for spec in specs:
        rows.append(_run_worker("scaling_worker", spec, threads, fresh_process))
        log(f"scaling {rows[-1]['name']} {rows[-1]['rows']} rows: {rows[-1]['fit_s']:.2f} s, "
            f"{rows[-1]['peak_bytes'] / 2**20:.0f} MiB")
    return rows


# ---------------------------------------------------------------- report

def _machine(threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {threads} torch threads, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def render_markdown(results: dict) -> str:
    lines = [
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}  ",
        f"Load: {results['load']}  ",
        f"Date: {results['date']}",
        "",
    ]
    for part, source in sorted(results.get("earlier", {}).items()):
        lines += [f"Part `{part}` is from an earlier run: `{source['command']}`, {source['date']}, "
                  f"load: {source['load']}.", ""]
    steps = results.get("step")
    if steps:
        rate = results["matmul_flops"]
        s = steps[0]
        lines += [
            f"**Training step** (width {s['width']}, batch {s['batch']}"
            f"{' + as many negatives' if s['negatives'] else ''}, median of {len(s['times_s'])} steps after "
            f"one warm-up step; estimator defaults for objective, optimizer and negatives). Matmul rate "
            f"(float32, fastest of a {results['matmul_n']}x{results['matmul_n']} square product and the steps' "
            f"batch x width x width product, best of 5): {rate / 1e9:.1f} GFLOP/s.",
            "",
            "| depth | FF s/step | BP s/step | FF/BP | ideal 2L/(3L-1) | FF % of matmul | BP % of matmul "
            "| FF MiB | BP MiB | BP/FF memory |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        by_key = {(r["trainer"], r["depth"]): r for r in steps}
        for depth in sorted({r["depth"] for r in steps}):
            ff, bp = by_key[("ff", depth)], by_key[("bp", depth)]
            ideal = 2 * depth / (3 * depth - 1)
            lines.append(
                f"| {depth} | {ff['median_s']:.3f} | {bp['median_s']:.3f} | {ff['median_s'] / bp['median_s']:.2f} "
                f"| {ideal:.2f} | {100 * ff['flop'] / ff['median_s'] / rate:.0f} "
                f"| {100 * bp['flop'] / bp['median_s'] / rate:.0f} | {_mib(ff['max_working_bytes'])} "
                f"| {_mib(bp['max_working_bytes'])} | {bp['max_working_bytes'] / max(ff['max_working_bytes'], 1):.1f} |"
            )
        lines += [
            "",
            "Working memory: peak resident memory during a step minus resident memory after the warm-up step, "
            "each (trainer, depth) in a fresh process. Per-step peaks of FF (growth across steps shows a leak): "
            + "; ".join(f"depth {r['depth']}: " + ", ".join(_mib(b) for b in r["working_bytes"]) + " MiB"
                        for r in steps if r["trainer"] == "ff"),
            "",
            "![time and memory against depth](docs/figures/speed_depth.png)",
            "",
        ]
    scores = results.get("score")
    if scores:
        lines += ["**Scoring** (`FFOneClass.score_samples`, median of 3 runs; the last column runs only the "
                  "network's matrix products in the same batches, a ceiling on scoring speed)", "",
                  "| network | rows | seconds | rows/s | matrix products only, rows/s |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['network']} | {r['rows']:,} | {r['median_s']:.3f} | {r['rows_per_s']:,.0f} "
                  f"| {r['matmul_only_rows_per_s']:,.0f} |" for r in scores]
        lines.append("")
    small = results.get("small")
    if small:
        lines += [
            f"**Small network**: banknote one-class training rows ({small['train_rows']}), 4-40-40-40, batch 32, "
            f"{small['epochs']} epochs, ms per epoch (median of 3 round-robin repeats).", "",
            "| path | ms/epoch | vs reference |", "|---|---:|---:|",
            f"| eager loop, one optimizer per layer (reference) | {1e3 * small['reference_epoch_s']:.2f} | 1.0 |",
            f"| `FFOneClass.fit` (ff_step) | {1e3 * small['fit_epoch_s']:.2f} "
            f"| {small['reference_epoch_s'] / small['fit_epoch_s']:.1f}x faster |",
            f"| `ffoc.multiseed.fit_seeds`, {small['seeds']} seeds, per seed | "
            f"{1e3 * small['batched_epoch_per_seed_s']:.3f} "
            f"| {small['reference_epoch_s'] / small['batched_epoch_per_seed_s']:.1f}x faster |",
            "",
            f"Reproduction, `ffoc` protocol (estimator defaults, objective {small['objective']!r}, split seed = "
            f"model seed, epochs={small['wall_epochs']!r}), {small['seeds']} seeds: FF {small['sequential_wall_s']:.1f} s "
            f"one by one, {small['batched_wall_s']:.1f} s with `fit_batch`; BP {small['bp_wall_s']:.1f} s one by one. "
            f"Estimate for the `ffoc` half of `ffoc reproduce --seeds {small['seeds']}` (5 objectives x FF and BP, "
            f"one job, assuming every objective costs the same): "
            f"{5 * (small['sequential_wall_s'] + small['bp_wall_s']):.0f} s as it runs now, "
            f"{5 * (small['batched_wall_s'] + small['bp_wall_s']):.0f} s with the FF runs batched.",
            "",
        ]
        reproduce = small.get("reproduce")
        if reproduce:
            lines += [f"Measured: `{reproduce['command']}` (all five objectives, FF and BP, {reproduce['jobs']} "
                      f"worker processes of one thread each) took {reproduce['wall_s']:.0f} s wall.", ""]
    scaling = results.get("scaling")
    if scaling:
        lines += ["**Scaling** (one epoch of `FFOneClass.fit` with default settings, fresh process each; "
                  "peak memory above the memory after loading the data)", "",
                  "| data | rows | features | fit s | s per 100k rows | peak MiB |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['name']} | {r['rows']:,} | {r['features']} | {r['fit_s']:.2f} "
                  f"| {1e5 * r['fit_s'] / r['rows']:.2f} | {_mib(r['peak_bytes'])} |" for r in scaling]
        lines.append("")
    lines += _target_lines(results)
    return "\n".join(lines)


def _target_lines(results: dict) -> list[str]:
    """Return the targets of the speed benchmark, each with its measured value and whether it is met."""
    checks = []
    steps = results.get("step")
    if steps:
        by_key = {(r["trainer"], r["depth"]): r for r in steps}
        depths = sorted({r["depth"] for r in steps})
        ratios = {d: by_key[("ff", d)]["median_s"] / by_key[("bp", d)]["median_s"] for d in depths}
        ideal = {d: 2 * d / (3 * d - 1) for d in depths}
        worst = max(depths, key=lambda d: abs(ratios[d] / ideal[d] - 1))
        checks.append(("FF/BP step time within 10% of 2L/(3L-1) at every depth",
                       f"worst at depth {worst}: {ratios[worst]:.2f} vs {ideal[worst]:.2f}",
                       abs(ratios[worst] / ideal[worst] - 1) <= 0.10))
        deep = [d for d in depths if d >= 16]
        if deep:
            checks.append(("FF/BP <= 0.75 at depth >= 16", ", ".join(f"{ratios[d]:.2f}" for d in deep),
                           all(ratios[d] <= 0.75 for d in deep)))
        rate = results["matmul_flops"]
        fractions = [by_key[("ff", d)]["flop"] / by_key[("ff", d)]["median_s"] / rate for d in depths]
        checks.append((f"FF >= 80% of the matmul rate at width {steps[0]['width']}",
                       f"{100 * min(fractions):.0f}% to {100 * max(fractions):.0f}%", min(fractions) >= 0.8))
        first, last = depths[0], depths[-1]
        ff_first = by_key[("ff", first)]["max_working_bytes"]
        ff_last = by_key[("ff", last)]["max_working_bytes"]
        checks.append((f"FF working memory at depth {last} within 1.5x of depth {first}",
                       f"{ff_last / max(ff_first, 1):.2f}x", ff_last <= 1.5 * ff_first))
        bp_last = by_key[("bp", last)]["max_working_bytes"]
        checks.append((f"BP/FF working memory >= 8 at depth {last}", f"{bp_last / max(ff_last, 1):.1f}",
                       bp_last >= 8 * ff_last))
    scores = results.get("score")
    if scores:
        small_net = scores[0]
        checks.append(("scoring >= 5M rows/s, 4-40-40-40", f"{small_net['rows_per_s'] / 1e6:.2f}M rows/s",
                       small_net["rows_per_s"] >= 5e6))
    small = results.get("small")
    if small:
        speedup = small["reference_epoch_s"] / small["batched_epoch_per_seed_s"]
        checks.append(("banknote epoch >= 5x faster than the eager reference loop",
                       f"FFOneClass.fit {small['reference_epoch_s'] / small['fit_epoch_s']:.1f}x, "
                       f"fit_seeds per seed {speedup:.1f}x", speedup >= 5))
        reproduce = small.get("reproduce")
        if reproduce:
            checks.append((f"`ffoc` half of a {reproduce['seeds']}-seed reproduction < 3 min "
                           f"(`{reproduce['command']}`, measured)", f"{reproduce['wall_s']:.0f} s",
                           reproduce["wall_s"] < 180))
        else:
            half = 5 * (small["batched_wall_s"] + small["bp_wall_s"])
            checks.append((f"`ffoc` half of a {small['seeds']}-seed reproduction < 3 min (estimate, FF batched)",
                           f"{half:.0f} s ({5 * (small['sequential_wall_s'] + small['bp_wall_s']):.0f} s unbatched)",
                           half < 180))
    scaling = [r for r in results.get("scaling") or [] if r["name"] == "synthetic"]
    if len(scaling) >= 2:
        per_row = [r["fit_s"] / r["rows"] for r in scaling]
        checks.append(("fit time linear in rows (time per row within 1.5x across sizes)",
                       f"{max(per_row) / min(per_row):.2f}x", max(per_row) <= 1.5 * min(per_row)))
    if not checks:
        return []
    lines = ["**Targets**", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'yes' if met else 'no'} |" for name, value, met in checks]
    lines.append("")
    return lines


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` in ``path``.

    The section is appended when the markers are missing; the rest of the file is kept.
    """
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def plot_depth(steps: list[dict], path: Path) -> None:
    """Save time per step and working memory against depth, FF and BP, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for trainer, label in (("ff", "forward-forward"), ("bp", "backprop")):
        rows = sorted((r for r in steps if r["trainer"] == trainer), key=lambda r: r["depth"])
        depths = [r["depth"] for r in rows]
        left.plot(depths, [r["median_s"] for r in rows], marker="o", label=label)
        right.plot(depths, [r["max_working_bytes"] / 2**20 for r in rows], marker="o", label=label)
    for axis, ylabel in ((left, "seconds per step (median)"), (right, "working memory (MiB)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(depths, [str(d) for d in depths])
        axis.set_xlabel("depth (layers)")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        axis.legend()
    s = steps[0]
    figure.suptitle(f"Training step, width {s['width']}, batch {s['batch']}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run_speed(
    *, parts=PARTS, quick: bool = False, threads: int = 2, seed: int = 0, device: str = "cpu",
    data_dir=None, out_dir="bench_out/speed", benchmarks_md="BENCHMARKS.md", figures_dir="docs/figures",
    load: str = "not recorded", command: str = "ffoc bench speed", verbose: int = 0,
    settings: dict | None = None, fresh_process: bool = True,
) -> dict:
    """Run the chosen parts and write ``speed.json``, the figure and the BENCHMARKS.md section.

    ``settings`` replaces entries of the full (or, with ``quick``, the quick)
    sizes, for example ``{"depths": [2, 4]}``. ``fresh_process=False`` runs the
    step and scaling measurements in this process, which is faster but mixes
    their memory figures (for tests only). Returns the results as a dict.
    """
    import torch

    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"Unknown part(s) {unknown}; choose among {list(PARTS)}.")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"--data-dir {str(data_dir)!r} is not a folder; pass the folder with the ADBench files.")
    settings = {**(QUICK if quick else FULL), **(settings or {})}
    torch.set_num_threads(threads)

    def log(message: str) -> None:
        if verbose:
            print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    results: dict = {
        "command": command, "machine": _machine(threads), "load": load, "quick": quick,
        "date": time.strftime("%Y-%m-%d %H:%M"), "settings": settings,
    }
    if "step" in parts:
        results["matmul_n"] = settings["matmul_n"]
        results["matmul_flops"] = matmul_rate(
            settings["matmul_n"], device=device,
            shapes=[(settings["batch"], settings["width"], settings["width"])],
        )
        log(f"matmul {results['matmul_flops'] / 1e9:.1f} GFLOP/s")
        results["step"] = measure_steps(settings, threads, seed, device, log, fresh_process)
    if "score" in parts:
        results["score"] = measure_scoring(settings, seed, log)
    if "small" in parts:
        results["small"] = measure_small(settings, seed, log, threads)
    if "scaling" in parts:
        results["scaling"] = measure_scaling(settings, threads, seed, data_dir, log, fresh_process)
    results["wall_s"] = time.perf_counter() - started

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _carry_over(results, out / "speed.json", parts)
    (out / "speed.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    if results.get("step"):
        plot_depth(results["step"], out / "speed_depth.png")
        if figures_dir is not None:
            plot_depth(results["step"], Path(figures_dir) / "speed_depth.png")
    if benchmarks_md is not None:
        body = render_markdown(results) + f"\nWall time of the run: {results['wall_s']:.0f} s.\n"
        write_section(Path(benchmarks_md), SECTION, body)
    return results


def _carry_over(results: dict, previous_path: Path, parts) -> None:
    """Copy into ``results`` the parts of an earlier run in ``previous_path`` that this run skipped.

    Running one part at a time then builds up the whole report; each carried
    part keeps its own command and date under ``"earlier"``.
    """
    if not previous_path.exists():
        return
    try:
        previous = json.loads(previous_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    earlier = dict(previous.get("earlier", {}))
    for part in PARTS:
        if part in parts or not previous.get(part):
            continue
        results[part] = previous[part]
        if part == "step":
            results["matmul_flops"] = previous["matmul_flops"]
            results["matmul_n"] = previous["matmul_n"]
        earlier.setdefault(part, {"command": previous["command"], "date": previous["date"], "load": previous["load"]})
    for part in parts:
        earlier.pop(part, None)
    if earlier:
        results["earlier"] = earlier


def _handle(args: argparse.Namespace) -> int:
    parts = PARTS if args.parts == "all" else tuple(p.strip() for p in args.parts.split(",") if p.strip())
    command = shlex.join(["ffoc", "bench", "speed", *sys.argv[3:]])
    overrides = {}
    if args.depths:
        try:
            overrides["depths"] = [int(d) for d in args.depths.split(",")]
        except ValueError:
            raise ValueError(f"--depths {args.depths!r} must be comma-separated integers, for example 2,4,8.") from None
    run_speed(
        settings=overrides, parts=parts, quick=args.quick, threads=args.threads, seed=args.seed, device=args.device,
        data_dir=args.data_dir, out_dir=args.out, benchmarks_md=args.benchmarks_md,
        figures_dir=None if args.no_figures or args.benchmarks_md is None else args.figures_dir,
        load=args.load, command=command.strip(),
        verbose=args.verbose,
    )
    return 0


def add_parser(subparsers) -> None:
    """Register ``ffoc bench speed``."""
    parser = subparsers.add_parser(
        SECTION, help="training step time and memory, FF against BP; scoring and small-network speed",
        description="Training step time and memory of forward-forward against backprop, scoring throughput, "
        "small-network training and scaling with rows; writes the speed section of BENCHMARKS.md.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for checking the benchmark itself")
    parser.add_argument("--parts", default="all", help=f"comma-separated parts among {', '.join(PARTS)} (default all)")
    parser.add_argument("--depths", default=None, help="comma-separated depths of the step part (default 2,4,8,16,32)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda for the training-step part (default cpu)")
    parser.add_argument("--data-dir", default=None, help="folder of the ADBench .npz files, for the scaling part")
    parser.add_argument("--out", default="bench_out/speed", help="output folder (default bench_out/speed)")
    parser.add_argument("--report", "--benchmarks-md", dest="benchmarks_md", default="BENCHMARKS.md",
                        help="Markdown file whose speed section is replaced (default: %(default)s)")
    parser.add_argument("--no-report", dest="benchmarks_md", action="store_const", const=None,
                        help="write only into --out: neither the Markdown file nor --figures-dir")
    parser.add_argument("--figures-dir", default="docs/figures", help="folder of the PNG figure (default docs/figures)")
    parser.add_argument("--no-figures", action="store_true", help="write the figure into --out only")
    parser.add_argument("--load", default="not recorded",
                        help="note on the machine's load, copied into BENCHMARKS.md (e.g. 'idle')")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="print each measurement")
    parser.set_defaults(handler=_handle)

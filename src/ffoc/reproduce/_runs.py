"""One run of the reproduction, and many runs over a process pool."""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ..datasets import load_banknote, stratified_split
from ..metrics import detection_metrics
from ._protocols import PROTOCOLS
from .landscape import ParameterRecorder, compute_landscapes

__all__ = ["RunResult", "RunSpec", "execute_runs", "run_one"]

# Train, validation and test shares of the stratified split.
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)


@dataclass(frozen=True)
class RunSpec:
    """One run: a protocol, an objective, a trainer and a seed.

    Attributes
    ----------
    protocol, objective, trainer : str
        The setting.
    seed : int
        Model seed (and split seed in the ``ffoc`` protocol).
    epochs : int or None
        Overrides the protocol's epoch count, for quick checks only.
    landscape_dir : str or None
        When set, the run records its parameter path and writes its loss
        landscape figures into this folder.
    resolution, frames : int
        Landscape grid points per direction, and GIF frames.
    """

    protocol: str
    objective: str
    trainer: str
    seed: int
    epochs: int | None = None
    landscape_dir: str | None = None
    resolution: int = 25
    frames: int = 40

    @property
    def setting(self) -> tuple[str, str, str]:
        return (self.protocol, self.objective, self.trainer)


@dataclass
class RunResult:
    """Output of one run: its results row and the arrays the figures need."""

    row: dict
    arrays: dict = field(default_factory=dict)


def _split(protocol_name: str, seed: int):
    X, y = load_banknote(return_X_y=True)
    target = (np.asarray(y) != 0).astype(np.int64)  # class 0 (genuine) is normal
    split_seed = PROTOCOLS[protocol_name].split_seed(seed)
    train, val, test = stratified_split(target, SPLIT_FRACTIONS, random_state=split_seed)
    return np.asarray(X, dtype=np.float64), target, train, val, test, split_seed


def run_one(spec: RunSpec) -> RunResult:
    """Fit and score one run with one thread; an exception during the run becomes a failed row.

    The split is :func:`ffoc.datasets.stratified_split` with fractions
    (0.6, 0.2, 0.2). The detector trains on the normal rows of the training
    part, and its scaler is fitted on those rows only. In the ``paper`` protocol
    the validation part (both classes, with labels) drives the stopping rule.
    Test metrics come from :func:`ffoc.metrics.detection_metrics`.
    """
    torch.set_num_threads(1)
    # NumPy's BLAS threads too: scikit-learn and the landscape's projections call it.
    with threadpool_limits(limits=1):
        return _run_one_thread(spec)


def _run_one_thread(spec: RunSpec) -> RunResult:
    protocol = PROTOCOLS[spec.protocol]
    X, target, train, val, test, split_seed = _split(spec.protocol, spec.seed)
    train_normal = train[target[train] == 0]
    row = {
        "protocol": spec.protocol,
        "objective": spec.objective,
        "trainer": spec.trainer,
        "seed": spec.seed,
        "split_seed": split_seed,
        "model_seed": spec.seed,
        "label_use": protocol.label_use,
        "status": "ok",
        "error": "",
    }
    start = time.perf_counter()
    try:
        detector = protocol.make_detector(spec.objective, spec.trainer, spec.seed, epochs=spec.epochs)
        recorder = ParameterRecorder() if spec.landscape_dir is not None else None
        fit_kwargs = {"recorder": recorder}
        if protocol.label_use:
            fit_kwargs.update(X_val=X[val], y_val=target[val])
        detector.fit(X[train_normal], **fit_kwargs)
        fit_seconds = time.perf_counter() - start

        test_score = -detector.score_samples(X[test])
        test_outlier = detector.predict(X[test]) == -1
        metrics = detection_metrics(target[test], test_score, test_outlier)
        if not np.all(np.isfinite(test_score)):
            raise FloatingPointError("the detector returned NaN or infinite test scores")
    except Exception as error:  # noqa: BLE001 - a failed run is counted in the table, never dropped
        row.update(status="failed", error=_one_line(error), fit_seconds=time.perf_counter() - start)
        return RunResult(row=row)

    history = detector.history_
    row.update(
        fit_seconds=fit_seconds,
        epochs_run=len(history.layer_losses),
        stopped_early=history.stopped_epoch is not None,
        **metrics,
        # The original code computed AUROC from 0/1 decisions; kept for comparison only.
        auroc_thresholded=_auroc_or_nan(target[test], test_outlier),
    )
    arrays = {
        "test_label": target[test],
        "test_score": test_score,
        "train_label": target[train],
        "train_score": -detector.score_samples(X[train]),
        "threshold": -detector.offset_,
        "layer_losses": np.asarray(history.layer_losses, dtype=np.float64),
        "validation_losses": np.asarray(history.validation_losses, dtype=np.float64),
    }
    if recorder is not None:
        try:
            _write_landscape(spec, detector, X[train_normal], recorder)
        except Exception as error:  # noqa: BLE001 - the run's metrics stand; the figure failure is reported
            row["error"] = f"landscape failed: {_one_line(error)}"
    return RunResult(row=row, arrays=arrays)


def _write_landscape(spec: RunSpec, detector, X_train, recorder) -> None:
    from ..viz import animate_landscape, plot_landscape

    landscapes = compute_landscapes(detector, X_train, recorder, resolution=spec.resolution)
    folder = Path(spec.landscape_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{spec.protocol}_{spec.objective}_{spec.trainer}_seed{spec.seed}"
    title = f"{spec.protocol} protocol, {spec.objective}, {spec.trainer.upper()}, seed {spec.seed}"
    plot_landscape(landscapes, folder / f"{stem}.png", title=title)
    animate_landscape(landscapes, folder / f"{stem}.gif", title=title, frames=spec.frames)


def execute_runs(specs: Sequence[RunSpec], *, jobs: int = 1, progress: bool = False) -> list[RunResult]:
    """Run ``specs`` in order, in this process (``jobs=1``) or in a pool of ``jobs`` processes.

    Every run sets its own seeds and uses one thread, so the results do not
    depend on ``jobs``. Results come back in the order of ``specs``.
    """
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be at least 1.")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), desc="runs", unit="run")
    results: list[RunResult | None] = [None] * len(specs)
    try:
        if jobs == 1:
            previous_threads = torch.get_num_threads()
            try:
                for i, spec in enumerate(specs):
                    results[i] = run_one(spec)
                    if bar is not None:
                        bar.update(1)
            finally:
                torch.set_num_threads(previous_threads)
        else:
            # "spawn" starts clean interpreters: no inherited thread pools or locks.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                futures = {pool.submit(run_one, spec): i for i, spec in enumerate(specs)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return [result for result in results if result is not None]


def _auroc_or_nan(y_true: np.ndarray, decision: np.ndarray) -> float:
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, decision.astype(np.float64)))


def _one_line(error: BaseException) -> str:
    text = str(error).strip().replace("\n", " ") or type(error).__name__
    origin = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" ({Path(origin.filename).name}:{origin.lineno})" if origin else ""
    return f"{type(error).__name__}: {text}{where}"

"""``ffoc bench accuracy``: ffoc against PyOD's detectors on the ADBench classical data sets.

Every detector runs on the same splits, side by side, in two protocols:

* ``one-class`` (novelty detection): a random 70% of the normal rows train;
  the other normal rows and every anomaly test.
* ``unsupervised`` (ADBench's protocol): a stratified 70/30 split, and the
  training rows keep their anomalies, unlabelled.

The seed of a run sets the split, the training subsample and the detector's
``random_state``. Training sets above ``max_train_rows`` rows (10,000, as in
ADBench) are subsampled without replacement; test sets are kept whole. PyOD
detectors get data standardised by a scaler fitted on the training rows only,
and ffoc standardises its input itself, the same way.

Each finished run is appended to ``runs.csv`` in the output folder at once, so
an interrupted benchmark keeps its runs and ``--resume`` skips them. A run is
skipped only when it was made with the same ``max_train_rows``, the same data
file bytes (their SHA-256) and the same detector parameters. Other rows stay
in ``runs.csv``, but their runs run again and the summary leaves them out. A
run that raises, or whose worker process dies, is recorded with
``status="failed"`` and its error, never dropped. The summary (per-data-set
AUROC and AUPRC, mean AUROC, mean rank, wins against each peer, total time, a
PNG of mean ranks) is written to the output folder and to the ``accuracy``
section of BENCHMARKS.md.

Examples
--------
Run the full benchmark with two worker processes::

    ffoc bench accuracy --data-dir ../shared/data/adbench_classical --jobs 2 --resume
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import io
import json
import numbers
import os
import platform
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import check_replaceable
from ..persistence import atomic_write_bytes
from .report import check_section, markdown_table, write_section

__all__ = [
    "DEFAULT_EXCLUDED",
    "PROTOCOLS",
    "PYOD_DETECTORS",
    "TUNING_SETS",
    "AccuracyResult",
    "RunSpec",
    "add_parser",
    "detector_names",
    "run_accuracy",
    "run_one",
    "summarize",
]

PROTOCOLS = ("one-class", "unsupervised")
PYOD_DETECTORS = ("IForest", "OCSVM", "KNN", "LOF", "ECOD", "COPOD", "HBOS", "PCA", "DeepSVDD", "AutoEncoder")

# Early ADBench variants with anomaly rates above 45%, not in its published list.
DEFAULT_EXCLUDED = ("4_Arrhythmia", "28_Parkinson")

# ffoc's defaults were chosen on these sets (and banknote, which ADBench lacks),
# so their results are reported apart from the held-out sets.
TUNING_SETS = ("6_cardio", "38_thyroid", "31_satimage-2")

# The detector whose wins against each peer are counted.
REFERENCE_DETECTOR = "FFOC-FF"

MAX_TRAIN_ROWS = 10_000
DEFAULT_SEEDS = 3

# --quick: two of the smallest sets, one seed, four detectors.
QUICK_DATASETS = ("14_glass", "42_WBC")
QUICK_DETECTORS = ("FFOC-FF", "FFOC-BP", "IForest", "ECOD")

RUN_COLUMNS = (
    "dataset", "protocol", "seed", "detector", "status", "auroc", "auprc",
    "fit_s", "score_s", "time_s", "n_train", "n_train_full", "n_test", "n_test_anomalies",
    "n_features", "error", "params", "max_train_rows", "data_sha256",
)
# The columns of runs.csv before max_train_rows and data_sha256 were recorded.
_LEGACY_RUN_COLUMNS = RUN_COLUMNS[:-2]
_RUNS_FILE = "runs.csv"
_SECTION = "accuracy"


# ---------------------------------------------------------------------- detectors


def _ffoc_variants() -> dict[str, dict]:
    """Return ffoc's detectors as name -> FFOneClass keyword arguments.

    ``FFOC-FF`` and ``FFOC-BP`` use the estimator's default objective, read at
    run time. ``FFOC-FF-<objective>`` adds the goodness and hb-svdd objectives,
    except the one that is the default, which would repeat ``FFOC-FF``.
    """
    from ..estimator import FFOneClass

    default_objective = FFOneClass().objective
    variants = {"FFOC-FF": {"trainer": "ff"}, "FFOC-BP": {"trainer": "bp"}}
    for objective in ("goodness", "hb-svdd"):
        if objective != default_objective:
            variants[f"FFOC-FF-{objective}"] = {"trainer": "ff", "objective": objective}
    return variants


def detector_names() -> list[str]:
    """Return the names of the benchmark's detectors, ffoc's first.

    Examples
    --------
    >>> names = detector_names()
    >>> names[:2], "DeepSVDD" in names
    (['FFOC-FF', 'FFOC-BP'], True)
    """
    return [*_ffoc_variants(), *PYOD_DETECTORS]


def _make_pyod_detector(name: str, seed: int, n_features: int):
    """Build PyOD detector ``name`` with PyOD's defaults, seeded and quiet, on the CPU."""
    if name == "IForest":
        from pyod.models.iforest import IForest

        return IForest(random_state=seed)
    if name == "OCSVM":
        from pyod.models.ocsvm import OCSVM

        return OCSVM()
    if name == "KNN":
        from pyod.models.knn import KNN

        return KNN()
    if name == "LOF":
        from pyod.models.lof import LOF

        return LOF()
    if name == "ECOD":
        from pyod.models.ecod import ECOD

        return ECOD()
    if name == "COPOD":
        from pyod.models.copod import COPOD

        return COPOD()
    if name == "HBOS":
        from pyod.models.hbos import HBOS

        return HBOS()
    if name == "PCA":
        from pyod.models.pca import PCA

        return PCA(random_state=seed)
    if name == "DeepSVDD":
        from pyod.models.deep_svdd import DeepSVDD

        return DeepSVDD(n_features=n_features, random_state=seed, verbose=0)
    if name == "AutoEncoder":
        from pyod.models.auto_encoder import AutoEncoder

        return AutoEncoder(random_state=seed, verbose=0, device="cpu")
    raise ValueError(f"unknown PyOD detector {name!r}; choose from {list(PYOD_DETECTORS)}")


def _make_detector(name: str, seed: int, n_features: int):
    """Return ``(detector, uses_own_scaling)`` for ``name``; every detector follows PyOD's API."""
    variants = _ffoc_variants()
    if name in variants:
        from ..estimator import FFOneClass
        from ..pyod import FFOC

        return FFOC(FFOneClass(random_state=seed, **variants[name])), True
    return _make_pyod_detector(name, seed, n_features), False


def _describe_params(detector) -> str:
    """Return the detector's parameters as compact JSON; ``resume`` compares it."""
    from ..pyod import FFOC

    if isinstance(detector, FFOC):
        params = detector.estimator.get_params(deep=False)
        params = {k: v for k, v in params.items() if k not in ("verbose", "device")}
        params["contamination_pyod"] = detector.contamination
    else:
        params = detector.get_params(deep=False)
        params = {k: v for k, v in params.items() if k not in ("verbose", "device")}
    return json.dumps(params, sort_keys=True, default=repr)


# ---------------------------------------------------------------------- one run


@dataclass(frozen=True)
class RunSpec:
    """One run: a detector, a data set file, a protocol and a seed."""

    dataset: str
    path: str
    protocol: str
    seed: int
    detector: str

    @property
    def key(self) -> tuple[str, str, int, str]:
        """The run's identity in ``runs.csv``."""
        return (self.dataset, self.protocol, self.seed, self.detector)


@functools.lru_cache(maxsize=1)
def _load(path: str) -> tuple[np.ndarray, np.ndarray]:
    from ..datasets import load_adbench

    return load_adbench(path)


def _data_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of the file's bytes, computed once per size and modification time.

    ``runs.csv`` records it, so ``resume`` reruns the runs of a changed file.
    """
    status = os.stat(path)
    return _file_sha256(str(path), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(functools.partial(file.read, 1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _data_sha256_or_none(path: str | os.PathLike[str]) -> str | None:
    """Return :func:`_data_sha256`, or None when the file cannot be read.

    The runs of such a file fail, with the reason as their error.
    """
    try:
        return _data_sha256(path)
    except OSError:
        return None


def _check_classes(subject: str, y: np.ndarray, advice: str) -> None:
    """Raise a ValueError naming ``subject`` unless ``y`` has both normal rows (0) and anomalies (1).

    AUROC and AUPRC are undefined otherwise: scikit-learn warns and returns
    NaN or 0, which must not be recorded as a result.
    """
    n_anomalies = int(y.sum())
    if n_anomalies == 0:
        raise ValueError(f"{subject} has no anomalies: its {y.size} labels are all 0, "
                         f"so AUROC and AUPRC are undefined; {advice}")
    if n_anomalies == y.size:
        raise ValueError(f"{subject} has no normal rows: its {y.size} labels are all 1, "
                         f"so AUROC and AUPRC are undefined; {advice}")


def _split(X: np.ndarray, y: np.ndarray, protocol: str, seed: int, max_train_rows: int):
    """Return ``(X_train, X_test, y_test, n_train_full)`` of one protocol and seed."""
    from ..datasets import novelty_split, unsupervised_split

    if protocol == "one-class":
        split = novelty_split(X, y, train_fraction=0.7, random_state=seed)
    elif protocol == "unsupervised":
        split = unsupervised_split(X, y, test_size=0.3, random_state=seed)
    else:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}")

    X_train = split.X_train
    n_train_full = X_train.shape[0]
    if n_train_full > max_train_rows:
        rows = np.random.RandomState(seed).choice(n_train_full, max_train_rows, replace=False)
        X_train = X_train[np.sort(rows)]
    return X_train, split.X_test, split.y_test, n_train_full


def _limit_threads() -> None:
    """Pin torch and the BLAS and OpenMP pools to one thread in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def run_one(spec: RunSpec, *, max_train_rows: int = MAX_TRAIN_ROWS) -> dict:
    """Run one detector on one split and return its ``runs.csv`` row.

    Any exception raised while splitting, fitting or scoring is caught and
    recorded: the row then has ``status="failed"``, NaN metrics and the error
    in ``error``. A data set or test split without anomalies or without
    normal rows fails the run, and so does a NaN metric. ``KeyboardInterrupt``
    is not caught.

    Parameters
    ----------
    spec : RunSpec
        The run.
    max_train_rows : int, default=10000
        Training sets above this size are subsampled to it.

    Returns
    -------
    dict
        One value per entry of ``RUN_COLUMNS``.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.preprocessing import StandardScaler

    _limit_threads()
    row = _failed_row(spec, max_train_rows)
    start = time.perf_counter()
    try:
        row["data_sha256"] = _data_sha256(spec.path)
        X, y = _load(spec.path)
        _check_classes(f"data set {spec.dataset}", y, "the file needs rows labelled 0 and rows labelled 1")
        X_train, X_test, y_test, n_train_full = _split(X, y, spec.protocol, spec.seed, max_train_rows)
        row.update(
            n_train=X_train.shape[0], n_train_full=n_train_full, n_test=X_test.shape[0],
            n_test_anomalies=int(y_test.sum()), n_features=X.shape[1],
        )
        _check_classes(f"the {spec.protocol} test split of {spec.dataset} (seed {spec.seed})", y_test,
                       "the set has too few rows of one class for this split")
        detector, scales_itself = _make_detector(spec.detector, spec.seed, X.shape[1])
        row["params"] = _describe_params(detector)

        # Standardise on the training rows only; ffoc does the same inside.
        if not scales_itself:
            scaler = StandardScaler().fit(X_train)
            X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

        # PyOD's deep detectors shuffle with NumPy's global generator.
        np.random.seed(spec.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_start = time.perf_counter()
            detector.fit(X_train)
            score_start = time.perf_counter()
            scores = np.asarray(detector.decision_function(X_test), dtype=np.float64)
            score_end = time.perf_counter()
        row.update(fit_s=round(score_start - fit_start, 4), score_s=round(score_end - score_start, 4))

        n_bad = int((~np.isfinite(scores)).sum())
        if n_bad:
            raise FloatingPointError(f"{n_bad} of {scores.size} test scores are NaN or infinite")
        metrics = {
            "auroc": float(roc_auc_score(y_test, scores)),
            "auprc": float(average_precision_score(y_test, scores)),
        }
        for name, value in metrics.items():
            if not np.isfinite(value):
                raise FloatingPointError(f"{name.upper()} is not a finite number ({value}) on the test split")
        row.update(status="ok", **metrics)
    except Exception as error:  # recorded in the row, never dropped
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        where = traceback.extract_tb(error.__traceback__)[-1]
        row["error"] = f"{type(error).__name__}: {message[:300]} ({Path(where.filename).name}:{where.lineno})"
    row["time_s"] = round(time.perf_counter() - start, 4)
    return row


def _failed_row(spec: RunSpec, max_train_rows: int) -> dict:
    """Return the ``runs.csv`` row of ``spec`` before it runs: failed, with NaN metrics."""
    row = {column: "" for column in RUN_COLUMNS}
    row.update(dataset=spec.dataset, protocol=spec.protocol, seed=spec.seed, detector=spec.detector)
    row.update(status="failed", auroc=float("nan"), auprc=float("nan"), max_train_rows=max_train_rows)
    return row


# ---------------------------------------------------------------------- runs.csv


def _read_runs(path: Path) -> list[dict]:
    """Read ``runs.csv``, dropping a last line cut off by an interruption.

    The cut line is removed from the file too, atomically. A file written
    before ``max_train_rows`` and ``data_sha256`` were recorded is rewritten
    with those columns empty: its rows are kept, match no settings, and so
    run again under ``resume``.

    Parameters
    ----------
    path : pathlib.Path
        The ``runs.csv`` file; a missing or blank file has no rows.

    Returns
    -------
    list of dict
        The finished rows, ``seed`` as an int and the other values as text.

    Raises
    ------
    ValueError
        If the header is not that of this benchmark, or a row's seed is not
        an integer; the message names the file and line.
    """
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{str(path)!r} is not a UTF-8 text file ({error}); choose another --out folder "
                         "or pass --overwrite") from None
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        atomic_write_bytes(path, text.encode("utf-8"))
    if not text.strip():
        return []

    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    if header not in (list(RUN_COLUMNS), list(_LEGACY_RUN_COLUMNS)):
        raise ValueError(
            f"{str(path)!r} has columns {header}, not those of this benchmark "
            f"{list(RUN_COLUMNS)}; choose another --out folder or pass --overwrite."
        )
    rows = []
    for row in reader:
        if row.get("time_s") in (None, ""):
            continue  # a row cut short
        try:
            row["seed"] = int(row["seed"])
        except ValueError:
            raise ValueError(
                f"{str(path)!r} line {reader.line_num}: seed {row['seed']!r} is not an integer; "
                "correct or delete that line, or pass --overwrite to start again"
            ) from None
        rows.append(row)

    if header == list(_LEGACY_RUN_COLUMNS):
        warnings.warn(
            f"{str(path)!r} was written by an older ffoc, without the columns max_train_rows and "
            f"data_sha256; its {len(rows)} row(s) are kept, but their runs are run again because "
            "their settings are unknown",
            UserWarning,
            stacklevel=2,
        )
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=RUN_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
        for row in rows:
            row.update(max_train_rows="", data_sha256="")
    return rows


class _RunWriter:
    """Append rows to ``runs.csv``, flushed and synced after each row so an interruption keeps them."""

    def __init__(self, path: Path, *, append: bool) -> None:
        new_file = not (append and path.is_file() and path.read_text(encoding="utf-8").strip())
        self._file = open(path, "a" if not new_file else "w", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=RUN_COLUMNS)
        if new_file:
            self._writer.writeheader()
            self._file.flush()

    def write(self, row: dict) -> None:
        self._writer.writerow(row)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------------- running


@dataclass
class AccuracyResult:
    """Runs, summary and files of one :func:`run_accuracy` call.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per run of this benchmark's run list: the latest row made with
        the current ``max_train_rows`` and data files.
    summary : dict
        Per protocol, the tables of :func:`summarize`.
    files : dict of str to pathlib.Path
        Files written, by kind (``"runs"``, ``"figure"``, ``"report"``...).
    n_skipped : int
        Runs found finished in ``runs.csv`` and skipped by ``resume``.
    interrupted : bool
        True when Ctrl-C stopped the runs; the finished ones are kept.
    """

    runs: object
    summary: dict
    files: dict = field(default_factory=dict)
    n_skipped: int = 0
    interrupted: bool = False


def _resolve_datasets(data_dir, datasets: Sequence[str] | None, quick: bool) -> list[tuple[str, Path]]:
    from ..datasets import list_adbench
    from ..datasets._base import resolve_data_dir

    folder = resolve_data_dir(data_dir, "adbench_classical", "*.npz")
    available = list_adbench(folder)
    if not available:
        raise FileNotFoundError(f"no ADBench .npz file in {str(folder)!r}; pass the folder that contains them with --data-dir")
    if datasets is not None:
        names = []
        for name in _name_list("datasets", datasets):
            stem = name.removesuffix(".npz")
            if stem not in available:
                raise ValueError(
                    f"data set {name!r} is not in {str(folder)!r}; available: {', '.join(available)}"
                )
            names.append(stem)
        names = list(dict.fromkeys(names))  # "14_glass" and "14_glass.npz" are one set
    elif quick:
        names = [name for name in QUICK_DATASETS if name in available]
        if not names:
            # Fall back on the smallest files of the folder.
            names = sorted(available, key=lambda n: (folder / f"{n}.npz").stat().st_size)[: len(QUICK_DATASETS)]
    else:
        names = [name for name in available if name not in DEFAULT_EXCLUDED]
    return [(name, folder / f"{name}.npz") for name in names]


def _name_list(parameter: str, values: Sequence[str]) -> list[str]:
    """Return ``values`` as a list; raise if it is a single string or empty, which would otherwise run everything."""
    if isinstance(values, str):
        raise TypeError(f"{parameter} must be a sequence of names such as [{values!r}], not the string {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{parameter} is empty; pass None for the default, or at least one name")
    return values


def _check_choices(kind: str, values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(values))


# Setting names in the messages of the checks below: run_accuracy's parameters, or the command line's options.
_PARAMETER_NAMES = {name: name for name in ("seeds", "jobs", "max_train_rows", "out_dir", "report", "figure")}
_OPTION_NAMES = {"seeds": "--seeds", "jobs": "--jobs", "max_train_rows": "--max-train-rows",
                 "out_dir": "--out", "report": "--report", "figure": "--figure"}


def _check_settings(seeds: int, jobs: int, max_train_rows: int, names: dict[str, str]) -> None:
    """Raise a TypeError or ValueError naming the setting (by ``names``) that is not a large enough integer."""
    for key, value, minimum in (("seeds", seeds, 1), ("jobs", jobs, 1), ("max_train_rows", max_train_rows, 2)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{names[key]} must be an integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"{names[key]} must be at least {minimum}, got {value}")


def _default_figure(report: Path) -> Path:
    return report.parent / "docs" / "figures" / "accuracy_ranks.png"


def _check_folder_creatable(folder: Path, option: str) -> None:
    """Raise unless ``folder`` exists or can be created: its nearest existing ancestor is a writable folder."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option}: {str(existing)!r} is a file, so the folder {str(folder)!r} cannot be "
                         "created there; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option}: folder {str(existing)!r} is not writable; choose another path "
                              "or make it writable")


def _check_outputs(out_dir, report, figure, names: dict[str, str]) -> tuple[Path | None, Path | None]:
    """Check every output path before the runs, which can take hours, and return the report and figure paths.

    Parameters
    ----------
    out_dir, report, figure
        As in :func:`run_accuracy`; ``report=None`` writes no report or figure copy.
    names : dict of str to str
        How the messages name each setting: parameter or command-line option.

    Returns
    -------
    report, figure : pathlib.Path or None
        The report and the figure copy next to it (the default when
        ``figure`` is None), or None for both without a report.

    Raises
    ------
    ValueError, OSError
        If ``out_dir`` is a file, an output is a folder, read-only or in a
        folder that cannot be created, or the report's section markers are
        broken. The message starts with the setting's name.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{names['out_dir']}: {str(out)!r} is a file; {names['out_dir']} must be a folder "
                         "(it is created if missing)")
    _check_folder_creatable(out, names["out_dir"])
    runs_path = out / _RUNS_FILE
    if runs_path.exists() and not runs_path.is_file():
        raise ValueError(f"{names['out_dir']}: {str(runs_path)!r} is not a regular file; remove it or "
                         "choose another folder")
    if report is None:
        return None, None

    report = Path(report)
    target = Path(figure) if figure is not None else _default_figure(report)
    for key, path in (("report", report), ("figure", target)):
        try:
            check_replaceable(path)
        except (OSError, ValueError) as error:
            raise type(error)(f"{names[key]}: {error}") from None
        _check_folder_creatable(path.parent, names[key])
    if report.resolve() == target.resolve():
        raise ValueError(f"{names['report']} and {names['figure']} are the same file {str(report)!r}; "
                         "give the figure a .png name of its own")
    try:
        check_section(report, _SECTION)
    except ValueError as error:
        raise ValueError(f"{names['report']}: {error}") from None
    return report, target


def run_accuracy(
    data_dir=None,
    *,
    out_dir="bench_results/accuracy",
    datasets: Sequence[str] | None = None,
    detectors: Sequence[str] | None = None,
    protocols: Sequence[str] = PROTOCOLS,
    seeds: int = DEFAULT_SEEDS,
    max_train_rows: int = MAX_TRAIN_ROWS,
    jobs: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    quick: bool = False,
    report=None,
    figure=None,
    command: str | None = None,
    progress: bool = False,
) -> AccuracyResult:
    """Run the accuracy benchmark and write its files.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder with the ADBench ``.npz`` files (or its parent); defaults to
        ``FFOC_DATA_DIR``.
    out_dir : str or os.PathLike, default="bench_results/accuracy"
        Folder for ``runs.csv``, the summary tables and the figure.
    datasets : sequence of str, optional
        Data set names such as ``"6_cardio"``. Default: every file in the folder
        except :data:`DEFAULT_EXCLUDED`, or :data:`QUICK_DATASETS` with ``quick``.
    detectors : sequence of str, optional
        Names from :func:`detector_names`. Default: all, or
        :data:`QUICK_DETECTORS` with ``quick``.
    protocols : sequence of {"one-class", "unsupervised"}, default=both
        Protocols to run.
    seeds : int, default=3
        Number of seeds, 0 to ``seeds - 1``; 1 with ``quick`` unless given.
    max_train_rows : int, default=10000
        Training sets above this size are subsampled to it.
    jobs : int, default=1
        Worker processes; each run uses one thread. A run whose worker dies
        (for example killed when out of memory) is recorded as failed.
    resume : bool, default=False
        Keep the runs already in ``out_dir/runs.csv`` and skip them. A run is
        skipped only when its row has the current ``max_train_rows``, the
        SHA-256 of the data file as it is now, and the detector's current
        parameters. Rows of a ``runs.csv`` written before ``max_train_rows``
        and the checksum were recorded are kept, but their runs run again.
        A run whose worker process died also runs again.
    overwrite : bool, default=False
        Start a new ``runs.csv`` even if one exists.
    quick : bool, default=False
        Small defaults for a smoke test: two small sets, one seed, four detectors.
    report : str or os.PathLike, optional
        BENCHMARKS.md file whose ``accuracy`` section is replaced; None writes none.
    figure : str or os.PathLike, optional
        Where the report's PNG goes; default ``docs/figures/accuracy_ranks.png``
        next to ``report``. A copy is always in ``out_dir``.
    command : str, optional
        Command line quoted in the report.
    progress : bool, default=False
        Show a progress bar on standard error.

    Returns
    -------
    AccuracyResult

    Raises
    ------
    FileNotFoundError
        If the data folder does not exist or has no ``.npz`` file.
    ValueError
        If a data set, detector or protocol name is unknown, a list of names
        is empty, a setting is out of range, an output path is unusable
        (checked before any run), ``runs.csv`` has another benchmark's
        columns, or it exists and neither ``resume`` nor ``overwrite`` is set.
    TypeError
        If ``seeds``, ``jobs`` or ``max_train_rows`` is not an integer.
    """
    import pyod

    _check_settings(seeds, jobs, max_train_rows, _PARAMETER_NAMES)
    if resume and overwrite:
        raise ValueError("pass either resume or overwrite, not both")
    report, figure_target = _check_outputs(out_dir, report, figure, _PARAMETER_NAMES)

    sets = _resolve_datasets(data_dir, datasets, quick)
    all_detectors = detector_names()
    if detectors is not None:
        chosen = _name_list("detectors", detectors)
    elif quick:
        chosen = QUICK_DETECTORS
    else:
        chosen = all_detectors
    chosen = _check_choices("detector(s)", chosen, all_detectors)
    protocols = _check_choices("protocol(s)", _name_list("protocols", protocols), PROTOCOLS)
    specs = [
        RunSpec(name, str(path), protocol, seed, detector)
        for name, path in sets
        for protocol in protocols
        for seed in range(seeds)
        for detector in chosen
    ]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / _RUNS_FILE
    if runs_path.is_file() and runs_path.stat().st_size > 0 and not (resume or overwrite):
        raise ValueError(
            f"{str(runs_path)!r} already exists; pass --resume to continue it or --overwrite to start again"
        )

    # Skip runs recorded with this max_train_rows, these data file bytes and the parameters
    # the detector has now; a changed file or setting runs again.
    checksums = {name: _data_sha256_or_none(path) for name, path in sets}
    done: set[tuple] = set()
    if resume:
        recorded = _matching_runs(_read_runs(runs_path), specs, max_train_rows, checksums)
        done = {spec.key for spec in specs if spec.key in recorded and _reusable(recorded[spec.key], spec)}
    todo = [spec for spec in specs if spec.key not in done]

    writer = _RunWriter(runs_path, append=resume)
    interrupted = False
    try:
        _execute(todo, writer, jobs=jobs, max_train_rows=max_train_rows, progress=progress)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()

    runs = _latest_runs(runs_path, specs, max_train_rows, checksums)
    summary = {
        protocol: summarize(runs[runs["protocol"] == protocol], chosen)
        for protocol in protocols
        if (runs["protocol"] == protocol).any()
    }
    result = AccuracyResult(runs=runs, summary=summary, n_skipped=len(done), interrupted=interrupted)
    result.files["runs"] = runs_path
    _write_tables(result, out)

    from ..estimator import FFOneClass

    context = {
        "command": command or "",
        "pyod_version": pyod.__version__,
        "n_runs": len(specs),
        "n_done": int(len(runs)),
        "datasets": [name for name, _ in sets],
        "n_default_sets": _count_default_sets(data_dir),
        "detectors": chosen,
        "protocols": protocols,
        "seeds": seeds,
        "jobs": jobs,
        "max_train_rows": max_train_rows,
        "ffoc_defaults": FFOneClass().get_params(deep=False),
        "interrupted": interrupted,
    }
    figure_path = out / "accuracy_ranks.png"
    _plot_ranks(summary, figure_path, context)
    result.files["figure"] = figure_path
    if report is not None:
        # The text first, so that an error in it leaves both the report and its figure as they were.
        report_text = _report_text(summary, context, os.path.relpath(figure_target, report.parent))
        figure_target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(figure_target, figure_path.read_bytes())
        result.files["report_figure"] = figure_target
        report.parent.mkdir(parents=True, exist_ok=True)
        write_section(report, _SECTION, report_text)
        result.files["report"] = report
    return result


def _matches_settings(row: dict, max_train_rows: int, checksums: dict[str, str | None]) -> bool:
    """Return whether ``row`` was made with ``max_train_rows`` on the data file bytes now in place."""
    return (row["max_train_rows"] == str(max_train_rows)
            and row["data_sha256"] == (checksums.get(row["dataset"]) or ""))


def _matching_runs(rows: Iterable[dict], specs: Iterable[RunSpec], max_train_rows: int,
                   checksums: dict[str, str | None]) -> dict[tuple, dict]:
    """Return the last row of each run in ``specs`` made with the current settings, by run key."""
    requested = {spec.key for spec in specs}
    latest: dict[tuple, dict] = {}
    for row in rows:
        key = (row["dataset"], row["protocol"], row["seed"], row["detector"])
        if key in requested and _matches_settings(row, max_train_rows, checksums):
            latest[key] = row
    return latest


def _reusable(row: dict, spec: RunSpec) -> bool:
    """Return whether ``row`` of ``spec`` can be kept: its detector was built with the parameters it has now.

    A row without parameters (the run failed before its detector was built,
    or its worker process died) runs again.
    """
    if not row["params"]:
        return False
    n_features = 0
    if spec.detector == "DeepSVDD":
        # Only DeepSVDD's parameters depend on the feature count. The row's count is that
        # of the same file bytes, so the data file is not read again.
        try:
            n_features = int(row["n_features"])
        except ValueError:
            return False
    return row["params"] == _expected_params(spec.detector, spec.seed, n_features)


@functools.lru_cache(maxsize=None)
def _expected_params(detector: str, seed: int, n_features: int) -> str:
    detector_object, _ = _make_detector(detector, seed, n_features)
    return _describe_params(detector_object)


def _init_worker() -> None:
    _limit_threads()
    warnings.simplefilter("ignore")


def _execute(todo: list[RunSpec], writer: _RunWriter, *, jobs: int, max_train_rows: int, progress: bool) -> None:
    """Run ``todo`` and append each row as it finishes; ``jobs > 1`` uses worker processes."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="accuracy", unit="run", disable=not progress, file=sys.stderr)

    def record(row: dict) -> None:
        writer.write(row)
        _advance(bar, row)

    try:
        if jobs == 1:
            for spec in todo:
                record(run_one(spec, max_train_rows=max_train_rows))
        else:
            _execute_in_pool(todo, record, jobs=jobs, max_train_rows=max_train_rows)
    finally:
        bar.close()


_WORKER_DIED = "worker process died (out of memory?)"


def _execute_in_pool(todo: list[RunSpec], record, *, jobs: int, max_train_rows: int) -> None:
    """Run ``todo`` in ``jobs`` worker processes and pass each row to ``record`` as it finishes.

    A worker that dies (killed by a signal, such as the out-of-memory
    killer's) breaks the pool, and every run in it is lost. The pool is then
    started again. If one run was lost, it is recorded as failed with
    :data:`_WORKER_DIED`. If several were, each runs again alone, so that
    only the one that kills its worker is recorded as failed.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # "spawn": a forked child would inherit torch's thread pools from this process.
    context = multiprocessing.get_context("spawn")
    queue = list(reversed(todo))  # popped from the end, so in order
    suspects: list[RunSpec] = []  # runs lost with a dead worker, each to run alone
    pending: dict = {}  # future -> (spec, start time)
    pool = None
    try:
        while queue or suspects or pending:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker)
            # Submit a few runs ahead only, in order, so workers mostly reuse a loaded data set.
            source, limit = (suspects, 1) if suspects else (queue, 2 * jobs)
            broken = False
            while source and len(pending) < limit:
                spec = source.pop()
                try:
                    future = pool.submit(run_one, spec, max_train_rows=max_train_rows)
                except BrokenProcessPool:
                    source.append(spec)
                    broken = True
                    break
                pending[future] = (spec, time.perf_counter())

            finished = wait(pending, return_when=FIRST_COMPLETED).done if pending else set()
            lost = []
            for future in finished:
                spec, started = pending.pop(future)
                if isinstance(future.exception(), BrokenProcessPool):
                    lost.append((spec, started))
                else:
                    record(future.result())
            if not (lost or broken):
                continue

            # The pool is broken, so the runs still pending end at once, lost unless they had finished.
            for future in wait(pending).done:
                spec, started = pending.pop(future)
                if isinstance(future.exception(), BrokenProcessPool):
                    lost.append((spec, started))
                else:
                    record(future.result())
            pool.shutdown(wait=True)
            pool = None
            if len(lost) == 1:
                spec, started = lost[0]
                record(_worker_died_row(spec, max_train_rows, time.perf_counter() - started))
            else:
                suspects.extend(spec for spec, _ in reversed(lost))
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _worker_died_row(spec: RunSpec, max_train_rows: int, seconds: float) -> dict:
    """Return the failed row of a run whose worker process died; ``resume`` runs it again."""
    row = _failed_row(spec, max_train_rows)
    # The worker may have died before it read the file, so the checksum is taken here.
    row["data_sha256"] = _data_sha256_or_none(spec.path) or ""
    row["error"] = (f"BrokenProcessPool: {_WORKER_DIED}: the process running this run ended abruptly, "
                    "for example killed by the out-of-memory killer; --resume runs it again")
    row["time_s"] = round(seconds, 4)
    return row


def _advance(bar, row: dict) -> None:
    status = f"{row['auroc']:.3f}" if row["status"] == "ok" else "failed"
    bar.set_postfix_str(f"{row['dataset']} {row['protocol']} s{row['seed']} {row['detector']}: {status}", refresh=False)
    bar.update(1)


def _latest_runs(runs_path: Path, specs: Iterable[RunSpec], max_train_rows: int, checksums: dict[str, str | None]):
    """Return the last row of every run in ``specs`` made with the current settings, as a DataFrame."""
    import pandas as pd

    latest = _matching_runs(_read_runs(runs_path), specs, max_train_rows, checksums)
    frame = pd.DataFrame(list(latest.values()), columns=list(RUN_COLUMNS))
    for column in ("seed", "n_train", "n_train_full", "n_test", "n_test_anomalies", "n_features", "max_train_rows"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("auroc", "auprc", "fit_s", "score_s", "time_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _count_default_sets(data_dir) -> int:
    from ..datasets import list_adbench

    return len([n for n in list_adbench(data_dir) if n not in DEFAULT_EXCLUDED])


# ---------------------------------------------------------------------- summary


def summarize(runs, detectors: Sequence[str]) -> dict:
    """Summarise one protocol's runs.

    Metrics are averaged over the seeds that finished. Ranks are taken per
    data set on mean AUROC (1 = best, ties share the mean rank); a detector
    with no finished seed on a data set takes the last rank there. Mean
    AUROC is over the data sets where the detector finished, and
    ``failed_sets`` counts the others.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of ``runs.csv`` for one protocol.
    detectors : sequence of str
        Detectors in table order.

    Returns
    -------
    dict
        ``"auroc"``, ``"auprc"``: DataFrames data set x detector;
        ``"sets"``: DataFrame of training sizes per data set;
        ``"held_out"`` and ``"tuning"``: per-detector summary DataFrames;
        ``"wins"``: DataFrame of wins, ties and losses of each row detector
        against each column detector on the held-out sets.
    """

    ok = runs[runs["status"] == "ok"]
    auroc = ok.pivot_table(index="dataset", columns="detector", values="auroc", aggfunc="mean")
    auprc = ok.pivot_table(index="dataset", columns="detector", values="auprc", aggfunc="mean")
    order = list(dict.fromkeys(runs["dataset"]))
    auroc = auroc.reindex(index=order, columns=list(detectors))
    auprc = auprc.reindex(index=order, columns=list(detectors))
    sets = runs.groupby("dataset", sort=False).agg(
        n_train=("n_train", "max"), n_train_full=("n_train_full", "max"), n_features=("n_features", "max"),
        n_test=("n_test", "max"),
    ).reindex(order)

    held_out = [name for name in order if name not in TUNING_SETS]
    tuning = [name for name in order if name in TUNING_SETS]
    summary = {"auroc": auroc, "auprc": auprc, "sets": sets, "held_out_sets": held_out, "tuning_sets": tuning}
    for group, names in (("held_out", held_out), ("tuning", tuning)):
        summary[group] = _group_summary(runs[runs["dataset"].isin(names)], auroc.loc[names], auprc.loc[names], detectors)
    summary["wins"] = _wins(auroc.loc[held_out], detectors)
    return summary


def _group_summary(runs, auroc, auprc, detectors):
    import pandas as pd

    ranks = auroc.rank(axis=1, ascending=False, method="average", na_option="bottom")
    times = runs.groupby("detector")["time_s"].sum()
    failed_runs = runs[runs["status"] != "ok"].groupby("detector").size()
    table = pd.DataFrame(
        {
            "mean_auroc": auroc.mean(axis=0),
            "mean_auprc": auprc.mean(axis=0),
            "mean_rank": ranks.mean(axis=0) if len(auroc) else np.nan,
            "n_sets": auroc.notna().sum(axis=0),
            "failed_sets": auroc.isna().sum(axis=0),
            "failed_runs": failed_runs.reindex(detectors).fillna(0).astype(int),
            "total_time_s": times.reindex(detectors).fillna(0.0),
        },
        index=list(detectors),
    )
    table.index.name = "detector"
    return table


def _wins(auroc, detectors):
    """Return 'W/T/L' of each row detector against each column detector on mean AUROC per data set."""
    import pandas as pd

    table = pd.DataFrame("", index=list(detectors), columns=list(detectors))
    for a in detectors:
        for b in detectors:
            if a == b:
                table.loc[a, b] = "-"
                continue
            # A failed detector loses to one that finished; sets where both failed are left out.
            x = auroc[a].fillna(-np.inf)
            y = auroc[b].fillna(-np.inf)
            both_failed = auroc[a].isna() & auroc[b].isna()
            x, y = x[~both_failed], y[~both_failed]
            table.loc[a, b] = f"{int((x > y).sum())}/{int((x == y).sum())}/{int((x < y).sum())}"
    return table


def _write_tables(result: AccuracyResult, out: Path) -> None:
    """Write each protocol's tables as CSV files in ``out``, each atomically."""
    for protocol, summary in result.summary.items():
        slug = protocol.replace("-", "_")
        tables = {f"{slug}_{name}": summary[name].round(4) for name in ("auroc", "auprc")}
        tables.update({f"{slug}_summary_{group}": summary[group].round(4) for group in ("held_out", "tuning")})
        tables[f"{slug}_wins"] = summary["wins"]
        for kind, table in tables.items():
            path = out / f"{kind}.csv"
            atomic_write_bytes(path, table.to_csv().encode("utf-8"))
            result.files[kind] = path


def _plot_ranks(summary: dict, path: Path, context: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = list(summary)
    fig, axes = plt.subplots(1, max(1, len(protocols)), figsize=(5.5 * max(1, len(protocols)), 0.35 * len(context["detectors"]) + 1.6), squeeze=False)
    for ax, protocol in zip(axes[0], protocols):
        table = summary[protocol]["held_out"].sort_values("mean_rank", ascending=False)
        colors = ["tab:red" if name.startswith("FFOC") else "tab:gray" for name in table.index]
        ax.barh(table.index, table["mean_rank"], color=colors)
        for y, value in enumerate(table["mean_rank"]):
            ax.text(value, y, f" {value:.2f}", va="center", fontsize=8)
        ax.set_xlabel("mean rank on AUROC (1 = best)")
        n_sets = len(summary[protocol]["held_out_sets"])
        ax.set_title(f"{protocol}: {n_sets} held-out sets, {context['seeds']} seed(s)")
        ax.set_xlim(0, len(context["detectors"]) + 1)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------- report


def _pct(value) -> str:
    return "fail" if value != value else f"{100 * value:.1f}"


def _summary_lines(table, wins_column) -> list[str]:
    header = ["detector", "mean AUROC", "mean AUPRC", "mean rank", f"{REFERENCE_DETECTOR} W/T/L",
              "failed runs", "total time (s)"]
    rows = []
    for name, entry in table.sort_values("mean_rank").iterrows():
        rows.append([
            f"**{name}**" if name == REFERENCE_DETECTOR else name,
            _pct(entry["mean_auroc"]), _pct(entry["mean_auprc"]), f"{entry['mean_rank']:.2f}",
            wins_column.get(name, ""), int(entry["failed_runs"]), f"{entry['total_time_s']:.0f}",
        ])
    return markdown_table(header, rows).split("\n")


def _per_set_lines(summary: dict, names: Sequence[str], detectors: Sequence[str], max_train_rows: int) -> list[str]:
    header = ["data set", "train rows", "test rows", "features", *detectors]
    rows = []
    for name in names:
        sets = summary["sets"].loc[name]
        # A set whose runs all failed before it was split has no sizes: its cells stay empty.
        n_train, n_full = _count(sets["n_train"]), _count(sets["n_train_full"])
        if n_train is None:
            train = ""
        elif n_full is not None and n_full > n_train:
            train = f"{n_train:,} of {n_full:,} (subsampled)"
        else:
            train = f"{n_train:,}"
        n_test, n_features = _count(sets["n_test"]), _count(sets["n_features"])
        best = summary["auroc"].loc[name].max()
        cells = []
        for detector in detectors:
            a, p = summary["auroc"].loc[name, detector], summary["auprc"].loc[name, detector]
            cell = f"{_pct(a)} / {_pct(p)}"
            cells.append(f"**{cell}**" if a == best else cell)
        rows.append([name, train, "" if n_test is None else f"{n_test:,}",
                     "" if n_features is None else n_features, *cells])
    return markdown_table(header, rows).split("\n")


def _count(value) -> int | None:
    """Return a size of the per-set table as an int, or None when no run recorded it (NA)."""
    import pandas as pd

    return None if pd.isna(value) else int(value)


def _check_lines(protocol: str, summary: dict) -> list[str]:
    """State the acceptance checks (best mean AUROC one-class, beats DeepSVDD on 80% unsupervised) with the measured numbers."""
    table = summary["held_out"]
    if REFERENCE_DETECTOR not in table.index or table["n_sets"].max() == 0:
        return []
    reference = table.loc[REFERENCE_DETECTOR, "mean_auroc"]
    lines = []
    if protocol == "one-class":
        others = table.drop(index=REFERENCE_DETECTOR)["mean_auroc"].dropna()
        if len(others):
            best_name = others.idxmax()
            gap = reference - others.max()
            verdict = "best of all detectors" if gap > 0 else f"{-100 * gap:.1f} points below {best_name}"
            lines.append(f"- Check (one-class): {REFERENCE_DETECTOR} mean AUROC {_pct(reference)} is {verdict} "
                         f"(best other: {best_name} {_pct(others.max())}).")
    if protocol == "unsupervised" and "DeepSVDD" in table.index:
        auroc = summary["auroc"].loc[summary["held_out_sets"]]
        both = auroc[[REFERENCE_DETECTOR, "DeepSVDD"]].dropna()
        if len(both):
            wins = int((both[REFERENCE_DETECTOR] > both["DeepSVDD"]).sum())
            share = wins / len(both)
            verdict = "meets" if share >= 0.8 else "misses"
            lines.append(f"- Check (unsupervised): {REFERENCE_DETECTOR} beats DeepSVDD on {wins} of {len(both)} "
                         f"held-out sets ({100 * share:.0f}%); this {verdict} the 80% target.")
    return lines


def _report_text(summary: dict, context: dict, figure_link: str) -> str:
    import sklearn
    import torch

    from .. import __version__

    n_sets = len(context["datasets"])
    defaults = context["ffoc_defaults"]
    reported_defaults = {k: defaults[k] for k in ("objective", "hidden_layer_sizes", "epochs", "batch_size", "learning_rate",
                                      "nu", "negatives", "score_layers") if k in defaults}
    subset = (n_sets < context["n_default_sets"] or context["seeds"] < DEFAULT_SEEDS
              or len(context["detectors"]) < len(detector_names()) or len(context["protocols"]) < len(PROTOCOLS))
    lines = [
        "## Accuracy: ADBench classical data sets, PyOD side by side",
        "",
    ]
    if subset:
        lines += [
            f"> **Subset run**: {n_sets} of the {context['n_default_sets']} default data sets, "
            f"{context['seeds']} seed(s), {len(context['detectors'])} of {len(detector_names())} detectors, "
            f"protocols {', '.join(context['protocols'])}. These figures are not the full benchmark.",
            "",
        ]
    if context["interrupted"] or context["n_done"] < context["n_runs"]:
        lines += [f"> **Incomplete**: {context['n_done']} of {context['n_runs']} runs recorded; "
                  "rerun the command with `--resume` to finish.", ""]
    lines += [
        f"Command: `{context['command']}`",
        "",
        "The causes of ffoc's gaps to the best detectors are measured in [docs/accuracy.md](docs/accuracy.md).",
        "",
        f"Versions: ffoc {__version__}, PyOD {context['pyod_version']}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, Python {platform.python_version()}. "
        f"One thread per run, {context['jobs']} worker process(es); times are wall-clock seconds per run "
        "(split, fit and score) on a shared machine, so they carry its load.",
        "",
        "Protocols: **one-class** trains on a random 70% of the normal rows and tests on the other normal rows "
        "and all anomalies; **unsupervised** (ADBench's) makes a stratified 70/30 split and trains on the 70% "
        f"with its anomalies unlabelled. {_seed_phrase(context['seeds'])} the split, the subsample and "
        f"each detector's `random_state`. Training sets above {context['max_train_rows']:,} rows are "
        "subsampled to that size (marked in the tables); test sets are whole. PyOD detectors get data "
        "standardised on the training rows only; ffoc standardises the same way internally. PyOD detectors use "
        "PyOD's default parameters.",
        "",
        "ffoc detectors: `FFOC-FF` and `FFOC-BP` are `FFOneClass` with its defaults (trainer `ff` or `bp`): "
        + ", ".join(f"`{k}={v!r}`" for k, v in reported_defaults.items())
        + ". `FFOC-FF-<objective>` changes only the objective. "
        "ffoc's defaults were chosen on banknote (not in ADBench) and the tuning sets "
        f"{', '.join(TUNING_SETS)}, which are reported apart; the held-out sets are the honest check.",
        "",
        "Mean rank: detectors ranked per data set on mean AUROC over seeds (1 = best); a detector that failed "
        "on every seed of a set takes the last rank there. Mean AUROC and AUPRC are over the sets where the "
        f"detector finished. W/T/L: data sets where {REFERENCE_DETECTOR} has a higher, equal or lower mean AUROC "
        "than the detector in that row. Tables show percentages.",
        "",
        f"![Mean ranks]({figure_link})",
        "",
    ]
    detectors = context["detectors"]
    for protocol, protocol_summary in summary.items():
        wins = protocol_summary["wins"]
        wins_column = (
            {name: wins.loc[REFERENCE_DETECTOR, name] for name in detectors}
            if REFERENCE_DETECTOR in wins.index else {}
        )
        held_out = protocol_summary["held_out_sets"]
        tuning = protocol_summary["tuning_sets"]
        lines += [f"### {protocol} protocol", ""]
        lines += [f"Held-out sets ({len(held_out)}):", ""]
        lines += _summary_lines(protocol_summary["held_out"], wins_column) + [""]
        lines += _check_lines(protocol, protocol_summary)
        lines += [""]
        if tuning:
            lines += [f"Tuning sets ({len(tuning)}: {', '.join(tuning)}), reported apart:", ""]
            tuning_table = protocol_summary["tuning"]
            lines += _summary_lines(tuning_table, {}) + [""]
        lines += ["AUROC / AUPRC per data set (%, mean over seeds; best AUROC in bold), held-out sets:", ""]
        lines += _per_set_lines(protocol_summary, held_out, detectors, context["max_train_rows"]) + [""]
        if tuning:
            lines += ["Tuning sets:", ""]
            lines += _per_set_lines(protocol_summary, tuning, detectors, context["max_train_rows"]) + [""]
    lines += [
        "Full benchmark (37 sets, both protocols, 3 seeds, all detectors), run from the repository root:",
        "",
        "```",
        "ffoc bench accuracy --data-dir ../shared/data/adbench_classical --jobs 2 --report BENCHMARKS.md --resume",
        "```",
        "",
        "Per-run rows are in `bench_results/accuracy/runs.csv` (with errors of failed runs); "
        "an interrupted run continues with `--resume`.",
    ]
    return "\n".join(lines) + "\n"


def _seed_phrase(seeds: int) -> str:
    return "Seed 0 sets" if seeds == 1 else f"Seeds 0 to {seeds - 1} set"


# ---------------------------------------------------------------------- CLI


def _names(value: str) -> list[str]:
    """Split a comma-separated option value; an empty list is an error, as it would otherwise run everything."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no name in {value!r}; give one or more comma-separated names, "
                                         "or leave the option out for the default")
    return names


def _run_command(args: argparse.Namespace) -> int:
    command = _command_from_args(args)
    seeds = args.seeds
    if seeds is None:
        seeds = 1 if args.quick else DEFAULT_SEEDS
    if args.data_dir is not None and not args.data_dir.strip():
        raise ValueError("--data-dir is empty; give the folder with the ADBench .npz files, "
                         "or leave the option out to use $FFOC_DATA_DIR")
    # The same checks as run_accuracy's, but with the option names in the messages.
    _check_settings(seeds, args.jobs, args.max_train_rows, _OPTION_NAMES)
    _check_outputs(args.out, None if args.no_report else args.report, args.figure, _OPTION_NAMES)
    started = time.perf_counter()
    result = run_accuracy(
        args.data_dir,
        out_dir=args.out,
        datasets=args.datasets,
        detectors=args.detectors,
        protocols=args.protocols or PROTOCOLS,
        seeds=seeds,
        max_train_rows=args.max_train_rows,
        jobs=args.jobs,
        resume=args.resume,
        overwrite=args.overwrite,
        quick=args.quick,
        report=None if args.no_report else args.report,
        figure=args.figure,
        command=command,
        progress=not args.quiet,
    )
    elapsed = time.perf_counter() - started
    for protocol, summary in result.summary.items():
        table = summary["held_out"].sort_values("mean_rank")
        print(f"{protocol}: mean AUROC and mean rank on {len(summary['held_out_sets'])} held-out set(s)")
        for name, entry in table.iterrows():
            print(f"  {name:<18} AUROC {_pct(entry['mean_auroc']):>5}  rank {entry['mean_rank']:5.2f}  "
                  f"failed runs {int(entry['failed_runs'])}  time {entry['total_time_s']:.0f} s")
    n_failed = int((result.runs["status"] != "ok").sum())
    print(f"{len(result.runs)} runs ({result.n_skipped} resumed, {n_failed} failed) in {elapsed:.0f} s; "
          f"files in {result.files['runs'].parent}")
    if "report" in result.files:
        print(f"updated the accuracy section of {result.files['report']}")
    if result.interrupted:
        print("interrupted: the finished runs are kept; rerun with --resume to continue", file=sys.stderr)
        return 130
    return 0


def add_parser(subparsers) -> None:
    """Register ``ffoc bench accuracy``."""
    parser = subparsers.add_parser(
        "accuracy",
        help="compare ffoc with PyOD's detectors on the ADBench classical data sets",
        description="Run ffoc and PyOD detectors side by side on the ADBench classical data sets in two "
        "protocols (one-class and unsupervised) and write runs.csv, summary tables, a rank figure and the "
        "accuracy section of BENCHMARKS.md.",
    )
    parser.add_argument("--data-dir", default=None,
                        help="folder with the ADBench .npz files (default: $FFOC_DATA_DIR)")
    parser.add_argument("--datasets", type=_names, default=None,
                        help="comma-separated data set names, such as 6_cardio,14_glass (default: every file "
                        f"except {', '.join(DEFAULT_EXCLUDED)})")
    parser.add_argument("--detectors", type=_names, default=None,
                        help="comma-separated detector names (default: all): FFOC-FF, FFOC-BP, "
                        f"FFOC-FF-goodness and FFOC-FF-hb-svdd unless one is the default objective, "
                        f"{', '.join(PYOD_DETECTORS)}")
    parser.add_argument("--protocols", type=_names, default=None,
                        help=f"comma-separated protocols (default: {','.join(PROTOCOLS)})")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"number of seeds, 0 to N-1 (default: {DEFAULT_SEEDS}; 1 with --quick)")
    parser.add_argument("--max-train-rows", type=int, default=MAX_TRAIN_ROWS,
                        help="training sets above this many rows are subsampled to it (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes, one thread each (default: %(default)s)")
    parser.add_argument("--out", default="bench_results/accuracy",
                        help="folder for runs.csv, tables and the figure (default: %(default)s)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true",
                       help="keep the runs already in OUT/runs.csv and skip those made with the same "
                       "--max-train-rows, data files and detector parameters")
    start.add_argument("--overwrite", action="store_true", help="start OUT/runs.csv again")
    parser.add_argument("--quick", action="store_true",
                        help=f"small smoke run: {', '.join(QUICK_DATASETS)}, 1 seed, "
                        f"{', '.join(QUICK_DETECTORS)}")
    parser.add_argument("--report", default="BENCHMARKS.md",
                        help="file whose accuracy section is replaced (default: %(default)s)")
    parser.add_argument("--no-report", action="store_true", help="leave BENCHMARKS.md alone")
    parser.add_argument("--figure", default=None,
                        help="path of the report's PNG (default: docs/figures/accuracy_ranks.png next to --report)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_command)


def _command_from_args(args: argparse.Namespace) -> str:
    """Return the ``ffoc bench accuracy`` command line equivalent to ``args``, for the report."""
    parts = ["ffoc", "bench", "accuracy"]
    if args.data_dir is not None:
        parts += ["--data-dir", str(args.data_dir)]
    for option in ("datasets", "detectors", "protocols"):
        if getattr(args, option):
            parts += [f"--{option}", ",".join(getattr(args, option))]
    if args.seeds is not None:
        parts += ["--seeds", str(args.seeds)]
    if args.max_train_rows != MAX_TRAIN_ROWS:
        parts += ["--max-train-rows", str(args.max_train_rows)]
    if args.jobs != 1:
        parts += ["--jobs", str(args.jobs)]
    parts += ["--out", str(args.out)]
    if args.quick:
        parts.append("--quick")
    if args.resume:
        parts.append("--resume")
    return " ".join(shlex.quote(part) for part in parts)

"""The forward-forward one-class experiment on banknote, under two protocols.

:func:`run_reproduction` fits the five objectives with both trainers over
several seeds, under the ``paper`` protocol (the choices of Hopwood 2023,
"One-class systems seamlessly fit in the forward-forward algorithm", arXiv
2306.15188, including its stopping rule that reads anomaly labels) and the
``ffoc`` protocol (the :class:`~ffoc.FFOneClass` defaults, no labels). It
writes ``results.csv`` (one row per run), ``summary.csv``, ``summary.md`` and
figures into one folder. :func:`run_landscape` draws the per-layer loss
landscapes of one configuration.

Examples
--------
>>> import tempfile
>>> from ffoc.reproduce import run_reproduction
>>> report = run_reproduction(tempfile.mkdtemp(), seeds=1, protocols=["ffoc"],
...                           objectives=["hb-svdd"], trainers=["ff"], epochs=2)
>>> report.summary[["protocol", "objective", "trainer", "n_runs"]].values.tolist()
[['ffoc', 'hb-svdd', 'ff', 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ._protocols import (
    OBJECTIVE_NAMES,
    PAPER_PARAMS,
    PAPER_SPLIT_SEED,
    PROTOCOLS,
    TRAINER_NAMES,
    PaperOneClass,
    Protocol,
    RecordingOneClass,
    labelled_validation_loss,
)
from ._runs import RunResult, RunSpec, execute_runs, run_one
from ._summary import RESULT_COLUMNS, summarize, summary_markdown
from .landscape import LayerLandscape, ParameterRecorder, compute_landscapes

__all__ = [
    "OBJECTIVE_NAMES",
    "PAPER_PARAMS",
    "PAPER_SPLIT_SEED",
    "PROTOCOLS",
    "TRAINER_NAMES",
    "LayerLandscape",
    "PaperOneClass",
    "ParameterRecorder",
    "Protocol",
    "RecordingOneClass",
    "Reproduction",
    "RunResult",
    "RunSpec",
    "compute_landscapes",
    "execute_runs",
    "labelled_validation_loss",
    "run_landscape",
    "run_one",
    "run_reproduction",
    "summarize",
    "summary_markdown",
]


@dataclass
class Reproduction:
    """Tables and files written by :func:`run_reproduction`.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per run (``results.csv``).
    summary : pandas.DataFrame
        One row per protocol x objective x trainer (``summary.csv``).
    files : list of Path
        Every file written, tables first.
    """

    results: pd.DataFrame
    summary: pd.DataFrame
    files: list[Path]


def run_reproduction(
    out,
    *,
    seeds: int = 10,
    protocols: Sequence[str] = ("paper", "ffoc"),
    objectives: Sequence[str] = OBJECTIVE_NAMES,
    trainers: Sequence[str] = TRAINER_NAMES,
    jobs: int = 1,
    epochs: int | None = None,
    landscape: bool = False,
    resolution: int = 25,
    frames: int = 40,
    progress: bool = False,
) -> Reproduction:
    """Run every protocol x objective x trainer over ``seeds`` seeds and write tables and figures to ``out``.

    Parameters
    ----------
    out : str or Path
        Output folder, created if missing; existing files of the same names are replaced.
    seeds : int, default=10
        Runs per setting, with seeds 0 to ``seeds - 1``.
    protocols, objectives, trainers : sequence of str
        The settings to run; by default all of them.
    jobs : int, default=1
        Worker processes. Each run is single-threaded and seeds itself, so the
        results do not depend on ``jobs``.
    epochs : int or None, default=None
        Caps every run's epochs, for quick checks; ``summary.md`` then marks the run as a quick check.
    landscape : bool, default=False
        Also draw the loss landscapes (PNG and GIF) of each setting's first seed,
        into ``out/landscapes``.
    resolution, frames : int
        Landscape grid points per direction and GIF frames.
    progress : bool, default=False
        Show a progress bar over runs on standard error.

    Returns
    -------
    Reproduction
    """
    _check_choice("protocols", protocols, PROTOCOLS)
    _check_choice("objectives", objectives, OBJECTIVE_NAMES)
    _check_choice("trainers", trainers, TRAINER_NAMES)
    if seeds < 1:
        raise ValueError(f"seeds={seeds!r} must be at least 1.")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs={epochs!r} must be at least 1, or None for each protocol's own count.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    landscape_dir = str(out / "landscapes") if landscape else None

    specs = [
        RunSpec(
            protocol, objective, trainer, seed, epochs=epochs,
            landscape_dir=landscape_dir if seed == 0 else None, resolution=resolution, frames=frames,
        )
        for protocol in protocols
        for objective in objectives
        for trainer in trainers
        for seed in range(seeds)
    ]
    runs = execute_runs(specs, jobs=jobs, progress=progress)

    results = pd.DataFrame([run.row for run in runs])
    results = results.reindex(columns=RESULT_COLUMNS + [c for c in results.columns if c not in RESULT_COLUMNS])
    summary = summarize(results)
    files = [out / "results.csv", out / "summary.csv", out / "summary.md"]
    results.to_csv(files[0], index=False)
    summary.to_csv(files[1], index=False)
    files[2].write_text(summary_markdown(summary, n_seeds=seeds, epochs_override=epochs), encoding="utf-8")
    files += _write_figures(specs, runs, out / "figures")
    if landscape_dir is not None:
        files += sorted(Path(landscape_dir).glob("*"))
    return Reproduction(results=results, summary=summary, files=files)


def run_landscape(
    out,
    *,
    protocol: str = "paper",
    objective: str = "hb-svdd",
    trainer: str = "ff",
    seed: int = 0,
    epochs: int | None = None,
    resolution: int = 25,
    frames: int = 40,
) -> tuple[dict, list[Path]]:
    """Fit one configuration, record its training path, and draw each layer's loss landscape.

    Returns the run's results row (metrics on the test part) and the PNG and
    GIF written into ``out``. The row's ``error`` field names a failure.
    """
    _check_choice("protocol", [protocol], PROTOCOLS)
    _check_choice("objective", [objective], OBJECTIVE_NAMES)
    _check_choice("trainer", [trainer], TRAINER_NAMES)
    if resolution < 2:
        raise ValueError(f"resolution={resolution!r} must be at least 2 grid points per direction.")
    if frames < 1:
        raise ValueError(f"frames={frames!r} must be at least 1.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(
        protocol, objective, trainer, seed, epochs=epochs, landscape_dir=str(out),
        resolution=resolution, frames=frames,
    )
    result = run_one(spec)
    stem = f"{protocol}_{objective}_{trainer}_seed{seed}"
    files = [path for path in (out / f"{stem}.png", out / f"{stem}.gif") if path.exists()]
    return result.row, files


def _write_figures(specs: Sequence[RunSpec], runs: Sequence[RunResult], folder: Path) -> list[Path]:
    from ..viz import (
        HistogramPanel,
        LossPanel,
        RocPanel,
        plot_loss_curves,
        plot_roc_curves,
        plot_score_histograms,
    )

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    by_setting: dict[tuple, list[tuple[RunSpec, RunResult]]] = {}
    for spec, run in zip(specs, runs):
        by_setting.setdefault(spec.setting, []).append((spec, run))

    for protocol in dict.fromkeys(spec.protocol for spec in specs):
        settings = [key for key in by_setting if key[0] == protocol]
        first_runs = []
        for key in settings:
            ok = [(spec, run) for spec, run in by_setting[key] if run.arrays]
            first_runs.append((key, ok[0] if ok else None))
        name = f"{protocol} protocol"

        for part in ("train", "test"):
            panels = [
                HistogramPanel(
                    _panel_title(key, found[0].seed), found[1].arrays[f"{part}_score"],
                    found[1].arrays[f"{part}_label"], found[1].arrays["threshold"],
                )
                for key, found in first_runs
                if found is not None
            ]
            if panels:
                what = "training part (the detector saw its normal rows only)" if part == "train" else "test part"
                files.append(plot_score_histograms(
                    panels, folder / f"{protocol}_histogram_{part}.png",
                    title=f"{name}: anomaly scores on the {what}, dashed line = threshold",
                ))

        roc_panels = [
            RocPanel(_panel_title(key), [
                (run.arrays["test_label"], run.arrays["test_score"]) for _, run in by_setting[key] if run.arrays
            ])
            for key in settings
        ]
        files.append(plot_roc_curves(roc_panels, folder / f"{protocol}_roc.png", title=f"{name}: test ROC, one curve per seed"))

        loss_panels = [
            LossPanel(
                _panel_title(key, found[0].seed), found[1].arrays["layer_losses"],
                found[1].arrays["validation_losses"] if found[1].arrays["validation_losses"].size else None,
            )
            for key, found in first_runs
            if found is not None and found[1].arrays["layer_losses"].size
        ]
        if loss_panels:
            files.append(plot_loss_curves(
                loss_panels, folder / f"{protocol}_loss.png",
                title=f"{name}: training loss per epoch (FF: one line per layer; BP: end-to-end)",
            ))
    return files


def _panel_title(key: tuple, seed: int | None = None) -> str:
    _, objective, trainer = key
    text = f"{objective}, {trainer.upper()}"
    return text if seed is None else f"{text}, seed {seed}"


def _check_choice(name: str, values: Sequence[str], allowed) -> None:
    values = list(values)
    unknown = [value for value in values if value not in allowed]
    if not values or unknown:
        raise ValueError(
            f"{name}={values!r} is invalid: choose one or more of {sorted(allowed)}."
        )


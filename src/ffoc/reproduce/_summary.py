"""Results table, summary table and the markdown report of the reproduction."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..estimator import FFOneClass
from ._protocols import PAPER_PARAMS, PAPER_SPLIT_SEED, PROTOCOLS

__all__ = ["RESULT_COLUMNS", "SUMMARY_METRICS", "summarize", "summary_markdown"]

RESULT_COLUMNS = [
    "protocol", "objective", "trainer", "seed", "split_seed", "model_seed", "label_use", "status", "error",
    "auroc", "auprc", "accuracy", "f1", "tn", "fp", "fn", "tp", "auroc_thresholded",
    "epochs_run", "stopped_early", "fit_seconds",
]
# Metrics reported as mean, standard deviation and max over the successful runs.
SUMMARY_METRICS = ("auroc", "auprc", "accuracy", "f1")
_CONFUSION = ("tn", "fp", "fn", "tp")


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Return one row per protocol x objective x trainer, in the order the settings first appear.

    Each metric of :data:`SUMMARY_METRICS` gets ``_mean``, ``_std`` (sample
    standard deviation, NaN for a single run) and ``_max`` over the successful
    runs; the confusion-matrix counts get their mean. ``n_runs`` counts all
    runs and ``n_failed`` the failed ones, which enter no statistic.
    """
    rows = []
    keys = ["protocol", "objective", "trainer"]
    for (protocol, objective, trainer), group in results.groupby(keys, sort=False):
        ok = group[group["status"] == "ok"]
        row = {
            "protocol": protocol,
            "objective": objective,
            "trainer": trainer,
            "label_use": bool(group["label_use"].iloc[0]),
            "n_runs": len(group),
            "n_failed": int((group["status"] != "ok").sum()),
        }
        for metric in SUMMARY_METRICS:
            values = ok[metric].astype(float) if len(ok) else pd.Series(dtype=float)
            row[f"{metric}_mean"] = values.mean() if len(values) else np.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
            row[f"{metric}_max"] = values.max() if len(values) else np.nan
        for count in _CONFUSION:
            row[f"{count}_mean"] = ok[count].astype(float).mean() if len(ok) else np.nan
        row["auroc_thresholded_mean"] = ok["auroc_thresholded"].astype(float).mean() if len(ok) else np.nan
        row["epochs_mean"] = ok["epochs_run"].astype(float).mean() if len(ok) else np.nan
        row["fit_seconds_mean"] = ok["fit_seconds"].astype(float).mean() if len(ok) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def summary_markdown(summary: pd.DataFrame, *, n_seeds: int, epochs_override: int | None = None) -> str:
    """Return the summary as a markdown table with the protocol notes under it."""
    header = (
        "| Protocol | Objective | Trainer | Labels in training | Runs (failed) | AUROC | AUPRC "
        "| Accuracy | F1 | Mean TN / FP / FN / TP | Mean epochs |"
    )
    lines = [header, "|" + "---|" * 11]
    for row in summary.itertuples(index=False):
        cells = [
            row.protocol,
            row.objective,
            row.trainer.upper(),
            "**yes** (stopping rule)" if row.label_use else "no",
            f"{row.n_runs} ({row.n_failed})",
        ]
        cells += [_cell(getattr(row, f"{m}_mean"), getattr(row, f"{m}_std"), getattr(row, f"{m}_max")) for m in SUMMARY_METRICS]
        confusion = [getattr(row, f"{c}_mean") for c in _CONFUSION]
        cells.append(" / ".join("n/a" if np.isnan(v) else f"{v:.1f}" for v in confusion))
        cells.append("n/a" if np.isnan(row.epochs_mean) else f"{row.epochs_mean:.0f}")
        lines.append("| " + " | ".join(cells) + " |")

    defaults = FFOneClass().get_params()
    shown_defaults = ", ".join(
        f"{name}={defaults[name]!r}"
        for name in (
            "objective", "hidden_layer_sizes", "activation", "bias", "nu", "learning_rate", "epochs",
            "batch_size", "optimizer", "center_update", "normalize_input", "score_layers", "negatives",
            "negative_weight", "early_stopping",
        )
        if name in defaults
    )
    paper = ", ".join(f"{name}={value!r}" for name, value in PAPER_PARAMS.items())
    notes = [
        "",
        f"Cells: mean ± sample standard deviation (max) over {n_seeds} seeds, on the test part "
        "(20% of banknote, both classes; genuine = normal, forged = anomaly). AUROC and AUPRC come "
        "from the continuous anomaly score; accuracy, F1 and the confusion matrix from `predict`. "
        "A failed run is counted in the Runs column and enters no statistic.",
        "",
        f"- `paper`: {PROTOCOLS['paper'].description}. Settings: {paper}. "
        f"One stratified 60/20/20 split with split seed {PAPER_SPLIT_SEED}; the model seed is the run's seed. "
        "Training stops when the validation loss has not reached a new minimum for 10 epochs. "
        "That loss reads the validation rows' anomaly labels: each validation row's last-layer loss, "
        "divided by the largest one, is taken as a probability of being an anomaly, and the loss is its "
        "binary cross-entropy against the labels (the rule of the original code). "
        "**Deviation from the original:** the standardisation is fitted on the training rows only; the "
        "original fitted it on all rows before splitting.",
        f"- `ffoc`: {PROTOCOLS['ffoc'].description}. FFOneClass defaults at run time: {shown_defaults}. "
        "Split seed and model seed are both the run's seed.",
        "- Both protocols train on the normal rows of the training part only.",
    ]
    if epochs_override is not None:
        notes.append(
            f"- **Quick check, not a reproduction:** every run was limited to {epochs_override} epochs."
        )
    return "\n".join(lines + notes) + "\n"


def _cell(mean: float, std: float, maximum: float) -> str:
    if np.isnan(mean):
        return "n/a"
    spread = "n/a" if np.isnan(std) else f"{std:.3f}"
    return f"{mean:.3f} ± {spread} ({maximum:.3f})"

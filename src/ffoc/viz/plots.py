"""Result figures: score histograms with the threshold, ROC curves and training-loss curves.

Every function draws a grid of panels, one per setting, and writes a PNG. The
figures are built with matplotlib's object API on the Agg canvas, so they
change no global matplotlib state and need no display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = [
    "HistogramPanel",
    "LossPanel",
    "RocPanel",
    "plot_loss_curves",
    "plot_roc_curves",
    "plot_score_histograms",
]

_NORMAL_COLOR = "tab:blue"
_ANOMALY_COLOR = "tab:red"
_DPI = 100


@dataclass
class HistogramPanel:
    """One panel of :func:`plot_score_histograms`.

    Attributes
    ----------
    title : str
        Panel title.
    score : ndarray of shape (n_samples,)
        Anomaly scores, higher = more anomalous.
    label : ndarray of shape (n_samples,)
        1 for anomalies, 0 for normal samples.
    threshold : float
        Scores above it are flagged as anomalies.
    """

    title: str
    score: np.ndarray
    label: np.ndarray
    threshold: float


@dataclass
class RocPanel:
    """One panel of :func:`plot_roc_curves`: one ROC curve per run.

    Attributes
    ----------
    title : str
        Panel title.
    runs : sequence of (label, score) pairs
        Labels (1 = anomaly) and anomaly scores of each run.
    """

    title: str
    runs: Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass
class LossPanel:
    """One panel of :func:`plot_loss_curves`.

    Attributes
    ----------
    title : str
        Panel title.
    layer_losses : ndarray of shape (n_epochs, n_curves)
        Mean training loss per epoch; one column per layer (forward-forward) or
        a single end-to-end column (backprop).
    validation_losses : ndarray of shape (n_epochs,) or None
        Validation loss per epoch, drawn on a second axis when given.
    """

    title: str
    layer_losses: np.ndarray
    validation_losses: np.ndarray | None = None


def plot_score_histograms(panels: Sequence[HistogramPanel], path, *, title: str = "", ncols: int = 5) -> Path:
    """Draw per-class histograms of anomaly scores with the threshold line, one panel each.

    Parameters
    ----------
    panels : sequence of HistogramPanel
        The panels, filled row by row.
    path : str or Path
        PNG file to write; its folder must exist.
    title : str, default=""
        Figure title.
    ncols : int, default=5
        Panels per row.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> rng = np.random.default_rng(0)
    >>> panel = HistogramPanel("demo", rng.normal(size=50), np.repeat([0, 1], 25), 0.5)
    >>> out = plot_score_histograms([panel], os.path.join(tempfile.mkdtemp(), "h.png"))
    >>> out.stat().st_size > 0
    True
    """
    figure, axes = _grid(len(panels), ncols, panel_size=(3.4, 2.6))
    for ax, panel in zip(axes, panels):
        score = np.asarray(panel.score, dtype=np.float64)
        label = np.asarray(panel.label).astype(int)
        finite = np.isfinite(score)
        bins = np.histogram_bin_edges(score[finite], bins=30) if finite.any() else 10
        for value, name, color in ((0, "normal", _NORMAL_COLOR), (1, "anomaly", _ANOMALY_COLOR)):
            selected = score[finite & (label == value)]
            if selected.size:
                ax.hist(selected, bins=bins, alpha=0.6, color=color, label=f"{name} ({selected.size})")
        ax.axvline(panel.threshold, color="black", linestyle="--", linewidth=1.5, label="threshold")
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel("anomaly score", fontsize=8)
        ax.set_ylabel("rows", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6.5, loc="best")
    return _save(figure, path, title)


def plot_roc_curves(panels: Sequence[RocPanel], path, *, title: str = "", ncols: int = 5) -> Path:
    """Draw the ROC curve of every run, one panel per setting, with the mean AUROC in the title.

    Parameters
    ----------
    panels : sequence of RocPanel
        The panels, filled row by row.
    path : str or Path
        PNG file to write; its folder must exist.
    title : str, default=""
        Figure title.
    ncols : int, default=5
        Panels per row.

    Returns
    -------
    Path
        ``path``.
    """
    figure, axes = _grid(len(panels), ncols, panel_size=(3.0, 3.0))
    for ax, panel in zip(axes, panels):
        aurocs = []
        for label, score in panel.runs:
            label = np.asarray(label).astype(int)
            score = np.asarray(score, dtype=np.float64)
            if len(np.unique(label)) < 2 or not np.all(np.isfinite(score)):
                continue
            fpr, tpr, _ = roc_curve(label, score)
            aurocs.append(roc_auc_score(label, score))
            ax.plot(fpr, tpr, color="tab:purple", alpha=max(0.15, 1.0 / max(len(panel.runs), 1) ** 0.5), linewidth=1)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        runs = f"{len(aurocs)} run" + ("s" if len(aurocs) != 1 else "")
        summary = f"mean AUROC {np.mean(aurocs):.3f} ({runs})" if aurocs else "no valid run"
        ax.set_title(f"{panel.title}\n{summary}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate", fontsize=8)
        ax.set_ylabel("true positive rate", fontsize=8)
        ax.tick_params(labelsize=7)
    return _save(figure, path, title)


def plot_loss_curves(panels: Sequence[LossPanel], path, *, title: str = "", ncols: int = 5) -> Path:
    """Draw training-loss curves per epoch: one line per layer (FF) or one end-to-end line (BP).

    The loss axis is logarithmic when every value is positive. A validation
    loss, when given, is drawn dashed on a second axis.

    Parameters
    ----------
    panels : sequence of LossPanel
        The panels, filled row by row.
    path : str or Path
        PNG file to write; its folder must exist.
    title : str, default=""
        Figure title.
    ncols : int, default=5
        Panels per row.

    Returns
    -------
    Path
        ``path``.
    """
    figure, axes = _grid(len(panels), ncols, panel_size=(3.4, 2.7))
    for ax, panel in zip(axes, panels):
        losses = np.asarray(panel.layer_losses, dtype=np.float64)
        if losses.ndim == 1:
            losses = losses[:, None]
        epochs = np.arange(1, losses.shape[0] + 1)
        lines = []
        for column in range(losses.shape[1]):
            name = f"layer {column}" if losses.shape[1] > 1 else "end-to-end"
            lines += ax.plot(epochs, losses[:, column], linewidth=1.3, label=name)
        finite = losses[np.isfinite(losses)]
        # A log axis only where the losses span more than a decade.
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 10:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.tick_params(labelsize=7)
        validation = panel.validation_losses
        if validation is not None and len(validation):
            twin = ax.twinx()
            lines += twin.plot(
                np.arange(1, len(validation) + 1), validation, color="black", linestyle="--",
                linewidth=1, label="validation",
            )
            twin.set_ylabel("validation loss", fontsize=8)
            twin.ticklabel_format(axis="y", useOffset=False, style="plain")
            twin.tick_params(labelsize=7)
        ax.set_title(panel.title, fontsize=9)
        ax.legend(lines, [line.get_label() for line in lines], fontsize=6.5, loc="best")
    return _save(figure, path, title)


def _grid(n_panels: int, ncols: int, *, panel_size: tuple[float, float]):
    if n_panels < 1:
        raise ValueError("There is nothing to plot: pass at least one panel.")
    if ncols < 1:
        raise ValueError(f"ncols={ncols!r} must be at least 1.")
    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    figure = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.6), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return figure, axes[:n_panels]


def _save(figure: Figure, path, title: str) -> Path:
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png")
    return path

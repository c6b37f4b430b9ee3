"""Figures of ffoc's experiments: score histograms, ROC curves, loss curves and loss landscapes.

All functions write PNG (or GIF) files with matplotlib's object API on the Agg
canvas; they need no display and leave pyplot's state alone.
"""

from .landscape import animate_landscape, plot_landscape
from .plots import (
    HistogramPanel,
    LossPanel,
    RocPanel,
    plot_loss_curves,
    plot_roc_curves,
    plot_score_histograms,
)

__all__ = [
    "HistogramPanel",
    "LossPanel",
    "RocPanel",
    "animate_landscape",
    "plot_landscape",
    "plot_loss_curves",
    "plot_roc_curves",
    "plot_score_histograms",
]

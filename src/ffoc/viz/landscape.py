"""Loss-landscape figures: a contour plot with the training path (PNG) and its animation (GIF)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

__all__ = ["animate_landscape", "plot_landscape"]

_DPI = 90
_LEVELS = 30
_PATH_COLOR = "tab:red"


def plot_landscape(landscapes: Sequence, path, *, title: str = "") -> Path:
    """Draw each layer's loss landscape with its training path, one panel per layer, as a PNG.

    Colours show ``log10`` of the loss. The path starts at the circle and ends
    at the star, which is the trained network, at (0, 0).

    Parameters
    ----------
    landscapes : sequence of LayerLandscape
        From :func:`ffoc.reproduce.compute_landscapes`.
    path : str or Path
        PNG file to write; its folder must exist.
    title : str, default=""
        Figure title; the panel titles name the loss drawn.

    Returns
    -------
    Path
        ``path``.
    """
    figure, axes = _figure(landscapes, title)
    for ax, landscape in zip(axes, landscapes):
        _draw_surface(figure, ax, landscape)
        ax.plot(landscape.path[:, 0], landscape.path[:, 1], color=_PATH_COLOR, linewidth=1.2, label="path")
        ax.plot(*landscape.path[0], "o", color=_PATH_COLOR, markersize=6, label="start")
        ax.plot(*landscape.path[-1], "*", color="black", markersize=11, label="trained")
        ax.legend(fontsize=7, loc="best")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png")
    return path


def animate_landscape(landscapes: Sequence, path, *, title: str = "", frames: int = 40, fps: int = 10) -> Path:
    """Animate the training path on each layer's loss landscape and write a GIF.

    Parameters
    ----------
    landscapes : sequence of LayerLandscape
        From :func:`ffoc.reproduce.compute_landscapes`.
    path : str or Path
        GIF file to write; its folder must exist.
    title : str, default=""
        Figure title.
    frames : int, default=40
        Number of frames, spread evenly over the recorded path (fewer when the
        path has fewer points).
    fps : int, default=10
        Frames per second.

    Returns
    -------
    Path
        ``path``.
    """
    if frames < 1:
        raise ValueError(f"frames={frames!r} must be at least 1.")
    if fps < 1:
        raise ValueError(f"fps={fps!r} must be at least 1.")
    figure, axes = _figure(landscapes, title)
    artists = []
    for ax, landscape in zip(axes, landscapes):
        _draw_surface(figure, ax, landscape)
        ax.plot(*landscape.path[-1], "*", color="black", markersize=11)
        (trail,) = ax.plot([], [], color=_PATH_COLOR, linewidth=1.2, animated=True)
        (head,) = ax.plot([], [], "o", color=_PATH_COLOR, markersize=6, animated=True)
        label = ax.text(
            0.02, 0.02, "", transform=ax.transAxes, fontsize=7, animated=True,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )
        artists.append((trail, head, label))
    figure.tight_layout()

    # Draw the static surfaces once; each frame restores them and draws only the path.
    canvas = figure.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(figure.bbox)

    # Each frame shows the same fraction of every layer's path.
    n_frames = max(1, min(frames, max(len(landscape.path) for landscape in landscapes)))
    fractions = np.linspace(0.0, 1.0, n_frames)
    path = Path(path)
    writer = _CanvasPillowWriter(fps=fps)
    writer.setup(figure, path, dpi=figure.dpi)
    for fraction in fractions:
        canvas.restore_region(background)
        for landscape, (trail, head, label) in zip(landscapes, artists):
            end = int(round(fraction * (len(landscape.path) - 1)))
            trail.set_data(landscape.path[: end + 1, 0], landscape.path[: end + 1, 1])
            head.set_data([landscape.path[end, 0]], [landscape.path[end, 1]])
            label.set_text(f"step {int(landscape.steps[end])}, loss {landscape.path_loss[end]:.4g}")
            for artist in (trail, head, label):
                artist.axes.draw_artist(artist)
        writer.grab_frame()
    writer.finish()
    return path


class _CanvasPillowWriter(PillowWriter):
    """PillowWriter that grabs the canvas as drawn, without redrawing the whole figure.

    The caller draws each frame (restoring a saved background and drawing the
    moving artists), which is much faster than a full redraw per frame.
    """

    def grab_frame(self, **savefig_kwargs):
        buffer = np.asarray(self.fig.canvas.buffer_rgba())
        self._frames.append(Image.fromarray(buffer[..., :3].copy(), mode="RGB"))


def _figure(landscapes: Sequence, title: str):
    if not landscapes:
        raise ValueError("There is nothing to plot: pass at least one LayerLandscape.")
    n = len(landscapes)
    figure = Figure(figsize=(4.2 * n, 4.2), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, n, squeeze=False).ravel()
    if title:
        figure.suptitle(title, fontsize=11)
    return figure, axes


def _draw_surface(figure: Figure, ax, landscape) -> None:
    loss = np.asarray(landscape.loss, dtype=np.float64)
    positive = np.all(loss[np.isfinite(loss)] > 0)
    surface = np.log10(loss) if positive else loss
    contour = ax.contourf(landscape.x, landscape.y, surface, levels=_LEVELS, cmap="viridis")
    ax.contour(landscape.x, landscape.y, surface, levels=10, colors="white", linewidths=0.4, alpha=0.6)
    colorbar = figure.colorbar(contour, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("log10 loss" if positive else "loss", fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    share = landscape.explained_variance
    ax.set_xlabel(f"principal direction 1 ({share[0]:.1%} of path variance)", fontsize=8)
    ax.set_ylabel(f"principal direction 2 ({share[1]:.1%})", fontsize=8)
    ax.tick_params(labelsize=7)
    if landscape.trainer == "ff":
        what = f"layer {landscape.layer}: its own loss,\ninputs held fixed"
    else:
        what = f"layer {landscape.layer}: end-to-end loss,\nother layers at trained values"
    ax.set_title(what, fontsize=9)

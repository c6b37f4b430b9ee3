"""Figures: every plot function writes a file that decodes as a PNG or an animated GIF."""

import numpy as np
import pytest
from PIL import Image

from ffoc.reproduce import LayerLandscape
from ffoc.viz import (
    HistogramPanel,
    LossPanel,
    RocPanel,
    animate_landscape,
    plot_landscape,
    plot_loss_curves,
    plot_roc_curves,
    plot_score_histograms,
)


def _decoded(path):
    with Image.open(path) as image:
        image.load()
        return image.format, image.size, getattr(image, "n_frames", 1)


def _labels_and_scores(rng, n=60):
    label = np.repeat([0, 1], n // 2)
    score = rng.normal(size=n) + 2.0 * label
    return label, score


def _landscapes(trainer="ff", n_layers=2, resolution=6, n_points=12):
    rng = np.random.default_rng(0)
    grid = np.linspace(-1.0, 1.0, resolution)
    xx, yy = np.meshgrid(grid, grid)
    return [
        LayerLandscape(
            layer=k,
            trainer=trainer,
            x=grid,
            y=grid,
            loss=1.0 + xx**2 + 2 * yy**2,
            path=np.cumsum(rng.normal(size=(n_points, 2)), axis=0) * 0.1,
            path_loss=np.linspace(2.0, 1.0, n_points),
            steps=np.arange(n_points) * 3,
            explained_variance=np.array([0.8, 0.15]),
        )
        for k in range(n_layers)
    ]


def test_score_histograms_write_png(tmp_path, rng):
    label, score = _labels_and_scores(rng)
    panels = [HistogramPanel(f"setting {i}", score, label, 1.0) for i in range(3)]
    path = plot_score_histograms(panels, tmp_path / "hist.png", title="histograms", ncols=2)
    image_format, size, _ = _decoded(path)
    assert image_format == "PNG"
    assert size[0] > 300, f"figure too narrow to read: {size}"
    assert size[1] > 200, f"figure too short to read: {size}"


def test_score_histograms_single_class(tmp_path, rng):
    """A panel with normal rows only still draws (the training part of a one-class split)."""
    panel = HistogramPanel("normal only", rng.normal(size=30), np.zeros(30), 0.5)
    assert _decoded(plot_score_histograms([panel], tmp_path / "h.png"))[0] == "PNG"


def test_roc_curves_write_png(tmp_path, rng):
    runs = [_labels_and_scores(rng) for _ in range(3)]
    panels = [RocPanel("a", runs), RocPanel("one class only", [(np.zeros(10), rng.normal(size=10))])]
    path = plot_roc_curves(panels, tmp_path / "roc.png", title="roc")
    assert _decoded(path)[0] == "PNG"


def test_loss_curves_write_png(tmp_path):
    epochs = np.arange(1, 21, dtype=float)
    ff = np.column_stack([1.0 / epochs, 2.0 / epochs, 3.0 / epochs])  # spans a decade: log axis
    bp = (0.5 + 0.01 / epochs)[:, None]  # narrow range: linear axis
    panels = [LossPanel("ff", ff, validation_losses=np.linspace(1.0, 0.9, 20)), LossPanel("bp", bp)]
    path = plot_loss_curves(panels, tmp_path / "loss.png")
    assert _decoded(path)[0] == "PNG"


def test_plots_reject_no_panels(tmp_path):
    with pytest.raises(ValueError, match="at least one panel"):
        plot_roc_curves([], tmp_path / "empty.png")


@pytest.mark.parametrize("trainer", ["ff", "bp"])
def test_landscape_png_decodes(tmp_path, trainer):
    path = plot_landscape(_landscapes(trainer), tmp_path / "landscape.png", title="landscape")
    image_format, size, _ = _decoded(path)
    assert image_format == "PNG"
    assert size[0] > size[1], "two layers side by side should give a wide figure"


def test_landscape_gif_has_requested_frames(tmp_path):
    path = animate_landscape(_landscapes(n_points=12), tmp_path / "landscape.gif", frames=5, fps=5)
    image_format, _, n_frames = _decoded(path)
    assert image_format == "GIF"
    assert n_frames == 5


def test_landscape_gif_frames_capped_by_path(tmp_path):
    """A path of 3 points gives at most 3 distinct frames."""
    path = animate_landscape(_landscapes(n_points=3), tmp_path / "short.gif", frames=50)
    assert 1 < _decoded(path)[2] <= 3


def test_landscape_gif_frames_differ(tmp_path):
    path = animate_landscape(_landscapes(n_points=10), tmp_path / "moving.gif", frames=4)
    with Image.open(path) as image:
        image.seek(0)
        first = np.asarray(image.convert("RGB")).copy()
        image.seek(image.n_frames - 1)
        last = np.asarray(image.convert("RGB")).copy()
    assert not np.array_equal(first, last), "the path should move between the first and last frame"


def test_animate_landscape_rejects_zero_frames(tmp_path):
    with pytest.raises(ValueError, match="frames=0"):
        animate_landscape(_landscapes(), tmp_path / "x.gif", frames=0)

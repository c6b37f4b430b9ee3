"""FFOneClassImage, the image-folder reader, the image CLI and the quick images benchmark."""

import numpy as np
import pytest
from PIL import Image

from ffoc import load
from ffoc.cli import main
from ffoc.images import FFOneClassImage
from ffoc.io_images import read_image_folder

# Small and fast: two 4-filter blocks and a few epochs are enough for the toy images.
_FAST = {"conv_channels": (4, 4), "kernel_size": 3, "epochs": 3, "random_state": 0}


def _bar_images(n: int, seed: int = 0, size: int = 8) -> np.ndarray:
    """Dim noise with one bright vertical bar: the 'normal' pattern."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.2, size=(n, size, size))
    images[:, 2:6, 3:5] += 0.8
    return images


@pytest.fixture(scope="module")
def bar_images():
    return _bar_images(120)


@pytest.fixture(scope="module")
def fitted(bar_images):
    return FFOneClassImage(**_FAST).fit(bar_images)


@pytest.fixture(scope="module")
def fitted_center(bar_images):
    return FFOneClassImage(score_rule="center", **_FAST).fit(bar_images)


def test_image_estimator_fit_sets_shapes(fitted):
    assert fitted.image_shape_ == (1, 8, 8)
    assert fitted.n_features_in_ == 64
    assert len(fitted.layers_) == 2
    assert fitted.layer_score_mean_.shape == (2,)


def test_image_estimator_scores_have_sample_shape(fitted, bar_images):
    assert fitted.score_samples(bar_images[:7]).shape == (7,)
    assert fitted.layer_scores(bar_images[:7]).shape == (7, 2)
    assert fitted.predict(bar_images[:7]).shape == (7,)


def test_image_estimator_grey_with_or_without_channel_axis(fitted, bar_images):
    without_axis = fitted.score_samples(bar_images[:10])
    with_axis = fitted.score_samples(bar_images[:10, None])
    np.testing.assert_allclose(with_axis, without_axis)


def test_image_estimator_accepts_three_channels():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(40, 3, 8, 8))
    detector = FFOneClassImage(**_FAST).fit(images)
    assert detector.image_shape_ == (3, 8, 8)
    assert detector.score_samples(images[:5]).shape == (5,)


def test_image_estimator_rejects_wrong_channel_count(fitted, bar_images):
    rgb = np.repeat(bar_images[:4, None], 3, axis=1)
    with pytest.raises(ValueError, match=r"fitted on images of 1 channel\(s\) and 8x8 pixels.*\(3, 8, 8\)"):
        fitted.score_samples(rgb)


def test_image_estimator_rejects_wrong_image_size(fitted):
    with pytest.raises(ValueError, match=r"8x8 pixels.*got images of shape \(1, 10, 10\).*Resize"):
        fitted.predict(np.zeros((2, 10, 10)))


def test_image_estimator_rejects_tabular_input():
    with pytest.raises(ValueError, match=r"got an array of shape \(5, 4\)\. For tabular data use FFOneClass"):
        FFOneClassImage(**_FAST).fit(np.zeros((5, 4)))


def test_image_estimator_rejects_channels_last():
    with pytest.raises(ValueError, match=r"looks like channels last.*np\.moveaxis"):
        FFOneClassImage(**_FAST).fit(np.zeros((5, 8, 8, 3)))


def test_image_estimator_rejects_nan_with_location():
    images = _bar_images(10)
    images[3, 1, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite value nan at image 3, channel 0, row 1, column 2"):
        FFOneClassImage(**_FAST).fit(images)


def test_image_estimator_rejects_empty_network():
    with pytest.raises(ValueError, match="needs at least one block"):
        FFOneClassImage(conv_channels=(), hidden_layer_sizes=()).fit(_bar_images(10))


@pytest.mark.parametrize("param", ["kernel_size", "pool_size", "epochs", "batch_size", "n_iter_no_change"])
def test_image_estimator_rejects_bool_for_integer(param):
    params = {**_FAST, param: True}
    with pytest.raises(ValueError, match=rf"'{param}' parameter of FFOneClassImage .* not a bool"):
        FFOneClassImage(**params).fit(_bar_images(10))


def test_image_estimator_rejects_bad_value_range():
    with pytest.raises(ValueError, match=r"value_range=\(5, 1\) must be two finite numbers"):
        FFOneClassImage(value_range=(5, 1), **_FAST).fit(_bar_images(10))


def test_image_estimator_score_direction(fitted, bar_images):
    """Normal images score higher than images without the bar."""
    anomalies = np.random.default_rng(5).uniform(0.0, 0.2, size=(20, 8, 8))
    normal = _bar_images(20, seed=9)
    assert fitted.score_samples(normal).mean() > fitted.score_samples(anomalies).mean()
    assert (fitted.predict(anomalies) == -1).mean() > 0.9
    assert (fitted.predict(normal) == 1).mean() > 0.7


@pytest.mark.parametrize(
    ("factor", "dtype", "message"),
    [
        (1e30, np.float32, "image 2 overflows float32 in the network: its value {value} at channel 0"),
        (1e38, np.float32, "image 2 overflows float32 in the network: its value {value} at channel 0"),
        (1e300, np.float64, "value {first} at image 2, channel 0, row 0, column 0 .* float32 cannot represent"),
    ],
)
def test_image_estimator_score_rejects_huge_values(fitted_center, factor, dtype, message):
    """Images far outside the training range raise instead of all scoring the same."""
    import re

    fitted = fitted_center

    images = _bar_images(5, seed=3).astype(dtype)
    images[2] = images[2] * dtype(factor)
    expected = message.format(
        value=re.escape(f"{float(images[2].max()):.6g}"), first=re.escape(f"{float(images[2, 0, 0]):.6g}")
    )
    with pytest.raises(ValueError, match=expected) as raised:
        fitted.score_samples(images)
    assert "units of the training images" in str(raised.value)


def test_knn_scores_huge_image_as_outlier(fitted):
    """With kNN scores in float64, an image 1e30 times brighter is finite and an outlier."""
    images = _bar_images(5, seed=3).astype(np.float32)
    images[2] = images[2] * np.float32(1e30)
    scores = fitted.score_samples(images)
    assert np.isfinite(scores).all()
    assert scores[2] == scores.min()
    assert fitted.predict(images)[2] == -1


def test_knn_overflowing_image_raises(fitted):
    """An image that overflows float32 in the blocks still raises with the kNN rule."""
    images = _bar_images(5, seed=3).astype(np.float32)
    images[2] = images[2] * np.float32(1e38)
    with pytest.raises(ValueError, match="image 2 overflows float32 in the network"):
        fitted.score_samples(images)


def test_image_estimator_score_accepts_bright_images(fitted):
    """Images 1000 times brighter than the training range still score, as outliers."""
    scores = fitted.score_samples(_bar_images(5, seed=3) * 1000)
    assert np.isfinite(scores).all()
    assert (fitted.predict(_bar_images(5, seed=3) * 1000) == -1).all()


def test_image_estimator_fit_rejects_huge_values(bar_images):
    """Training images that overflow after scaling raise a ValueError naming the image, not a divergence."""
    with pytest.raises(ValueError, match="image 0 overflows float32 in the untrained network.*units of value_range"):
        FFOneClassImage(value_range=(0, 1), **_FAST).fit(bar_images * 1e30)
    with pytest.raises(ValueError, match="at image 0, .* float32 cannot represent.*units of value_range"):
        FFOneClassImage(value_range=(0, 1), **_FAST).fit(bar_images * 1e300)
    with pytest.raises(ValueError, match="value range .* is wider than float64 can represent"):
        FFOneClassImage(**_FAST).fit((bar_images * 2 - 1) * 1.79e308)
    with pytest.raises(ValueError, match="nan after scaling by the image's own range.*common factor"):
        FFOneClassImage(scaling="image", **_FAST).fit((bar_images * 2 - 1) * 1.79e308)


def test_image_estimator_decision_identity(fitted, bar_images):
    np.testing.assert_allclose(
        fitted.decision_function(bar_images), fitted.score_samples(bar_images) - fitted.offset_
    )


def test_image_estimator_fixed_scaling_uses_training_range(bar_images):
    detector = FFOneClassImage(**_FAST).fit(bar_images * 255)
    assert detector.value_range_ == (pytest.approx(bar_images.min() * 255), pytest.approx(bar_images.max() * 255))
    given = FFOneClassImage(value_range=(0, 255), **_FAST).fit(bar_images)
    assert given.value_range_ == (0.0, 255.0)


def test_image_estimator_image_scaling_ignores_brightness(bar_images):
    detector = FFOneClassImage(scaling="image", **_FAST).fit(bar_images)
    np.testing.assert_allclose(
        detector.score_samples(3 * bar_images[:5] + 10), detector.score_samples(bar_images[:5]), rtol=1e-5
    )


def test_image_estimator_backprop_trainer(bar_images):
    detector = FFOneClassImage(trainer="bp", hidden_layer_sizes=(6,), **_FAST).fit(bar_images)
    assert len(detector.history_.layer_losses[0]) == 1
    assert np.isfinite(detector.score_samples(bar_images[:3])).all()


def test_image_estimator_same_seed_same_scores(bar_images):
    first = FFOneClassImage(**_FAST).fit(bar_images).score_samples(bar_images[:5])
    second = FFOneClassImage(**_FAST).fit(bar_images).score_samples(bar_images[:5])
    np.testing.assert_array_equal(first, second)


def test_image_estimator_save_load_round_trip(fitted, bar_images, tmp_path):
    path = tmp_path / "image.safetensors"
    fitted.save(path)
    loaded = load(path)
    assert isinstance(loaded, FFOneClassImage)
    assert loaded.image_shape_ == fitted.image_shape_
    assert loaded.get_params()["conv_channels"] == tuple(fitted.conv_channels)
    np.testing.assert_allclose(loaded.score_samples(bar_images), fitted.score_samples(bar_images), rtol=1e-6)
    assert loaded.offset_ == fitted.offset_
    with pytest.raises(ValueError, match="Resize"):
        loaded.score_samples(np.zeros((1, 9, 9)))


def test_read_image_folder_grey_and_resize(tmp_path):
    Image.new("L", (6, 4), 10).save(tmp_path / "b.png")
    Image.new("L", (6, 4), 250).save(tmp_path / "a.PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    images, names = read_image_folder(tmp_path)
    assert names == ["a.PNG", "b.png"]
    assert images.shape == (2, 1, 4, 6)
    assert images.dtype == np.uint8
    assert images[0].max() == 250
    resized, _ = read_image_folder(tmp_path, size=(3, 2))
    assert resized.shape == (2, 1, 2, 3)


def test_read_image_folder_rgb_jpeg(tmp_path):
    Image.new("RGB", (5, 5), (255, 0, 0)).save(tmp_path / "red.jpg")
    Image.new("L", (5, 5), 100).save(tmp_path / "grey.png")
    images, _ = read_image_folder(tmp_path)
    assert images.shape == (2, 3, 5, 5)
    grey, _ = read_image_folder(tmp_path, mode="grey")
    assert grey.shape == (2, 1, 5, 5)


def test_read_image_folder_size_mismatch(tmp_path):
    Image.new("L", (5, 5)).save(tmp_path / "a.png")
    Image.new("L", (7, 5)).save(tmp_path / "b.png")
    with pytest.raises(ValueError, match=r"differ in size: a\.png is 5x5 .* b\.png is 7x5"):
        read_image_folder(tmp_path)


def test_read_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="No PNG or JPEG file"):
        read_image_folder(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"Cannot read 1 of the 1 image files .*broken\.png"):
        read_image_folder(tmp_path)


def test_read_image_folder_unreadable_file(tmp_path):
    Image.new("L", (5, 5), 10).save(tmp_path / "a.png")
    Image.new("L", (5, 5), 20).save(tmp_path / "c.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"Cannot read 1 of the 3 image files .*b\.png.*skip_unreadable=True"):
        read_image_folder(tmp_path)

    with pytest.warns(UserWarning, match=r"Skipped unreadable image '.*b\.png'") as record:
        images, names = read_image_folder(tmp_path, skip_unreadable=True)
    assert len(record) == 1
    assert names == ["a.png", "c.png"]
    assert images[:, 0, 0, 0].tolist() == [10, 20]


def test_read_image_folder_skip_needs_one_image(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.warns(UserWarning, match="Skipped unreadable image"):
        with pytest.raises(ValueError, match=r"None of the 2 PNG or JPEG file\(s\)"):
            read_image_folder(tmp_path, skip_unreadable=True)


def test_read_image_folder_decompression_bomb(tmp_path, monkeypatch):
    Image.new("L", (8, 8)).save(tmp_path / "big.png")
    Image.new("L", (2, 2)).save(tmp_path / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow raises above twice this many pixels
    with pytest.raises(ValueError, match=r"Cannot read 1 of the 2 image files .*big\.png"):
        read_image_folder(tmp_path, size=(2, 2))


def _write_folder(folder, images: np.ndarray) -> None:
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).save(folder / f"{index:03d}.png")


def test_cli_fit_and_score_images(tmp_path, capsys):
    _write_folder(tmp_path / "train", _bar_images(60))
    _write_folder(tmp_path / "test", np.concatenate([_bar_images(3, seed=7), np.zeros((2, 8, 8))]))
    model = tmp_path / "model.safetensors"
    code = main(["fit-images", str(tmp_path / "train"), "--out", str(model), "--conv-channels", "4,4",
                 "--kernel-size", "3", "--epochs", "3"])
    assert code == 0
    assert "60 images of 8x8 pixels, 1 channel;" in capsys.readouterr().out
    output = tmp_path / "scores.csv"
    assert main(["score-images", str(model), str(tmp_path / "test"), "--output", str(output)]) == 0
    import pandas as pd

    scores = pd.read_csv(output)
    assert list(scores.columns) == ["file", "score_samples", "decision_function", "label"]
    assert scores["file"].tolist() == ["000.png", "001.png", "002.png", "003.png", "004.png"]
    assert scores["score_samples"][:3].min() > scores["score_samples"][3:].max()


def test_cli_score_images_wrong_size(tmp_path, capsys):
    _write_folder(tmp_path / "train", _bar_images(30))
    _write_folder(tmp_path / "big", _bar_images(2, size=12))
    model = tmp_path / "model.safetensors"
    main(["fit-images", str(tmp_path / "train"), "--out", str(model), "--conv-channels", "4", "--epochs", "1"])
    capsys.readouterr()
    assert main(["score-images", str(model), str(tmp_path / "big")]) == 1
    error = capsys.readouterr().err
    assert "are 12x12 pixels (width x height), but the model was fitted on 8x8" in error
    assert "pass --size 8x8 to resize them" in error
    assert main(["score-images", str(model), str(tmp_path / "big"), "--size", "8x8"]) == 0


def test_cli_score_images_unreadable_file(tmp_path, capsys):
    _write_folder(tmp_path / "train", _bar_images(30))
    _write_folder(tmp_path / "test", _bar_images(3, seed=7))
    (tmp_path / "test" / "001.png").write_bytes(b"not a png")
    model = tmp_path / "model.safetensors"
    main(["fit-images", str(tmp_path / "train"), "--out", str(model), "--conv-channels", "4", "--epochs", "1"])
    capsys.readouterr()

    assert main(["score-images", str(model), str(tmp_path / "test")]) == 1
    error = capsys.readouterr().err
    assert "001.png" in error
    assert "--skip-unreadable" in error

    output = tmp_path / "scores.csv"
    with pytest.warns(UserWarning, match=r"Skipped unreadable image '.*001\.png'"):
        code = main(["score-images", str(model), str(tmp_path / "test"), "--skip-unreadable", "--output", str(output)])
    assert code == 0
    assert "scored 2 images" in capsys.readouterr().out
    import pandas as pd

    assert pd.read_csv(output)["file"].tolist() == ["000.png", "002.png"]


def test_bench_images_quick_run(tmp_path, capsys):
    """The quick variant: two digits of the bundled 8x8 set, one seed, two epochs, every detector."""
    report = tmp_path / "BENCHMARKS.md"
    out = tmp_path / "out"
    code = main(["bench", "images", "--dataset", "digits", "--digits", "0,1", "--seeds", "1", "--epochs", "2",
                 "--figure-digits", "0,1", "--out", str(out), "--report", str(report)])
    assert code == 0
    import pandas as pd

    rows = pd.read_csv(out / "images_digits.csv")
    assert sorted(rows["detector"].unique()) == ["bp", "ff", "ff-center", "iforest", "knn", "ocsvm", "untrained"]
    assert len(rows) == 2 * 7
    assert rows["auroc"].between(0.5, 1.0).all()
    assert (out / "images_digits_extremes.png").stat().st_size > 0
    text = report.read_text()
    assert "<!-- begin images-digits -->" in text
    assert "| **mean** |" in text


def test_image_early_stopping_keeps_a_training_image():
    from ffoc.images import FFOneClassImage

    images = np.random.default_rng(0).random((2, 8, 8))
    detector = FFOneClassImage(early_stopping=True, validation_fraction=0.9, epochs=1, random_state=0)
    detector.fit(images)
    assert np.isfinite(detector.offset_)


def test_plot_extremes_falls_back_to_digits_that_ran(tmp_path):
    """A figure-digit list that misses every digit run draws the digits that were run."""
    from ffoc.bench.images import plot_extremes

    rng = np.random.default_rng(0)
    images = rng.random((20, 8, 8))
    scores = {3: (np.arange(20), rng.random(20), np.r_[np.zeros(10), np.ones(10)])}
    path = tmp_path / "extremes.png"
    plot_extremes(images, scores, path, n_images=4, digits=[0, 2])
    assert path.stat().st_size > 1000


def test_cli_fit_images_help_and_contamination(tmp_path, capsys):
    import json

    with pytest.raises(SystemExit):
        main(["fit-images", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for option, text in [("--epochs", "passes over the training images (default: 30)"),
                         ("--batch-size", "images per mini-batch (default: 128)"),
                         ("--learning-rate", "step size of the optimizer (default: 0.001)"),
                         ("--nu", "expected share of training images outside the boundary (default: 0.05)"),
                         ("--contamination", "share of training images labelled outliers, or auto (= nu) (default: auto)")]:
        assert f"{option} {option[2:].upper().replace('-', '_')} {text}" in help_text

    _write_folder(tmp_path / "train", _bar_images(30))
    model = tmp_path / "model.safetensors"
    assert main(["fit-images", str(tmp_path / "train"), "--out", str(model), "--conv-channels", "4",
                 "--epochs", "1", "--contamination", "0.1"]) == 0
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["contamination"] == 0.1


def test_cli_fit_options_all_have_help():
    from ffoc.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("fit", "fit-images", "score", "score-images", "info"):
        undocumented = [action.option_strings or action.dest for action in commands[name]._actions
                        if not action.help]
        assert undocumented == [], (name, undocumented)


def test_cli_info_shows_image_shape(tmp_path, capsys):
    import json

    from ffoc.images import FFOneClassImage

    model = tmp_path / "model.safetensors"
    FFOneClassImage(conv_channels=(4,), kernel_size=3, epochs=1, random_state=0).fit(
        np.random.default_rng(0).random((12, 3, 8, 10))).save(model)
    assert main(["info", str(model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["image_shape"] == [3, 8, 10]
    assert info["n_features_in"] == 240

"""Nearest-neighbour scores: the distance helper and FFOneClassImage's score_rule="knn"."""

import json

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

import ffoc.images
from ffoc import load
from ffoc.cli import main
from ffoc.images import FFOneClassImage
from ffoc.neighbors import kth_neighbor_distance, layer_features

_FAST = {"conv_channels": (4, 4), "kernel_size": 3, "epochs": 3, "random_state": 0}


def _bar_images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.2, size=(n, 8, 8))
    images[:, 2:6, 3:5] += 0.8
    return images


def _brute_force(x: np.ndarray, references: np.ndarray, k: int, skip=None) -> np.ndarray:
    distances = np.sqrt(((x[:, None, :] - references[None, :, :]) ** 2).sum(axis=2))
    if skip is not None:
        for row, column in enumerate(skip):
            if column >= 0:
                distances[row, column] = np.inf
    return np.sort(distances, axis=1)[:, k - 1]


@pytest.mark.parametrize("k", [1, 3])
def test_kth_distance_matches_brute_force(k):
    rng = np.random.default_rng(0)
    x, references = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    got = kth_neighbor_distance(torch.tensor(x, dtype=torch.float32), torch.tensor(references, dtype=torch.float32), k)
    np.testing.assert_allclose(got, _brute_force(x, references, k), rtol=1e-5)


def test_kth_distance_skips_self():
    rng = np.random.default_rng(1)
    references = rng.normal(size=(6, 4))
    skip = np.array([0, 1, 2, -1, 4, 5])
    tensor = torch.tensor(references, dtype=torch.float32)
    got = kth_neighbor_distance(tensor, tensor, 1, self_columns=torch.tensor(skip))
    expected = _brute_force(references, references, 1, skip)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[3] == pytest.approx(0.0, abs=1e-3)
    assert (got[skip >= 0] > 0).all()


def test_kth_distance_overflow_is_largest_score():
    references = torch.zeros((3, 2))
    got = kth_neighbor_distance(torch.tensor([[float("inf"), 0.0]]), references, 1)
    assert got[0] == pytest.approx(float(np.finfo(np.float32).max))


@pytest.fixture(scope="module")
def knn_detector():
    return FFOneClassImage(**_FAST).fit(_bar_images(60))


def test_knn_is_the_default_rule(knn_detector):
    assert knn_detector.score_rule == "knn"
    assert knn_detector.n_neighbors_ == 5
    assert [tuple(r.shape) for r in knn_detector.references_] == [(60, 64), (60, 16)]


def test_knn_layer_scores_match_brute_force(knn_detector):
    images = np.concatenate([_bar_images(4, seed=5), np.zeros((2, 8, 8))])
    scores = knn_detector.layer_scores(images)
    features = layer_features(knn_detector.layers_, knn_detector._to_tensor(images[:, None]))
    for k, reference in enumerate(knn_detector.references_):
        expected = _brute_force(features[k].numpy(), reference.numpy(), 5)
        np.testing.assert_allclose(scores[:, k], expected, rtol=1e-4, atol=1e-6)


def test_knn_separates_anomalies(knn_detector):
    normal = _bar_images(20, seed=3)
    shifted = _bar_images(20, seed=4)
    shifted[:, 2:6, 3:5] -= 0.8
    shifted[:, 1:3, 1:7] += 0.8
    scores = knn_detector.score_samples(np.concatenate([normal, shifted]))
    assert scores[:20].min() > scores[20:].max()


def test_knn_training_scores_skip_self(knn_detector):
    # Each training image is its own nearest reference, so its score on the
    # trained detector is below the leave-one-out score behind the statistics.
    train_scores = knn_detector.layer_scores(_bar_images(60))
    assert (train_scores.mean(axis=0) < knn_detector.layer_score_mean_).all()


def test_knn_max_references_subsamples():
    first = FFOneClassImage(max_references=20, **_FAST).fit(_bar_images(60))
    second = FFOneClassImage(max_references=20, **_FAST).fit(_bar_images(60))
    assert [tuple(r.shape) for r in first.references_] == [(20, 64), (20, 16)]
    for a, b in zip(first.references_, second.references_):
        assert torch.equal(a, b)


def test_knn_few_images_lowers_neighbor():
    with pytest.warns(UserWarning, match="scoring by neighbour 2 instead"):
        detector = FFOneClassImage(**_FAST).fit(_bar_images(3))
    assert detector.n_neighbors_ == 2
    assert np.isfinite(detector.score_samples(_bar_images(4, seed=1))).all()


def test_knn_one_image_warns_flat():
    with pytest.warns(UserWarning, match="nearly the same score"):
        detector = FFOneClassImage(**_FAST).fit(_bar_images(1))
    assert np.isfinite(detector.score_samples(_bar_images(2, seed=1))).all()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"max_references": 1}, "max_references"),
        ({"score_rule": "lof"}, "score_rule"),
        ({"n_neighbors": True}, "not a bool"),
    ],
)
def test_knn_rejects_bad_params(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        FFOneClassImage(**{**_FAST, **params}).fit(_bar_images(10))


def test_knn_reference_size_limit(monkeypatch):
    monkeypatch.setattr(ffoc.images, "_MAX_REFERENCE_BYTES", 10_000)
    with pytest.raises(ValueError, match=r"max_references=\d+ or lower"):
        FFOneClassImage(**_FAST).fit(_bar_images(60))
    FFOneClassImage(score_rule="center", **_FAST).fit(_bar_images(60))


def test_knn_save_load_round_trip(knn_detector, tmp_path):
    path = tmp_path / "knn.safetensors"
    knn_detector.save(path)
    loaded = load(path)
    images = np.concatenate([_bar_images(5, seed=9), np.ones((1, 8, 8))])
    assert loaded.score_rule == "knn"
    assert loaded.n_neighbors_ == knn_detector.n_neighbors_
    np.testing.assert_allclose(loaded.score_samples(images), knn_detector.score_samples(images), rtol=1e-6)


def test_center_rule_stores_no_references(tmp_path):
    detector = FFOneClassImage(score_rule="center", **_FAST).fit(_bar_images(30))
    assert detector.references_ == []
    path = tmp_path / "center.safetensors"
    detector.save(path)
    images = _bar_images(4, seed=2)
    np.testing.assert_allclose(load(path).score_samples(images), detector.score_samples(images), rtol=1e-6)


def test_older_model_state_loads_as_center():
    detector = FFOneClassImage(score_rule="center", **_FAST).fit(_bar_images(30))
    tensors, fitted = detector._fitted_state()
    fitted = json.loads(json.dumps(fitted))
    del fitted["n_neighbors"]  # files written before score rules existed
    restored = FFOneClassImage(**{k: v for k, v in detector.get_params().items() if k != "score_rule"})
    restored._restore_fitted_state(tensors, fitted)
    assert restored.score_rule == "center"
    images = _bar_images(4, seed=2)
    np.testing.assert_allclose(restored.score_samples(images), detector.score_samples(images), rtol=1e-6)


def test_cli_fit_images_score_rule(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "train"
    folder.mkdir()
    for index, image in enumerate(_bar_images(12)):
        Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).save(folder / f"{index:03d}.png")
    model = tmp_path / "model.safetensors"
    args = ["fit-images", str(folder), "--out", str(model), "--conv-channels", "4", "--epochs", "1"]
    assert main(args + ["--score-rule", "center"]) == 0
    assert load(model).score_rule == "center"
    assert main(args + ["--n-neighbors", "2"]) == 0
    assert load(model).score_rule == "knn"
    assert load(model).n_neighbors_ == 2

"""Tests for ffoc.datasets: bundled data, file loaders, IDX and splits."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ffoc.datasets import (
    DataSplit,
    default_data_dir,
    list_adbench,
    load_adbench,
    load_banknote,
    load_digits_images,
    load_idx,
    load_mnist,
    novelty_split,
    one_class_split,
    save_idx,
    stratified_split,
    unsupervised_split,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _require_shared(subfolder: str) -> Path:
    folder = SHARED_DATA / subfolder
    if not folder.is_dir():
        pytest.skip(f"shared benchmark data not present at {folder}")
    return folder


def _write_idx_by_hand(path: Path, array: np.ndarray, type_code: int, gz: bool) -> None:
    """Encode an IDX file directly from the format description, independent of save_idx."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as file:
        file.write(header + payload)


# --- banknote ---------------------------------------------------------------


def test_load_banknote_shape_and_class_counts():
    bunch = load_banknote()
    assert bunch.data.shape == (1372, 4)
    assert bunch.data.dtype == np.float64
    assert bunch.target.dtype == np.int64
    assert int((bunch.target == 0).sum()) == 762
    assert int((bunch.target == 1).sum()) == 610
    assert bunch.feature_names == ["variance", "skewness", "curtosis", "entropy"]
    assert "CC BY 4.0" in bunch.DESCR


def test_load_banknote_first_row_matches_file():
    X, y = load_banknote(return_X_y=True)
    np.testing.assert_allclose(X[0], [3.6216, 8.6661, -2.8073, -0.44699])
    assert y[0] == 0


def test_load_banknote_as_frame():
    bunch = load_banknote(as_frame=True)
    assert isinstance(bunch.data, pd.DataFrame)
    assert list(bunch.data.columns) == bunch.feature_names
    assert isinstance(bunch.target, pd.Series)
    assert bunch.target.name == "class"
    assert bunch.frame.shape == (1372, 5)

    X, y = load_banknote(return_X_y=True, as_frame=True)
    assert isinstance(X, pd.DataFrame)
    assert int(y.sum()) == 610


# --- data folder ------------------------------------------------------------


def test_default_data_dir_reads_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FFOC_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path

    monkeypatch.setenv("FFOC_DATA_DIR", "")
    assert default_data_dir() is None

    monkeypatch.delenv("FFOC_DATA_DIR")
    assert default_data_dir() is None


# --- ADBench ----------------------------------------------------------------


def _write_npz(folder: Path, name: str, X: np.ndarray, y: np.ndarray) -> Path:
    path = folder / f"{name}.npz"
    np.savez(path, X=X, y=y)
    return path


def test_load_adbench_casts_dtypes(tmp_path):
    X = np.arange(12, dtype=np.int16).reshape(4, 3)
    y = np.array([0, 0, 1, 0], dtype=np.uint8)
    path = _write_npz(tmp_path, "32_shuttle", X, y)

    X_loaded, y_loaded = load_adbench(path)
    assert X_loaded.dtype == np.float64
    assert y_loaded.dtype == np.int64
    np.testing.assert_array_equal(X_loaded, X)
    np.testing.assert_array_equal(y_loaded, y)


def test_load_adbench_finds_names_in_data_dir(tmp_path):
    _write_npz(tmp_path, "6_cardio", np.zeros((3, 2)), np.array([0, 1, 0]))
    for name in ["6_cardio", "6_cardio.npz", "cardio", "CARDIO"]:
        X, y = load_adbench(name, data_dir=tmp_path)
        assert X.shape == (3, 2), name


def test_load_adbench_uses_environment_and_subfolder(tmp_path, monkeypatch):
    nested = tmp_path / "adbench_classical"
    nested.mkdir()
    _write_npz(nested, "14_glass", np.zeros((2, 2)), np.array([0, 1]))
    monkeypatch.setenv("FFOC_DATA_DIR", str(tmp_path))

    X, _ = load_adbench("14_glass")
    assert X.shape == (2, 2)
    assert list_adbench() == ["14_glass"]


def test_load_adbench_missing_name_raises(tmp_path):
    _write_npz(tmp_path, "6_cardio", np.zeros((2, 2)), np.array([0, 1]))
    with pytest.raises(FileNotFoundError, match=r"'6_cardo' not found.*6_cardio"):
        load_adbench("6_cardo", data_dir=tmp_path)


def test_load_adbench_missing_folder_raises(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="data folder not found.*nowhere"):
        load_adbench("6_cardio", data_dir=missing)
    with pytest.raises(FileNotFoundError, match="data folder not found.*nowhere"):
        list_adbench(missing)


def test_load_adbench_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="ADBench file not found.*absent.npz"):
        load_adbench(tmp_path / "absent.npz")


def test_load_adbench_without_data_dir_raises(monkeypatch):
    monkeypatch.delenv("FFOC_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="FFOC_DATA_DIR is not set"):
        load_adbench("6_cardio")


def test_load_adbench_ambiguous_short_name_raises(tmp_path):
    _write_npz(tmp_path, "4_cardio", np.zeros((2, 2)), np.array([0, 1]))
    _write_npz(tmp_path, "6_cardio", np.zeros((2, 2)), np.array([0, 1]))
    with pytest.raises(FileNotFoundError, match="ambiguous"):
        load_adbench("cardio", data_dir=tmp_path)


def test_load_adbench_invalid_content_raises(tmp_path):
    no_labels = tmp_path / "no_labels.npz"
    np.savez(no_labels, X=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"lacks array\(s\) \['y'\]"):
        load_adbench(no_labels)

    bad_labels = _write_npz(tmp_path, "bad_labels", np.zeros((3, 2)), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="expected 0 \\(normal\\) and 1 \\(anomaly\\)"):
        load_adbench(bad_labels)

    mismatched = _write_npz(tmp_path, "mismatched", np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="has X of shape"):
        load_adbench(mismatched)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, X=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(ValueError, match="failed to read ADBench file.*pickled"):
        load_adbench(pickled)

    not_a_zip = tmp_path / "garbage.npz"
    not_a_zip.write_bytes(b"this is not an archive")
    with pytest.raises(ValueError, match="failed to read ADBench file.*garbage"):
        load_adbench(not_a_zip)


def test_list_adbench_sorts_by_number(tmp_path):
    for name in ["10_cover", "2_annthyroid", "1_ALOI"]:
        _write_npz(tmp_path, name, np.zeros((2, 2)), np.array([0, 1]))
    (tmp_path / "notes.txt").write_text("not a data set")
    assert list_adbench(tmp_path) == ["1_ALOI", "2_annthyroid", "10_cover"]


def test_load_adbench_real_cardio():
    folder = _require_shared("adbench_classical")
    X, y = load_adbench("6_cardio", data_dir=folder)
    assert X.shape == (1831, 21)
    assert X.dtype == np.float64
    assert int(y.sum()) == 176
    assert "6_cardio" in list_adbench(SHARED_DATA)


# --- IDX and MNIST ----------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize(
    ("dtype", "type_code"),
    [(np.uint8, 0x08), (np.float32, 0x0D)],
    ids=["uint8", "float32"],
)
def test_load_idx_round_trip(tmp_path, dtype, type_code, gz):
    rng = np.random.default_rng(0)
    array = (rng.random((5, 3, 4)) * 200).astype(dtype)
    path = tmp_path / ("array.idx.gz" if gz else "array.idx")

    _write_idx_by_hand(path, array, type_code, gz)
    loaded = load_idx(path)
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.dtype.isnative
    assert loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)

    save_idx(path, array)
    np.testing.assert_array_equal(load_idx(path), array)


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
)
def test_save_idx_round_trip_every_type(tmp_path, dtype):
    array = np.array([[-3, 0, 7], [1, 2, 100]]).astype(dtype)
    path = tmp_path / "values.idx"
    save_idx(path, array)
    loaded = load_idx(path)
    assert loaded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded, array)


def test_save_idx_writes_big_endian_header(tmp_path):
    path = tmp_path / "labels.idx"
    save_idx(path, np.array([1, 2, 3], dtype=np.int16))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 1])
    assert raw[4:8] == (3).to_bytes(4, "big")
    assert raw[8:10] == (1).to_bytes(2, "big")


def test_save_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="int64 has no IDX type code"):
        save_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_load_idx_truncated_data_raises(tmp_path, gz):
    path = tmp_path / "short.idx"
    array = np.arange(10, dtype=np.uint8)
    _write_idx_by_hand(path, array, 0x08, gz=False)
    raw = path.read_bytes()[:-3]
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match=r"truncated.*shape \(10,\).*only 7 bytes"):
        load_idx(path)


def test_load_idx_truncated_header_raises(tmp_path):
    path = tmp_path / "header.idx"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + b"\x00\x00\x00\x02")
    with pytest.raises(ValueError, match="truncated in its header"):
        load_idx(path)


def test_load_idx_trailing_bytes_raise(tmp_path):
    path = tmp_path / "long.idx"
    _write_idx_by_hand(path, np.arange(4, dtype=np.uint8), 0x08, gz=False)
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="bytes remain after"):
        load_idx(path)


@pytest.mark.parametrize(
    "magic",
    [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00"],
    ids=["nonzero-first-byte", "unknown-type-code", "zero-dimensions"],
)
def test_load_idx_bad_magic_raises(tmp_path, magic):
    path = tmp_path / "bad.idx"
    path.write_bytes(magic + b"\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="invalid magic number 0x"):
        load_idx(path)


def test_load_idx_corrupt_gzip_raises(tmp_path):
    path = tmp_path / "broken.idx.gz"
    compressed = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(200))
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip stream"):
        load_idx(path)


def test_load_idx_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="IDX file not found.*missing.idx"):
        load_idx(tmp_path / "missing.idx")


def test_load_mnist_reads_written_files(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    labels = np.array([7, 2, 1], dtype=np.uint8)
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    save_idx(mnist / "t10k-images-idx3-ubyte.gz", images)
    save_idx(mnist / "t10k-labels-idx1-ubyte", labels)

    loaded_images, loaded_labels = load_mnist(tmp_path)
    np.testing.assert_array_equal(loaded_images, images)
    assert loaded_labels.dtype == np.int64
    assert loaded_labels.tolist() == [7, 2, 1]


def test_load_mnist_missing_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="kind must be 't10k' or 'train'"):
        load_mnist(tmp_path, kind="test")


def test_load_mnist_wrong_image_shape_raises(tmp_path):
    save_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 8, 8), dtype=np.uint8))
    save_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(2, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 of shape \(n, 28, 28\)"):
        load_mnist(tmp_path)


def test_load_mnist_real_test_set():
    folder = _require_shared("mnist")
    images, labels = load_mnist(folder)
    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- digits -----------------------------------------------------------------


def test_load_digits_images_shape_and_range():
    images, labels = load_digits_images()
    assert images.shape == (1797, 8, 8)
    assert images.dtype == np.float64
    assert images.min() == 0.0
    assert images.max() == 16.0
    assert labels.dtype == np.int64
    assert set(labels.tolist()) == set(range(10))


# --- splits -----------------------------------------------------------------


def _imbalanced_labels() -> np.ndarray:
    return np.array([0] * 400 + [1] * 100 + [2] * 50)


def test_stratified_split_disjoint_and_complete():
    y = _imbalanced_labels()
    parts = stratified_split(y, random_state=0)
    assert len(parts) == 3
    combined = np.concatenate(parts)
    assert len(combined) == len(y)
    assert np.array_equal(np.sort(combined), np.arange(len(y)))
    for part in parts:
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0)


def test_stratified_split_keeps_class_proportions():
    y = _imbalanced_labels()
    train, val, test = stratified_split(y, (0.6, 0.2, 0.2), random_state=1)
    assert len(train) == 330
    assert len(val) == 110
    assert len(test) == 110
    for part in (train, val, test):
        counts = np.bincount(y[part], minlength=3) / len(part)
        np.testing.assert_allclose(counts, [400 / 550, 100 / 550, 50 / 550], atol=0.01)


def test_stratified_split_reproducible_with_seed():
    y = _imbalanced_labels()
    first = stratified_split(y, random_state=42)
    second = stratified_split(y, random_state=42)
    other = stratified_split(y, random_state=43)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_stratified_split_two_parts():
    y = np.array([0] * 14 + [1] * 6)
    train, test = stratified_split(y, (0.7, 0.3), random_state=0)
    assert len(train) == 14
    assert len(test) == 6
    assert int(y[test].sum()) == 2


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ((0.6, 0.2, 0.1), "must sum to 1"),
        ((0.8, 0.3, -0.1), "must be positive"),
        ((1.0, 0.0), "must be positive"),
        ((1.0,), "2 \\(train, test\\) or 3"),
    ],
)
def test_stratified_split_invalid_fractions_raise(fractions, message):
    with pytest.raises(ValueError, match=message):
        stratified_split(np.zeros(10), fractions)


def test_stratified_split_too_few_rows_raises():
    with pytest.raises(ValueError, match="cannot make a stratified split"):
        stratified_split(np.array([0, 0, 0, 0, 1]), random_state=0)


def test_one_class_split_training_rows_are_normal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = np.where(np.arange(500) < 450, 3, 7)  # Normal class 3; 7 is the anomaly.
    split = one_class_split(X, y, random_state=0, normal_label=3)

    assert isinstance(split, DataSplit)
    assert np.all(y[split.train_index] == 3)
    assert np.all(split.y_train == 0)
    np.testing.assert_array_equal(split.X_train, X[split.train_index])
    assert set(split.y_val.tolist()) == {0, 1}
    assert set(split.y_test.tolist()) == {0, 1}
    np.testing.assert_array_equal(split.y_test, (y[split.test_index] == 7).astype(int))
    assert split.y_test.dtype == np.int64


def test_one_class_split_parts_are_disjoint():
    X = np.arange(200.0).reshape(100, 2)
    y = np.array([0] * 80 + [1] * 20)
    split = one_class_split(X, y, random_state=5)
    train = set(split.train_index.tolist())
    val = set(split.val_index.tolist())
    test = set(split.test_index.tolist())
    assert not train & val
    assert not train & test
    assert not val & test
    # Dropped rows are exactly the anomalies of the training part.
    assert len(train) + len(val) + len(test) == 100 - 12
    assert len(val) == 20
    assert len(test) == 20


def test_one_class_split_reproducible_with_seed():
    X = np.arange(200.0).reshape(100, 2)
    y = np.array([0] * 80 + [1] * 20)
    first = one_class_split(X, y, random_state=3)
    second = one_class_split(X, y, random_state=3)
    np.testing.assert_array_equal(first.X_train, second.X_train)
    np.testing.assert_array_equal(first.test_index, second.test_index)


def test_one_class_split_on_images():
    images, labels = load_digits_images()
    split = one_class_split(images, labels, random_state=0, normal_label=4)
    assert split.X_train.shape[1:] == (8, 8)
    assert np.all(labels[split.train_index] == 4)


def test_one_class_split_errors():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="X has 10 rows but y has 9 labels"):
        one_class_split(X, np.zeros(9))
    with pytest.raises(ValueError, match="no row has normal_label 5"):
        one_class_split(X, np.zeros(10), normal_label=5)
    with pytest.raises(ValueError, match="must be \\(train, val, test\\)"):
        one_class_split(X, np.zeros(10), fractions=(0.5, 0.5))


def test_novelty_split_protocol():
    X = np.arange(300.0).reshape(150, 2)
    y = np.array([0] * 100 + [1] * 50)
    split = novelty_split(X, y, random_state=0)

    assert len(split.train_index) == 70
    assert np.all(y[split.train_index] == 0)
    assert split.X_val is None
    assert split.val_index is None
    # Test contains the other 30 normal rows and all 50 anomalies.
    assert len(split.test_index) == 80
    assert int(split.y_test.sum()) == 50
    combined = np.concatenate([split.train_index, split.test_index])
    assert np.array_equal(np.sort(combined), np.arange(150))

    again = novelty_split(X, y, random_state=0)
    np.testing.assert_array_equal(split.train_index, again.train_index)


def test_novelty_split_invalid_fraction_raises():
    X = np.zeros((10, 2))
    y = np.array([0] * 9 + [1])
    with pytest.raises(ValueError, match="strictly between 0 and 1, got 1.0"):
        novelty_split(X, y, train_fraction=1.0)
    with pytest.raises(ValueError, match="gives 0 training rows"):
        novelty_split(X, y, train_fraction=0.1)


def test_unsupervised_split_keeps_anomalies_in_training():
    X = np.arange(400.0).reshape(200, 2)
    y = np.array([0] * 180 + [1] * 20)
    split = unsupervised_split(X, y, random_state=0)

    assert len(split.train_index) == 140
    assert len(split.test_index) == 60
    assert int(split.y_train.sum()) == 14
    assert int(split.y_test.sum()) == 6
    assert split.X_val is None
    combined = np.concatenate([split.train_index, split.test_index])
    assert np.array_equal(np.sort(combined), np.arange(200))

    again = unsupervised_split(X, y, random_state=0)
    np.testing.assert_array_equal(split.test_index, again.test_index)


def test_load_adbench_non_zip_file(tmp_path):
    # For a text file under an .npz name, numpy's own message mentions pickled data and allow_pickle.
    not_a_zip = tmp_path / "99_junk.npz"
    not_a_zip.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match=r"99_junk.npz.*is not an \.npz \(zip\) archive") as raised:
        load_adbench(not_a_zip)
    assert "allow_pickle" not in str(raised.value)

    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.npz.*is empty") as raised:
        load_adbench(empty)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, X=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(ValueError, match="contains Python objects") as raised:
        load_adbench(pickled)
    assert "allow_pickle" not in str(raised.value)

"""Saving and loading: round trip, atomic writes, and clear errors on damaged files."""

import json
import struct

import numpy as np
import pytest

from ffoc import FFOneClass, ModelFileError, load
from ffoc.persistence import atomic_write_bytes


@pytest.fixture(scope="module")
def model_and_data():
    X = np.random.default_rng(5).normal(size=(120, 4))
    model = FFOneClass(objective="svdd", epochs=3, hidden_layer_sizes=(8, 6), random_state=0).fit(X)
    return model, X


@pytest.mark.parametrize("objective", ["goodness", "hb-svdd", "svdd", "ls-svdd"])
def test_save_load_round_trip_scores_equal(objective, tmp_path):
    X = np.random.default_rng(1).normal(size=(80, 3))
    model = FFOneClass(objective=objective, epochs=2, random_state=0).fit(X)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load(path)
    assert np.allclose(loaded.score_samples(X), model.score_samples(X), atol=1e-6)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    params = model.get_params()
    loaded_params = loaded.get_params()
    for key in ("objective", "trainer", "nu", "contamination", "score_layers", "epochs"):
        assert loaded_params[key] == params[key], key
    assert tuple(loaded_params["hidden_layer_sizes"]) == tuple(params["hidden_layer_sizes"])


def test_save_load_keeps_feature_names(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(np.random.default_rng(2).normal(size=(40, 2)), columns=["x", "y"])
    model = FFOneClass(epochs=1, random_state=0).fit(frame)
    model.save(tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors")
    assert list(loaded.feature_names_in_) == ["x", "y"]
    with pytest.raises(ValueError, match="feature names"):
        loaded.score_samples(frame.rename(columns={"x": "z"}))


def test_model_file_contains_no_pickle(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.safetensors"
    model.save(path)
    data = path.read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    assert header["__metadata__"]["format"] == "ffoc-model"
    assert b"\x80\x04\x95" not in data  # the opening bytes of a pickle stream


def test_save_failure_keeps_previous_file(model_and_data, tmp_path, monkeypatch):
    model, _ = model_and_data
    path = tmp_path / "m.safetensors"
    model.save(path)
    before = path.read_bytes()

    import ffoc.persistence as persistence

    def broken_to_bytes(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(persistence, "to_bytes", broken_to_bytes)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_atomic_write_bytes_into_missing_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "m.safetensors", b"x")


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load(tmp_path / "nope.safetensors")


def test_load_truncated_file(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.safetensors"
    model.save(path)
    data = path.read_bytes()
    for cut in (4, 100, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated|only"):
            load(path)


def test_load_edited_tensor_fails_checksum(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.safetensors"
    model.save(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load(path)


def test_load_edited_metadata_fails_checksum(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.safetensors"
    model.save(path)
    data = path.read_bytes()
    edited = data.replace(b'\\"nu\\": 0.05', b'\\"nu\\": 0.07')  # same length, valid JSON
    assert edited != data
    path.write_bytes(edited)
    with pytest.raises(ModelFileError, match="checksum"):
        load(path)


def test_load_incompatible_version(model_and_data, tmp_path, monkeypatch):
    import ffoc.persistence as persistence

    model, _ = model_and_data
    monkeypatch.setattr(persistence, "FORMAT_VERSION", 99)
    model.save(tmp_path / "m.safetensors")
    monkeypatch.setattr(persistence, "FORMAT_VERSION", 1)
    with pytest.raises(ModelFileError, match="version '99'"):
        load(tmp_path / "m.safetensors")


def test_load_other_file_is_not_a_model(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ModelFileError):
        load(path)
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, dtype=np.float32)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ModelFileError, match="not an ffoc model"):
        load(tmp_path / "plain.safetensors")


def test_save_unfitted_raises(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FFOneClass().save(tmp_path / "m.safetensors")


def test_save_keeps_permissions_of_replaced_file(model_and_data, tmp_path):
    import os

    model, _ = model_and_data
    path = tmp_path / "m.safetensors"
    model.save(path)
    os.chmod(path, 0o644)
    model.save(path)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_load_rejects_csv_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,c\n" + "1.0,2.0,3.0\n" * 100, encoding="utf-8")
    with pytest.raises(ModelFileError, match="does not start with a safetensors header"):
        load(path)


def test_save_after_structural_set_params_raises(tmp_path, rng):
    model = FFOneClass(epochs=1, hidden_layer_sizes=(8, 8), random_state=0).fit(rng.normal(size=(60, 3)))
    model.set_params(normalize_input=True)
    with pytest.raises(ValueError, match=r"normalize_input \(False at fit, True now\) changed after fit"):
        model.save(tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()

    model.set_params(normalize_input=False, contamination=0.2)
    with pytest.raises(ValueError, match=r"contamination \('auto' at fit, 0.2 now\)"):
        model.save(tmp_path / "m.safetensors")  # offset_ was set for 'auto'

    model.set_params(hidden_layer_sizes=[8, 8], contamination="auto", learning_rate=0.5, verbose=1)
    model.save(tmp_path / "m.safetensors")  # same structure; training settings may change
    assert load(tmp_path / "m.safetensors").hidden_layer_sizes == (8, 8)


def test_load_restores_tuple_parameters_so_repr_is_unchanged(tmp_path):
    from ffoc.images import FFOneClassImage

    X = np.random.default_rng(3).normal(size=(40, 3))
    images = np.random.default_rng(3).random((12, 1, 8, 8))
    for model, data in [(FFOneClass(hidden_layer_sizes=(8, 6), epochs=1, random_state=0), X),
                        (FFOneClassImage(conv_channels=(4, 4), kernel_size=3, epochs=1, random_state=0), images)]:
        model.fit(data)
        path = tmp_path / f"{type(model).__name__}.safetensors"
        model.save(path)
        loaded = load(path)
        assert repr(loaded) == repr(model)
        assert all(type(value) is type(model.get_params()[key]) for key, value in loaded.get_params().items())


def test_load_checkpoint_restores_tuple_parameters(tmp_path):
    from ffoc.checkpoint import load_checkpoint, save_checkpoint

    model = FFOneClass(hidden_layer_sizes=(8, 6), random_state=0)
    model.partial_fit(np.random.default_rng(4).normal(size=(600, 3)))
    path = tmp_path / "stream.checkpoint.safetensors"
    save_checkpoint(model, path, progress={})
    assert repr(load_checkpoint(path)[0]) == repr(model)

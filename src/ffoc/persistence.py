"""Saving and loading fitted detectors: safetensors weights with JSON metadata, no pickle.

A model file is one safetensors file. Its tensors are the network's weights and
the fitted arrays (scaler, centers, score statistics), always stored as CPU
tensors so that a model trained on a GPU loads on a machine without one. Its
metadata holds, as JSON strings, the estimator's parameters, the fitted scalars
(radii, thresholds, offset, feature names, ffoc version) and a SHA-256 checksum
over tensors and metadata, so that a truncated or edited file is detected.

Files are written atomically: the bytes go to a temporary file in the same
folder, which replaces the target only once it is complete.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from ffoc import FFOneClass, load
>>> X = np.random.default_rng(0).normal(size=(50, 3))
>>> model = FFOneClass(epochs=1, random_state=0).fit(X)
>>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
>>> model.save(path)
>>> bool(np.allclose(load(path).score_samples(X), model.score_samples(X)))
True
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import torch

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "load", "save", "atomic_write_bytes"]

FORMAT_NAME = "ffoc-model"
FORMAT_VERSION = 1

# Header length field of a safetensors file: 8 bytes, little-endian unsigned.
_HEADER_SIZE_BYTES = 8
_MAX_HEADER_BYTES = 100_000_000


class ModelFileError(ValueError):
    """Raised when a model file is missing, corrupted, edited or from an incompatible version."""


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with :func:`ffoc.io.atomic_write`.

    On any failure an existing file at ``path`` is left untouched; a replaced
    file keeps its permission bits.
    """
    from .io import atomic_write

    with atomic_write(path, "wb") as file:
        file.write(data)


def _checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    for key in sorted(metadata):
        digest.update(key.encode())
        digest.update(metadata[key].encode())
    return digest.hexdigest()


def to_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """Serialise CPU copies of ``tensors`` and ``metadata`` (with its checksum) to safetensors bytes."""
    from safetensors.torch import save as safetensors_save

    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    metadata = dict(metadata)
    metadata["checksum"] = _checksum(cpu, metadata)
    return safetensors_save(cpu, metadata=metadata)


def from_bytes(data: bytes, source: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse and verify safetensors bytes written by :func:`to_bytes`.

    Raises
    ------
    ModelFileError
        If the bytes are not a complete safetensors file, lack ffoc's metadata,
        or fail the checksum.
    """
    from safetensors.torch import load as safetensors_load

    if len(data) < _HEADER_SIZE_BYTES:
        raise ModelFileError(f"{source} is not an ffoc model file: it has only {len(data)} bytes.")
    (header_size,) = struct.unpack("<Q", data[:_HEADER_SIZE_BYTES])
    if header_size > min(len(data) - _HEADER_SIZE_BYTES, _MAX_HEADER_BYTES):
        if header_size > _MAX_HEADER_BYTES:
            raise ModelFileError(
                f"{source} is not an ffoc model file (it does not start with a safetensors header). "
                "Pass a model saved by ffoc fit or .save()."
            )
        raise ModelFileError(
            f"{source} is truncated or not an ffoc model file (its header claims {header_size} bytes, "
            f"the file has {len(data)}). Save the model again."
        )
    try:
        header = json.loads(data[_HEADER_SIZE_BYTES : _HEADER_SIZE_BYTES + header_size])
        metadata = header.get("__metadata__") or {}
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise ModelFileError(f"{source} has a corrupted header ({error}). Save the model again.") from None
    if metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{source} is a safetensors file, but not an ffoc model (no 'format' entry).")
    try:
        tensors = safetensors_load(data)
    except Exception as error:  # safetensors raises its own error type for any malformed file
        raise ModelFileError(f"{source} is truncated or corrupted: {error}. Save the model again.") from None
    expected = metadata.pop("checksum", None)
    if expected is None or _checksum(tensors, metadata) != expected:
        raise ModelFileError(
            f"{source} failed its checksum: the file was edited or damaged after it was saved. "
            "Save the model again from the fitted estimator."
        )
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{source} uses model format version {version!r}; this ffoc reads version {FORMAT_VERSION}. "
            "Load it with the ffoc release that saved it, or fit the model again."
        )
    return tensors, metadata


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def _portable_params(params: dict) -> dict:
    portable = {}
    for key, value in params.items():
        if key == "random_state" and not (value is None or isinstance(value, (int, np.integer))):
            value = None  # a RandomState instance has no portable form; the weights are saved anyway
        portable[key] = value
    return portable


def save(estimator, path) -> None:
    """Save a fitted ffoc estimator to ``path`` atomically.

    Parameters
    ----------
    estimator : FFOneClass or another ffoc estimator
        A fitted estimator.
    path : str or os.PathLike
        Target file, conventionally ending in ``.safetensors``.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    check_unchanged = getattr(estimator, "_check_structure_unchanged", None)
    if check_unchanged is not None:
        check_unchanged("saving")  # the file must describe the network that is saved
    tensors, fitted = estimator._fitted_state()
    atomic_write_bytes(path, to_bytes(tensors, _metadata(estimator, fitted)))


def _metadata(estimator, fitted: dict) -> dict[str, str]:
    """Return the file metadata of ``estimator``: format, versions, class name, parameters and ``fitted``."""
    from . import __version__

    return {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "ffoc_version": __version__,
        "estimator": type(estimator).__name__,
        "params": json.dumps(_portable_params(estimator.get_params()), default=_json_default),
        "fitted": json.dumps(fitted, default=_json_default),
    }


def _restore_tuples(estimator, params: dict) -> dict:
    """Return ``params`` with a tuple for each list whose default in ``estimator`` is a tuple.

    JSON has no tuples, so parameters such as ``hidden_layer_sizes=(8, 6)``
    come back from a model file as lists.
    """
    defaults = estimator.get_params()
    return {key: tuple(value) if isinstance(value, list) and isinstance(defaults.get(key), tuple) else value
            for key, value in params.items()}


def _estimator_classes() -> dict:
    from .estimator import FFOneClass

    classes = {"FFOneClass": FFOneClass}
    try:
        from .images import FFOneClassImage
    except ImportError:
        pass
    else:
        classes["FFOneClassImage"] = FFOneClassImage
    return classes


def _read_file(path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, str], str]:
    """Return the tensors, the metadata and the quoted path of a model or checkpoint file.

    ``kind`` ("Model" or "Checkpoint") names the file in the error message when it is missing.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{kind} file {str(path)!r} is a folder; give the path of a .safetensors file.")
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file {str(path)!r} not found.")
    source = repr(str(path))
    tensors, metadata = from_bytes(path.read_bytes(), source)
    return tensors, metadata, source


def _estimator_class(metadata: dict[str, str], source: str) -> tuple[str, type]:
    """Return the name and the class of the estimator that the file's metadata names."""
    classes = _estimator_classes()
    name = metadata.get("estimator")
    if name not in classes:
        raise ModelFileError(f"{source} contains an unknown estimator {name!r}; expected one of {sorted(classes)}.")
    return name, classes[name]


def load(path):
    """Load an estimator saved by :meth:`FFOneClass.save`.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.

    Returns
    -------
    FFOneClass
        The fitted detector, on the CPU.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is truncated, corrupted, edited or from an incompatible version.
    """
    tensors, metadata, source = _read_file(path, "Model")
    name, estimator_class = _estimator_class(metadata, source)
    try:
        params = json.loads(metadata["params"])
        fitted = json.loads(metadata["fitted"])
    except (KeyError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{source} has invalid metadata ({error}). Save the model again.") from None
    if not isinstance(params, dict) or not isinstance(fitted, dict):
        raise ModelFileError(f"{source} has invalid metadata: 'params' and 'fitted' must be JSON objects.")
    estimator = estimator_class()
    try:
        estimator.set_params(**_restore_tuples(estimator, params))
        estimator._restore_fitted_state(tensors, fitted)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise ModelFileError(
            f"{source} does not match what {name} expects ({type(error).__name__}: {error}). "
            "Save the model again with this ffoc version."
        ) from None
    return estimator

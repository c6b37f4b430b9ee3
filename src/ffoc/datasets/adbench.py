"""ADBench classical anomaly-detection data sets stored as ``.npz`` files."""

from __future__ import annotations

import difflib
import os
import zipfile
from pathlib import Path

import numpy as np

from ffoc.datasets._base import resolve_data_dir

__all__ = ["list_adbench", "load_adbench"]

_SUBFOLDER = "adbench_classical"


def _short_name(name: str) -> str:
    """Strip ADBench's numeric prefix: ``"6_cardio"`` becomes ``"cardio"``."""
    prefix, separator, rest = name.partition("_")
    return rest if separator and prefix.isdigit() else name


def list_adbench(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """List the ADBench data sets in a folder.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder with the ``.npz`` files, or a folder that contains them in an
        ``adbench_classical`` subfolder. Defaults to ``FFOC_DATA_DIR``.

    Returns
    -------
    list of str
        Data set names without the ``.npz`` suffix, such as ``"6_cardio"``,
        sorted by their numeric prefix and then by name.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist, or none was given and
        ``FFOC_DATA_DIR`` is unset.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["10_cover", "6_cardio"]:
    ...     np.savez(folder / f"{name}.npz", X=np.zeros((2, 3)), y=np.array([0, 1]))
    >>> list_adbench(folder)
    ['6_cardio', '10_cover']
    """
    folder = resolve_data_dir(data_dir, _SUBFOLDER, "*.npz")
    names = [path.stem for path in folder.glob("*.npz") if path.is_file()]
    return sorted(names, key=_sort_key)


def _sort_key(name: str) -> tuple[int, str]:
    prefix = name.partition("_")[0]
    number = int(prefix) if prefix.isdigit() else 1_000_000
    return number, name


def _find_npz(
    name_or_path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None
) -> Path:
    """Resolve a data set name or file path to an existing ``.npz`` file.

    An existing file path wins. A name is looked up in the data folder,
    first exactly (``"6_cardio"`` or ``"6_cardio.npz"``) and then, case
    insensitively, without the numeric prefix (``"cardio"``).
    """
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if len(candidate.parts) > 1:
        raise FileNotFoundError(f"ADBench file not found: {str(candidate)!r}")

    folder = resolve_data_dir(data_dir, _SUBFOLDER, "*.npz")
    name = candidate.name.removesuffix(".npz")
    exact = folder / f"{name}.npz"
    if exact.is_file():
        return exact

    available = list_adbench(folder)
    by_short_name = [n for n in available if _short_name(n).lower() == name.lower()]
    if len(by_short_name) == 1:
        return folder / f"{by_short_name[0]}.npz"
    if len(by_short_name) > 1:
        raise FileNotFoundError(
            f"ADBench name {name!r} is ambiguous in {str(folder)!r}: "
            f"{by_short_name}; pass the full name"
        )

    close = difflib.get_close_matches(name, available, n=3)
    hint = f"; did you mean {close}?" if close else f"; available: {available}"
    raise FileNotFoundError(f"ADBench data set {name!r} not found in {str(folder)!r}{hint}")


def load_adbench(
    name_or_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one ADBench classical data set from its ``.npz`` file.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        Path to an ``.npz`` file, or a data set name looked up in
        ``data_dir``: ``"6_cardio"``, ``"6_cardio.npz"`` or, when unique,
        the name without its numeric prefix (``"cardio"``, any case).
    data_dir : str or os.PathLike, optional
        Folder with the ``.npz`` files, or a folder that contains them in an
        ``adbench_classical`` subfolder. Defaults to ``FFOC_DATA_DIR``.
        Not needed when ``name_or_path`` is an existing file.

    Returns
    -------
    X : numpy.ndarray
        float64 array of shape (n_samples, n_features). Some files store
        integers, which are cast.
    y : numpy.ndarray
        int64 array of shape (n_samples,), 1 = anomaly and 0 = normal.

    Raises
    ------
    FileNotFoundError
        If the file, the data set name or the data folder is not found.
    ValueError
        If the file is not a readable ``.npz`` archive, lacks ``X`` or ``y``,
        needs pickle to load, has mismatched shapes, or has labels other
        than 0 and 1.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.savez(folder / "6_cardio.npz", X=np.ones((4, 2), np.int16), y=np.array([0, 0, 1, 0]))
    >>> X, y = load_adbench("cardio", data_dir=folder)
    >>> X.dtype, y.dtype, X.shape
    (dtype('float64'), dtype('int64'), (4, 2))
    """
    path = _find_npz(name_or_path, data_dir)
    X_raw, y_raw = _read_arrays(path)
    if X_raw.dtype.kind not in "biuf":
        raise ValueError(
            f"ADBench file {str(path)!r} has X of dtype {X_raw.dtype}; expected numbers"
        )
    X = np.asarray(X_raw, dtype=np.float64)
    return X, _check_labels(path, X, y_raw)


# The first bytes of a zip archive (an .npz file, or an empty zip) and of a single .npy array.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    _check_magic(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"failed to read ADBench file {str(path)!r}: {_reason(error)}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"ADBench file {str(path)!r} contains a single array, not an .npz "
            "archive with arrays X and y"
        )

    with archive:
        missing = [key for key in ("X", "y") if key not in archive.files]
        if missing:
            raise ValueError(
                f"ADBench file {str(path)!r} lacks array(s) {missing}; "
                f"it contains {archive.files}"
            )
        arrays = []
        for key in ("X", "y"):
            try:
                arrays.append(archive[key])
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
                raise ValueError(
                    f"failed to read ADBench file {str(path)!r}: {_reason(error, key)}"
                ) from error
        return arrays[0], arrays[1]


def _check_magic(path: Path) -> None:
    """Raise a ValueError unless ``path`` starts like a zip archive or an .npy file.

    Without this check numpy reads any other file as a pickle and suggests
    loading it unsafely, which is misleading for a text file.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(len(_NPY_MAGIC))
    except OSError as error:
        raise ValueError(f"failed to read ADBench file {str(path)!r}: {error}") from error
    if not head:
        raise ValueError(
            f"failed to read ADBench file {str(path)!r}: it is empty (0 bytes); "
            "expected an .npz (zip) archive with arrays X and y"
        )
    if not head.startswith(_ZIP_MAGIC) and not head.startswith(_NPY_MAGIC):
        raise ValueError(
            f"failed to read ADBench file {str(path)!r}: it is not an .npz (zip) archive "
            f"(it starts with {head!r}); expected a file written by numpy.savez with arrays X and y"
        )


def _reason(error: BaseException, key: str | None = None) -> str:
    """Return numpy's error as the reason a file failed to load, without its advice to allow pickle."""
    if "allow_pickle" in str(error) or "pickle" in str(error).lower():
        source = f"array {key}" if key else "the file"
        return (
            f"{source} contains Python objects (pickled data), which are never loaded; "
            "ADBench files contain numeric X and 0/1 y"
        )
    if isinstance(error, zipfile.BadZipFile):
        return f"{error}; the .npz (zip) archive is damaged or cut short"
    return str(error)


def _check_labels(path: Path, X: np.ndarray, y_raw: np.ndarray) -> np.ndarray:
    y_raw = y_raw.reshape(-1) if y_raw.ndim == 2 and 1 in y_raw.shape else y_raw
    if X.ndim != 2 or y_raw.ndim != 1 or X.shape[0] != y_raw.shape[0]:
        raise ValueError(
            f"ADBench file {str(path)!r} has X of shape {X.shape} and y of shape "
            f"{y_raw.shape}; expected (n_samples, n_features) and (n_samples,)"
        )
    values = np.unique(y_raw)
    if not np.isin(values, [0, 1]).all():
        raise ValueError(
            f"ADBench file {str(path)!r} has labels {values[:10].tolist()}; "
            "expected 0 (normal) and 1 (anomaly)"
        )
    return y_raw.astype(np.int64)

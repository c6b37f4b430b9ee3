"""Data folder lookup shared by the file-based loaders."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "default_data_dir", "resolve_data_dir"]

#: Environment variable that names the default data folder.
DATA_DIR_ENV = "FFOC_DATA_DIR"


def default_data_dir() -> Path | None:
    """Return the data folder named by the ``FFOC_DATA_DIR`` environment variable.

    The package never guesses a data location by itself, so loaders that
    need files on disk take a ``data_dir`` argument and fall back to this.

    Returns
    -------
    pathlib.Path or None
        The variable's value with ``~`` expanded, or None when the variable
        is unset or empty. The folder is not checked for existence here.

    Examples
    --------
    >>> import os
    >>> os.environ["FFOC_DATA_DIR"] = "/data/ffoc"
    >>> default_data_dir()
    PosixPath('/data/ffoc')
    >>> del os.environ["FFOC_DATA_DIR"]
    >>> default_data_dir() is None
    True
    """
    value = os.environ.get(DATA_DIR_ENV, "")
    if not value:
        return None
    return Path(value).expanduser()


def resolve_data_dir(
    data_dir: str | os.PathLike[str] | None, subfolder: str, pattern: str
) -> Path:
    """Find the folder that contains one data collection.

    ``data_dir`` may point at the collection itself or at a parent folder
    that contains it as ``subfolder`` (for example ``mnist`` or
    ``adbench_classical``). The parent form is used when ``data_dir`` contains
    no file matching ``pattern`` but ``data_dir / subfolder`` exists.

    Parameters
    ----------
    data_dir : str, os.PathLike or None
        Folder given by the caller; None means :func:`default_data_dir`.
    subfolder : str
        Conventional name of the collection's folder inside a data root.
    pattern : str
        Glob pattern of the collection's files, such as ``"*.npz"``.

    Returns
    -------
    pathlib.Path
        The folder to read files from.

    Raises
    ------
    FileNotFoundError
        If no folder was given and ``FFOC_DATA_DIR`` is unset, or if the
        folder does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "mnist").mkdir()
    >>> resolve_data_dir(root, "mnist", "*.gz") == root / "mnist"
    True
    """
    if data_dir is None:
        data_dir = default_data_dir()
        if data_dir is None:
            raise FileNotFoundError(
                f"no data folder given and {DATA_DIR_ENV} is not set; pass --data-dir on the "
                f"command line (data_dir= in Python) or set {DATA_DIR_ENV}, naming the folder "
                f"that holds the {subfolder!r} files or its parent folder"
            )
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {str(folder)!r}")
    nested = folder / subfolder
    if not any(folder.glob(pattern)) and nested.is_dir():
        return nested
    return folder

"""IDX array files (the MNIST format) and the MNIST loader.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code
and the number of dimensions. One big-endian unsigned 32-bit size per
dimension follows, then the values in row-major order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ffoc.datasets._base import resolve_data_dir

__all__ = ["IDX_DTYPES", "load_idx", "load_mnist", "save_idx"]

#: IDX type code to the big-endian NumPy dtype of the stored values.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
# Read the value block in pieces, so a corrupt header that claims a huge
# size fails on the short read instead of on one huge allocation.
_READ_CHUNK_BYTES = 16 * 1024 * 1024


def _open_maybe_gzip(path: Path) -> BinaryIO:
    """Open ``path`` for reading, decompressing when it starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        is_gzip = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if is_gzip else open(path, "rb")


def _read_exactly(file: BinaryIO, size: int) -> bytearray:
    """Read up to ``size`` bytes; fewer come back only at end of file."""
    data = bytearray()
    while len(data) < size:
        piece = file.read(min(_READ_CHUNK_BYTES, size - len(data)))
        if not piece:
            break
        data += piece
    return data


def _read_header(file: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    magic = file.read(4)
    if len(magic) < 4:
        raise ValueError(
            f"IDX file {str(path)!r} is truncated: {len(magic)} of the 4 magic-number bytes"
        )
    zero_1, zero_2, type_code, ndim = magic
    if zero_1 != 0 or zero_2 != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"IDX file {str(path)!r} has invalid magic number 0x{magic.hex()}; expected "
            "two zero bytes, a type code in "
            f"{[hex(code) for code in IDX_DTYPES]} and at least one dimension"
        )

    size_bytes = file.read(4 * ndim)
    if len(size_bytes) < 4 * ndim:
        raise ValueError(
            f"IDX file {str(path)!r} is truncated in its header: "
            f"{len(size_bytes)} of {4 * ndim} dimension-size bytes"
        )
    shape = struct.unpack(f">{ndim}I", size_bytes)
    return IDX_DTYPES[type_code], shape


def _read_idx(file: BinaryIO, path: Path) -> np.ndarray:
    dtype, shape = _read_header(file, path)
    expected = math.prod(shape) * dtype.itemsize
    data = _read_exactly(file, expected)
    if len(data) < expected:
        raise ValueError(
            f"IDX file {str(path)!r} is truncated: header declares shape {shape} "
            f"({expected} data bytes) but only {len(data)} bytes follow"
        )
    if file.read(1):
        raise ValueError(
            f"IDX file {str(path)!r} is corrupt: bytes remain after the "
            f"{expected} data bytes that its header (shape {shape}) declares"
        )

    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def load_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed.

    Compression is detected from the file's first bytes, not its name.

    Parameters
    ----------
    path : str or os.PathLike
        IDX file, such as ``t10k-images-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        Writable array in native byte order with the shape from the header.
        The dtype follows the type code: 0x08 uint8, 0x09 int8, 0x0B int16,
        0x0C int32, 0x0D float32, 0x0E float64.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the magic number is invalid, the file is shorter or longer than
        its header declares, or the gzip stream is corrupt.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.idx"
    >>> save_idx(path, np.arange(6, dtype=np.int16).reshape(2, 3))
    >>> load_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int16)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {str(path)!r}")
    try:
        with _open_maybe_gzip(path) as file:
            return _read_idx(file, path)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(
            f"IDX file {str(path)!r} has a corrupt or truncated gzip stream: {error}"
        ) from error


def save_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an array as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The file is written atomically (see :func:`ffoc.io.atomic_write`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file. Its folder must exist.
    array : numpy.ndarray
        Array with 1 to 255 dimensions, each below 2**32, and dtype uint8,
        int8, int16, int32, float32 or float64 in any byte order.

    Raises
    ------
    TypeError
        If the dtype has no IDX type code.
    ValueError
        If the number of dimensions or a dimension size is out of range.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
    >>> save_idx(path, np.array([7, 2, 1], dtype=np.uint8))
    >>> load_idx(path).tolist()
    [7, 2, 1]
    """
    from ffoc.io import atomic_write

    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise TypeError(
            f"array dtype {array.dtype} has no IDX type code; cast to uint8, int8, "
            "int16, int32, float32 or float64"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX files support 1 to 255 dimensions, got {array.ndim}")
    if any(size >= 2**32 for size in array.shape):
        raise ValueError(f"IDX dimension sizes must be below 2**32, got shape {array.shape}")

    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()

    path = Path(path)
    with atomic_write(path, "wb") as file:
        if path.name.lower().endswith(".gz"):
            # mtime=0 makes the output identical for identical input.
            with gzip.GzipFile(fileobj=file, mode="wb", mtime=0) as compressed:
                compressed.write(header)
                compressed.write(payload)
        else:
            file.write(header)
            file.write(payload)


def _find_mnist_file(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"MNIST file {stem}.gz (or uncompressed {stem}) not found in {str(folder)!r}"
    )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None, *, kind: str = "t10k"
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images and digit labels from IDX files.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder with the IDX files, or a folder that contains them in an
        ``mnist`` subfolder. Defaults to ``FFOC_DATA_DIR``.
    kind : {"t10k", "train"}, default "t10k"
        Which split to read: the 10,000-image test set
        (``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``) or the
        60,000-image training set (``train-...``). Uncompressed files
        without ``.gz`` are accepted too.

    Returns
    -------
    images : numpy.ndarray
        uint8 array of shape (n_images, 28, 28), values 0 to 255.
    labels : numpy.ndarray
        int64 array of shape (n_images,), digits 0 to 9.

    Raises
    ------
    FileNotFoundError
        If the folder or a file is missing, or no folder was given and
        ``FFOC_DATA_DIR`` is unset.
    ValueError
        If ``kind`` is unknown, a file is corrupt, or the files do not hold
        matching 28x28 uint8 images and 0-9 labels.

    Examples
    --------
    >>> images, labels = load_mnist("data/mnist")  # doctest: +SKIP
    >>> images.shape, labels[:3]  # doctest: +SKIP
    ((10000, 28, 28), array([7, 2, 1]))
    """
    if kind not in ("t10k", "train"):
        raise ValueError(f"kind must be 't10k' or 'train', got {kind!r}")
    folder = resolve_data_dir(data_dir, "mnist", "*-ubyte*")
    images_path = _find_mnist_file(folder, f"{kind}-images-idx3-ubyte")
    labels_path = _find_mnist_file(folder, f"{kind}-labels-idx1-ubyte")
    images = load_idx(images_path)
    labels = load_idx(labels_path)

    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"MNIST images in {str(images_path)!r} have dtype {images.dtype} and shape "
            f"{images.shape}; expected uint8 of shape (n, 28, 28)"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"MNIST labels in {str(labels_path)!r} have dtype {labels.dtype} and shape "
            f"{labels.shape}; expected uint8 of shape ({images.shape[0]},)"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"MNIST labels in {str(labels_path)!r} include {int(labels.max())}; "
            "expected digits 0 to 9"
        )
    return images, labels.astype(np.int64)

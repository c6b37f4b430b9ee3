"""Read and write tables for the command-line interface.

Supported formats, chosen by file suffix (case-insensitive):

* ``.csv``, ``.txt``: comma-separated values;
* ``.tsv``: tab-separated values;
* any of the above followed by ``.gz``: the same, gzip-compressed;
* ``.parquet``, ``.pq``: Apache Parquet.

Every writer in this module goes through :func:`atomic_write`, so a crash
or an exception part-way never leaves a truncated output file behind.
"""

from __future__ import annotations

import csv
import gzip
import os
import secrets
import stat
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow.parquet as pq
from pandas.api.types import is_bool_dtype, is_numeric_dtype

__all__ = [
    "SUPPORTED_SUFFIXES",
    "atomic_write",
    "check_replaceable",
    "iter_table_chunks",
    "read_table",
    "split_features_labels",
    "write_table",
]

#: Table file suffixes understood by :func:`read_table` and :func:`write_table`.
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".csv",
    ".csv.gz",
    ".tsv",
    ".tsv.gz",
    ".txt",
    ".txt.gz",
    ".parquet",
    ".pq",
)

_TEXT_SEPARATORS = {".csv": ",", ".txt": ",", ".tsv": "\t"}
_PARQUET_SUFFIXES = (".parquet", ".pq")

# Errors that pandas, pyarrow and gzip raise for content they cannot parse.
# pandas' ParserError and EmptyDataError, pyarrow's ArrowInvalid and
# UnicodeDecodeError are all ValueError subclasses.
_PARSE_ERRORS = (ValueError, gzip.BadGzipFile, EOFError, zlib.error)


def _table_format(path: Path) -> tuple[str, str | None]:
    """Return ``("parquet", None)`` or ``("text", separator)`` for ``path``."""
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet", None
    base = name[: -len(".gz")] if name.endswith(".gz") else name
    for suffix, separator in _TEXT_SEPARATORS.items():
        if base.endswith(suffix):
            return "text", separator
    raise ValueError(
        f"unsupported table file suffix in {str(path)!r}; "
        f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _existing_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table file not found: {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"table path {str(path)!r} is not a regular file")
    return path


def _check_columns_argument(columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise TypeError(
            f"columns must be a list of column names, got {columns!r}; "
            "wrap a single name in a list"
        )
    return list(columns)


def _check_header_argument(header: bool | None) -> None:
    if header is not None and not isinstance(header, bool):
        raise TypeError(f"header must be True, False or None, got {header!r}")


def _parse(path: Path, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a pandas or pyarrow reader, reporting parse failures as ValueError naming ``path``."""
    try:
        return function(*args, **kwargs)
    except _PARSE_ERRORS as error:
        raise ValueError(f"failed to parse table file {str(path)!r}: {error}") from error


class _LongRowError(ValueError):
    """A data row of a text table has more fields than the header has column names."""


@contextmanager
def _reject_long_rows(path: Path, separator: str) -> Iterator[None]:
    """Raise _LongRowError naming the line when a data row has more fields than the header has column names.

    ``pd.read_csv`` with ``index_col=False`` drops such extra fields with a
    ParserWarning (it accepts one trailing separator on every row), so that
    warning is turned into this error.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Length of header or names", category=pd.errors.ParserWarning)
        try:
            yield
        except pd.errors.ParserWarning:
            raise _LongRowError(
                f"failed to parse table file {str(path)!r}: {_describe_long_row(path, separator)}"
            ) from None


def _describe_long_row(path: Path, separator: str) -> str:
    """Return a message naming the first line with more fields than the header, for :func:`_reject_long_rows`."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=separator)
        header = next((fields for fields in reader if fields), [])
        for fields in reader:
            if len(fields) > len(header) and any(field.strip() for field in fields[len(header):]):
                return (
                    f"line {reader.line_num} has {len(fields)} fields, but the header names {len(header)} columns. "
                    "Remove the extra fields or name every column in the header."
                )
    return "some rows have more fields than the header has column names. Remove the extra fields or name every column."


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _infer_header(path: Path, separator: str) -> bool:
    """Guess whether the first row of a text table is a header.

    The first row is taken as a header unless every field in it parses as a
    number, so a header made only of numbers is read as data.
    """
    first_row = _parse(
        path,
        pd.read_csv,
        path,
        sep=separator,
        header=None,
        nrows=1,
        dtype=str,
        keep_default_na=False,
    )
    return not all(_looks_numeric(value) for value in first_row.iloc[0])


def _text_column_names(path: Path, separator: str, header: bool) -> list[str]:
    if header:
        names = _parse(path, pd.read_csv, path, sep=separator, nrows=0).columns
        return [str(name) for name in names]
    first_row = _parse(path, pd.read_csv, path, sep=separator, header=None, nrows=1, dtype=str)
    return [str(position) for position in range(first_row.shape[1])]


def _raise_missing_columns(path: Path, requested: list[str], available: list[str]) -> None:
    missing = [name for name in requested if name not in available]
    if missing:
        raise ValueError(
            f"column(s) {missing} not found in {str(path)!r}; "
            f"available columns: {available}"
        )


def _check_parquet_columns(path: Path, columns: list[str] | None) -> None:
    if columns is not None:
        available = list(_parse(path, pq.read_schema, path).names)
        _raise_missing_columns(path, columns, available)


def _text_reader_arguments(
    path: Path, separator: str, columns: list[str] | None, header: bool | None
) -> tuple[dict[str, Any], bool]:
    """Build ``pd.read_csv`` keyword arguments for a text table.

    Return the arguments and whether the file has a header row. Without a
    header row, columns are named by their 0-based position as strings
    (``"0"``, ``"1"``, ...), and ``columns`` selects by those names.
    """
    has_header = _infer_header(path, separator) if header is None else header
    # index_col=False: pandas would otherwise take the first field of every row as the index when
    # the data rows have one more field than the header.
    arguments: dict[str, Any] = {"sep": separator, "header": 0 if has_header else None, "index_col": False}
    if columns is not None:
        available = _text_column_names(path, separator, has_header)
        _raise_missing_columns(path, columns, available)
        if has_header:
            arguments["usecols"] = columns
        else:
            arguments["usecols"] = [int(name) for name in columns]
    return arguments, has_header


def _finish_text_frame(
    frame: pd.DataFrame, has_header: bool, columns: list[str] | None
) -> pd.DataFrame:
    if not has_header:
        frame.columns = [str(position) for position in frame.columns]
    if frame.shape[1] == 1:
        name = str(frame.columns[0])
        for separator, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if separator in name:
                raise ValueError(
                    f"the file has one column named {name!r}, so it looks {label}-separated; ffoc reads "
                    "comma-separated .csv and tab-separated .tsv files. Convert it to commas or rename it .tsv."
                )
    if columns is not None:
        # usecols keeps the file's column order, so restore the requested order.
        frame = frame[columns]
    return frame


def read_table(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    header: bool | None = True,
) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file into a DataFrame.

    Parameters
    ----------
    path : str or os.PathLike
        File to read. The suffix selects the format: ``.csv``, ``.txt``
        (comma-separated), ``.tsv`` (tab-separated), each optionally
        followed by ``.gz``, or ``.parquet`` / ``.pq``.
    columns : sequence of str, optional
        Names of the columns to read, in the order wanted. All columns
        are read when omitted.
    header : bool or None, default True
        For text files only: ``True`` if the first row contains column names,
        ``False`` if it is data, ``None`` to guess (the first row is a
        header unless all of its fields are numbers). Without a header row,
        columns are named ``"0"``, ``"1"``, ... by position. Parquet files
        always carry names, so this argument is ignored for them.

    Returns
    -------
    pandas.DataFrame
        The table, with pandas' default dtype inference.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or is not a regular file.
    ValueError
        If the suffix is not supported, a requested column is missing, or
        the file cannot be parsed; the message names the file.
    TypeError
        If ``columns`` is a single string or ``header`` is not a bool or None.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}).to_csv(folder / "t.csv", index=False)
    >>> read_table(folder / "t.csv", columns=["b"])
         b
    0  0.5
    1  1.5
    """
    path = _existing_file(path)
    kind, separator = _table_format(path)
    columns = _check_columns_argument(columns)
    _check_header_argument(header)

    if kind == "parquet":
        _check_parquet_columns(path, columns)
        return _parse(path, pd.read_parquet, path, columns=columns)

    arguments, has_header = _text_reader_arguments(path, separator, columns, header)
    with _reject_long_rows(path, separator):
        frame = _parse(path, pd.read_csv, path, **arguments)
    return _finish_text_frame(frame, has_header, columns)


def _check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(
            f"chunk_size must be a positive int, got {chunk_size!r} "
            f"of type {type(chunk_size).__name__}"
        )
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}")
    return chunk_size


def iter_table_chunks(
    path: str | os.PathLike[str],
    chunk_size: int,
    *,
    columns: Sequence[str] | None = None,
    header: bool | None = True,
) -> Iterator[pd.DataFrame]:
    """Read a table in chunks of at most ``chunk_size`` rows.

    Only one chunk is held in memory at a time, so peak memory depends on
    ``chunk_size`` and not on the file size. Text files are read with
    pandas' ``chunksize`` and Parquet files with
    :meth:`pyarrow.parquet.ParquetFile.iter_batches`.

    Parameters
    ----------
    path : str or os.PathLike
        File to read, with a suffix from :data:`SUPPORTED_SUFFIXES`.
    chunk_size : int
        Maximum number of rows per chunk, at least 1. Parquet chunks can be
        shorter at row-group boundaries.
    columns : sequence of str, optional
        Names of the columns to read, in the order wanted.
    header : bool or None, default True
        As in :func:`read_table`; ignored for Parquet.

    Returns
    -------
    iterator of pandas.DataFrame
        Consecutive chunks. Their index continues across chunks
        (``0 .. n-1`` over the whole file), so ``pd.concat`` of all chunks
        equals :func:`read_table` of the file. An empty table yields no chunk.

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        As in :func:`read_table`. This call raises them for a missing file,
        an unsupported suffix, a missing column or an invalid
        ``chunk_size``. Parse errors further into the file are raised while
        iterating.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> pd.DataFrame({"a": range(5)}).to_csv(path, index=False)
    >>> [len(chunk) for chunk in iter_table_chunks(path, 2)]
    [2, 2, 1]
    """
    path = _existing_file(path)
    kind, separator = _table_format(path)
    chunk_size = _check_chunk_size(chunk_size)
    columns = _check_columns_argument(columns)
    _check_header_argument(header)

    # Validate here, before building the generator, so that errors surface at
    # this call and not at the first next().
    if kind == "parquet":
        _check_parquet_columns(path, columns)
        return _iter_parquet_chunks(path, chunk_size, columns)
    arguments, has_header = _text_reader_arguments(path, separator, columns, header)
    return _iter_text_chunks(path, chunk_size, arguments, has_header, columns)


def _iter_text_chunks(
    path: Path,
    chunk_size: int,
    arguments: dict[str, Any],
    has_header: bool,
    columns: list[str] | None,
) -> Iterator[pd.DataFrame]:
    try:
        with pd.read_csv(path, chunksize=chunk_size, **arguments) as reader:
            while True:
                # The filter of _reject_long_rows must not stay in place while this generator is suspended.
                with _reject_long_rows(path, arguments["sep"]):
                    chunk = next(reader, None)
                if chunk is None:
                    break
                yield _finish_text_frame(chunk, has_header, columns)
    except _LongRowError:
        raise
    except _PARSE_ERRORS as error:
        raise ValueError(f"failed to parse table file {str(path)!r}: {error}") from error


def _iter_parquet_chunks(
    path: Path, chunk_size: int, columns: list[str] | None
) -> Iterator[pd.DataFrame]:
    start = 0
    try:
        with pq.ParquetFile(path) as parquet_file:
            for batch in parquet_file.iter_batches(batch_size=chunk_size, columns=columns):
                chunk = batch.to_pandas()
                chunk.index = pd.RangeIndex(start, start + len(chunk))
                start += len(chunk)
                yield chunk
    except _PARSE_ERRORS as error:
        raise ValueError(f"failed to parse table file {str(path)!r}: {error}") from error


def _find_column(df: pd.DataFrame, label_column: Any) -> Any:
    """Return the column key of ``df`` that ``label_column`` names.

    An exact match wins. Otherwise a column whose ``str()`` equals
    ``str(label_column)`` is accepted, so the command-line value ``"4"``
    finds an integer column name ``4`` and the other way round.
    """
    if label_column in df.columns:
        return label_column
    matches = [column for column in df.columns if str(column) == str(label_column)]
    if len(matches) == 1:
        return matches[0]
    available = [str(column) for column in df.columns]
    raise ValueError(
        f"label column {label_column!r} not found; available columns: {available}"
    )


def _normal_row_mask(labels: pd.Series, normal_label: Any) -> pd.Series:
    """Mark the rows whose label equals ``normal_label``.

    Numeric columns compare numerically, so ``"0"`` matches ``0`` and
    ``0.0``. Other columns, booleans included, compare as strings.
    """
    if is_numeric_dtype(labels) and not is_bool_dtype(labels):
        try:
            number = float(normal_label)
        except (TypeError, ValueError):
            raise ValueError(
                f"normal_label {normal_label!r} is not a number, but label column "
                f"{labels.name!r} is numeric ({labels.dtype}); pass one of its values"
            ) from None
        return labels == number
    return labels.astype(str) == str(normal_label)


def split_features_labels(
    df: pd.DataFrame,
    label_column: Any = None,
    normal_label: Any = None,
) -> tuple[pd.DataFrame, pd.Series | None]:
    """Split a table into features and labels, optionally keeping normal rows only.

    Parameters
    ----------
    df : pandas.DataFrame
        Table with features and, optionally, a label column.
    label_column : hashable, optional
        Name of the label column. A name whose string form matches a
        column's string form is accepted too (``"4"`` finds column ``4``).
        Without it, every column is a feature and the labels are None.
    normal_label : object, optional
        When given, keep only the rows whose label equals it. Numeric label
        columns compare numerically (``"0"`` matches ``0``); other columns
        compare string forms. Requires ``label_column``.

    Returns
    -------
    X : pandas.DataFrame
        The feature columns of the kept rows, with their original index.
    y : pandas.Series or None
        The labels of the kept rows, or None without ``label_column``.

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame.
    ValueError
        If the label column is missing (the message lists the columns), if
        ``normal_label`` is given without ``label_column`` or is not a
        number for a numeric column, if no row has the normal label, or if
        no feature column is left.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [0.1, 0.2, 0.3], "class": [0, 1, 0]})
    >>> X, y = split_features_labels(df, "class", normal_label="0")
    >>> X["x"].tolist(), y.tolist()
    ([0.1, 0.3], [0, 0])
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if label_column is None:
        if normal_label is not None:
            raise ValueError(
                f"normal_label={normal_label!r} needs label_column; "
                "name the column that contains the labels"
            )
        return df, None

    column = _find_column(df, label_column)
    features = df.drop(columns=[column])
    labels = df[column]
    if features.shape[1] == 0:
        raise ValueError(
            f"table has no feature columns besides label column {label_column!r}"
        )
    if normal_label is None:
        return features, labels

    mask = _normal_row_mask(labels, normal_label)
    if not mask.any():
        present = sorted(labels.astype(str).unique().tolist())[:20]
        raise ValueError(
            f"no row has normal_label {normal_label!r} in column {label_column!r}; "
            f"labels present include: {present}"
        )
    return features[mask], labels[mask]


def _fsync_directory(folder: Path) -> None:
    """Flush a folder entry to disk so a completed rename survives a crash.

    Only POSIX systems can open a folder for fsync, so elsewhere this does
    nothing. Some file systems reject fsync on a folder, and that error is
    ignored because the file itself is already complete and in place.
    """
    if os.name != "posix":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _create_temporary_file(path: Path) -> tuple[int, Path]:
    """Create a new empty file beside ``path`` and return its descriptor and path.

    The file is created with mode 0o666 so the process umask applies, as it
    would for ``open(path, "w")``; ``tempfile.mkstemp`` would force 0o600.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        # A short name, so that a target name near the file system's limit still fits.
        temporary = path.with_name(f".ffoc-{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


@contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a file for writing that appears at ``path`` only when complete.

    The body writes to a temporary file in the same folder. When the body
    finishes without error, the file is flushed, fsynced and moved onto
    ``path`` with :func:`os.replace`, which is atomic on POSIX and Windows
    when both names are on one file system. When the body raises, the
    temporary file is deleted, any existing file at ``path`` is left as it
    was, and the exception propagates.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file. Its folder must exist.
    mode : {"wb", "w", "wt"}, default "wb"
        Binary or text mode.
    encoding : str, optional
        Text encoding, UTF-8 when omitted; text mode only.
    newline : str, optional
        Passed to :func:`open`; text mode only.

    Yields
    ------
    file object
        The open temporary file.

    Raises
    ------
    ValueError
        If ``mode`` is not a write mode listed above, ``encoding`` or
        ``newline`` is given in binary mode, or ``path`` is a device, pipe or
        socket.
    FileNotFoundError
        If the destination folder does not exist.
    IsADirectoryError, PermissionError
        If ``path`` is a folder, or a read-only file.

    Notes
    -----
    A new file gets the permissions that the process umask gives; a
    replaced file keeps its previous permission bits. A symbolic link is
    followed: the file it names is replaced and the link stays.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.bin"
    >>> with atomic_write(path) as file:
    ...     _ = file.write(b"weights")
    >>> path.read_bytes()
    b'weights'
    """
    if mode not in ("wb", "w", "wt"):
        raise ValueError(f"mode must be 'wb', 'w' or 'wt', got {mode!r}")
    binary = mode == "wb"
    if binary and (encoding is not None or newline is not None):
        raise ValueError("encoding and newline apply to text mode only; use mode='w'")

    path = Path(path)
    if path.is_symlink():
        # Write through the link to the file it names, so the checks below apply to that file.
        path = Path(os.path.realpath(path))
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"folder {str(folder)!r} for output file {path.name!r} does not exist; "
            "create it first"
        )

    check_replaceable(path)

    descriptor, temporary = _create_temporary_file(path)
    try:
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        if binary:
            file = os.fdopen(descriptor, "wb")
        else:
            file = os.fdopen(descriptor, "w", encoding=encoding or "utf-8", newline=newline)
    except BaseException:
        os.close(descriptor)
        temporary.unlink(missing_ok=True)
        raise

    try:
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(folder)


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Raise unless ``path`` is missing or a regular file that its owner may write.

    :func:`atomic_write` calls it; call it before long work to fail early.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> check_replaceable(pathlib.Path(tempfile.mkdtemp()) / "new.csv") is None
    True
    """
    path = Path(path)
    if not path.exists():
        return
    if path.is_dir():
        raise IsADirectoryError(f"output path {str(path)!r} is a folder; give a file name inside it")
    if not path.is_file():
        raise ValueError(
            f"output path {str(path)!r} is not a regular file (a device, pipe or socket); give a file name"
        )
    if not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        raise PermissionError(
            f"output file {str(path)!r} is read-only; make it writable (chmod u+w) or choose another name"
        )


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    index: bool = False,
) -> None:
    """Write a DataFrame as CSV, TSV or Parquet, chosen by suffix, atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        Table to write.
    path : str or os.PathLike
        Destination with a suffix from :data:`SUPPORTED_SUFFIXES`; a
        ``.gz`` ending writes gzip-compressed text. Its folder must exist.
    index : bool, default False
        Whether to write the DataFrame index as well.

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame.
    ValueError
        If the suffix is not supported.
    FileNotFoundError
        If the destination folder does not exist.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scores.parquet"
    >>> write_table(pd.DataFrame({"score": [0.1, 0.9]}), path)
    >>> read_table(path)["score"].tolist()
    [0.1, 0.9]
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    path = Path(path)
    kind, separator = _table_format(path)

    with atomic_write(path, "wb") as file:
        if kind == "parquet":
            df.to_parquet(file, index=index)
        else:
            compression = "gzip" if path.name.lower().endswith(".gz") else None
            df.to_csv(file, sep=separator, index=index, compression=compression)

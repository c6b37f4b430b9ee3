"""Tests for ffoc.io: table reading, chunked reading, labels and atomic writes."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ffoc.io import (
    SUPPORTED_SUFFIXES,
    atomic_write,
    iter_table_chunks,
    read_table,
    split_features_labels,
    write_table,
)


def _sample_frame(n_rows: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x0": np.arange(n_rows, dtype=np.float64) / 4,
            "x1": np.arange(n_rows, dtype=np.int64) * 3,
            "label": np.arange(n_rows) % 3,
        }
    )


def _leftover_files(folder: Path, keep: set[str]) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name not in keep)


# --- read_table -------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv", ".txt", ".parquet", ".pq"])
def test_read_table_round_trip_each_format(tmp_path, suffix):
    frame = _sample_frame()
    path = tmp_path / f"table{suffix}"
    write_table(frame, path)
    pd.testing.assert_frame_equal(read_table(path), frame)


def test_read_table_selects_columns_in_requested_order(tmp_path):
    frame = _sample_frame()
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"table{suffix}"
        write_table(frame, path)
        selected = read_table(path, columns=["label", "x0"])
        assert list(selected.columns) == ["label", "x0"], suffix
        pd.testing.assert_series_equal(selected["x0"], frame["x0"])


def test_read_table_tsv_uses_tabs(tmp_path):
    path = tmp_path / "table.tsv"
    path.write_text("a\tb\n1\t2\n3\t4\n")
    frame = read_table(path)
    assert list(frame.columns) == ["a", "b"]
    assert frame["b"].tolist() == [2, 4]


def test_read_table_without_header(tmp_path):
    path = tmp_path / "banknote.txt"
    path.write_text("3.6,8.6,0\n4.5,8.1,1\n")
    frame = read_table(path, header=False)
    assert list(frame.columns) == ["0", "1", "2"]
    assert frame.shape == (2, 3)
    assert read_table(path, header=False, columns=["2"])["2"].tolist() == [0, 1]


def test_read_table_infers_header(tmp_path):
    with_header = tmp_path / "with_header.csv"
    with_header.write_text("a,b\n1,2\n")
    without_header = tmp_path / "without_header.csv"
    without_header.write_text("1,2\n3,4\n")

    assert list(read_table(with_header, header=None).columns) == ["a", "b"]
    inferred = read_table(without_header, header=None)
    assert list(inferred.columns) == ["0", "1"]
    assert len(inferred) == 2


def test_read_table_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="table file not found.*absent.csv"):
        read_table(tmp_path / "absent.csv")


def test_read_table_unknown_suffix_raises(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"unsupported table file suffix.*\.csv, \.csv\.gz"):
        read_table(path)


def test_read_table_unparsable_files_raise(tmp_path):
    bad_parquet = tmp_path / "bad.parquet"
    bad_parquet.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="failed to parse table file.*bad.parquet"):
        read_table(bad_parquet)

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5,6\n")
    ragged_message = "failed to parse table file.*ragged.csv.*Expected 2 fields"
    with pytest.raises(ValueError, match=ragged_message):
        read_table(ragged)

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="failed to parse table file.*empty.csv"):
        read_table(empty)

    fake_gzip = tmp_path / "fake.csv.gz"
    fake_gzip.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="failed to parse table file.*fake.csv.gz"):
        read_table(fake_gzip)


def test_read_table_missing_column_raises(tmp_path):
    path = tmp_path / "table.csv"
    write_table(_sample_frame(), path)
    with pytest.raises(ValueError, match=r"column\(s\) \['z'\] not found.*available columns"):
        read_table(path, columns=["x0", "z"])
    with pytest.raises(TypeError, match="wrap a single name in a list"):
        read_table(path, columns="x0")


# --- iter_table_chunks ------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_iter_table_chunks_reassembles_table(tmp_path, suffix):
    frame = _sample_frame(23)
    path = tmp_path / f"table{suffix}"
    write_table(frame, path)

    chunks = list(iter_table_chunks(path, 5))
    assert [len(chunk) for chunk in chunks] == [5, 5, 5, 5, 3]
    pd.testing.assert_frame_equal(pd.concat(chunks), frame)


def test_iter_table_chunks_parquet_row_groups(tmp_path):
    frame = _sample_frame(20)
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=7)

    chunks = list(iter_table_chunks(path, 4, columns=["x1"]))
    assert all(len(chunk) <= 4 for chunk in chunks)
    assert all(list(chunk.columns) == ["x1"] for chunk in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks), frame[["x1"]])


def test_iter_table_chunks_csv_columns_and_no_header(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("".join(f"{i},{i * 2},{i % 2}\n" for i in range(7)))
    chunks = list(iter_table_chunks(path, 3, columns=["2", "0"], header=False))
    combined = pd.concat(chunks)
    assert list(combined.columns) == ["2", "0"]
    assert combined["0"].tolist() == list(range(7))


@pytest.mark.parametrize(
    ("chunk_size", "error", "message"),
    [
        (0, ValueError, "positive int, got 0"),
        (-3, ValueError, "positive int, got -3"),
        (2.5, TypeError, "positive int, got 2.5"),
        (True, TypeError, "positive int, got True"),
    ],
)
def test_iter_table_chunks_invalid_chunk_size_raises(tmp_path, chunk_size, error, message):
    path = tmp_path / "table.csv"
    write_table(_sample_frame(), path)
    with pytest.raises(error, match=message):
        iter_table_chunks(path, chunk_size)


def test_iter_table_chunks_validates_before_iteration(tmp_path):
    path = tmp_path / "table.parquet"
    write_table(_sample_frame(), path)
    # The errors come from the call itself, without calling next().
    with pytest.raises(ValueError, match=r"column\(s\) \['missing'\] not found"):
        iter_table_chunks(path, 2, columns=["missing"])
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        iter_table_chunks(tmp_path / "absent.csv", 2)


def test_iter_table_chunks_parse_error_names_file(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n" + "1,2\n" * 5 + "1,2,3\n")
    with pytest.raises(ValueError, match="failed to parse table file.*ragged.csv"):
        list(iter_table_chunks(path, 2))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_read_table_long_row_names_line(tmp_path, suffix):
    path = tmp_path / f"long{suffix}"
    text = "a,b\n1,2,3\n4,5\n"
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    message = r"failed to parse table file .*long.* line 2 has 3 fields, but the header names 2 columns"
    with pytest.raises(ValueError, match=message):
        read_table(path)
    with pytest.raises(ValueError, match=message):
        list(iter_table_chunks(path, 1))


def test_iter_table_chunks_long_row_in_later_chunk(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a,b\n1,2,\n3,4,\n5,6,7\n")
    with pytest.raises(ValueError, match=r"long\.csv': line 4 has 3 fields") as caught:
        list(iter_table_chunks(path, 2))
    assert str(caught.value).count("failed to parse") == 1


def test_read_table_first_field_stays_a_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,,\n")
    frame = read_table(path)
    assert frame.index.tolist() == [0]
    assert frame["a"].tolist() == [1]
    assert np.isnan(frame["b"][0])


def test_read_table_trailing_separator_on_every_row(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("a,b\n1,2,\n3,4,\n")
    frame = read_table(path)
    assert list(frame.columns) == ["a", "b"]
    assert frame.to_numpy().tolist() == [[1, 2], [3, 4]]


# --- split_features_labels --------------------------------------------------


def test_split_features_labels_separates_column():
    frame = _sample_frame(6)
    X, y = split_features_labels(frame, "label")
    assert list(X.columns) == ["x0", "x1"]
    assert y.tolist() == [0, 1, 2, 0, 1, 2]


def test_split_features_labels_without_label_column():
    frame = _sample_frame(3)
    X, y = split_features_labels(frame)
    assert X is frame
    assert y is None


def test_split_features_labels_filters_numeric_normal_label():
    frame = _sample_frame(6)
    for normal_label in ("0", 0, 0.0):
        X, y = split_features_labels(frame, "label", normal_label=normal_label)
        assert X.index.tolist() == [0, 3], normal_label
        assert y.tolist() == [0, 0]


def test_split_features_labels_filters_string_labels():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "kind": ["genuine", "forged", "genuine"]})
    X, y = split_features_labels(frame, "kind", normal_label="genuine")
    assert X["x"].tolist() == [1.0, 3.0]
    assert y.tolist() == ["genuine", "genuine"]


def test_split_features_labels_matches_positional_column_name():
    frame = pd.DataFrame({0: [0.5, 0.6], 1: [0, 1]})
    X, y = split_features_labels(frame, "1", normal_label="1")
    assert list(X.columns) == [0]
    assert y.tolist() == [1]


def test_split_features_labels_errors():
    frame = _sample_frame(6)
    missing_column = r"label column 'class' not found; available columns: \['x0', 'x1', 'label'\]"
    with pytest.raises(ValueError, match=missing_column):
        split_features_labels(frame, "class")
    with pytest.raises(ValueError, match="no row has normal_label '7'.*labels present include"):
        split_features_labels(frame, "label", normal_label="7")
    with pytest.raises(ValueError, match="'genuine' is not a number"):
        split_features_labels(frame, "label", normal_label="genuine")
    with pytest.raises(ValueError, match="needs label_column"):
        split_features_labels(frame, normal_label=0)
    with pytest.raises(ValueError, match="no feature columns"):
        split_features_labels(frame[["label"]], "label")
    with pytest.raises(TypeError, match="must be a pandas DataFrame, got ndarray"):
        split_features_labels(np.zeros((2, 2)), "label")


# --- atomic_write and write_table -------------------------------------------


def test_atomic_write_replaces_file_on_success(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as file:
        file.write(b"new")
        assert path.read_bytes() == b"old"  # Not visible until the body finishes.
    assert path.read_bytes() == b"new"
    assert _leftover_files(tmp_path, {"model.bin"}) == []


def test_atomic_write_keeps_old_file_when_body_raises(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path) as file:
            file.write(b"partial")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old contents"
    assert _leftover_files(tmp_path, {"model.bin"}) == []


def test_atomic_write_creates_nothing_when_body_raises(tmp_path):
    path = tmp_path / "new.csv"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, "w") as file:
            file.write("a,b\n")
            raise KeyboardInterrupt
    assert not path.exists()
    assert _leftover_files(tmp_path, set()) == []


def test_atomic_write_text_mode(tmp_path):
    path = tmp_path / "notes.txt"
    with atomic_write(path, "w", encoding="utf-8") as file:
        file.write("größe\n")
    assert path.read_text(encoding="utf-8") == "größe\n"


def test_atomic_write_keeps_permissions_of_replaced_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    path.chmod(0o640)
    with atomic_write(path, "w") as file:
        file.write('{"a": 1}')
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_atomic_write_invalid_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'wb', 'w' or 'wt', got 'ab'"):
        with atomic_write(tmp_path / "a", "ab"):
            pass
    with pytest.raises(ValueError, match="text mode only"):
        with atomic_write(tmp_path / "a", "wb", encoding="utf-8"):
            pass
    missing_folder = "folder .*missing.* does not exist; create it first"
    with pytest.raises(FileNotFoundError, match=missing_folder):
        with atomic_write(tmp_path / "missing" / "a.bin"):
            pass


def test_write_table_gzip_csv_is_compressed(tmp_path):
    path = tmp_path / "scores.csv.gz"
    write_table(_sample_frame(4), path)
    with gzip.open(path, "rt") as file:
        assert file.readline().strip() == "x0,x1,label"


def test_write_table_failure_keeps_old_file(tmp_path):
    path = tmp_path / "scores.parquet"
    write_table(_sample_frame(3), path)
    before = path.read_bytes()
    mixed = pd.DataFrame({"a": [1, "x"]})  # pyarrow cannot store a mixed object column.
    with pytest.raises(ValueError, match="Could not convert 'x'"):
        write_table(mixed, path)
    assert path.read_bytes() == before
    assert _leftover_files(tmp_path, {"scores.parquet"}) == []


def test_write_table_unknown_suffix_raises(tmp_path):
    with pytest.raises(ValueError, match="unsupported table file suffix.*scores.json"):
        write_table(_sample_frame(2), tmp_path / "scores.json")
    assert ".parquet" in SUPPORTED_SUFFIXES


def test_read_table_semicolon_file_says_separator(tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text("a;b;c\n1;2;3\n4;5;6\n", encoding="utf-8")
    with pytest.raises(ValueError, match="looks semicolon-separated"):
        read_table(path)


def test_atomic_write_follows_symbolic_link(tmp_path):
    target = tmp_path / "target.bin"
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with atomic_write(link) as file:
        file.write(b"new")
    assert link.is_symlink()
    assert target.read_bytes() == b"new"

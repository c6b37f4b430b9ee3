"""Input checks with messages that name the offending value and the fix."""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "check_numeric_frame", "check_finite_array", "check_no_bool_numbers", "resolve_device", "describe_location",
]


def _column_name(X, column: int) -> str:
    columns = getattr(X, "columns", None)
    if columns is not None:
        return f"column {columns[column]!r}"
    return f"column {column}"


def describe_location(X, row: int, column: int) -> str:
    """Return ``"row R, column C"`` with the column's name when ``X`` has one."""
    index = getattr(X, "index", None)
    if index is None:
        row_label = f"row {row}"
    else:
        label = index[row]
        # A numpy scalar's repr is np.int64(1) since numpy 2; show the plain value.
        row_label = f"row {(label.item() if isinstance(label, np.generic) else label)!r}"
    return f"{row_label}, {_column_name(X, column)}"


def check_numeric_frame(X, estimator_name: str) -> None:
    """Raise ValueError naming the non-numeric columns of a DataFrame."""
    if not hasattr(X, "columns") or not hasattr(X, "dtypes"):
        return
    if len(X) == 0:
        raise ValueError(
            f"{estimator_name} got a table with columns but no rows ({X.shape[1]} column(s)). "
            "Pass at least one row of data."
        )
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    bad = [
        f"{name!r} ({dtype})"
        for name, dtype in zip(X.columns, X.dtypes)
        if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype))
    ]
    if bad:
        raise ValueError(
            f"{estimator_name} needs numeric features, but these columns are not numeric: "
            f"{', '.join(bad)}. Encode them as numbers (for example with "
            "sklearn.preprocessing.OrdinalEncoder) or drop them."
        )


def check_finite_array(X_original, X: np.ndarray, estimator_name: str) -> None:
    """Raise ValueError naming the first NaN or infinite value of ``X``."""
    finite = np.isfinite(X)
    if finite.all():
        return
    rows, columns = np.nonzero(~finite)
    row, column = int(rows[0]), int(columns[0])
    value = X[row, column]
    count = int((~finite).sum())
    kind = "NaN" if np.isnan(value) else str(value)
    raise ValueError(
        f"{estimator_name} got {count} non-finite value(s) in X; the first is {kind} at "
        f"{describe_location(X_original, row, column)}. Impute missing values (for example "
        "with sklearn.impute.SimpleImputer) or drop those rows; replace infinities with finite values."
    )


def check_no_bool_numbers(constraints: dict, params: dict, estimator_name: str) -> None:
    """Raise InvalidParameterError for a bool given to a numeric parameter.

    scikit-learn's ``Interval`` constraints accept bools, because ``bool`` is a
    subclass of ``int``: ``epochs=True`` would train for one epoch. A parameter
    counts as numeric when one of its constraints is an ``Interval`` and none
    accepts bools (such as ``"boolean"`` or ``"verbose"``).

    Parameters
    ----------
    constraints : dict
        The estimator's ``_parameter_constraints``.
    params : dict
        The parameter values, from ``get_params(deep=False)``.
    estimator_name : str
        Class name for the message.

    Raises
    ------
    InvalidParameterError
        A subclass of both ValueError and TypeError, as scikit-learn raises for
        other invalid parameters.
    """
    from sklearn.utils._param_validation import Interval, InvalidParameterError, make_constraint

    for name, options in constraints.items():
        value = params.get(name)
        if not isinstance(value, bool):
            continue
        parsed = [make_constraint(option) for option in options]
        if any(isinstance(option, Interval) for option in parsed) and not any(
            option.is_satisfied_by(value) for option in parsed if not isinstance(option, Interval)
        ):
            allowed = " or ".join(str(option) for option in parsed)
            raise InvalidParameterError(
                f"The {name!r} parameter of {estimator_name} must be {allowed}, not a bool (got {value!r}). "
                "Pass a number instead."
            )


def resolve_device(device) -> torch.device:
    """Return the torch device for ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    Raises
    ------
    ValueError
        If CUDA is requested and not available, or the string is not a device.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu', 'cuda' or 'auto'; got {device!r}.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested, but CUDA is not available on this machine. "
                "Use device='cpu' or device='auto'."
            )
        parsed = torch.device(device)
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested, but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
        return parsed
    if device == "cpu":
        return torch.device("cpu")
    raise ValueError(f"Unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'.")

"""Train, validation and test splits for one-class anomaly detection.

Conventions shared by every function here:

* ``y`` passed in may use any labels; ``normal_label`` names the normal
  class and every other label counts as an anomaly.
* Returned labels are binary int64: 1 = anomaly, 0 = normal.
* ``random_state`` follows scikit-learn: an int gives reproducible splits,
  None draws from NumPy's global generator, and a ``RandomState`` instance
  is advanced by the call.
* Index arrays are sorted ascending, so rows keep their original order
  inside each part.

:func:`stratified_split` returns index arrays only. The protocol functions
:func:`one_class_split`, :func:`novelty_split` and :func:`unsupervised_split`
return a :class:`DataSplit` that contains both the arrays and the indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

__all__ = [
    "DataSplit",
    "novelty_split",
    "one_class_split",
    "stratified_split",
    "unsupervised_split",
]

RandomStateLike = int | np.random.RandomState | None


# eq=False: comparing NumPy array fields with == has no single truth value.
@dataclass(frozen=True, repr=False, eq=False)
class DataSplit:
    """Arrays and row indices of one train / validation / test split.

    Attributes
    ----------
    X_train, y_train : numpy.ndarray
        Training rows and their binary labels (1 = anomaly). In
        :func:`one_class_split` and :func:`novelty_split` every training
        label is 0.
    X_val, y_val : numpy.ndarray or None
        Validation rows and labels, or None for protocols without a
        validation part.
    X_test, y_test : numpy.ndarray
        Test rows and labels.
    train_index, val_index, test_index : numpy.ndarray
        Sorted int64 row positions in the ``X`` and ``y`` given to the
        split function; ``val_index`` is None when there is no validation part.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray | None
    test_index: np.ndarray

    def __repr__(self) -> str:
        parts = [f"train={len(self.train_index)}"]
        if self.val_index is not None:
            parts.append(f"val={len(self.val_index)}")
        parts.append(f"test={len(self.test_index)}")
        return f"DataSplit({', '.join(parts)})"


def _check_labels(y: ArrayLike, n_samples: int | None = None) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {labels.shape}")
    if n_samples is not None and labels.shape[0] != n_samples:
        raise ValueError(
            f"X has {n_samples} rows but y has {labels.shape[0]} labels; "
            "pass one label per row"
        )
    if labels.shape[0] == 0:
        raise ValueError("y is empty; pass at least one labelled row")
    return labels


def _check_features(X: ArrayLike) -> np.ndarray:
    features = np.asarray(X)
    if features.ndim == 0:
        raise ValueError("X must have one row per sample, got a scalar")
    return features


def _binary_anomaly_labels(labels: np.ndarray, normal_label: Any) -> np.ndarray:
    is_normal = labels == normal_label
    if not is_normal.any():
        present = np.unique(labels)[:20].tolist()
        raise ValueError(
            f"no row has normal_label {normal_label!r}; labels present include {present}"
        )
    return (~is_normal).astype(np.int64)


def _features_and_target(X: ArrayLike, y: ArrayLike, normal_label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``X`` as an array and ``y`` as binary labels (1 = anomaly), both checked."""
    features = _check_features(X)
    labels = _check_labels(y, features.shape[0])
    return features, _binary_anomaly_labels(labels, normal_label)


def _data_split(
    features: np.ndarray,
    target: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    val: np.ndarray | None = None,
) -> DataSplit:
    """Return the DataSplit of the given row indices; the validation part is None without ``val``."""
    return DataSplit(
        X_train=features[train],
        y_train=target[train],
        X_val=None if val is None else features[val],
        y_val=None if val is None else target[val],
        X_test=features[test],
        y_test=target[test],
        train_index=train,
        val_index=val,
        test_index=test,
    )


def _check_fractions(fractions: tuple[float, ...]) -> tuple[float, ...]:
    values = tuple(fractions)
    if len(values) not in (2, 3):
        raise ValueError(
            f"fractions must have 2 (train, test) or 3 (train, val, test) entries, "
            f"got {values}"
        )
    if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
        raise TypeError(f"fractions must be numbers, got {values}")
    if any(not v > 0 for v in values):
        raise ValueError(f"every fraction must be positive, got {values}")
    if not math.isclose(sum(values), 1.0, rel_tol=0.0, abs_tol=1e-9):
        raise ValueError(f"fractions must sum to 1, got {values} (sum {sum(values)})")
    return values


def _split_once(
    indices: np.ndarray,
    stratify: np.ndarray,
    test_share: float,
    random_state: np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    # Count the test rows here, rounding up as train_test_split does for a
    # float, but with a tolerance: (1 - 0.7) * 20 is 6.000000000000001 in
    # floating point, and a plain ceil would take 7 rows.
    n_test = math.ceil(test_share * len(indices) - 1e-9)
    try:
        first, second = train_test_split(
            indices, test_size=n_test, stratify=stratify, random_state=random_state
        )
    except ValueError as error:
        raise ValueError(
            f"cannot make a stratified split of {len(indices)} rows into "
            f"{len(indices) - n_test} and {n_test}: {error}. "
            "Use larger fractions or merge rare classes"
        ) from error
    return first, second


def stratified_split(
    y: ArrayLike,
    fractions: tuple[float, ...] = (0.6, 0.2, 0.2),
    random_state: RandomStateLike = None,
) -> tuple[np.ndarray, ...]:
    """Split row indices into stratified parts with the given fractions.

    Each part keeps the class proportions of ``y`` (up to rounding). It
    calls :func:`sklearn.model_selection.train_test_split` once for two
    parts and twice for three: train against the rest, then validation
    against test.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels to stratify on, of any type.
    fractions : tuple of float, default (0.6, 0.2, 0.2)
        Positive fractions that sum to 1: ``(train, test)`` or
        ``(train, val, test)``.
    random_state : int, numpy.random.RandomState or None
        Seed or generator; an int makes the split reproducible.

    Returns
    -------
    tuple of numpy.ndarray
        One sorted int64 index array per fraction. The parts are disjoint
        and together cover ``range(n_samples)``.

    Raises
    ------
    ValueError
        If ``fractions`` do not sum to 1, are not all positive, do not
        have 2 or 3 entries, or a class has too few rows to appear in
        every part.

    Examples
    --------
    >>> y = [0] * 8 + [1] * 2
    >>> train, test = stratified_split(y, fractions=(0.5, 0.5), random_state=0)
    >>> len(train), len(test), sorted(int(y[i]) for i in test)
    (5, 5, [0, 0, 0, 0, 1])
    """
    values = _check_fractions(fractions)
    labels = _check_labels(y)
    generator = check_random_state(random_state)
    indices = np.arange(labels.shape[0], dtype=np.int64)

    train, rest = _split_once(indices, labels, sum(values[1:]), generator)
    if len(values) == 2:
        parts = (train, rest)
    else:
        test_share = values[2] / (values[1] + values[2])
        val, test = _split_once(rest, labels[rest], test_share, generator)
        parts = (train, val, test)
    return tuple(np.sort(part) for part in parts)


def one_class_split(
    X: ArrayLike,
    y: ArrayLike,
    *,
    random_state: RandomStateLike = None,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    normal_label: Any = 0,
) -> DataSplit:
    """Split data for one-class training with validation and test parts.

    The rows are first split three ways, stratified on normal versus
    anomaly, with :func:`stratified_split`. The training part then keeps
    only its normal rows, and its anomalies are dropped (they appear in no
    part). Validation and test keep both classes.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Features; converted with :func:`numpy.asarray`, so images of shape
        (n, h, w) work too.
    y : array-like of shape (n_samples,)
        Labels of any type.
    random_state : int, numpy.random.RandomState or None
        Seed or generator; an int makes the split reproducible.
    fractions : tuple of 3 floats, default (0.6, 0.2, 0.2)
        Train, validation and test fractions, positive, summing to 1.
    normal_label : object, default 0
        Label of the normal class; every other label is an anomaly.

    Returns
    -------
    DataSplit
        ``X_train`` contains normal rows only, and ``y_train`` is all 0.
        ``y_val`` and ``y_test`` are binary, 1 = anomaly.

    Raises
    ------
    ValueError
        If ``X`` and ``y`` differ in length, no row has ``normal_label``,
        ``fractions`` are invalid, or a class is too small to stratify.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> y = np.array([0] * 5 + [1] * 5)
    >>> split = one_class_split(X, y, random_state=0, fractions=(0.4, 0.2, 0.4))
    >>> int(split.y_train.sum()), split.X_train.shape[1], sorted(split.y_test.tolist())
    (0, 2, [0, 0, 1, 1])
    """
    if len(tuple(fractions)) != 3:
        raise ValueError(f"fractions must be (train, val, test), got {tuple(fractions)}")
    features, target = _features_and_target(X, y, normal_label)

    train, val, test = stratified_split(target, fractions, random_state)
    train = train[target[train] == 0]
    return _data_split(features, target, train, test, val)


def novelty_split(
    X: ArrayLike,
    y: ArrayLike,
    *,
    train_fraction: float = 0.7,
    random_state: RandomStateLike = None,
    normal_label: Any = 0,
) -> DataSplit:
    """Split data with ADBench's one-class (novelty detection) protocol.

    A random ``train_fraction`` of the normal rows forms the training
    part. The test part contains the remaining normal rows and every anomaly.
    There is no validation part.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Features; converted with :func:`numpy.asarray`.
    y : array-like of shape (n_samples,)
        Labels of any type; ADBench uses 1 = anomaly, 0 = normal.
    train_fraction : float, default 0.7
        Share of the normal rows used for training, strictly between 0
        and 1. The count is rounded down.
    random_state : int, numpy.random.RandomState or None
        Seed or generator; an int makes the split reproducible.
    normal_label : object, default 0
        Label of the normal class; every other label is an anomaly.

    Returns
    -------
    DataSplit
        ``X_train`` contains normal rows only, ``y_train`` is all 0, and
        ``X_val``, ``y_val`` and ``val_index`` are None.

    Raises
    ------
    ValueError
        If ``train_fraction`` is not in (0, 1), ``X`` and ``y`` differ in
        length, or the training part would have no row or take every
        normal row.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(24.0).reshape(12, 2)
    >>> y = np.array([0] * 10 + [1] * 2)
    >>> split = novelty_split(X, y, random_state=0)
    >>> len(split.X_train), len(split.X_test), int(split.y_test.sum())
    (7, 5, 2)
    """
    _check_open_fraction("train_fraction", train_fraction)
    features, target = _features_and_target(X, y, normal_label)

    normal_rows = np.flatnonzero(target == 0)
    n_train = math.floor(train_fraction * len(normal_rows))
    if not 0 < n_train < len(normal_rows):
        raise ValueError(
            f"train_fraction={train_fraction} of {len(normal_rows)} normal rows gives "
            f"{n_train} training rows; need at least 1 and fewer than all normal rows"
        )

    generator = check_random_state(random_state)
    shuffled = generator.permutation(normal_rows)
    train = np.sort(shuffled[:n_train]).astype(np.int64)
    test = np.setdiff1d(np.arange(len(target), dtype=np.int64), train)
    return _data_split(features, target, train, test)


def unsupervised_split(
    X: ArrayLike,
    y: ArrayLike,
    *,
    test_size: float = 0.3,
    random_state: RandomStateLike = None,
    normal_label: Any = 0,
) -> DataSplit:
    """Split data for unsupervised detection: anomalies stay in training.

    A stratified split puts ``1 - test_size`` of the rows into training,
    anomalies included (they are unlabelled contamination for the model),
    and the rest into testing. There is no validation part.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Features; converted with :func:`numpy.asarray`.
    y : array-like of shape (n_samples,)
        Labels of any type.
    test_size : float, default 0.3
        Share of the rows used for testing, strictly between 0 and 1.
    random_state : int, numpy.random.RandomState or None
        Seed or generator; an int makes the split reproducible.
    normal_label : object, default 0
        Label of the normal class; every other label is an anomaly.

    Returns
    -------
    DataSplit
        ``y_train`` and ``y_test`` are binary (1 = anomaly); ``X_val``,
        ``y_val`` and ``val_index`` are None.

    Raises
    ------
    ValueError
        If ``test_size`` is not in (0, 1), ``X`` and ``y`` differ in length,
        no row has ``normal_label``, or a class is too small to stratify.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(40.0).reshape(20, 2)
    >>> y = np.array([0] * 16 + [1] * 4)
    >>> split = unsupervised_split(X, y, random_state=0)
    >>> len(split.X_train), int(split.y_train.sum()), int(split.y_test.sum())
    (14, 3, 1)
    """
    _check_open_fraction("test_size", test_size)
    features, target = _features_and_target(X, y, normal_label)

    train, test = stratified_split(target, (1.0 - test_size, test_size), random_state)
    return _data_split(features, target, train, test)


def _check_open_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {value!r}")
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")

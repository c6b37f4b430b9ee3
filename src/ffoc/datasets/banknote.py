"""UCI banknote authentication data, bundled with the package."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

__all__ = ["load_banknote"]

_FILE_NAME = "data_banknote_authentication.txt"
_FEATURE_NAMES = ["variance", "skewness", "curtosis", "entropy"]
_N_ROWS = 1372

_DESCR = """\
Banknote authentication data set
--------------------------------

1372 rows, 4 continuous features, 2 classes.

Images of genuine and forged banknote-like specimens were taken with an
industrial print-inspection camera (400 x 400 pixels, grey scale, about
660 dpi), and features were extracted from them with a wavelet transform.

Features:
    variance  variance of the wavelet-transformed image
    skewness  skewness of the wavelet-transformed image
    curtosis  kurtosis of the wavelet-transformed image
    entropy   entropy of the image

Target (1 = anomaly):
    0  genuine (normal), 762 rows
    1  forged (anomaly), 610 rows

The UCI page does not state which class value means genuine, and
secondary sources disagree; ffoc uses 0 = genuine.

Source: UCI Machine Learning Repository, "banknote authentication",
V. Lohweg and H. Doerksen (2012),
https://archive.ics.uci.edu/dataset/267/banknote+authentication
Licence: CC BY 4.0. Cite the source when you publish results on this data.
"""


def _read_bundled_rows() -> np.ndarray:
    resource = resources.files("ffoc.datasets").joinpath("data", _FILE_NAME)
    with resource.open("r", encoding="ascii") as file:
        rows = np.loadtxt(file, delimiter=",", dtype=np.float64)
    if rows.shape != (_N_ROWS, len(_FEATURE_NAMES) + 1):
        raise ValueError(
            f"bundled file {_FILE_NAME!r} has shape {rows.shape}, expected "
            f"({_N_ROWS}, {len(_FEATURE_NAMES) + 1}); reinstall ffoc"
        )
    return rows


def load_banknote(
    *, return_X_y: bool = False, as_frame: bool = False
) -> Bunch | tuple[np.ndarray, np.ndarray] | tuple[pd.DataFrame, pd.Series]:
    """Load the UCI banknote authentication data set.

    The data ships inside the package and is read with
    :mod:`importlib.resources`, so no download or data folder is needed.
    Genuine notes (class 0) are the normal class and forged notes
    (class 1) the anomalies.

    Parameters
    ----------
    return_X_y : bool, default False
        Return ``(data, target)`` in place of a Bunch.
    as_frame : bool, default False
        Return ``data`` as a DataFrame with named columns and ``target``
        as a Series named ``"class"``.

    Returns
    -------
    sklearn.utils.Bunch or tuple
        A Bunch with fields

        - ``data``: float64 array of shape (1372, 4), or a DataFrame;
        - ``target``: int64 array of shape (1372,), 1 = forged = anomaly,
          or a Series;
        - ``feature_names``: ``["variance", "skewness", "curtosis", "entropy"]``;
        - ``target_names``: ``["genuine", "forged"]``;
        - ``frame``: DataFrame of features and ``"class"`` when
          ``as_frame``, else None;
        - ``DESCR``: description, source and licence.

        With ``return_X_y``, the tuple ``(data, target)``.

    Examples
    --------
    >>> X, y = load_banknote(return_X_y=True)
    >>> X.shape, int(y.sum())
    ((1372, 4), 610)
    """
    rows = _read_bundled_rows()
    data = np.ascontiguousarray(rows[:, : len(_FEATURE_NAMES)])
    target = rows[:, -1].astype(np.int64)

    frame = None
    if as_frame:
        data = pd.DataFrame(data, columns=_FEATURE_NAMES)
        target = pd.Series(target, name="class")
        frame = pd.concat([data, target], axis=1)

    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        feature_names=list(_FEATURE_NAMES),
        target_names=["genuine", "forged"],
        frame=frame,
        DESCR=_DESCR,
    )

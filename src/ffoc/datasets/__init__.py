"""Data sets and splits for one-class anomaly detection.

Bundled or library-provided data needs no folder:
:func:`load_banknote` and :func:`load_digits_images`. File-based loaders
(:func:`load_adbench`, :func:`list_adbench`, :func:`load_mnist`) take a
``data_dir`` argument and otherwise use the ``FFOC_DATA_DIR`` environment
variable (:func:`default_data_dir`); the package never looks for data
anywhere else.

Examples
--------
>>> from ffoc.datasets import load_banknote, one_class_split
>>> X, y = load_banknote(return_X_y=True)
>>> split = one_class_split(X, y, random_state=0)
>>> int(split.y_train.sum())
0
"""

from ffoc.datasets._base import DATA_DIR_ENV, default_data_dir
from ffoc.datasets.adbench import list_adbench, load_adbench
from ffoc.datasets.banknote import load_banknote
from ffoc.datasets.digits import load_digits_images
from ffoc.datasets.idx import IDX_DTYPES, load_idx, load_mnist, save_idx
from ffoc.datasets.splits import (
    DataSplit,
    novelty_split,
    one_class_split,
    stratified_split,
    unsupervised_split,
)

__all__ = [
    "DATA_DIR_ENV",
    "DataSplit",
    "IDX_DTYPES",
    "default_data_dir",
    "list_adbench",
    "load_adbench",
    "load_banknote",
    "load_digits_images",
    "load_idx",
    "load_mnist",
    "novelty_split",
    "one_class_split",
    "save_idx",
    "stratified_split",
    "unsupervised_split",
]

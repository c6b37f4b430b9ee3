"""scikit-learn's bundled 8x8 handwritten digits as images."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

__all__ = ["load_digits_images"]


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's 8x8 digit images, a small offline stand-in for MNIST.

    The data ships with scikit-learn, so no data folder is needed.

    Returns
    -------
    images : numpy.ndarray
        float64 array of shape (1797, 8, 8) with grey levels 0 to 16.
    labels : numpy.ndarray
        int64 array of shape (1797,), digits 0 to 9.

    Examples
    --------
    >>> images, labels = load_digits_images()
    >>> images.shape, float(images.max()), labels[:3].tolist()
    ((1797, 8, 8), 16.0, [0, 1, 2])
    """
    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float64)
    labels = np.asarray(digits.target, dtype=np.int64)
    return images, labels

"""ffoc: deep one-class classification trained with the forward-forward algorithm.

Examples
--------
>>> import numpy as np
>>> from ffoc import FFOneClass
>>> X = np.random.default_rng(0).normal(size=(100, 3))
>>> FFOneClass(epochs=2, random_state=0).fit(X).predict(X[:3]).shape
(3,)
"""

__version__ = "0.1.0"

from .estimator import FFOneClass
from .persistence import ModelFileError, load

__all__ = ["FFOneClass", "ModelFileError", "load", "__version__"]

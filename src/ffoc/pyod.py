"""ffoc as a PyOD detector: :class:`FFOC`.

PyOD's detectors share one contract, the reverse of scikit-learn's outlier
contract. Their ``decision_function`` is **higher for more anomalous**
samples, and their labels are 0 (inlier) and 1 (outlier). ``fit`` stores the
training scores in ``decision_scores_``, the threshold in ``threshold_`` and
the training labels in ``labels_``. :class:`FFOC` wraps an
:class:`ffoc.FFOneClass` in that contract, so PyOD users and benchmark
harnesses can use ffoc like any PyOD model.

PyOD is an optional dependency: ``pip install "ffoc[pyod]"``.
"""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

try:
    from pyod.models.base import BaseDetector
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ffoc.pyod needs PyOD, which is not installed; install it with "
        "pip install 'ffoc[pyod]' (or pip install pyod)."
    ) from error

from .estimator import FFOneClass

__all__ = ["FFOC"]


class FFOC(BaseDetector):
    """Forward-forward one-class detector with PyOD's interface.

    Fits an :class:`ffoc.FFOneClass` and reports its scores the PyOD way:
    :meth:`decision_function` returns ``-FFOneClass.score_samples``, so higher
    means more anomalous, and :meth:`predict` returns 1 for outliers and 0 for
    inliers. The threshold follows PyOD: ``threshold_`` is the
    ``1 - contamination`` quantile of the training scores, and the wrapped
    estimator's own ``contamination`` and ``offset_`` are not used.

    Parameters
    ----------
    estimator : FFOneClass or None, default=None
        Unfitted detector to wrap; it is cloned in :meth:`fit`. ``None`` uses
        ``FFOneClass()`` with its current defaults.
    contamination : float in (0, 0.5] or PyThresh thresholder, default=0.1
        Expected share of outliers in the training data; sets ``threshold_``.
        A PyThresh object (anything with ``fit`` and ``predict``) sets the
        threshold its own way, as in every PyOD detector.
    random_state : int or None, default=None
        Seed of the wrapped detector, as PyOD detectors take it. When set, it
        replaces the ``random_state`` of ``estimator``; ``None`` keeps it.

    Attributes
    ----------
    estimator_ : FFOneClass
        The fitted clone of ``estimator``.
    decision_scores_ : ndarray of shape (n_samples,)
        Anomaly scores of the training rows; higher = more anomalous.
    threshold_ : float
        Scores above it are outliers.
    labels_ : ndarray of shape (n_samples,)
        Training labels: 1 = outlier, 0 = inlier.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    ffoc.FFOneClass : the same detector with scikit-learn's score direction.

    Examples
    --------
    >>> import numpy as np
    >>> from ffoc import FFOneClass
    >>> from ffoc.pyod import FFOC
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4))
    >>> detector = FFOC(FFOneClass(epochs=5, random_state=0)).fit(X)
    >>> detector.predict(np.array([[0.0, 0.0, 0.0, 0.0], [8.0, 8.0, 8.0, 8.0]]))
    array([0, 1])
    >>> proba = detector.predict_proba(np.array([[8.0, 8.0, 8.0, 8.0]]))
    >>> proba.shape, bool(0.0 <= proba.min() and proba.max() <= 1.0)
    ((1, 2), True)
    """

    def __init__(self, estimator: FFOneClass | None = None, contamination=0.1, random_state=None) -> None:
        # PyOD's BaseDetector.__init__ validates in the constructor; scikit-learn
        # convention (followed here) stores the arguments and checks them in fit.
        self.estimator = estimator
        self.contamination = contamination
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the wrapped detector on ``X`` and set the PyOD training attributes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : ignored
            Present for API consistency; a warning is raised when it is given.
            Unlike in PyOD's own detectors, its labels do not change the number of
            columns of :meth:`predict_proba`, which is always 2.

        Returns
        -------
        self : FFOC
            The fitted detector.
        """
        self._check_contamination()
        if self.estimator is None:
            estimator = FFOneClass()
        elif isinstance(self.estimator, FFOneClass):
            estimator = clone(self.estimator)
        else:
            raise TypeError(
                f"FFOC: estimator must be an ffoc.FFOneClass or None, got {type(self.estimator).__name__}; "
                "pass for example FFOneClass(trainer='bp')."
            )

        if self.random_state is not None:
            estimator.set_params(random_state=self.random_state)

        if y is not None:
            warnings.warn("FFOC: y is ignored; the detector is fitted on X alone.", UserWarning, stacklevel=2)
        self._set_n_classes(None)
        self.estimator_ = estimator.fit(X)
        self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_

        self.decision_scores_ = self.decision_function(X)
        self._process_decision_scores()
        return self

    def decision_function(self, X) -> np.ndarray:
        """Return the anomaly score of each sample: higher means more anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``-estimator_.score_samples(X)``.
        """
        check_is_fitted(self, "estimator_")
        return -self.estimator_.score_samples(X)

    def predict_proba(self, X, method: str = "linear", return_confidence: bool = False):
        """Return the probability of each sample being normal and being an outlier.

        Uses PyOD's conversion: ``"linear"`` min-max scales the score by the
        training scores and clips it to [0, 1]; ``"unify"`` applies the Gaussian
        error function to the standardised score, also clipped to [0, 1]. When
        every training score is the same (one training row, or identical rows),
        ``"unify"`` gives outlier probability 1 to scores above that value and
        0 to the others, where PyOD's formula would divide 0 by 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.
        method : {"linear", "unify"}, default="linear"
            Conversion from score to probability.
        return_confidence : bool, default=False
            Also return PyOD's prediction confidence.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Column 0 is the inlier probability and column 1 the outlier
            probability; each row sums to 1.
        """
        if method not in ("linear", "unify"):
            raise ValueError(f"FFOC: method={method!r} is not supported; use 'linear' or 'unify'.")
        # PyOD's implementation reads X.shape, so lists become arrays here.
        if not hasattr(X, "shape"):
            X = np.asarray(X)
        if method == "unify" and not self._sigma > 0:
            check_is_fitted(self, ["decision_scores_", "threshold_", "labels_"])
            is_outlier = (self.decision_function(X) > self._mu).astype(np.float64)
            probabilities = np.column_stack([1.0 - is_outlier, is_outlier])
            return (probabilities, self.predict_confidence(X)) if return_confidence else probabilities
        return super().predict_proba(X, method=method, return_confidence=return_confidence)

    def _check_contamination(self) -> None:
        value = self.contamination
        if isinstance(value, Real) and not isinstance(value, bool):
            if not isinstance(value, (float, int)):
                # PyOD tests isinstance(contamination, (float, int)) and takes anything
                # else for a thresholder, so numpy.float32 or Fraction would fail inside it.
                raise TypeError(
                    f"FFOC: contamination={value!r} is a {type(value).__name__}; pass a Python float "
                    f"such as {float(value)!r}."
                )
            if not 0.0 < value <= 0.5:
                raise ValueError(
                    f"FFOC: contamination={value!r} is out of range; pass a float in (0, 0.5], "
                    "the expected share of outliers in the training data."
                )
            return
        if isinstance(value, (BaseDetector, FFOneClass)) or not (hasattr(value, "fit") and hasattr(value, "predict")):
            raise TypeError(
                f"FFOC: contamination must be a float in (0, 0.5] or a PyThresh thresholder, "
                f"got {value!r}."
            )

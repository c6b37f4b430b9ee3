"""River adapter: :class:`FFOneClassRiver`, a forward-forward one-class detector for River pipelines.

River (https://riverml.xyz) is an optional dependency: install it with
``pip install ffoc[river]``.

River's anomaly detectors learn from one dict at a time (``learn_one``) and
return a score where **high means anomalous** (``score_one``), the opposite of
scikit-learn's ``score_samples``. The adapter collects rows into mini-batches of
the wrapped detector's ``batch_size`` and hands each full mini-batch to
:meth:`ffoc.FFOneClass.partial_fit`, because a forward-forward step on one row
would make poor negatives (a shuffled one-row batch is the row itself).
"""

from __future__ import annotations

import reprlib
from typing import Any

import numpy as np

try:
    from river.base import AnomalyDetector
except ImportError:  # River releases before 0.22 keep the base class in river.anomaly.base
    try:
        from river.anomaly.base import AnomalyDetector
    except ImportError:
        raise ImportError(
            "ffoc.river needs the River library; install it with `pip install ffoc[river]` "
            "or `pip install river`."
        ) from None

from .estimator import FFOneClass

__all__ = ["FFOneClassRiver"]


class FFOneClassRiver(AnomalyDetector):
    """River anomaly detector backed by an online-trained :class:`ffoc.FFOneClass`.

    ``score_one`` returns ``1 / (1 + exp(decision_function))``, a number in
    [0, 1] where **higher means more anomalous**, as River defines it. A score
    above 0.5 means the row falls outside the detector's threshold. The scores
    are bounded because River's ``metrics.ROCAUC`` bins them in [0, 1]. Until
    the detector has seen its first mini-batch, ``score_one`` returns 0.0.

    Parameters
    ----------
    detector : FFOneClass or None, default=None
        An unfitted detector whose parameters to use; ``None`` uses
        ``FFOneClass(random_state=seed)``. It is copied, never trained in place.
    seed : int or None, default=None
        ``random_state`` of the default detector; ignored when ``detector`` is given.

    Attributes
    ----------
    model_ : FFOneClass
        The detector being trained.
    feature_names_ : list
        Keys of the first dict learned from, in order; later dicts must contain them.

    Notes
    -----
    A row waits in the mini-batch buffer until ``batch_size`` rows have arrived,
    so the model lags the stream by fewer than ``batch_size`` rows. Training
    itself starts after the warm-up of ``max(batch_size, ffoc.online.WARM_UP_ROWS)``
    rows (see :mod:`ffoc.online`).

    Examples
    --------
    >>> import numpy as np
    >>> from river import evaluate, metrics
    >>> from ffoc import FFOneClass
    >>> from ffoc.river import FFOneClassRiver
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(800, 3))
    >>> y = rng.random(800) < 0.05
    >>> X[y] += 5.0
    >>> stream = ({f"x{j}": float(v) for j, v in enumerate(row)} for row in X)
    >>> model = FFOneClassRiver(FFOneClass(batch_size=64, random_state=0))
    >>> metric = evaluate.progressive_val_score(zip(stream, y), model, metrics.ROCAUC())
    >>> bool(metric.get() > 0.8)
    True
    """

    def __init__(self, detector: FFOneClass | None = None, seed: int | None = None) -> None:
        self.detector = detector
        self.seed = seed
        self.model_ = self._new_model()
        self.feature_names_: list | None = None
        self._pending: list[np.ndarray] = []

    def _new_model(self) -> FFOneClass:
        from sklearn.base import clone

        if self.detector is None:
            return FFOneClass(random_state=self.seed)
        if not isinstance(self.detector, FFOneClass):
            raise TypeError(
                f"detector must be an ffoc.FFOneClass, got {type(self.detector).__name__}; "
                "pass FFOneClass(...) with the parameters you want."
            )
        return clone(self.detector)

    def learn_one(self, x: dict[Any, Any]) -> None:
        """Add the row ``x`` to the mini-batch, and train on the mini-batch once it is full.

        Parameters
        ----------
        x : dict
            Feature name to number.

        Raises
        ------
        ValueError
            If ``x`` lacks a feature of the first row, or a feature is not a
            finite number. The row is then not added, and the rows already
            waiting stay in the mini-batch.
        """
        row = self._to_row(x)
        if self.feature_names_ is None:
            self.feature_names_ = list(x)
        self._pending.append(row)
        if len(self._pending) >= self.model_.batch_size:
            # The rows stay pending until partial_fit succeeds, which leaves the model
            # unchanged when it raises.
            self.model_.partial_fit(np.stack(self._pending))
            self._pending = []

    def score_one(self, x: dict[Any, Any]) -> float:
        """Return the anomaly score of ``x`` in [0, 1]: higher means more anomalous; 0.0 before any data.

        Parameters
        ----------
        x : dict
            Feature name to number.

        Raises
        ------
        ValueError
            If ``x`` lacks a feature of the first row learned from, or a feature
            is not a finite number, even before any data.
        """
        row = self._to_row(x)
        if self.feature_names_ is None or not hasattr(self.model_, "layers_"):
            return 0.0
        decision = float(self.model_.decision_function(row[np.newaxis, :])[0])
        # Logistic of minus the decision value: River's ROCAUC bins scores in [0, 1].
        return float(0.5 * (1.0 + np.tanh(-0.5 * decision)))

    def _to_row(self, x: dict[Any, Any]) -> np.ndarray:
        """Return the features of ``x`` in the order of ``feature_names_`` (of ``x`` itself before the first row)."""
        names = list(x) if self.feature_names_ is None else self.feature_names_
        missing = [name for name in names if name not in x]
        if missing:
            raise ValueError(
                f"FFOneClassRiver: feature(s) {missing[:10]} are missing from the row, but the first "
                f"row had them; every row needs the features {names[:10]}"
                f"{' ...' if len(names) > 10 else ''}. Impute missing values first."
            )
        row = np.empty(len(names), dtype=np.float64)
        for j, name in enumerate(names):
            value = x[name]
            if isinstance(value, (str, bytes)):
                # float() would parse "1.5", hiding a column read as text.
                raise ValueError(
                    f"FFOneClassRiver needs numeric features, but feature {name!r} is the text "
                    f"{reprlib.repr(value)}. Convert it to a number before learn_one or score_one."
                )
            try:
                row[j] = float(value)
            except OverflowError:  # an int beyond float64
                row[j] = np.inf
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"FFOneClassRiver needs numeric features, but feature {name!r} is {reprlib.repr(value)} "
                    f"({error}). Encode categories as numbers first (for example with "
                    "river.preprocessing.OneHotEncoder)."
                ) from None
            if not np.isfinite(row[j]):
                raise ValueError(
                    f"FFOneClassRiver: feature {name!r} is {reprlib.repr(value)}, not a finite float64. Impute "
                    "missing values (for example with river.preprocessing.StatImputer) or drop the row; "
                    "replace infinities with finite values."
                )
        return row

    @classmethod
    def _unit_test_params(cls):
        yield {"seed": 0}

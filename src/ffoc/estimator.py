"""The scikit-learn estimator :class:`FFOneClass`."""

from __future__ import annotations

import contextlib
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._base import _BaseFFOneClass
from ._validation import check_finite_array, check_numeric_frame, resolve_device
from .negatives import NEGATIVE_KINDS
from .nn import ACTIVATIONS, build_mlp
from .objectives import OBJECTIVES
from .online import OnlineMixin

__all__ = ["FFOneClass"]

# Largest network ffoc builds: 2**31 weights, 8 GiB in float32.
_MAX_PARAMETERS = 2**31
# Layers with fewer weights than this train on one thread when n_threads="auto".
SMALL_LAYER_WEIGHTS = 65_536
# Optimizer steps of epochs="auto".
AUTO_STEPS = 400
# Most epochs of epochs="auto"; the cap applies when an epoch has fewer than 4 mini-batches.
AUTO_MAX_EPOCHS = 100


def _fit_scaler(X: np.ndarray) -> StandardScaler:
    """Fit a StandardScaler, safe from overflow for values near the float64 limit.

    Columns are divided by their largest magnitude first, so that squaring them to
    get the variance cannot overflow, and the fitted statistics are scaled back.
    """
    magnitude = np.abs(X).max(axis=0)
    magnitude[~(magnitude > 0)] = 1.0
    scaler = StandardScaler().fit(X / magnitude)
    constant = scaler.var_ == 0
    scaler.mean_ = scaler.mean_ * magnitude
    scaler.scale_ = np.where(constant, 1.0, scaler.scale_ * magnitude)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        # inf for varying columns near 1e154 and above, and at least the smallest normal float64 near
        # 1e-154 and below, so that only constant columns have var_ == 0; var_ is not used for scaling.
        scaler.var_ = np.where(constant, 0.0, np.maximum(scaler.var_ * magnitude**2, np.finfo(np.float64).tiny))
    return scaler


class FFOneClass(OnlineMixin, _BaseFFOneClass):
    """Deep one-class detector trained forward-forward (or by backprop for comparison).

    The network is an MLP whose layers each carry a one-class objective. With
    ``trainer="ff"`` every layer learns from its own loss on its own output, and
    no gradient crosses layers. With ``trainer="bp"`` one loss on the last layer
    trains all layers end to end. Each layer also learns to give high goodness (or
    a large distance to its center) to negatives made from the training data, which
    prevents the trivial solutions of one-class objectives.

    Score direction follows scikit-learn: :meth:`score_samples` is **higher for
    normal samples**, :meth:`decision_function` is negative for outliers and
    :meth:`predict` returns +1 (inlier) or -1 (outlier). The per-layer anomaly
    scores of :meth:`layer_scores` point the other way (higher = more anomalous),
    as goodness and distances do.

    Parameters
    ----------
    objective : {"goodness", "goodness-sigmoid", "hb-svdd", "svdd", "ls-svdd"}, default="hb-svdd"
        Loss of each layer; see :mod:`ffoc.objectives`.
    trainer : {"ff", "bp"}, default="ff"
        Forward-forward (each layer trained by its own loss) or backprop (loss on the
        last layer, all layers updated).
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Widths of the layers.
    activation : {"relu", "leaky_relu", "tanh", "identity"}, default="relu"
        Activation of every layer.
    bias : bool, default=False
        Linear maps with bias. Off by default: a bias lets a layer map every
        input to one constant vector, the collapse of Deep SVDD.
    nu : float in (0, 1), default=0.05
        Expected fraction of training samples outside the boundary: sets each
        layer's radius (the ``(1 - nu)`` quantile of training distances), weighs the
        soft-boundary and least-squares losses, and sets ``offset_`` when
        ``contamination="auto"``.
    theta : float or None, default=None
        Goodness threshold of the goodness objectives; ``None`` uses each layer's
        mean training goodness at initialisation.
    learning_rate : float, default=1e-3
        Step size of the optimizer.
    epochs : int or "auto", default="auto"
        Passes over the training data (per layer for ``schedule="layerwise"``).
        "auto" trains for about ``AUTO_STEPS`` (400) optimizer steps, with at
        least one and at most ``AUTO_MAX_EPOCHS`` (100) passes:
        ``min(100, ceil(400 / batches_per_epoch))`` epochs. A budget in steps
        measured best on the tuning data, because long training on large sets
        lets the representation drift from what separates anomalies; the cap
        measured better on training sets of 50 to 150 rows.
    batch_size : int, default=128
        Rows per mini-batch; a smaller training set gives one shorter batch.
    optimizer : {"adam", "sgd"}, default="adam"
        Optimizer of every layer.
    schedule : {"interleaved", "layerwise"}, default="interleaved"
        Forward-forward only: every layer on every mini-batch, or each layer to
        completion before the next.
    center_update : {"fixed", "epoch"}, default="fixed"
        Keep each layer's center and radius as estimated at initialisation, or
        estimate them anew after every epoch (the paper's rule).
    normalize_input : bool, default=False
        Scale each raw (standardised) input row to unit length. Off by default
        because that erases the row's magnitude, often the main anomaly cue in
        tabular data. Layers after the first always normalise their input, as in
        Hinton's forward-forward, so that a layer cannot pass its goodness on.
    normalize_hidden : bool, default=True
        Scale the input of every layer after the first to unit length (Hinton's
        length normalisation). Turning it off lets later layers see the magnitude
        of the previous layer's activity: on the tuning sets' validation rows this
        raised the mean AUROC from 0.978 to 0.981, and the last layer's own AUROC
        from 0.74 to 0.95. It stays on by default to keep forward-forward's
        design, in which each layer has to find structure beyond the goodness of
        the layer below.
    score_layers : "all", "last" or sequence of int, default="all"
        Layers whose scores make :meth:`score_samples`. Each layer's anomaly score
        is standardised by its mean and standard deviation on the training data,
        and the standardised scores are averaged. ``"last"`` reproduces the paper.
    contamination : "auto" or float in [0, 0.5], default="auto"
        Sets ``offset_``: with "auto" the ``nu`` quantile of the training
        ``score_samples``, with a float that quantile of them (0 puts the threshold
        at the lowest training score, so only samples less normal than every
        training sample are outliers).
    negatives : {"mixed", "shuffle", "noise", "scale", "none"}, default="mixed"
        Negatives made from each mini-batch; see :mod:`ffoc.negatives`.
    negative_weight : float or "auto", default="auto"
        Weight of the loss on negatives; 0 trains on normal data alone. "auto" is
        4 for every objective but ``goodness-sigmoid``, and 1 for that one: weights
        from 0.5 to 4 were compared on the tuning data and 4 measured best, but the
        sigmoid bounds the loss on normal data, so larger weights let the negatives
        dominate it (banknote AUROC fell from 0.997 at 1 to 0.81 at 4).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows and stop when their
        loss (which needs no labels) has not improved for ``n_iter_no_change``
        epochs; the best weights are restored.
    validation_fraction : float, default=0.1
        Share of training rows held out when ``early_stopping`` is on.
    n_iter_no_change : int, default=10
        Patience of the stopping rule, in epochs.
    device : {"cpu", "cuda", "auto"} or "cuda:N", default="cpu"
        Where the network trains. Requesting CUDA where none exists raises.
    n_threads : int or "auto", default="auto"
        Torch threads used while training. "auto" uses one thread for small
        networks (every layer below ``SMALL_LAYER_WEIGHTS`` = 65,536 weights, such
        as 256 x 256), whose mini-batch products are too small to share between
        threads: on banknote one thread fitted 7x faster than two on a busy
        2-core machine. Larger networks keep torch's own setting. The setting is
        process-wide in torch, so it is restored when training ends.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and negatives; an int makes CPU
        results bit-identical between runs.
    verbose : int, default=0
        1 or more shows a progress bar over epochs; 0 prints nothing.
    forgetting : float in [0, 1), default=0.0
        Online training only (:meth:`partial_fit`, :meth:`fit_stream`): per-row decay
        of the running statistics (scaler, centers, reservoir behind the radii and
        ``offset_``), a memory of about ``1 / forgetting`` rows, so that they follow
        drift. 0 weighs every row seen alike. ``fit`` ignores it.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names, when ``X`` had string column names.
    scaler_ : sklearn.preprocessing.StandardScaler
        Standardisation fitted on the training data.
    layers_ : torch.nn.ModuleList
        The trained blocks.
    states_ : list of LayerState
        Each layer's center, squared radius and goodness threshold.
    layer_score_mean_, layer_score_std_ : ndarray of shape (n_layers,)
        Mean and standard deviation of each layer's anomaly score on the training data.
    offset_ : float
        Threshold on ``score_samples``; ``decision_function = score_samples - offset_``.
    history_ : TrainHistory
        Per-epoch training losses, and ``best_epoch``: with early stopping, the
        epoch (counted from 0) whose weights were kept.
    device_ : torch.device
        Device used for training.
    n_epochs_ : int
        Epochs requested (``epochs`` resolved when "auto"); early stopping may end sooner.

    Notes
    -----
    Ties at the threshold: a sample whose ``decision_function`` is exactly 0 is an
    inlier (+1).

    Forward-forward training frees each layer's graph right after the layer's
    backward pass, so training memory does not grow with depth the way backprop's
    does, nor with the number of epochs.

    The defaults were chosen on validation rows of banknote, 6_cardio, 38_thyroid
    and 31_satimage-2, never on test rows.

    References
    ----------
    G. Hinton, "The Forward-Forward Algorithm: Some Preliminary Investigations", 2022.
    L. Ruff et al., "Deep One-Class Classification", ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from ffoc import FFOneClass
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4))
    >>> detector = FFOneClass(epochs=5, random_state=0).fit(X)
    >>> detector.predict(np.array([[0.0, 0.0, 0.0, 0.0], [8.0, 8.0, 8.0, 8.0]]))
    array([ 1, -1])
    """

    _parameter_constraints: dict = {
        "objective": [StrOptions(set(OBJECTIVES))],
        "trainer": [StrOptions({"ff", "bp"})],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "bias": ["boolean"],
        "nu": [Interval(Real, 0, 1, closed="neither")],
        "theta": [None, Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "epochs": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions({"adam", "sgd"})],
        "schedule": [StrOptions({"interleaved", "layerwise"})],
        "center_update": [StrOptions({"fixed", "epoch"})],
        "normalize_input": ["boolean"],
        "normalize_hidden": ["boolean"],
        "score_layers": [StrOptions({"all", "last"}), "array-like"],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="both")],
        "negatives": [StrOptions(set(NEGATIVE_KINDS))],
        "negative_weight": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "n_threads": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "forgetting": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        objective: str = "hb-svdd",
        trainer: str = "ff",
        *,
        hidden_layer_sizes=(128, 128),
        activation: str = "relu",
        bias: bool = False,
        nu: float = 0.05,
        theta: float | None = None,
        learning_rate: float = 1e-3,
        epochs="auto",
        batch_size: int = 128,
        optimizer: str = "adam",
        schedule: str = "interleaved",
        center_update: str = "fixed",
        normalize_input: bool = False,
        normalize_hidden: bool = True,
        score_layers="all",
        contamination="auto",
        negatives: str = "mixed",
        negative_weight="auto",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device="cpu",
        n_threads="auto",
        random_state=None,
        verbose: int = 0,
        forgetting: float = 0.0,
    ) -> None:
        self.objective = objective
        self.trainer = trainer
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.bias = bias
        self.nu = nu
        self.theta = theta
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.schedule = schedule
        self.center_update = center_update
        self.normalize_input = normalize_input
        self.normalize_hidden = normalize_hidden
        self.score_layers = score_layers
        self.contamination = contamination
        self.negatives = negatives
        self.negative_weight = negative_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.forgetting = forgetting

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, X_val=None):
        """Fit the detector on normal data ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, assumed normal (up to ``nu`` of them may be outliers).
        y : ignored
            Present for API consistency; labels are never used.
        X_val : array-like of shape (n_val, n_features), optional
            Normal validation data for the stopping rule; when given, the stopping
            rule is on and uses these rows in place of a held-out share of ``X``.

        Returns
        -------
        self : FFOneClass
            The fitted detector.
        """
        X = self._check_X(X, reset=True)
        self._check_hidden_layer_sizes()
        self.device_ = resolve_device(self.device)
        generator = self._make_generator()

        # Standardise on the training rows; constant columns are kept, with scale 1.
        self.scaler_ = _fit_scaler(X)
        self._warn_constant_columns()

        X_train, X_valid = self._holdout(self._to_tensor(X), X_val, generator)
        self._fit_network(X_train, X_valid, generator)
        return self

    def _train(self, X_train, X_valid, generator) -> None:
        self.n_epochs_ = self._resolve_epochs(X_train.shape[0])
        if self.n_epochs_ == 0:
            warnings.warn(
                f"{type(self).__name__}: epochs=0 leaves the network untrained; its scores come from the "
                "random initial weights. Pass epochs >= 1 or 'auto' to train it.",
                UserWarning,
            )
        super()._train(X_train, X_valid, generator)

    @contextlib.contextmanager
    def _thread_limit(self):
        """Set torch's thread count for training from ``n_threads``, and restore it afterwards."""
        if self.n_threads == "auto":
            widths = [self.n_features_in_] + [layer.out_features for layer in self.layers_]
            small = max(a * b for a, b in zip(widths[:-1], widths[1:])) < SMALL_LAYER_WEIGHTS
            n_threads = 1 if small else None
        else:
            n_threads = int(self.n_threads)
        previous = torch.get_num_threads()
        if n_threads is not None and n_threads != previous:
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)

    def _resolve_negative_weight(self) -> float:
        if self.negative_weight != "auto":
            return float(self.negative_weight)
        return 1.0 if self.objective == "goodness-sigmoid" else 4.0

    def _resolve_epochs(self, n_samples: int) -> int:
        if self.epochs != "auto":
            return int(self.epochs)
        batches_per_epoch = max(1, -(-n_samples // self.batch_size))
        return min(AUTO_MAX_EPOCHS, max(1, -(-AUTO_STEPS // batches_per_epoch)))

    # ------------------------------------------------------------------ scoring

    def layer_scores(self, X) -> np.ndarray:
        """Return each layer's anomaly score, shape (n_samples, n_layers); higher = more anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.
        """
        return super().layer_scores(X)

    def score_samples(self, X) -> np.ndarray:
        """Return the normality score of each sample: higher means more normal.

        The score is minus the mean over ``score_layers`` of each layer's anomaly
        score, standardised by its training mean and standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return super().score_samples(X)

    def _selected_layers(self) -> list[int]:
        n_layers = len(self.layers_)
        if isinstance(self.score_layers, str):
            return list(range(n_layers)) if self.score_layers == "all" else [n_layers - 1]
        selected = list(self.score_layers)
        bad = [
            k for k in selected
            if not isinstance(k, (Integral, np.integer)) or isinstance(k, bool) or not -n_layers <= k < n_layers
        ]
        if not selected or bad:
            raise ValueError(
                f"score_layers={self.score_layers!r} must list integer layer indices between 0 and {n_layers - 1} "
                f"(the network has {n_layers} layers), or be 'all' or 'last'."
            )
        return [int(k) % n_layers for k in selected]

    # ------------------------------------------------------------------ persistence

    def _input_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {
            "scaler.mean": torch.as_tensor(self.scaler_.mean_),
            "scaler.scale": torch.as_tensor(self.scaler_.scale_),
            "scaler.var": torch.as_tensor(self.scaler_.var_),
        }
        fitted = {
            "n_features_in": self.n_features_in_,
            "feature_names_in": getattr(self, "feature_names_in_", None),
            "n_samples_seen": int(self.scaler_.n_samples_seen_),
        }
        return tensors, fitted

    def _restore_input_state(self, tensors: dict[str, torch.Tensor], fitted: dict) -> None:
        self.n_features_in_ = int(fitted["n_features_in"])
        if fitted.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
        self._check_hidden_layer_sizes()
        self.scaler_ = StandardScaler()
        self.scaler_.mean_ = tensors["scaler.mean"].numpy().astype(np.float64)
        self.scaler_.scale_ = tensors["scaler.scale"].numpy().astype(np.float64)
        self.scaler_.var_ = tensors["scaler.var"].numpy().astype(np.float64)
        self.scaler_.n_samples_seen_ = int(fitted["n_samples_seen"])
        self.scaler_.n_features_in_ = self.n_features_in_
        for array in (self.scaler_.mean_, self.scaler_.scale_):
            if array.shape != (self.n_features_in_,):
                raise ValueError(f"scaler arrays have shape {array.shape}, expected ({self.n_features_in_},)")

    # ------------------------------------------------------------------ helpers

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        name = type(self).__name__
        check_numeric_frame(X, name)
        try:
            X_checked = validate_data(
                self, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=False,
                ensure_min_samples=1,
            )
        except ValueError as error:
            if "Expected 2D array, got 1D array" in str(error):
                raise ValueError(
                    f"{name} expects a 2-D array of shape (n_samples, n_features), got a 1-D array of shape "
                    f"{np.shape(X)}. Reshape your data: X.reshape(-1, 1) for one feature, X.reshape(1, -1) for one sample."
                ) from None
            if "could not convert" in str(error):
                raise ValueError(
                    f"{name} needs numeric input: {error}. Convert the data to numbers first."
                ) from None
            raise
        if np.iscomplexobj(X_checked):
            raise ValueError(f"{name} does not accept complex numbers; pass the real part or the magnitude.")
        check_finite_array(X, X_checked, name)
        return X_checked

    def _check_hidden_layer_sizes(self) -> None:
        sizes = np.asarray(self.hidden_layer_sizes, dtype=object).ravel()
        if sizes.size == 0 or not all(
            isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} must be a non-empty sequence of "
                "positive integers, for example (64, 64)."
            )

    def _build_layers(self, generator: torch.Generator) -> torch.nn.ModuleList:
        sizes = [self.n_features_in_] + [int(s) for s in np.asarray(self.hidden_layer_sizes).ravel()]
        n_parameters = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        if n_parameters > _MAX_PARAMETERS:
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} gives {n_parameters:,} weights for "
                f"{self.n_features_in_} features, more than the {_MAX_PARAMETERS:,} ffoc allows; use smaller layers."
            )
        layers = build_mlp(
            self.n_features_in_,
            [int(s) for s in np.asarray(self.hidden_layer_sizes).ravel()],
            activation=self.activation,
            bias=self.bias,
            normalize_input=self.normalize_input,
            normalize_hidden=self.normalize_hidden,
            generator=generator,
        )
        return layers.to(self.device_)

    def _score_batch_size(self) -> int:
        # About 2**20 activations per layer and batch (4 MiB in float32), between 1,024 and 16,384
        # rows: narrow networks spend less time per call, wide ones stay in cache. Measured on 2
        # cores, 4-40-40-40 scored 7.7M rows/s with 16,384 rows against 7.1M with 8,192.
        widest = max([int(s) for s in np.asarray(self.hidden_layer_sizes).ravel()] + [self.n_features_in_])
        return int(min(16384, max(1024, 2**20 // max(widest, 1))))

    def _to_tensor(self, X: np.ndarray) -> torch.Tensor:
        with np.errstate(over="ignore", invalid="ignore"):
            # scikit-learn's finite check sums the rows, which overflows near 1e308 although
            # every value is finite (checked before); the result is checked just below.
            standardised = self.scaler_.transform(X)
        too_large = np.abs(standardised) > np.finfo(np.float32).max
        if too_large.any():
            row, column = (int(i[0]) for i in np.nonzero(too_large))
            names = getattr(self, "feature_names_in_", None)
            column_label = repr(str(names[column])) if names is not None else str(column)
            raise ValueError(
                f"{type(self).__name__}: value {float(X[row, column])!r} at row {row}, column {column_label} is "
                "too large to represent after standardisation (float32). Rescale that feature."
            )
        return torch.as_tensor(standardised, dtype=torch.float32, device=self._device())

    def _warn_constant_columns(self) -> None:
        constant = np.flatnonzero(self.scaler_.var_ == 0)
        if constant.size:
            names = getattr(self, "feature_names_in_", None)
            shown = [str(names[i]) if names is not None else str(i) for i in constant[:10]]
            warnings.warn(
                f"{type(self).__name__}: {constant.size} constant column(s) in the training data "
                f"({', '.join(shown)}); they are kept unscaled and carry no information.",
                UserWarning,
                stacklevel=3,
            )

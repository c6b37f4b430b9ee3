"""The image estimator :class:`FFOneClassImage`: convolutional blocks trained forward-forward."""

from __future__ import annotations

import dataclasses
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseFFOneClass
from ._validation import resolve_device
from .conv import POOLING, build_convnet
from .negatives import NEGATIVE_KINDS
from .neighbors import layer_features, neighbor_layer_scores
from .nn import ACTIVATIONS
from .objectives import OBJECTIVES
from .trainers import TrainConfig
from .trainers.common import OVERFLOW_SCORE, batches, forward_layers

__all__ = ["FFOneClassImage", "SCALINGS", "SCORE_RULES"]

SCALINGS = ("fixed", "image")
SCORE_RULES = ("knn", "center")

# Largest size of the stored reference activations, in bytes.
_MAX_REFERENCE_BYTES = 2 * 1024**3

# Images per forward pass when scoring by nearest neighbours: bounds the distance matrix.
_NEIGHBOR_BATCH = 512

# Channel counts that a trailing axis of an (n, H, W, C) array usually has.
_CHANNELS_LAST_HINT = (1, 3, 4)

# Largest magnitude of a scaled pixel: the network computes in float32.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class FFOneClassImage(_BaseFFOneClass):
    """Deep one-class detector for images: convolutional blocks trained forward-forward.

    The network is a stack of convolutional blocks (convolution, activation,
    pooling), optionally followed by dense layers. Each block carries the same
    one-class objective as the layers of :class:`ffoc.FFOneClass`, computed per
    sample over the block's whole activation map. With ``trainer="ff"`` every
    block learns from its own loss and no gradient crosses blocks. With
    ``trainer="bp"`` one loss on the last block trains the whole network.

    By default (``score_rule="knn"``) a trained block scores an image by the
    distance from its activation map to the ``n_neighbors``-th nearest map of
    a training image, so a digit written in several styles is not forced
    around one center. ``score_rule="center"`` scores by the objective itself.

    Images are given as arrays of shape ``(n, channels, height, width)``, or
    ``(n, height, width)`` for grey-level images, with channels first. They are
    scaled to a fixed range or per image (see ``scaling``), never standardised
    per pixel: pixels that are blank in every training image (a digit's border)
    are normal, not constant columns.

    Score direction follows scikit-learn, as in :class:`ffoc.FFOneClass`:
    :meth:`score_samples` is **higher for normal images**, :meth:`decision_function`
    is negative for outliers and :meth:`predict` returns +1 (inlier) or -1
    (outlier). :meth:`layer_scores` is higher for more anomalous images.

    Parameters
    ----------
    objective : {"goodness", "goodness-sigmoid", "hb-svdd", "svdd", "ls-svdd"}, default="hb-svdd"
        Loss of each block; see :mod:`ffoc.objectives`.
    trainer : {"ff", "bp"}, default="ff"
        Forward-forward (each block trained by its own loss) or backprop.
    conv_channels : tuple of int, default=(8, 16)
        Filters of each convolutional block.
    kernel_size : int, default=5
        Side of the square filters; the convolutions pad with zeros to keep the
        height and width.
    pooling : {"max", "avg", "none"}, default="max"
        Pooling after each convolutional block's activation.
    pool_size : int, default=2
        Side and stride of the pooling window.
    hidden_layer_sizes : tuple of int, default=()
        Widths of the dense layers after the convolutional blocks; empty for none.
    scaling : {"fixed", "image"}, default="fixed"
        ``"fixed"`` maps the range ``value_range`` (by default the lowest and
        highest value in the training images) linearly to [0, 1], the same for
        every image. ``"image"`` maps each image's own lowest and highest value
        to 0 and 1, which removes differences of brightness and contrast; a
        constant image becomes all zeros.
    value_range : tuple of 2 float or None, default=None
        Range of the raw values for ``scaling="fixed"``, for example ``(0, 255)``
        for 8-bit images; ``None`` takes it from the training images.
    negatives : {"shuffle", "mixed", "noise", "scale", "none"}, default="shuffle"
        Negatives made from each mini-batch; see :mod:`ffoc.negatives`.
        ``"shuffle"`` permutes each pixel independently across the mini-batch,
        which keeps every pixel's distribution and breaks the strokes.
    noise_scale : float, default=0.5
        Standard deviation of the Gaussian noise of the ``"noise"`` negatives,
        in units of the scaled image range.
    negative_weight : float, default=1.0
        Weight of the negatives' loss against the normal images' loss in each
        block's objective; 0 trains on normal images only.
    score_rule : {"knn", "center"}, default="knn"
        How a trained block scores an image. ``"knn"``: the distance from the
        image's activation map to the ``n_neighbors``-th nearest activation map
        of a training image (the references). ``"center"``: the objective's own
        score, such as the squared distance to the block's center for
        ``hb-svdd``. Either way each block's score is standardised on the
        training images and ``score_samples`` is minus their mean over
        ``score_layers``.
        With ``"knn"`` the standardisation and the threshold come from
        leave-one-out scores of the training images, so about ``nu`` (or
        ``contamination``) of new images from the training distribution fall
        outside the threshold. A training image scored again is its own
        nearest reference and looks more normal than a new one, so
        ``predict`` and ``fit_predict`` on the training images flag fewer.
    n_neighbors : int, default=5
        Which neighbour's distance is the score with ``score_rule="knn"``;
        lowered, with a warning, when there are fewer training images.
    max_references : int, default=4096
        Most training images kept as references with ``score_rule="knn"``; a
        random subset is kept when there are more. The references' activation
        maps are stored in the fitted detector and its model file: about
        ``4 * max_references`` bytes per value of the blocks' activation maps.
    activation, bias, nu, theta, learning_rate, epochs, batch_size, optimizer, \
schedule, center_update, normalize_input, score_layers, contamination, \
early_stopping, validation_fraction, \
n_iter_no_change, device, random_state, verbose
        As in :class:`ffoc.FFOneClass`, applied to blocks in place of layers.
        ``normalize_input`` scales each scaled image to unit length before the
        first block.

    Attributes
    ----------
    image_shape_ : tuple of 3 int
        ``(channels, height, width)`` of the training images; images scored
        later must have the same shape.
    n_features_in_ : int
        ``channels * height * width``.
    value_range_ : tuple of 2 float
        Raw range mapped to [0, 1] with ``scaling="fixed"``.
    layers_ : torch.nn.ModuleList
        The trained blocks (:class:`ffoc.conv.ConvBlock`, then
        :class:`ffoc.conv.DenseBlock`).
    references_ : list of torch.Tensor
        With ``score_rule="knn"``: each block's flattened activation maps of the
        reference images, shape (n_references, n_values); empty otherwise.
    n_neighbors_ : int
        The neighbour used for the scores: ``n_neighbors``, or fewer when the
        training set is small.
    states_, layer_score_mean_, layer_score_std_, offset_, history_, device_
        As in :class:`ffoc.FFOneClass`.

    Notes
    -----
    The negatives of :mod:`ffoc.negatives` work on images as they are:
    ``"shuffle"`` permutes each pixel independently across the mini-batch and
    ``"noise"`` adds Gaussian noise to every pixel.

    The defaults were chosen on scikit-learn's 8x8 digits (one digit normal,
    the other nine anomalous); MNIST served only as the check.

    References
    ----------
    G. Hinton, "The Forward-Forward Algorithm: Some Preliminary Investigations", 2022.
    L. Ruff et al., "Deep One-Class Classification", ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from ffoc.images import FFOneClassImage
    >>> rng = np.random.default_rng(0)
    >>> images = rng.uniform(0, 0.2, size=(100, 8, 8))
    >>> images[:, 2:6, 3:5] += 0.8  # every normal image has a bright bar
    >>> detector = FFOneClassImage(epochs=5, random_state=0).fit(images)
    >>> detector.predict(np.stack([images[0], np.zeros((8, 8))]))
    array([ 1, -1])
    """

    _sample_word = "image"

    _parameter_constraints: dict = {
        "objective": [StrOptions(set(OBJECTIVES))],
        "trainer": [StrOptions({"ff", "bp"})],
        "conv_channels": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions(set(POOLING))],
        "pool_size": [Interval(Integral, 1, None, closed="left")],
        "scaling": [StrOptions(set(SCALINGS))],
        "value_range": [None, "array-like"],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "bias": ["boolean"],
        "nu": [Interval(Real, 0, 1, closed="neither")],
        "theta": [None, Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions({"adam", "sgd"})],
        "schedule": [StrOptions({"interleaved", "layerwise"})],
        "center_update": [StrOptions({"fixed", "epoch"})],
        "normalize_input": ["boolean"],
        "score_layers": [StrOptions({"all", "last"}), "array-like"],
        "score_rule": [StrOptions(set(SCORE_RULES))],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "max_references": [Interval(Integral, 2, None, closed="left")],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="both")],
        "negatives": [StrOptions(set(NEGATIVE_KINDS))],
        "negative_weight": [Interval(Real, 0, None, closed="left")],
        "noise_scale": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        objective: str = "hb-svdd",
        trainer: str = "ff",
        *,
        conv_channels=(8, 16),
        kernel_size: int = 5,
        pooling: str = "max",
        pool_size: int = 2,
        hidden_layer_sizes=(),
        scaling: str = "fixed",
        value_range=None,
        activation: str = "relu",
        bias: bool = False,
        nu: float = 0.05,
        theta: float | None = None,
        learning_rate: float = 1e-3,
        epochs: int = 30,
        batch_size: int = 128,
        optimizer: str = "adam",
        schedule: str = "interleaved",
        center_update: str = "fixed",
        normalize_input: bool = False,
        score_layers="all",
        score_rule: str = "knn",
        n_neighbors: int = 5,
        max_references: int = 4096,
        contamination="auto",
        negatives: str = "shuffle",
        negative_weight: float = 1.0,
        noise_scale: float = 0.5,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device="cpu",
        random_state=None,
        verbose: int = 0,
    ) -> None:
        self.objective = objective
        self.trainer = trainer
        self.conv_channels = conv_channels
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.pool_size = pool_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.scaling = scaling
        self.value_range = value_range
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
        self.score_layers = score_layers
        self.score_rule = score_rule
        self.n_neighbors = n_neighbors
        self.max_references = max_references
        self.contamination = contamination
        self.negatives = negatives
        self.negative_weight = negative_weight
        self.noise_scale = noise_scale
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, X_val=None):
        """Fit the detector on normal images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, height, width) or (n_samples, height, width)
            Training images, channels first, assumed normal (up to ``nu`` of them
            may be outliers).
        y : ignored
            Present for API consistency; labels are never used.
        X_val : array-like of images, optional
            Normal validation images of the same shape, for the stopping rule;
            when given, the stopping rule is on.

        Returns
        -------
        self : FFOneClassImage
            The fitted detector.

        Raises
        ------
        ValueError
            If a scaled pixel is too large for float32, or an image overflows
            float32 in the untrained network; the message names the image.
        TrainingDivergedError
            If training diverges.
        """
        images = self._check_X(X, reset=True)
        self._check_architecture()
        self._check_reference_size(len(images))
        self.device_ = resolve_device(self.device)
        generator = self._make_generator()

        # Scaling: a fixed range for every image, or each image's own range.
        self.value_range_ = self._resolve_value_range(images)

        X_scaled = self._to_tensor(images)
        if float(X_scaled.abs().max()) > 1.0:
            # Only training images outside a given value_range get here. Name an image
            # that overflows an untrained network, before training diverges on it. Any
            # initial weights show that, so a fixed seed leaves random_state alone.
            untrained = self._build_layers(torch.Generator().manual_seed(0))
            overflowing = self._overflowing_images(untrained, X_scaled)
            if overflowing.size:
                raise self._overflow_error(images, int(overflowing[0]), "the untrained network")

        X_train, X_valid = self._holdout(X_scaled, X_val, generator)
        self._fit_network(X_train, X_valid, generator)
        return self

    def _train_config(self, n_samples: int) -> TrainConfig:
        return dataclasses.replace(super()._train_config(n_samples), noise_scale=float(self.noise_scale))

    def _train_layer_scores(self, X_train: torch.Tensor) -> np.ndarray:
        """Keep the reference activations (``score_rule="knn"``), then score the training images.

        A training image that is also a reference is not its own neighbour, so
        its training score matches that of a new image from the same
        distribution.
        """
        self.references_ = []
        self.n_neighbors_ = int(self.n_neighbors)
        if self.score_rule == "center":
            return super()._train_layer_scores(X_train)

        n_samples = X_train.shape[0]
        rows = np.arange(n_samples)
        if n_samples > self.max_references:
            rows = np.sort(check_random_state(self.random_state).choice(n_samples, self.max_references, replace=False))
        self.references_ = layer_features(self.layers_, X_train[torch.as_tensor(rows)], batch_size=_NEIGHBOR_BATCH)
        if len(rows) == 1:
            # One training image has no neighbour, so its score is 0 and the flat-score warning follows.
            self.n_neighbors_ = 1
            return np.zeros((n_samples, len(self.layers_)))

        self.n_neighbors_ = min(int(self.n_neighbors), len(rows) - 1)
        if self.n_neighbors_ < self.n_neighbors:
            warnings.warn(
                f"{type(self).__name__}: n_neighbors={self.n_neighbors} needs at least {self.n_neighbors + 1} "
                f"training images, and {len(rows)} were given; scoring by neighbour {self.n_neighbors_} instead.",
                UserWarning,
            )
        self_columns = torch.full((n_samples,), -1, dtype=torch.long)
        self_columns[torch.as_tensor(rows)] = torch.arange(len(rows))
        return neighbor_layer_scores(
            self.layers_, self.references_, X_train, self.n_neighbors_, self_columns=self_columns,
            batch_size=_NEIGHBOR_BATCH,
        )

    def _check_reference_size(self, n_samples: int) -> None:
        """Raise ValueError before training if the kNN references would take more than 2 GiB."""
        if self.score_rule != "knn":
            return
        untrained = self._build_layers(torch.Generator().manual_seed(0))
        with torch.inference_mode():
            outputs = forward_layers(untrained, torch.zeros((1, *self.image_shape_)))
        values = sum(int(h[0].numel()) for h in outputs)
        n_references = min(n_samples, int(self.max_references))
        size = 4 * values * n_references
        if size > _MAX_REFERENCE_BYTES:
            fitting = max(2, _MAX_REFERENCE_BYTES // (4 * values))
            raise ValueError(
                f"score_rule='knn' would keep {n_references} reference images of {values} activation values each "
                f"({size / 1024**3:.1f} GiB, more than the 2 GiB limit). Set max_references={fitting} or lower, "
                "use fewer conv_channels or a larger pool_size, or use score_rule='center'."
            )

    # ------------------------------------------------------------------ scoring

    def layer_scores(self, X) -> np.ndarray:
        """Return each block's anomaly score, shape (n_samples, n_blocks); higher = more anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, height, width) or (n_samples, height, width)
            Images of the training images' shape.

        Raises
        ------
        ValueError
            If a scaled pixel is too large for float32, or an image overflows
            float32 in the network; the message names the image.
        """
        if self.score_rule == "knn":
            check_is_fitted(self)
            X_scaled = self._to_tensor(self._check_X(X, reset=False))
            scores = neighbor_layer_scores(
                self.layers_, self.references_, X_scaled, self.n_neighbors_, batch_size=_NEIGHBOR_BATCH
            )
        else:
            scores = super().layer_scores(X)
        overflowing = np.flatnonzero((np.abs(scores) >= OVERFLOW_SCORE).any(axis=1))
        if overflowing.size:
            raise self._overflow_error(self._check_X(X, reset=False), int(overflowing[0]), "the network")
        return scores

    def score_samples(self, X) -> np.ndarray:
        """Return the normality score of each image: higher means more normal.

        The score is minus the mean over ``score_layers`` of each block's anomaly
        score, standardised by its training mean and standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, height, width) or (n_samples, height, width)
            Images of the training images' shape.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return super().score_samples(X)

    def _selected_layers(self) -> list[int]:
        n_layers = len(self.layers_)
        if isinstance(self.score_layers, str):
            return list(range(n_layers)) if self.score_layers == "all" else [n_layers - 1]
        selected = [int(k) for k in self.score_layers]
        bad = [k for k in selected if not -n_layers <= k < n_layers]
        if not selected or bad:
            raise ValueError(
                f"score_layers={self.score_layers!r} must name blocks between 0 and {n_layers - 1} "
                f"(the network has {n_layers} blocks), or be 'all' or 'last'."
            )
        return [k % n_layers for k in selected]

    # ------------------------------------------------------------------ persistence

    def save(self, path) -> None:
        """Save the fitted detector to ``path`` (safetensors weights with JSON metadata).

        The file is written atomically. Load it with :func:`ffoc.load`.
        """
        super().save(path)

    def _input_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {}, {"image_shape": list(self.image_shape_), "value_range": list(self.value_range_)}

    def _fitted_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors, fitted = super()._fitted_state()
        for k, reference in enumerate(self.references_):
            tensors[f"references.{k}"] = reference.contiguous()
        fitted["n_neighbors"] = int(self.n_neighbors_)
        return tensors, fitted

    def _restore_fitted_state(self, tensors: dict[str, torch.Tensor], fitted: dict) -> None:
        if "n_neighbors" not in fitted:
            # Files saved before score rules existed scored by the objective.
            self.score_rule = "center"
        super()._restore_fitted_state(tensors, fitted)
        self.n_neighbors_ = int(fitted.get("n_neighbors", self.n_neighbors))
        self.references_ = []
        while f"references.{len(self.references_)}" in tensors:
            self.references_.append(tensors[f"references.{len(self.references_)}"].to(torch.float32))
        if self.score_rule == "knn" and len(self.references_) != len(self.layers_):
            raise ValueError(
                f"score_rule='knn' needs reference activations for all {len(self.layers_)} blocks, "
                f"but the file has {len(self.references_)}"
            )

    def _restore_input_state(self, tensors: dict[str, torch.Tensor], fitted: dict) -> None:
        shape = tuple(int(s) for s in fitted["image_shape"])
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape {shape} is not (channels, height, width)")
        self.image_shape_ = shape
        self.n_features_in_ = int(np.prod(shape))
        low, high = (float(v) for v in fitted["value_range"])
        self.value_range_ = (low, high)
        self._check_architecture()

    # ------------------------------------------------------------------ helpers

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        """Return ``X`` as a float array of shape (n, C, H, W), checking it against the fitted shape."""
        name = type(self).__name__
        if hasattr(X, "columns"):
            raise TypeError(
                f"{name} takes image arrays of shape (n, height, width) or (n, channels, height, width), "
                "not a DataFrame; use FFOneClass (ffoc score) for tabular data."
            )
        try:
            images = np.asarray(X)
        except ValueError as error:
            raise ValueError(f"{name} could not convert X to an array of images: {error}") from None
        if images.dtype == object or not (
            np.issubdtype(images.dtype, np.number) or np.issubdtype(images.dtype, np.bool_)
        ):
            raise ValueError(
                f"{name} needs numeric images, got an array of dtype {images.dtype}. Convert the pixels to numbers first."
            )
        if np.iscomplexobj(images):
            raise ValueError(f"{name} does not accept complex numbers; pass the real part or the magnitude.")
        if images.ndim == 3:
            images = images[:, None, :, :]
        elif images.ndim != 4:
            hint = " For tabular data use FFOneClass." if images.ndim == 2 else ""
            raise ValueError(
                f"{name} needs images of shape (n, height, width) or (n, channels, height, width); "
                f"got an array of shape {images.shape}.{hint}"
            )
        elif images.shape[1] > max(_CHANNELS_LAST_HINT) and images.shape[3] in _CHANNELS_LAST_HINT:
            raise ValueError(
                f"{name} takes channels first, (n, channels, height, width); the array of shape "
                f"{images.shape} looks like channels last. Pass np.moveaxis(X, -1, 1)."
            )
        if images.shape[0] < 1:
            raise ValueError(f"{name} needs at least one image; got an array of shape {images.shape}.")
        images = images.astype(np.float64 if images.dtype == np.float64 else np.float32, copy=False)
        if not np.isfinite(images).all():
            index = tuple(int(i[0]) for i in np.nonzero(~np.isfinite(images)))
            raise ValueError(
                f"{name} got a non-finite value {float(images[index])} at image {index[0]}, channel {index[1]}, "
                f"row {index[2]}, column {index[3]}. Replace or drop that image."
            )

        shape = tuple(int(s) for s in images.shape[1:])
        if reset:
            self.image_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
        elif shape != tuple(self.image_shape_):
            channels, height, width = self.image_shape_
            raise ValueError(
                f"{name} was fitted on images of {channels} channel(s) and {height}x{width} pixels "
                f"(channels, height, width = {tuple(self.image_shape_)}), but got images of shape {shape}. "
                "Resize or convert the images to the training shape."
            )
        return images

    def _check_architecture(self) -> None:
        name = type(self).__name__
        channels = np.asarray(self.conv_channels, dtype=object).ravel()
        if not all(isinstance(c, Integral) and not isinstance(c, bool) and c >= 1 for c in channels):
            raise ValueError(
                f"conv_channels={self.conv_channels!r} must be a sequence of positive integers, "
                "for example (16, 32)."
            )
        sizes = np.asarray(self.hidden_layer_sizes, dtype=object).ravel()
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} must be a sequence of positive integers, "
                "for example (64,), or () for no dense layer."
            )
        if channels.size + sizes.size == 0:
            raise ValueError(f"{name} needs at least one block: conv_channels and hidden_layer_sizes are both empty.")
        if self.value_range is not None:
            bounds = np.asarray(self.value_range, dtype=float).ravel()
            if bounds.size != 2 or not np.isfinite(bounds).all() or bounds[0] >= bounds[1]:
                raise ValueError(
                    f"value_range={self.value_range!r} must be two finite numbers (low, high) with low < high, "
                    "for example (0, 255)."
                )

    def _resolve_value_range(self, images: np.ndarray) -> tuple[float, float]:
        if self.value_range is not None:
            low, high = (float(v) for v in np.asarray(self.value_range, dtype=float).ravel())
        else:
            low, high = float(images.min()), float(images.max())
            if high <= low:
                # Constant training images: map them to 0 and keep a unit range.
                high = low + 1.0
        if self.scaling == "fixed" and not np.isfinite(high - low):
            raise ValueError(
                f"{type(self).__name__}: the value range ({low:.6g}, {high:.6g}) is wider than float64 can "
                "represent. Divide the images by a common factor first, so that their values stay "
                "below about 1e307."
            )
        return low, high

    def _build_layers(self, generator: torch.Generator) -> torch.nn.ModuleList:
        layers = build_convnet(
            self.image_shape_,
            [int(c) for c in np.asarray(self.conv_channels).ravel()],
            hidden_layer_sizes=[int(s) for s in np.asarray(self.hidden_layer_sizes).ravel()],
            kernel_size=int(self.kernel_size),
            pooling=self.pooling,
            pool_size=int(self.pool_size),
            activation=self.activation,
            bias=self.bias,
            normalize_input=self.normalize_input,
            generator=generator,
        )
        return layers.to(self._device())

    def _scale(self, images: np.ndarray) -> np.ndarray:
        """Return ``images`` scaled to [0, 1] by the fixed range or by each image's own range.

        A pixel far outside the fixed range, or in an image whose own range
        overflows, scales to inf or NaN; :meth:`_to_tensor` reports it.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            if self.scaling == "image":
                low = images.min(axis=(1, 2, 3), keepdims=True)
                span = images.max(axis=(1, 2, 3), keepdims=True) - low
                return np.divide(images - low, span, out=np.zeros_like(images), where=span > 0)
            low, high = self.value_range_
            return (images - low) / (high - low)

    def _to_tensor(self, X: np.ndarray) -> torch.Tensor:
        scaled = self._scale(X)
        if not np.abs(scaled).max() <= _FLOAT32_MAX:  # also true for NaN
            index = tuple(int(i[0]) for i in np.nonzero(~(np.abs(scaled) <= _FLOAT32_MAX)))
            raise ValueError(
                f"{type(self).__name__}: value {float(X[index]):.6g} at image {index[0]}, channel {index[1]}, "
                f"row {index[2]}, column {index[3]} is {float(scaled[index]):.6g} after {self._scaling_description()}, "
                f"which float32 cannot represent. {self._rescale_advice()}"
            )
        return torch.as_tensor(scaled, dtype=torch.float32, device=self._device())

    def _scaling_description(self) -> str:
        if self.scaling == "image":
            return "scaling by the image's own range"
        low, high = self.value_range_
        return f"scaling from the value range ({low!r}, {high!r}) to [0, 1]"

    def _rescale_advice(self) -> str:
        if self.scaling == "image":
            return "Divide the image by a common factor so that its values stay below about 1e307."
        if self.value_range is None:
            return (
                "Pass images in the units of the training images, or refit with value_range set to the "
                "range of the pixel values."
            )
        return "Pass images in the units of value_range, or set value_range to the range of the pixel values."

    def _overflowing_images(self, layers: torch.nn.ModuleList, X: torch.Tensor) -> np.ndarray:
        """Return the indices of the images whose activations, or their sum of squares, overflow float32 in ``layers``."""
        overflowing = torch.zeros(X.shape[0], dtype=torch.bool)
        with torch.no_grad():
            for index in batches(X.shape[0], self._score_batch_size(), None, shuffle=False):
                for h in forward_layers(layers, X[index]):
                    flat = h.flatten(1)
                    finite = torch.isfinite(flat).all(dim=1) & torch.isfinite(flat.square().sum(dim=1))
                    overflowing[index] |= ~finite.cpu()
        return np.flatnonzero(overflowing.numpy())

    def _overflow_error(self, images: np.ndarray, image: int, network: str) -> ValueError:
        """Return the ValueError for an image that overflows float32 in ``network``, naming its largest value."""
        scaled = self._scale(images[image : image + 1])
        index = np.unravel_index(int(np.argmax(np.abs(scaled))), scaled.shape)
        channel, row, column = (int(i) for i in index[1:])
        return ValueError(
            f"{type(self).__name__}: image {image} overflows float32 in {network}: its value "
            f"{float(images[image, channel, row, column]):.6g} at channel {channel}, row {row}, column {column} "
            f"is {float(scaled[index]):.6g} after {self._scaling_description()}, far outside the [0, 1] that "
            f"the network expects. {self._rescale_advice()}"
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

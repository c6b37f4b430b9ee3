"""The two protocols of the reproduction and the estimator that follows the original's stopping rule."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..estimator import FFOneClass
from ..trainers import TrainConfig, TrainHistory, TrainingDivergedError, bp_step, estimate_states, ff_step
from ..trainers.common import batches, check_finite, make_optimizer, negatives_for

__all__ = [
    "OBJECTIVE_NAMES",
    "PAPER_SPLIT_SEED",
    "PROTOCOLS",
    "PaperOneClass",
    "Protocol",
    "RecordingOneClass",
    "TRAINER_NAMES",
    "labelled_validation_loss",
]

OBJECTIVE_NAMES = ("goodness", "goodness-sigmoid", "hb-svdd", "svdd", "ls-svdd")
TRAINER_NAMES = ("ff", "bp")

# The original code split banknote once, with scikit-learn's random_state=14.
PAPER_SPLIT_SEED = 14

# Estimator settings of the original experiment. The network is an MLP
# 4-40-40-40 with bias and ReLU, and every layer's input (the first included)
# is scaled to unit length. Training uses SGD with learning rate 5e-4 and
# batches of 32 for at most 1000 epochs, refreshes centers and radii after every
# epoch and uses no negatives. The goodness threshold is the original's constant
# 1.0. The score comes from the last layer, and the stopping patience is 10 epochs.
PAPER_PARAMS = {
    "hidden_layer_sizes": (40, 40, 40),
    "activation": "relu",
    "bias": True,
    "normalize_input": True,
    "nu": 0.05,
    "theta": 1.0,
    "optimizer": "sgd",
    "learning_rate": 5e-4,
    "batch_size": 32,
    "epochs": 1000,
    "schedule": "interleaved",
    "center_update": "epoch",
    "negatives": "none",
    "score_layers": "last",
    "early_stopping": False,
    "n_iter_no_change": 10,
}

# Clip of the pseudo-probabilities in the validation cross-entropy, as in the original.
_PROBABILITY_CLIP = 1e-7


@dataclass(frozen=True)
class Protocol:
    """How one protocol builds its detector and chooses its split.

    Attributes
    ----------
    name : str
        ``"paper"`` or ``"ffoc"``.
    description : str
        One line for tables and figure titles.
    label_use : bool
        Whether training reads anomaly labels; the ``paper`` protocol's stopping rule does.
    fixed_split_seed : int or None
        Split seed shared by every run, or ``None`` when the split seed follows
        the run's seed.
    """

    name: str
    description: str
    label_use: bool
    fixed_split_seed: int | None

    def split_seed(self, seed: int) -> int:
        """Return the split seed of the run with model seed ``seed``."""
        return self.fixed_split_seed if self.fixed_split_seed is not None else seed

    def make_detector(
        self, objective: str, trainer: str, seed: int, *, epochs: int | None = None
    ) -> RecordingOneClass:
        """Return the unfitted detector of one run; ``epochs`` overrides the epoch count (quick checks)."""
        params = {"objective": objective, "trainer": trainer, "random_state": seed}
        if self.name == "paper":
            params.update(PAPER_PARAMS)
            detector: RecordingOneClass = PaperOneClass(**params)
        else:
            detector = RecordingOneClass(**params)
        if epochs is not None:
            detector.set_params(epochs=int(epochs))
        return detector


PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol(
        name="paper",
        description="original choices; split seed 14 fixed, model seed varies; stops on a labelled validation loss",
        label_use=True,
        fixed_split_seed=PAPER_SPLIT_SEED,
    ),
    "ffoc": Protocol(
        name="ffoc",
        description="FFOneClass defaults; split seed and model seed vary; no labels in training",
        label_use=False,
        fixed_split_seed=None,
    ),
}


@torch.no_grad()
def labelled_validation_loss(layers, objective, states, X_val: torch.Tensor, y_val: np.ndarray) -> float:
    """Return the original's validation loss, which reads anomaly labels.

    Each validation row's positive loss on the last layer is divided by the
    largest such loss over the validation rows, giving a pseudo-probability of
    being an anomaly in [0, 1]. The value returned is the binary cross-entropy
    between these pseudo-probabilities and the labels ``y_val`` (1 = anomaly),
    with the probabilities clipped to ``[1e-7, 1 - 1e-7]``.

    Parameters
    ----------
    layers : sequence of FFLayer
        The network.
    objective : Objective
        The objective whose positive loss is the score.
    states : sequence of LayerState
        The states used in training; only the last one is read.
    X_val : torch.Tensor of shape (n_val, n_features)
        Standardised validation rows.
    y_val : ndarray of shape (n_val,)
        1 for anomalies, 0 for normal rows.
    """
    h = X_val
    for layer in layers:
        h = layer(h)
    loss = objective.positive_loss(h, states[-1]).double().cpu().numpy()
    largest = loss.max()
    probability = loss / largest if largest > 0 else np.zeros_like(loss)
    probability = np.clip(probability, _PROBABILITY_CLIP, 1.0 - _PROBABILITY_CLIP)
    labels = np.asarray(y_val, dtype=np.float64)
    value = -np.mean(labels * np.log(probability) + (1.0 - labels) * np.log(1.0 - probability))
    return float(value)


class _OriginalEarlyStopping:
    """The original's rule: stop after ``patience`` epochs in a row without a new minimum.

    Any decrease counts as an improvement, and the weights are not restored:
    training ends with the weights of the last epoch.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = math.inf
        self.epochs_without_improvement = 0

    def should_stop(self, value: float) -> bool:
        if value < self.best:
            self.best = value
            self.epochs_without_improvement = 0
            return False
        self.epochs_without_improvement += 1
        return self.epochs_without_improvement >= self.patience


class RecordingOneClass(FFOneClass):
    """:class:`~ffoc.FFOneClass` that can record each layer's parameters during training.

    Same parameters and training as :class:`~ffoc.FFOneClass`; :meth:`fit`
    also takes a ``recorder`` (a :class:`~ffoc.reproduce.ParameterRecorder`)
    that is attached to the network for the duration of training. Recording
    only reads the parameters, so the fitted detector is the same with or
    without it.

    Attributes
    ----------
    train_config_ : TrainConfig
        The training settings as resolved by :class:`~ffoc.FFOneClass` (for
        example the epoch count and negative weight behind "auto").
    """

    def fit(self, X, y=None, *, X_val=None, recorder=None):
        """Fit on normal rows ``X``, recording the parameter path into ``recorder`` when given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Normal training rows.
        y : ignored
            Present for API consistency.
        X_val : array-like of shape (n_val, n_features), optional
            Normal validation rows, as in :meth:`ffoc.FFOneClass.fit`.
        recorder : ParameterRecorder, optional
            Receives the parameters of every layer before each optimizer step,
            and once more after training.

        Returns
        -------
        self : RecordingOneClass
        """
        self._recorder = recorder
        try:
            return super().fit(X, X_val=X_val)
        finally:
            self._recorder = None

    def _train(self, X_train, X_valid, generator) -> None:
        self.train_config_ = _estimator_train_config(self, X_train.shape[0])
        recorder = getattr(self, "_recorder", None)
        if recorder is None:
            self._train_layers(X_train, X_valid, generator)
            return
        recorder.attach(self.layers_)
        try:
            self._train_layers(X_train, X_valid, generator)
        finally:
            recorder.detach()
        recorder.finish(self.layers_)

    def _train_layers(self, X_train, X_valid, generator) -> None:
        super()._train(X_train, X_valid, generator)


class PaperOneClass(RecordingOneClass):
    """:class:`~ffoc.FFOneClass` with the original paper's label-using stopping rule.

    Same parameters as :class:`~ffoc.FFOneClass`. When :meth:`fit` receives
    labelled validation rows (``X_val`` and ``y_val``), training runs up to
    ``epochs`` epochs and, after each, computes
    :func:`labelled_validation_loss` on them. Training stops once that loss has
    not reached a new minimum for ``n_iter_no_change`` epochs in a row, keeping
    the last epoch's weights. Centers and radii are refreshed after each epoch
    when ``center_update="epoch"``, after the stopping check as in the original.
    Without ``y_val`` it trains exactly like :class:`~ffoc.FFOneClass`.

    This rule reads anomaly labels, so results obtained with it are not those of
    a one-class method: use it only to reproduce the original experiment.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 4))
    >>> X_val = np.vstack([rng.normal(size=(20, 4)), rng.normal(5.0, 1.0, size=(20, 4))])
    >>> y_val = np.repeat([0, 1], 20)
    >>> detector = PaperOneClass(epochs=50, random_state=0).fit(X, X_val=X_val, y_val=y_val)
    >>> len(detector.history_.validation_losses) <= 50
    True
    """

    def fit(self, X, y=None, *, X_val=None, y_val=None, recorder=None):
        """Fit on normal rows ``X``; with ``y_val``, stop on the labelled validation loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Normal training rows.
        y : ignored
            Present for API consistency.
        X_val : array-like of shape (n_val, n_features), optional
            Validation rows. With ``y_val`` they may contain both classes and
            drive the labelled stopping rule; without it they must be normal and
            drive :class:`~ffoc.FFOneClass`'s label-free rule.
        y_val : array-like of shape (n_val,), optional
            1 for anomalies and 0 for normal rows of ``X_val``.
        recorder : ParameterRecorder, optional
            Receives the parameter path, as in :meth:`RecordingOneClass.fit`.

        Returns
        -------
        self : PaperOneClass
        """
        self._labelled_validation = None
        if y_val is not None:
            if X_val is None:
                raise ValueError("PaperOneClass.fit received y_val without X_val; pass the validation rows too.")
            labels = np.asarray(y_val).ravel().astype(np.int64)
            rows = np.asarray(X_val)
            if rows.shape[0] != labels.shape[0]:
                raise ValueError(
                    f"X_val has {rows.shape[0]} rows but y_val has {labels.shape[0]} labels; "
                    "pass one label per validation row."
                )
            if set(np.unique(labels).tolist()) - {0, 1}:
                raise ValueError(f"y_val must contain only 0 (normal) and 1 (anomaly); got {np.unique(labels)}.")
            self._labelled_validation = (rows, labels)
            X_val = None
        try:
            return super().fit(X, X_val=X_val, recorder=recorder)
        finally:
            self._labelled_validation = None

    def _train_layers(self, X_train, X_valid, generator) -> None:
        if getattr(self, "_labelled_validation", None) is None:
            super()._train_layers(X_train, X_valid, generator)
            return
        rows, labels = self._labelled_validation
        X_val = self._to_tensor(self._check_X(rows, reset=False))
        self.states_, self.history_ = self._train_with_labelled_stopping(X_train, X_val, labels, generator)

    def _train_with_labelled_stopping(self, X, X_val, y_val, generator):
        config = self.train_config_
        self.n_epochs_ = config.epochs
        layers = self.layers_
        states = self.states_
        params = [p for layer in layers for p in layer.parameters()]
        optimizer = make_optimizer(config.optimizer, params, config.learning_rate)
        stopper = _OriginalEarlyStopping(self.n_iter_no_change)
        history = TrainHistory()
        where = "forward-forward" if self.trainer == "ff" else "backprop"
        for epoch in range(config.epochs):
            # One pass over the training rows in mini-batches.
            total = torch.zeros(len(layers) if self.trainer == "ff" else 1)
            n_batches = 0
            for index in batches(X.shape[0], config.batch_size, generator):
                x = X[index]
                x_negative = negatives_for(x, config, generator)
                if self.trainer == "ff":
                    total += ff_step(layers, states, x, x_negative, config, optimizer)
                else:
                    total += bp_step(layers, states, x, x_negative, config, optimizer)
                n_batches += 1
            check_finite(total.sum(), epoch, where)
            history.layer_losses.append((total / max(n_batches, 1)).tolist())

            # The stopping check comes before the center refresh, as in the original.
            value = labelled_validation_loss(layers, config.objective, states, X_val, y_val)
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"The labelled validation loss is {value} in epoch {epoch + 1}; lower learning_rate."
                )
            history.validation_losses.append(value)
            if stopper.should_stop(value):
                history.stopped_epoch = epoch
                break
            if config.center_update == "epoch":
                states = estimate_states(layers, config.objective, X, nu=self.nu, previous=states)
        return states, history


def _estimator_train_config(detector: FFOneClass, n_samples: int) -> TrainConfig:
    """Return the TrainConfig that ``detector`` trains with, its "auto" values resolved.

    Older versions of :class:`~ffoc.FFOneClass` build it without the number of
    training rows, newer ones with it.
    """
    build = detector._train_config
    if "n_samples" in inspect.signature(build).parameters:
        return build(n_samples)
    return build()

"""Scoring, training and persistence shared by :class:`ffoc.FFOneClass` and :class:`ffoc.images.FFOneClassImage`.

Both detectors stack layers (dense layers or convolutional blocks) that each
carry a one-class objective. They differ only in how they check and transform
their input and in the network they build, so :class:`_BaseFFOneClass` contains
everything else. A subclass defines ``__init__`` (scikit-learn reads the parameters from its
signature), ``fit``, ``_check_X``, ``_to_tensor``, ``_build_layers``,
``_selected_layers`` and the two input hooks of persistence,
``_input_state`` and ``_restore_input_state``.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._validation import check_no_bool_numbers
from .objectives import LayerState, get_objective
from .trainers import TrainConfig, TrainHistory, TrainingDivergedError, estimate_states, layer_scores, train_bp, train_ff
from .trainers.common import OVERFLOW_SCORE

__all__: list[str] = []

# Floor of a layer's training-score standard deviation, so that a constant layer
# score does not divide by zero when the layers are combined.
_MIN_SCORE_STD = 1e-12


#: Parameters that shape the fitted network, its per-layer state or its threshold ``offset_``.
#: Changing one needs a new fit. The others (training settings, ``verbose``...) may change freely.
STRUCTURAL_PARAMS = (
    "objective", "trainer", "hidden_layer_sizes", "activation", "bias", "normalize_input", "normalize_hidden",
    "nu", "theta", "conv_channels", "kernel_size", "pool_size", "pooling", "scaling", "value_range",
    "contamination", "score_layers", "score_rule", "n_neighbors", "max_references",
)
#: Parameters fixed in a stream's optimizer when its first partial_fit call builds it.
OPTIMIZER_PARAMS = ("learning_rate", "optimizer")


def _comparable(value):
    """Return ``value`` with sequences as lists, so that (64, 64), [64, 64] and arrays compare equal."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return np.asarray(value).tolist()
    return value


class _BaseFFOneClass(OutlierMixin, BaseEstimator):
    """Layer-wise one-class detector: the parts that do not depend on the input's form."""

    #: What one sample is called in messages.
    _sample_word = "row"

    # ------------------------------------------------------------------ fitting

    def _validate_params(self) -> None:
        """Check the parameters against ``_parameter_constraints``, and reject bools for numeric ones.

        ``fit`` and ``partial_fit`` call it through scikit-learn's ``_fit_context``,
        and ``fit_stream`` calls it directly.
        """
        super()._validate_params()
        check_no_bool_numbers(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)

    def _holdout(
        self, X_train: torch.Tensor, X_val, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(X_train, X_valid)``: ``X_val`` checked, or a held-out share of ``X_train`` when stopping early."""
        if X_val is not None:
            return X_train, self._to_tensor(self._check_X(X_val, reset=False))
        if not self.early_stopping or X_train.shape[0] < 2:
            return X_train, None
        n_valid = self._n_holdout(X_train.shape[0])
        order = torch.randperm(X_train.shape[0], generator=generator)
        return X_train[order[n_valid:]], X_train[order[:n_valid]]

    def _remember_structure(self) -> None:
        """Record the parameters that shape the network just built, to detect later changes."""
        params = self.get_params(deep=False)
        self._fitted_structure = {
            key: _comparable(params[key]) for key in STRUCTURAL_PARAMS + OPTIMIZER_PARAMS if key in params
        }

    def _check_structure_unchanged(self, action: str, keys=STRUCTURAL_PARAMS) -> None:
        """Raise ValueError if one of ``keys`` changed since the network was built.

        ``action`` names what the caller was about to do, for the message.
        """
        fitted = getattr(self, "_fitted_structure", None)
        if fitted is None:
            return
        params = self.get_params(deep=False)
        changed = [f"{key} ({fitted[key]!r} at fit, {_comparable(params[key])!r} now)"
                   for key in keys if key in fitted and _comparable(params[key]) != fitted[key]]
        if changed:
            raise ValueError(
                f"{type(self).__name__}: {', '.join(changed)} changed after fit, but the fitted network "
                f"still uses the old value(s). Call fit again, or set them back before {action}."
            )

    def _n_holdout(self, n_samples: int) -> int:
        # Keep at least one sample on each side of the holdout.
        return min(n_samples - 1, max(1, int(round(self.validation_fraction * n_samples))))

    def _fit_network(self, X_train: torch.Tensor, X_valid: torch.Tensor | None, generator: torch.Generator) -> None:
        """Build the layers, estimate their initial states, train them and set the score statistics."""
        self.layers_ = self._build_layers(generator)
        self._remember_structure()
        self._saved_training = None
        self._objective = get_objective(self.objective, nu=self.nu)
        self.states_ = estimate_states(
            self.layers_, self._objective, X_train, nu=self.nu, theta=self.theta
        )
        self._train(X_train, X_valid, generator)
        self._finish_fit(X_train)

    def _train(self, X_train: torch.Tensor, X_valid: torch.Tensor | None, generator: torch.Generator) -> None:
        config = self._train_config(X_train.shape[0])
        train = train_ff if self.trainer == "ff" else train_bp
        validation_loss = None
        if X_valid is not None:
            def validation_loss() -> float:
                return self._validation_loss(X_valid)

        n_steps = config.epochs * (len(self.layers_) if self.schedule == "layerwise" and self.trainer == "ff" else 1)
        progress = None
        if self.verbose:
            from tqdm.auto import tqdm

            progress = tqdm(total=n_steps, desc=f"{self.trainer} {self.objective}", unit="epoch", leave=False)
        try:
            with self._thread_limit():
                self.states_, self.history_ = train(
                    self.layers_, self.states_, X_train, config, generator=generator, nu=self.nu,
                    validation_loss=validation_loss, progress=progress,
                )
        finally:
            if progress is not None:
                progress.close()

    def _thread_limit(self):
        """Return the context that training runs in. The base version leaves torch's thread count alone."""
        return contextlib.nullcontext()

    def _train_config(self, n_samples: int) -> TrainConfig:
        return TrainConfig(
            objective=self._objective,
            learning_rate=self.learning_rate,
            epochs=self._resolve_epochs(n_samples),
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            schedule=self.schedule,
            center_update=self.center_update,
            negatives=self.negatives,
            negative_weight=self._resolve_negative_weight(),
            theta=self.theta,
            n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose,
        )

    def _resolve_epochs(self, n_samples: int) -> int:
        return int(self.epochs)

    def _resolve_negative_weight(self) -> float:
        return float(self.negative_weight)

    @torch.no_grad()
    def _validation_loss(self, X_valid: torch.Tensor) -> float:
        """Return the positive loss of the validation samples, summed over the trained layers."""
        h = X_valid
        total = 0.0
        for k, layer in enumerate(self.layers_):
            h = layer(h)
            if self.trainer == "ff" or k == len(self.layers_) - 1:
                total += float(self._objective.positive_loss(h, self.states_[k]).mean())
        return total

    def _finish_fit(self, X_train: torch.Tensor) -> None:
        """Refresh the radii on the trained network, then set the score statistics and offset."""
        self.states_ = estimate_states(
            self.layers_, self._objective, X_train, nu=self.nu, previous=self.states_,
            keep_center=self.center_update == "fixed",
        )
        self._check_radii()
        train_layer_scores = self._train_layer_scores(X_train)
        self._check_train_scores(train_layer_scores)
        self._set_score_statistics(train_layer_scores)
        train_scores = self._combine(train_layer_scores)
        self.offset_ = float(self._offset_from(train_scores))

    def _train_layer_scores(self, X_train: torch.Tensor) -> np.ndarray:
        """Return each layer's anomaly score of the training samples, for the score statistics and offset."""
        return layer_scores(self.layers_, self._objective, self.states_, X_train)

    def _set_score_statistics(
        self, train_layer_scores: np.ndarray, *, warned_layers: tuple[int, ...] | None = (), n_seen: int | None = None
    ) -> None:
        """Set ``layer_score_mean_`` and ``layer_score_std_``, and warn about scored layers whose scores are flat.

        A layer is flat when every training row gets nearly the same score there;
        only the layers that ``score_samples`` combines count. ``warned_layers``
        lists the layers already reported, so that online training warns once
        when a layer turns flat and not after every call. None warns about no
        layer. ``n_seen`` is the number of rows an online detector has seen so
        far, for the message. The flat layers and their training score standard
        deviations are stored in ``_flat_layers`` and ``_flat_spreads``.
        """
        self.layer_score_mean_ = train_layer_scores.mean(axis=0)
        spread = train_layer_scores.std(axis=0)
        n_layers = spread.shape[0]
        scored = sorted({int(k) % n_layers for k in self._selected_layers()})
        flat = [k for k in scored if spread[k] <= max(_MIN_SCORE_STD, 1e-6 * abs(self.layer_score_mean_[k]))]
        self._flat_layers = tuple(flat)
        self._flat_spreads = tuple(float(spread[k]) for k in flat)
        if warned_layers is not None and not set(flat) <= set(warned_layers):
            self._warn_flat_layers(n_seen)
        self.layer_score_std_ = np.maximum(spread, _MIN_SCORE_STD)

    def _warn_flat_layers(self, n_seen: int | None = None) -> None:
        """Warn that the scored layers in ``_flat_layers`` give every training row nearly the same score.

        ``n_seen``, the rows an online detector has seen so far, goes into the
        message, because the warning describes the detector after those rows.
        """
        flat = self._flat_layers
        where = f"layer {flat[0]}" if len(flat) == 1 else f"layers {', '.join(map(str, flat))}"
        sample = self._sample_word
        rows = f"every training {sample}" if n_seen is None else (
            f"after {n_seen} {sample}{'' if n_seen == 1 else 's'} seen, every training {sample} so far"
        )
        n_layers = len(self.layer_score_mean_)
        if len({int(k) % n_layers for k in self._selected_layers()}) > 1:
            effect = f"scores of new {sample}s are not comparable across the scored layers"
        else:
            effect = f"the training scores give no scale against which to measure new {sample}s"
        warnings.warn(
            f"{type(self).__name__}: {rows} gets nearly the same score at {where} (training score standard "
            f"deviation {', '.join(f'{value:.3g}' for value in self._flat_spreads)}), so {effect}. This happens "
            f"with one {sample}, identical {sample}s or a collapsed network: train on more, varied {sample}s or "
            "lower learning_rate.",
            UserWarning,
        )

    def _check_radii(self) -> None:
        """Raise TrainingDivergedError if a refreshed radius is not finite."""
        if any(state.radius2 is not None and not np.isfinite(state.radius2) for state in self.states_):
            raise TrainingDivergedError(
                "Training diverged: a layer's radius is not finite. Lower learning_rate, or check the input "
                "for extreme values."
            )

    def _check_train_scores(self, train_layer_scores: np.ndarray) -> None:
        """Raise TrainingDivergedError if the trained layers overflow float32 on the training data."""
        if np.any(np.abs(train_layer_scores) >= OVERFLOW_SCORE):
            raise TrainingDivergedError(
                "Training diverged: the trained layers overflow float32 on the training data. "
                "Lower learning_rate, or check the input for extreme values."
            )

    def _offset_from(self, train_scores: np.ndarray) -> float:
        contamination = self.nu if self.contamination == "auto" else float(self.contamination)
        return np.quantile(train_scores, contamination)

    # ------------------------------------------------------------------ scoring

    def layer_scores(self, X) -> np.ndarray:
        """Return each layer's anomaly score, shape (n_samples, n_layers); higher = more anomalous."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return layer_scores(
            self.layers_, self._get_objective(), self.states_, self._to_tensor(X), batch_size=self._score_batch_size()
        )

    def _score_batch_size(self) -> int:
        """Return the rows per forward pass when scoring (subclasses size it to their layers)."""
        return 8192

    def score_samples(self, X) -> np.ndarray:
        """Return the normality score of each sample: higher means more normal."""
        return self._combine(self.layer_scores(X))

    def decision_function(self, X) -> np.ndarray:
        """Return ``score_samples(X) - offset_``: negative for outliers, positive for inliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """Return +1 for inliers and -1 for outliers; a decision value of exactly 0 is an inlier."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def _combine(self, scores: np.ndarray) -> np.ndarray:
        selected = self._selected_layers()
        standardised = (scores[:, selected] - self.layer_score_mean_[selected]) / self.layer_score_std_[selected]
        return -standardised.mean(axis=1)

    def _get_objective(self):
        objective = getattr(self, "_objective", None)
        if objective is None:
            objective = self._objective = get_objective(self.objective, nu=self.nu)
        return objective

    # ------------------------------------------------------------------ persistence

    def save(self, path) -> None:
        """Save the fitted detector to ``path`` (safetensors weights with JSON metadata).

        The file is written atomically: a failure leaves any earlier file intact.
        Load it with :func:`ffoc.load`.
        """
        from .persistence import save

        save(self, path)

    def _fitted_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Return the fitted tensors and the JSON-ready fitted scalars, for :func:`ffoc.persistence.save`."""
        tensors = {f"layers.{name}": t for name, t in self.layers_.state_dict().items()}
        input_tensors, fitted = self._input_state()
        tensors.update(input_tensors)
        tensors["layer_score.mean"] = torch.as_tensor(self.layer_score_mean_)
        tensors["layer_score.std"] = torch.as_tensor(self.layer_score_std_)
        states = []
        for k, state in enumerate(self.states_):
            if state.center is not None:
                tensors[f"states.{k}.center"] = state.center
            states.append({"radius2": state.radius2, "theta": state.theta, "scale": state.scale})
        fitted.update(
            offset=self.offset_,
            states=states,
            history={
                "layer_losses": self.history_.layer_losses,
                "validation_losses": self.history_.validation_losses,
                "best_epoch": self.history_.best_epoch,
            },
            training=self._training_summary(),
        )
        return tensors, fitted

    def _training_summary(self) -> dict:
        """Return how the fitted network was trained, as stored in model files and shown by ``ffoc info``.

        A detector loaded from a file returns the summary stored there, and
        one fitted with ``fit`` returns ``{"trained_with": "fit", "epochs_trained": N}``,
        N being the epochs run. When early stopping restored the weights of its
        best epoch, ``epochs_kept`` is the number of epochs behind those weights.
        With ``schedule="layerwise"`` both are lists with one entry per layer,
        since each layer trains, and may stop early, on its own.
        """
        saved = getattr(self, "_saved_training", None)
        if saved is not None:
            return saved
        history = self.history_
        if len(history.phase_epochs) > 1:
            # Layer-wise schedule: each layer trained for its own number of epochs.
            summary = {"trained_with": "fit", "epochs_trained": list(history.phase_epochs)}
            if history.phase_best_epochs:
                summary["epochs_kept"] = [best + 1 for best in history.phase_best_epochs]
            return summary
        summary = {"trained_with": "fit", "epochs_trained": len(history.layer_losses)}
        if history.best_epoch is not None:
            summary["epochs_kept"] = history.best_epoch + 1
        return summary

    def _restore_fitted_state(self, tensors: dict[str, torch.Tensor], fitted: dict) -> None:
        """Rebuild the fitted detector on the CPU from :meth:`_fitted_state`'s output."""
        self.device = "cpu"
        self.device_ = torch.device("cpu")
        self._restore_input_state(tensors, fitted)
        self.layers_ = self._build_layers(torch.Generator().manual_seed(0))
        layer_tensors = {name[len("layers."):]: t for name, t in tensors.items() if name.startswith("layers.")}
        self.layers_.load_state_dict(layer_tensors, strict=True)
        self._remember_structure()

        self.states_ = [
            LayerState(
                center=tensors.get(f"states.{k}.center"),
                radius2=entry["radius2"],
                theta=entry["theta"],
                scale=float(entry["scale"]),
            )
            for k, entry in enumerate(fitted["states"])
        ]
        if len(self.states_) != len(self.layers_):
            raise ValueError(f"{len(self.states_)} layer states for {len(self.layers_)} layers")
        self.layer_score_mean_ = tensors["layer_score.mean"].numpy().astype(np.float64)
        self.layer_score_std_ = tensors["layer_score.std"].numpy().astype(np.float64)
        self.offset_ = float(fitted["offset"])
        history = fitted.get("history", {})
        self.history_ = TrainHistory(
            layer_losses=history.get("layer_losses", []),
            validation_losses=history.get("validation_losses", []),
            best_epoch=history.get("best_epoch"),
        )
        # NOTE: files written before the summary existed lack it, so they report "fit" with one epoch
        # per history line. For a model streamed with such a version, that counts its training calls.
        self._saved_training = fitted.get("training")
        self._objective = get_objective(self.objective, nu=self.nu)

    def _input_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Return the tensors and JSON-ready values that describe the fitted input (its shape and scaling)."""
        raise NotImplementedError

    def _restore_input_state(self, tensors: dict[str, torch.Tensor], fitted: dict) -> None:
        """Restore what :meth:`_input_state` saved and check the architecture, before the layers are built."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers

    def _make_generator(self) -> torch.Generator:
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        return torch.Generator().manual_seed(seed)

    def _device(self) -> torch.device:
        return getattr(self, "device_", torch.device("cpu"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

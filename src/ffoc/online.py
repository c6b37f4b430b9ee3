"""Online training of :class:`ffoc.FFOneClass`: ``partial_fit``, ``fit_stream`` and running statistics.

Forward-forward training updates each layer from the mini-batch passing through
it, so a detector can learn from a stream: one batch in, every layer steps, and
the batch is dropped. :class:`OnlineMixin` adds this to the estimator. Each
mini-batch goes through the same step function as :meth:`FFOneClass.fit`
(:func:`ffoc.trainers.ff_step` or :func:`ffoc.trainers.bp_step`). The
statistics that ``fit`` computes from the whole training set come from running
estimates instead:

* **Input scaling**: a running mean and variance over all rows seen, merged one
  call at a time with the pairwise update of Chan, Golub and LeVeque (1979). With
  ``forgetting > 0`` the weight of earlier rows decays by ``(1 - forgetting)``
  per row, so the scaling follows drift.
* **Warm-up**: the first ``max(batch_size, WARM_UP_ROWS)`` rows are kept until
  that many have arrived. Then the centers and thresholds are estimated from
  them, exactly as ``fit`` estimates them from its training set, and the rows are
  trained on. Before then no step is taken, but the detector can already score,
  with statistics estimated from the rows kept so far.
* **Radius, score standardisation and threshold** (``offset_``): computed with
  the current network from a reservoir sample of at most ``RESERVOIR_SIZE`` raw
  rows, at the end of every ``partial_fit`` call. The reservoir is
  Vitter's Algorithm R (a uniform sample of every row seen) or, with
  ``forgetting > 0``, Aggarwal's biased reservoir (a sample whose rows survive
  with probability about ``(1 - forgetting) ** age``). The quantile of the
  reservoir is the streaming quantile estimate; see :class:`OnlineMixin` for its
  error bound.

Memory does not grow with the length of the stream: the reservoir, the warm-up
rows and one call's rows are all that is kept, plus one line of loss history
per call.

Examples
--------
>>> import numpy as np
>>> from ffoc import FFOneClass
>>> rng = np.random.default_rng(0)
>>> detector = FFOneClass(random_state=0)
>>> for _ in range(5):
...     detector = detector.partial_fit(rng.normal(size=(400, 3)))
>>> detector.predict(np.array([[0.0, 0.0, 0.0], [9.0, 9.0, 9.0]]))
array([ 1, -1])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.preprocessing import StandardScaler

from ._base import OPTIMIZER_PARAMS, STRUCTURAL_PARAMS
from ._validation import resolve_device
from .objectives import LayerState, get_objective
from .trainers import TrainHistory, TrainingDivergedError, bp_step, estimate_states, ff_step, layer_scores
from .trainers.common import batches, make_optimizer, negatives_for

__all__ = ["OnlineMixin", "StreamState", "RESERVOIR_SIZE", "WARM_UP_ROWS"]

# Rows kept for the streaming quantiles. The rank error of a quantile of k
# uniformly sampled rows is at most sqrt(ln(2 / delta) / (2 k)) with probability
# 1 - delta (Dvoretzky-Kiefer-Wolfowitz with Massart's constant): 0.021 for
# k = 4096 and delta = 0.05.
RESERVOIR_SIZE = 4096

# Minimum number of rows from which the scaler, centers and thresholds are first
# estimated; the warm-up is at least one mini-batch long.
WARM_UP_ROWS = 512

# A feature whose running standard deviation is at most this fraction of its
# absolute mean is constant and gets scale 1. Like StandardScaler's test, it is
# relative to the mean, so a column that varies at 1e-30 is still scaled.
_CONSTANT_RTOL = 1e-12


@dataclass
class StreamState:
    """Running state of online training, saved in checkpoints.

    Attributes
    ----------
    n_seen : int
        Rows given to ``partial_fit`` so far.
    n_calls : int
        ``partial_fit`` calls so far.
    n_steps : int
        Optimizer steps taken.
    warmed_up : bool
        Whether the warm-up rows have been collected and trained on.
    weight : float
        Total weight of the running mean and variance (``n_seen`` without forgetting).
    reservoir : ndarray of shape (RESERVOIR_SIZE, n_features)
        Raw sampled rows; the first ``reservoir_filled`` are in use.
    reservoir_filled : int
        Rows in the reservoir.
    warm_up_rows : list of ndarray
        Raw rows kept during the warm-up.
    optimizer : torch.optim.Optimizer
        The optimizer over every layer's parameters.
    generator : torch.Generator
        Source of the shuffling, negatives and reservoir draws.
    train_states : list of LayerState or None
        Centers, radii and thresholds in the training loss. As in ``fit`` with
        ``center_update="fixed"``, they stay as estimated at the end of the
        warm-up, while ``states_`` (for scoring) is refreshed after every call.
        With ``forgetting > 0`` their centers follow ``states_``, and with
        ``center_update="epoch"`` they are ``states_``.
    layers : torch.nn.ModuleList
        The layers this state trains. A later ``fit`` replaces the estimator's
        layers, and ``partial_fit`` then continues from those with a new state.
    """

    n_seen: int
    n_calls: int
    n_steps: int
    warmed_up: bool
    weight: float
    reservoir: np.ndarray
    reservoir_filled: int
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    layers: torch.nn.ModuleList
    warm_up_rows: list[np.ndarray] = field(default_factory=list)
    train_states: list[LayerState] | None = None


class OnlineMixin:
    """Online training for :class:`ffoc.FFOneClass`: :meth:`partial_fit` and :meth:`fit_stream`.

    Each :meth:`partial_fit` call makes one pass over its rows in shuffled
    mini-batches of ``batch_size`` rows, and every layer takes one step per
    mini-batch through the step function that ``fit`` uses. ``epochs``,
    ``early_stopping`` and ``validation_fraction`` do not apply to streams and
    are ignored. ``schedule="layerwise"`` trains each layer to completion before
    the next, which a stream cannot do, so it raises a ValueError.

    Attributes
    ----------
    n_samples_seen_ : int
        Rows given to :meth:`partial_fit` and :meth:`fit_stream` so far (set
        by online training only).

    Notes
    -----
    Input scaling
        Running mean and (population) variance, merged per call with the
        pairwise update of Chan, Golub and LeVeque; exact without forgetting.
        With ``forgetting = f > 0``, the earlier weight is multiplied by
        ``(1 - f) ** n`` before a call's ``n`` rows are merged, each with weight 1.
    Centers, radii and thresholds of the training loss
        Estimated once, at the end of the warm-up, from the warm-up rows (the
        mean activation and the ``(1 - nu)`` distance quantile, as ``fit``
        estimates them at initialisation), then kept, as ``fit`` keeps them with
        ``center_update="fixed"``. Refreshing the radius of the loss after every
        call instead lets it run away (eight times ``fit``'s on the donors data
        set): negatives pushed past the radius widen the normal rows'
        distances, which widens the radius. With ``forgetting > 0`` the loss's
        centers follow the centers refreshed after every call (below), and
        its radii and thresholds stay. With ``center_update="epoch"`` the loss
        uses the refreshed states whole, as ``fit`` does after every epoch.
    Radii, per-layer score mean and standard deviation, ``offset_``
        Computed after every call with the current network from the reservoir
        rows: the squared radius is the ``(1 - nu)`` quantile of the reservoir's
        squared distances to the center, and ``offset_`` the ``contamination``
        quantile of its ``score_samples``.

    Streaming quantile estimator and its error bound
        The quantiles are those of a reservoir sample of at most ``k =``
        :data:`RESERVOIR_SIZE` rows. Without forgetting the reservoir is Vitter's
        Algorithm R, a uniform sample without replacement of every row seen, and
        the rank error of a sample quantile is at most
        ``epsilon = sqrt(ln(2 / delta) / (2 k))`` with probability ``1 - delta``
        (the Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant;
        sampling without replacement only tightens it). For ``k = 4096`` and
        ``delta = 0.05``, ``epsilon = 0.021``: the radius is the quantile at a
        rank between ``1 - nu - 0.021`` and ``1 - nu + 0.021`` of all rows seen,
        scored by the current network. With forgetting the reservoir is
        Aggarwal's biased reservoir: once full, each new row replaces a random
        slot with probability ``min(1, k * f)``, so a row survives ``t`` later rows
        with probability about ``exp(-f t)``. It samples the exponentially
        weighted stream, but its slots are not independent, so the bound above
        is only a guide there.

    Learning rate and batch size
        The loss of each mini-batch is a mean over its rows, so the gradient's
        scale does not depend on ``batch_size``, but the number of steps in one
        pass is ``n_rows / batch_size``. With Adam each step moves the weights
        by about ``learning_rate`` whatever the batch size, so halving
        ``batch_size`` roughly doubles how far one pass moves them. With SGD the
        usual rule is to scale ``learning_rate`` in proportion to
        ``batch_size`` (Goyal et al., 2017) to keep the progress per row. A
        mini-batch of one row is accepted, but then "shuffle" negatives equal
        the row itself; prefer batches of 32 rows or more.

    Drift
        The network keeps learning at its constant learning rate, so it follows
        the data as long as its targets do. ``forgetting`` releases the targets:
        the scaler, the centers and the reservoir behind the radii and the
        threshold all weight recent rows more, with a memory of about
        ``1 / forgetting`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> from ffoc import FFOneClass
    >>> rng = np.random.default_rng(0)
    >>> chunks = (rng.normal(size=(500, 2)) for _ in range(4))
    >>> detector = FFOneClass(random_state=0).fit_stream(chunks)
    >>> detector.n_samples_seen_
    2000
    """

    # ------------------------------------------------------------------ public API

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the detector with one pass over the normal rows ``X``.

        The first call starts training; later calls continue it. A detector
        fitted with ``fit`` (or loaded) continues from its weights with a new
        optimizer and an empty reservoir.

        A new stream first collects a warm-up of ``max(batch_size, 512)`` rows
        (:data:`WARM_UP_ROWS` is 512). Until that many rows have arrived, calls
        take no optimizer step: the detector keeps its initial weights and
        scores with statistics from the rows collected so far. The call that
        completes the warm-up trains on all of them. A stream shorter than the
        warm-up therefore trains nothing, so fit the rows with :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Normal rows, from one row up.
        y : ignored
            Present for API consistency.

        Returns
        -------
        self : FFOneClass
            The updated detector.

        Raises
        ------
        ValueError
            If ``schedule="layerwise"``, if ``X`` is not 2-D or not finite, or if
            its number of features differs from the first call's.
        TrainingDivergedError
            If a loss or a weight stops being finite, or the trained layers
            overflow float32 on the reservoir rows.

        Warns
        -----
        UserWarning
            When every row behind the score statistics (the warm-up rows, then
            the reservoir) gets nearly the same score at a scored layer, as
            ``fit`` warns. This happens with one row, identical rows or a
            collapsed network. The message gives the rows seen so far, because
            it describes the detector after this call: a layer that is flat
            after the first few rows may not stay flat. A stream warns when a
            layer turns flat, not again after every call while it stays flat.

        Notes
        -----
        A call that raises, whatever the error, leaves the detector as it was
        before the call: weights, optimizer and generator state, running
        statistics and reservoir. The layer weights and the optimizer state are
        copied at the start of every call for this, about 0.04 ms for the default
        network and 9 ms for a 784-1024-1024 one (estimated on one CPU thread).
        """
        self._partial_fit(X, start=False)
        return self

    def fit_stream(self, batches: Iterable, y=None):
        """Fit the detector from scratch on an iterable of 2-D batches, one pass each.

        Equivalent to discarding any earlier training and calling
        :meth:`partial_fit` on each batch in turn. Only one batch is held at a
        time, so a generator that reads a large file in chunks trains in bounded
        memory.

        Parameters
        ----------
        batches : iterable of array-like of shape (n_rows, n_features)
            Batches of normal rows, such as the chunks of
            :func:`ffoc.io.iter_table_chunks`.
        y : ignored
            Present for API consistency.

        Returns
        -------
        self : FFOneClass
            The fitted detector.

        Raises
        ------
        ValueError
            If ``batches`` yields nothing, or a batch is not a 2-D table.
        TrainingDivergedError
            If training diverges on a batch. The detector then keeps its state
            after the batches before it, as :meth:`partial_fit` does.
        TypeError
            If ``batches`` is a single array (use :meth:`fit` or :meth:`partial_fit`).

        Warns
        -----
        UserWarning
            At the end of the stream, when it had fewer rows than the warm-up
            of ``max(batch_size, 512)`` rows (see :meth:`partial_fit`), so that
            no training step was taken. Also at the end, when a scored layer
            gives every row behind the score statistics nearly the same score.
            Layers that are flat only after the first batches do not warn.
        """
        if isinstance(batches, np.ndarray) or hasattr(batches, "columns") or isinstance(batches, torch.Tensor):
            raise TypeError(
                f"fit_stream needs an iterable of 2-D batches, got a single {type(batches).__name__}; "
                "call fit(X) or partial_fit(X) for one array, or pass [X]."
            )
        self._validate_params()
        start = True
        for batch in batches:
            self._partial_fit(batch, start=start, in_stream=True)
            start = False
        if start:
            raise ValueError("fit_stream got no batches; the iterable was empty.")
        self._end_stream()
        return self

    def _end_stream(self) -> None:
        """Warn when a stream that has ended took no optimizer step or leaves a scored layer flat.

        :meth:`fit_stream` and ``ffoc fit --stream`` call it after their last
        batch, in place of the flat-layer warnings of the single calls.
        """
        stream = self._stream
        if stream.n_steps == 0:
            warnings.warn(
                f"{type(self).__name__}: the stream ended after {stream.n_seen} rows, fewer than the warm-up of "
                f"{self._warm_up_size()} rows (max(batch_size, {WARM_UP_ROWS})), so no training step was taken "
                "and the network keeps its initial weights. Fit without streaming (fit, or ffoc fit without "
                "--stream) or stream more rows to train it.",
                UserWarning,
            )
        if getattr(self, "_flat_layers", ()):
            self._warn_flat_layers(stream.n_seen)

    # ------------------------------------------------------------------ one call

    def _partial_fit(self, X, *, start: bool, in_stream: bool = False) -> None:
        """Run one ``partial_fit`` call; ``start`` discards any earlier training first.

        ``in_stream`` leaves out the flat-layer warning, for a caller that
        calls :meth:`_end_stream` when its stream ends. A call that raises, a
        TrainingDivergedError included, leaves the detector as it was before
        the call.
        """
        self._check_stream_schedule()
        stream = getattr(self, "_stream", None)
        continuing = not start and stream is not None and stream.layers is getattr(self, "layers_", None)
        fitted_elsewhere = not start and not continuing and hasattr(self, "layers_")
        if continuing:
            self._check_structure_unchanged("calling partial_fit", STRUCTURAL_PARAMS + OPTIMIZER_PARAMS)
        elif fitted_elsewhere:
            self._check_structure_unchanged("calling partial_fit")

        saved = _Rollback.save(self, continuing=continuing)
        try:
            self._run_call(X, continuing=continuing, fitted_elsewhere=fitted_elsewhere, saved=saved,
                           warn_flat=not in_stream)
        except TrainingDivergedError as error:
            saved.restore(self)
            error.args = (
                f"{error.args[0]} {type(self).__name__} keeps its state from before this call, so it still "
                "scores and saves as it did then.",
            )
            raise
        except BaseException:
            saved.restore(self)
            raise

    def _run_call(
        self, X, *, continuing: bool, fitted_elsewhere: bool, saved: _Rollback, warn_flat: bool = True
    ) -> None:
        X = self._check_X(X, reset=not (continuing or fitted_elsewhere))
        if fitted_elsewhere:
            self._continue_from_fitted()
        elif not continuing:
            self._start_stream()
        stream = self._stream

        # Running statistics first, so that this call's rows are scaled with them.
        self._update_scaler(X)
        saved.reservoir_rows = self._offer_to_reservoir(X)
        stream.n_seen += X.shape[0]
        stream.n_calls += 1

        if not stream.warmed_up:
            stream.warm_up_rows.append(X)
            if stream.n_seen < self._warm_up_size():
                self._estimate_warm_up_states()
                self._refresh_statistics(self._warm_up_tensor(), warn_flat=warn_flat)
                return
            # Warm-up complete: estimate the states as fit does, then train on every kept row.
            X = np.concatenate(stream.warm_up_rows)
            stream.warm_up_rows = []
            stream.warmed_up = True
            self.states_ = estimate_states(
                self.layers_, self._objective, self._to_tensor(X), nu=self.nu, theta=self.theta
            )
            stream.train_states = list(self.states_)

        with self._thread_limit():
            self._train_one_pass(self._to_tensor(X))
        self._refresh_statistics(self._reservoir_tensor(), warn_flat=warn_flat)

    def _train_one_pass(self, X: torch.Tensor) -> None:
        """Step every layer once per shuffled mini-batch of ``X`` and record the mean losses."""
        stream = self._stream
        config = self._train_config(X.shape[0])  # its epochs are unused here
        n_layers = len(self.layers_)
        total = torch.zeros(n_layers if self.trainer == "ff" else 1)
        n_batches = 0
        for index in batches(X.shape[0], self.batch_size, stream.generator):
            x = X[index]  # (batch, n_features)
            x_negative = negatives_for(x, config, stream.generator)
            if self.trainer == "ff":
                total += ff_step(self.layers_, stream.train_states, x, x_negative, config, stream.optimizer)
            else:
                total += bp_step(self.layers_, stream.train_states, x, x_negative, config, stream.optimizer)
            n_batches += 1
        stream.n_steps += n_batches

        mean = (total / max(n_batches, 1)).tolist()
        if not all(math.isfinite(value) for value in mean):
            raise TrainingDivergedError(
                f"Online training diverged in partial_fit call {stream.n_calls}: the mean loss is {mean}. "
                "Lower learning_rate, or check the input for extreme values."
            )
        for k, layer in enumerate(self.layers_):
            for name, parameter in layer.named_parameters():
                if not torch.isfinite(parameter).all():
                    raise TrainingDivergedError(
                        f"Online training diverged in partial_fit call {stream.n_calls}: layer {k}'s {name} "
                        "is no longer finite. Lower learning_rate, or check the input for extreme values."
                    )
        self.history_.layer_losses.append(mean)

    # ------------------------------------------------------------------ starting

    def _check_stream_schedule(self) -> None:
        if self.schedule == "layerwise":
            raise ValueError(
                "schedule='layerwise' trains each layer to completion before the next, which a stream "
                "cannot do; use schedule='interleaved' with partial_fit and fit_stream."
            )

    def _start_stream(self) -> None:
        """Build the network, optimizer and empty running statistics for a new stream."""
        self._check_hidden_layer_sizes()
        self.device_ = resolve_device(self.device)
        generator = self._make_generator()
        self.layers_ = self._build_layers(generator)
        self._remember_structure()
        self._objective = get_objective(self.objective, nu=self.nu)
        self.history_ = TrainHistory()
        self._flat_layers = ()
        self._saved_training = None
        self._training_before_stream = None
        n_features = self.n_features_in_
        self.scaler_ = _scaler_from(np.zeros(n_features), np.zeros(n_features), 0)
        self._stream = StreamState(
            n_seen=0,
            n_calls=0,
            n_steps=0,
            warmed_up=False,
            weight=0.0,
            reservoir=np.empty((RESERVOIR_SIZE, n_features), dtype=np.float64),
            reservoir_filled=0,
            optimizer=self._make_stream_optimizer(),
            generator=generator,
            layers=self.layers_,
        )

    def _continue_from_fitted(self) -> None:
        """Start a stream from a detector fitted by ``fit`` or loaded from a file."""
        self._objective = self._get_objective()
        self._training_before_stream = self._training_summary()
        n_seen = int(self.scaler_.n_samples_seen_)
        if not hasattr(self, "history_"):
            self.history_ = TrainHistory()
        self._stream = StreamState(
            n_seen=n_seen,
            n_calls=0,
            n_steps=0,
            warmed_up=True,
            weight=float(n_seen),
            reservoir=np.empty((RESERVOIR_SIZE, self.n_features_in_), dtype=np.float64),
            reservoir_filled=0,
            optimizer=self._make_stream_optimizer(),
            generator=self._make_generator(),
            layers=self.layers_,
            train_states=list(self.states_),
        )

    def _training_summary(self) -> dict:
        """Return how the fitted network was trained: with the rows and calls of its stream, if it has one.

        ``n_samples_seen`` counts every row behind the input scaling, those of an
        earlier ``fit`` included. ``n_partial_fit_calls`` and ``n_optimizer_steps``
        count this stream's calls and steps, warm-up calls included. When the
        stream continued a fitted or loaded detector, ``continued_from`` is the
        summary of that detector's training.
        """
        stream = getattr(self, "_stream", None)
        if stream is None or stream.layers is not getattr(self, "layers_", None):
            return super()._training_summary()
        summary = {
            "trained_with": "partial_fit",
            "n_samples_seen": stream.n_seen,
            "n_partial_fit_calls": stream.n_calls,
            "n_optimizer_steps": stream.n_steps,
        }
        before = getattr(self, "_training_before_stream", None)
        if before is not None:
            summary["continued_from"] = before
        return summary

    def _make_stream_optimizer(self) -> torch.optim.Optimizer:
        params = [p for layer in self.layers_ for p in layer.parameters()]
        return make_optimizer(self.optimizer, params, self.learning_rate)

    def _warm_up_size(self) -> int:
        return max(int(self.batch_size), WARM_UP_ROWS)

    def _forgetting(self) -> float:
        return float(getattr(self, "forgetting", 0.0) or 0.0)

    # ------------------------------------------------------------------ running statistics

    def _update_scaler(self, X: np.ndarray) -> None:
        """Merge the rows of ``X`` into the running mean and variance (Chan et al.).

        Each column is divided by a power of two near its magnitude first, so the
        squares in the variance cannot overflow for any finite input, and columns
        of tiny values keep their precision. Scaling by a power of two is exact,
        so at ordinary magnitudes the result is bit for bit that of merging the
        unscaled values.
        """
        stream = self._stream
        n = X.shape[0]
        old_std = _running_std(self.scaler_)
        magnitude = np.maximum.reduce([np.abs(X).max(axis=0), np.abs(self.scaler_.mean_), old_std])
        _, exponent = np.frexp(magnitude)  # magnitude < 2**exponent, and exponent = 0 for 0

        # Merge in units of 2**exponent.
        Xs = np.ldexp(X, -exponent)
        old_mean = np.ldexp(self.scaler_.mean_, -exponent)
        old_var = np.where(
            _var_is_exact(self.scaler_.var_),
            np.ldexp(self.scaler_.var_, -2 * exponent),
            np.ldexp(old_std, -exponent) ** 2,
        )
        # A constant column's mean is its value exactly: a rounded sum would leave residuals of
        # about 1e-16 of the value, which overflow float32 for constant values above about 1e54.
        batch_mean = np.where(Xs.min(axis=0) == Xs.max(axis=0), Xs[0], Xs.mean(axis=0))
        batch_var = Xs.var(axis=0)
        old_weight = stream.weight * (1.0 - self._forgetting()) ** n
        new_weight = old_weight + n
        delta = batch_mean - old_mean
        mean = old_mean + delta * (n / new_weight)
        var = (old_weight * old_var + n * batch_var + delta**2 * (old_weight * n / new_weight)) / new_weight
        var = np.maximum(var, 0.0)

        stream.weight = new_weight
        with np.errstate(over="ignore", under="ignore"):
            # var_ is inf above a standard deviation of about 1e154; std carries it there.
            full_var = np.ldexp(var, 2 * exponent)
        std = np.ldexp(np.sqrt(var), exponent)
        self.scaler_ = _scaler_from(np.ldexp(mean, exponent), full_var, stream.n_seen + n, std=std)

    def _offer_to_reservoir(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Offer each row of ``X`` to the reservoir (Algorithm R, or the biased reservoir).

        Returns ``(reservoir, slots, rows)``, the rows that were replaced in
        filled slots, for :class:`_Rollback`, or None when no filled slot changed.
        """
        stream = self._stream
        capacity = stream.reservoir.shape[0]

        # Fill the free slots in order.
        n_free = min(capacity - stream.reservoir_filled, X.shape[0])
        if n_free:
            stream.reservoir[stream.reservoir_filled : stream.reservoir_filled + n_free] = X[:n_free]
            stream.reservoir_filled += n_free
        rest = X[n_free:]
        if rest.shape[0] == 0:
            return None

        # Choose a slot per row, or no slot (-1). Rows are offered in order, so a later
        # row that lands on the same slot replaces an earlier one.
        uniform = torch.rand(rest.shape[0], generator=self._stream.generator, dtype=torch.float64).numpy()
        forgetting = self._forgetting()
        if forgetting > 0:
            accept = uniform < min(1.0, capacity * forgetting)
            slots = np.where(accept, np.floor(uniform / min(1.0, capacity * forgetting) * capacity), -1)
        else:
            # Row i (0-based over the stream) takes slot floor(u (i + 1)) when that is below capacity.
            positions = stream.n_seen + n_free + np.arange(rest.shape[0], dtype=np.float64)
            slots = np.floor(uniform * (positions + 1.0))
            slots[slots >= capacity] = -1
        slots = slots.astype(np.int64)
        chosen = np.flatnonzero(slots >= 0)
        if chosen.size == 0:
            return None
        # Keep only the last row offered to each slot.
        reversed_slots = slots[chosen][::-1]
        _, first_in_reversed = np.unique(reversed_slots, return_index=True)
        last = chosen[::-1][first_in_reversed]
        replaced = (stream.reservoir, slots[last], stream.reservoir[slots[last]])  # fancy indexing copies
        stream.reservoir[slots[last]] = rest[last]
        return replaced

    def _estimate_warm_up_states(self) -> None:
        """Estimate provisional states from the warm-up rows, so that the detector can score."""
        self.states_ = estimate_states(
            self.layers_, self._objective, self._warm_up_tensor(), nu=self.nu, theta=self.theta
        )

    def _refresh_statistics(self, X: torch.Tensor, *, warn_flat: bool = True) -> None:
        """Set the radii, score standardisation and ``offset_`` from the sample ``X`` and the current network.

        ``warn_flat=False`` leaves out the warning about flat scored layers.
        """
        if X.shape[0] == 0:
            return
        stream = self._stream
        if stream.warmed_up:
            follow = self.center_update == "epoch" or self._forgetting() > 0
            self.states_ = estimate_states(
                self.layers_, self._objective, X, nu=self.nu, previous=self.states_, keep_center=not follow
            )
            if self.center_update == "epoch":
                stream.train_states = list(self.states_)
            elif follow:
                # Forgetting moves the loss's centers only: a radius that follows the
                # refreshed one feeds back on itself (see the class notes).
                stream.train_states = [
                    LayerState(center=new.center, radius2=old.radius2, theta=old.theta, scale=old.scale)
                    for new, old in zip(self.states_, stream.train_states)
                ]
            self._check_radii()
        scores = layer_scores(self.layers_, self._objective, self.states_, X)
        if stream.warmed_up:
            self._check_train_scores(scores)
        warned_layers = getattr(self, "_flat_layers", ()) if warn_flat else None
        self._set_score_statistics(scores, warned_layers=warned_layers, n_seen=stream.n_seen)
        self.offset_ = float(self._offset_from(self._combine(scores)))
        self.n_samples_seen_ = stream.n_seen

    def _warm_up_tensor(self) -> torch.Tensor:
        return self._to_tensor(np.concatenate(self._stream.warm_up_rows))

    def _reservoir_tensor(self) -> torch.Tensor:
        stream = self._stream
        return self._to_tensor(stream.reservoir[: stream.reservoir_filled])


@dataclass
class _Rollback:
    """The state that one ``partial_fit`` call changes, saved before it so that a failed call can be undone.

    Attributes the call replaces are kept by reference. What it changes in place
    is copied: the layer weights, and for a continued stream its counters,
    optimizer state and generator state. The reservoir is not copied whole, because the call
    records the rows it overwrites in ``reservoir_rows``.
    """

    attributes: dict
    weights: list[torch.Tensor]
    stream_fields: dict | None = None
    optimizer_state: dict | None = None
    generator_state: torch.Tensor | None = None
    n_layer_losses: int = 0
    reservoir_rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def save(cls, estimator, *, continuing: bool) -> _Rollback:
        layers = getattr(estimator, "layers_", None)
        weights = [] if layers is None else [t.detach().clone() for t in layers.state_dict().values()]
        history = getattr(estimator, "history_", None)
        saved = cls(
            attributes=dict(estimator.__dict__),
            weights=weights,
            n_layer_losses=0 if history is None else len(history.layer_losses),
        )
        if continuing:
            stream = estimator._stream
            saved.stream_fields = dict(stream.__dict__)
            saved.stream_fields["warm_up_rows"] = list(stream.warm_up_rows)
            saved.optimizer_state = {
                parameter: {key: value.clone() if isinstance(value, torch.Tensor) else value
                            for key, value in entries.items()}
                for parameter, entries in stream.optimizer.state.items()
            }
            saved.generator_state = stream.generator.get_state()
        return saved

    def restore(self, estimator) -> None:
        estimator.__dict__.clear()
        estimator.__dict__.update(self.attributes)
        layers = getattr(estimator, "layers_", None)
        if layers is not None:
            with torch.no_grad():
                for tensor, saved in zip(layers.state_dict().values(), self.weights):
                    tensor.copy_(saved)
        history = getattr(estimator, "history_", None)
        if history is not None:
            del history.layer_losses[self.n_layer_losses :]
        if self.reservoir_rows is not None:
            reservoir, slots, rows = self.reservoir_rows
            reservoir[slots] = rows
        if self.stream_fields is not None:
            stream = estimator._stream
            stream.__dict__.update(self.stream_fields)
            stream.optimizer.state.clear()
            stream.optimizer.state.update(self.optimizer_state)
            stream.generator.set_state(self.generator_state)


def _scaler_from(
    mean: np.ndarray, var: np.ndarray, n_samples_seen: int, std: np.ndarray | None = None
) -> StandardScaler:
    """Return a fitted StandardScaler with the given mean and population variance.

    ``std`` is the standard deviation where ``var`` overflows or underflows
    float64 (standard deviations above about 1e154 or below about 1e-154); it
    defaults to ``sqrt(var)``. As in :func:`ffoc.estimator._fit_scaler`, ``var_``
    is then inf or 0 while ``scale_`` contains the standard deviation.
    """
    scaler = StandardScaler()
    scaler.mean_ = np.asarray(mean, dtype=np.float64)
    scaler.var_ = np.maximum(np.asarray(var, dtype=np.float64), 0.0)
    scale = np.sqrt(scaler.var_) if std is None else np.array(std, dtype=np.float64)
    constant = scale <= _CONSTANT_RTOL * np.abs(scaler.mean_)
    scale[constant] = 1.0
    scaler.scale_ = scale
    scaler.n_samples_seen_ = int(n_samples_seen)
    scaler.n_features_in_ = scaler.mean_.shape[0]
    return scaler


def _var_is_exact(var: np.ndarray) -> np.ndarray:
    """Return where ``var`` is a normal float64, neither overflowed to inf nor underflowed to a subnormal or 0.

    The smallest normal float64 itself does not count: :func:`ffoc.estimator._fit_scaler`
    stores it as the variance of a varying column whose true variance underflows.
    """
    return (var > np.finfo(np.float64).tiny) & (var < np.inf)


def _running_std(scaler: StandardScaler) -> np.ndarray:
    """Return each column's standard deviation: ``sqrt(var_)``, or ``scale_`` where ``var_`` is not exact.

    ``scale_`` is 1 for a constant column, whose deviation is negligible next to
    its mean, so such a column counts as 0 where ``var_`` is not exact.
    """
    exact = _var_is_exact(scaler.var_)
    std = np.sqrt(np.where(exact, scaler.var_, 0.0))
    from_scale = ~exact & (scaler.scale_ != 1.0)
    std[from_scale] = scaler.scale_[from_scale]
    return std

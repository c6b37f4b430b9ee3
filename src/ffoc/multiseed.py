"""Train several forward-forward detectors at once, as one batch of models.

A small network (4-40-40-40 on the 4 banknote features, for example) spends
most of a training step on per-operation overhead, not on arithmetic, because
each matrix product at batch 32 is about 50,000 multiply-adds. Training ``S`` seeds one after the other pays
that overhead ``S`` times. :func:`fit_seeds` and :func:`fit_batch` stack the
weights of ``S`` networks of one shape and run every layer of all of them with
one batched matrix product, one loss and one optimizer step per mini-batch, so
the overhead is paid once per step for all seeds.

Each model gets the same update as training it alone with
:meth:`FFOneClass.fit <ffoc.FFOneClass.fit>`: its own initialisation, shuffling
and negatives, drawn from its own random generator in the same order; the same
layer code (:func:`ffoc.nn.length_normalize`, the layer's activation) and the
same objective methods; one Adam or SGD step per mini-batch, whose update is
element-wise and so does not mix the stacked models. The results agree with
separate fits up to float32 rounding (a batched matrix product may add in
another order than a single one), not bit for bit.

Supported: ``trainer="ff"``, ``schedule="interleaved"``, both
``center_update`` rules, every objective and kind of negatives. Early stopping
and the layer-wise schedule are not batched; fit those models one by one.

Examples
--------
>>> import numpy as np
>>> from ffoc import FFOneClass
>>> from ffoc.multiseed import fit_seeds
>>> X = np.random.default_rng(0).normal(size=(120, 4))
>>> models = fit_seeds(FFOneClass(hidden_layer_sizes=(8, 8), epochs=2), X, [0, 1, 2])
>>> [m.random_state for m in models]
[0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch
from sklearn.base import clone

from .estimator import FFOneClass
from .nn import length_normalize
from .objectives import LayerState
from .trainers.common import (
    TrainConfig,
    TrainHistory,
    TrainingDivergedError,
    estimate_states,
    make_optimizer,
    negatives_for,
)

__all__ = ["fit_batch", "fit_seeds"]


class _Captured(Exception):
    """Raised inside ``fit`` to stop it once the data, layers and states are ready."""


def fit_seeds(estimator: FFOneClass, X, random_states: Sequence[int]) -> list[FFOneClass]:
    """Fit one clone of ``estimator`` per random state on ``X``, all at once.

    Each returned detector matches
    ``clone(estimator).set_params(random_state=seed).fit(X)`` up to float32
    rounding.

    Parameters
    ----------
    estimator : FFOneClass
        Unfitted template; only its ``random_state`` changes between the clones.
    X : array-like of shape (n_samples, n_features)
        Training data, shared by every seed.
    random_states : sequence of int
        One seed per detector.

    Returns
    -------
    list of FFOneClass
        Fitted detectors, in the order of ``random_states``.

    Examples
    --------
    >>> import numpy as np
    >>> from ffoc import FFOneClass
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> models = fit_seeds(FFOneClass(hidden_layer_sizes=(8,), epochs=1), X, range(4))
    >>> len(models), models[3].random_state
    (4, 3)
    """
    if isinstance(random_states, Integral):
        raise TypeError(
            f"random_states must be a sequence of seeds such as range({random_states}), got the int {random_states}."
        )
    random_states = list(random_states)
    if not random_states:
        raise ValueError("random_states is empty; pass at least one seed, for example range(5).")
    estimators = [clone(estimator).set_params(random_state=seed) for seed in random_states]
    return fit_batch(estimators, [X] * len(estimators))


def fit_batch(estimators: Sequence[FFOneClass], Xs: Sequence) -> list[FFOneClass]:
    """Fit each ``estimators[i]`` on ``Xs[i]``, training all networks as one batch.

    The detectors must have the same parameters apart from ``random_state`` and
    ``verbose``, and the training sets the same shape (the splits of one data
    set by different seeds usually have). Each detector is fitted in place, as
    if by ``estimators[i].fit(Xs[i])``, up to float32 rounding.

    Parameters
    ----------
    estimators : sequence of FFOneClass
        Unfitted (or to be refitted) detectors with ``trainer="ff"`` and
        ``schedule="interleaved"``, without early stopping.
    Xs : sequence of array-like of shape (n_samples, n_features)
        One training set per detector.

    Returns
    -------
    list of FFOneClass
        ``estimators``, fitted.

    Raises
    ------
    ValueError
        If the detectors differ in another parameter, use an option that is not
        batched, or the training sets differ in shape.

    Examples
    --------
    >>> import numpy as np
    >>> from ffoc import FFOneClass
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.normal(size=(100, 3)) for _ in range(2)]
    >>> models = fit_batch([FFOneClass(epochs=1, random_state=s) for s in (0, 1)], Xs)
    >>> models[0].predict(Xs[0][:2]).shape
    (2,)
    """
    estimators = list(estimators)
    Xs = list(Xs)
    if not estimators:
        raise ValueError("estimators is empty; pass at least one FFOneClass.")
    if len(Xs) != len(estimators):
        raise ValueError(
            f"Got {len(estimators)} estimators and {len(Xs)} training sets; pass one training set per estimator."
        )
    _check_batchable(estimators)
    prepared = [_prepare(est, X) for est, X in zip(estimators, Xs)]
    shapes = {tuple(p[0].shape) for p in prepared}
    if len(shapes) > 1:
        raise ValueError(
            f"The training sets have different shapes {sorted(shapes)}; fit_batch needs one shape. "
            "Group the data sets by shape, or fit them one by one."
        )
    _train_batch(estimators, prepared)
    for est, (X_train, _generator) in zip(estimators, prepared):
        est._finish_fit(X_train)
    return estimators


def _check_batchable(estimators: list[FFOneClass]) -> None:
    for est in estimators:
        if not isinstance(est, FFOneClass):
            raise TypeError(f"fit_batch trains FFOneClass detectors, got {type(est).__name__}.")
    reference = {k: v for k, v in estimators[0].get_params().items() if k not in ("random_state", "verbose")}
    for index, est in enumerate(estimators[1:], start=1):
        params = {k: v for k, v in est.get_params().items() if k not in ("random_state", "verbose")}
        different = sorted(k for k in reference if repr(params[k]) != repr(reference[k]))
        if different:
            raise ValueError(
                f"estimators[{index}] differs from estimators[0] in {different}; only random_state "
                "may differ between the detectors of one batch."
            )
    est = estimators[0]
    if est.trainer != "ff":
        raise ValueError(f"trainer={est.trainer!r} is not batched; use trainer='ff' or fit the detectors one by one.")
    if est.schedule != "interleaved":
        raise ValueError(
            f"schedule={est.schedule!r} is not batched; use schedule='interleaved' or fit the detectors one by one."
        )
    if est.early_stopping:
        raise ValueError("early_stopping=True is not batched; set it to False or fit the detectors one by one.")


def _prepare(est: FFOneClass, X) -> tuple[torch.Tensor, torch.Generator]:
    """Run ``est.fit(X)`` up to training, and return the training tensor and the generator.

    ``fit`` itself checks the data and parameters, fits the scaler, builds and
    initialises the layers and estimates the initial states, so that the batch
    starts from exactly what a separate fit would train.

    NOTE: this relies on ``FFOneClass.fit`` calling ``self._train(X_train,
    X_valid, generator)`` and then only ``self._finish_fit(X_train)``; a step
    added to ``fit`` after ``_train`` must be added to :func:`fit_batch` too.
    """
    captured = {}

    def capture(X_train, X_valid, generator):
        if X_valid is not None:
            raise ValueError("Validation data are not batched; fit this detector on its own.")
        captured["X_train"] = X_train
        captured["generator"] = generator
        raise _Captured

    est._train = capture  # shadows the method for this one call
    try:
        est.fit(X)
    except _Captured:
        pass
    finally:
        del est._train
    return captured["X_train"], captured["generator"]


def _row_state(states: list[LayerState], n_rows: int, device: torch.device) -> LayerState:
    """Return one LayerState whose fields hold every model's value once per row of a batch.

    Rows are grouped by model: rows ``s * n_rows`` to ``(s + 1) * n_rows - 1``
    belong to model ``s``. The objectives' per-sample formulas broadcast over
    such per-row values exactly as over one model's scalars.
    """

    def rows(values):
        if values[0] is None:
            return None
        column = torch.tensor(values, dtype=torch.float32, device=device)
        return column.repeat_interleave(n_rows)  # (S * n_rows,)

    center = None
    if states[0].center is not None:
        center = torch.stack([s.center for s in states]).repeat_interleave(n_rows, dim=0)  # (S * n_rows, width)
    row_state = LayerState(
        center=center,
        radius2=rows([s.radius2 for s in states]),
        theta=rows([s.theta for s in states]),
    )
    row_state.scale = rows([s.scale for s in states])
    return row_state


class _BatchedLayer:
    """The same block as :class:`ffoc.nn.FFLayer`, for ``S`` stacked weight matrices."""

    def __init__(self, layers: list[torch.nn.Module]) -> None:
        template = layers[0]
        self.normalize_input = template.normalize_input
        self.activation = template.activation
        self.weight = torch.nn.Parameter(torch.stack([l.linear.weight.detach() for l in layers]).clone())
        self.bias = None
        if template.linear.bias is not None:
            self.bias = torch.nn.Parameter(torch.stack([l.linear.bias.detach() for l in layers]).clone())

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n_models, n_rows, width = x.shape
        if self.normalize_input:
            x = length_normalize(x.reshape(n_models * n_rows, width)).view(n_models, n_rows, width)
        weight_t = self.weight.transpose(1, 2)  # (S, in, out)
        if self.bias is None:
            z = torch.bmm(x, weight_t)
        else:
            z = torch.baddbmm(self.bias.unsqueeze(1), x, weight_t)
        return self.activation(z)  # (S, n_rows, out)

    @torch.no_grad()
    def copy_to(self, layers: list[torch.nn.Module]) -> None:
        for s, layer in enumerate(layers):
            layer.linear.weight.copy_(self.weight[s])
            if self.bias is not None:
                layer.linear.bias.copy_(self.bias[s])


def _train_config(est: FFOneClass, n_samples: int) -> TrainConfig:
    """Return the estimator's resolved training settings, as its own ``fit`` would."""
    try:
        return est._train_config(n_samples)
    except TypeError:  # versions whose settings do not depend on the number of rows
        return est._train_config()


def _train_batch(estimators: list[FFOneClass], prepared: list[tuple[torch.Tensor, torch.Generator]]) -> None:
    """Forward-forward training of all models at once; mirrors :func:`ffoc.trainers.ff.train_ff`."""
    n_models = len(estimators)
    first = estimators[0]
    X_train = torch.stack([p[0] for p in prepared])  # (S, n, d)
    generators = [p[1] for p in prepared]
    n_samples = X_train.shape[1]
    device = X_train.device
    config: TrainConfig = _train_config(first, n_samples)
    objective = config.objective
    n_layers = len(first.layers_)
    states = [list(est.states_) for est in estimators]  # states[s][k]

    batched = [_BatchedLayer([est.layers_[k] for est in estimators]) for k in range(n_layers)]
    params = [p for layer in batched for p in layer.parameters()]
    optimizer = make_optimizer(config.optimizer, params, config.learning_rate)
    model_index = torch.arange(n_models, device=device).unsqueeze(1)  # (S, 1)
    histories = [TrainHistory() for _ in range(n_models)]
    row_states: dict[tuple[int, int], LayerState] = {}

    progress = None
    if any(est.verbose for est in estimators):
        from tqdm.auto import tqdm

        progress = tqdm(total=config.epochs, desc=f"ff {first.objective} x{n_models}", unit="epoch", leave=False)
    try:
        for epoch in range(config.epochs):
            # Same draws, in the same order, as train_ff: the permutation, then each batch's negatives.
            orders = torch.stack([torch.randperm(n_samples, generator=g) for g in generators]).to(device)
            total = torch.zeros(n_models, n_layers)
            n_batches = 0
            for start in range(0, n_samples, config.batch_size):
                index = orders[:, start : start + config.batch_size]  # (S, B)
                x = X_train[model_index, index]  # (S, B, d)
                negatives = [negatives_for(x[s], config, generators[s]) for s in range(n_models)]
                x_negative = None if negatives[0] is None else torch.stack(negatives)
                total += _batched_ff_step(batched, states, x, x_negative, config, optimizer, row_states)
                n_batches += 1

            means = total / max(n_batches, 1)
            for s in range(n_models):
                value = float(total[s].sum())
                if value != value or value in (float("inf"), float("-inf")):
                    raise TrainingDivergedError(
                        f"Training diverged in epoch {epoch + 1} (forward-forward, model {s}, "
                        f"random_state={estimators[s].random_state!r}): the loss is {value}. "
                        "Lower learning_rate, or check the input for extreme values."
                    )
                histories[s].layer_losses.append(means[s].tolist())

            if config.center_update == "epoch":
                for k, layer in enumerate(batched):
                    layer.copy_to([est.layers_[k] for est in estimators])
                states = [
                    estimate_states(est.layers_, objective, X_train[s], nu=est.nu, previous=states[s])
                    for s, est in enumerate(estimators)
                ]
                row_states.clear()
            if progress is not None:
                progress.update(1)
    finally:
        if progress is not None:
            progress.close()

    for k, layer in enumerate(batched):
        layer.copy_to([est.layers_[k] for est in estimators])
    for s, est in enumerate(estimators):
        est.states_ = states[s]
        est.history_ = histories[s]
        est.n_epochs_ = config.epochs


def _batched_ff_step(
    batched: list[_BatchedLayer],
    states: list[list[LayerState]],
    x: torch.Tensor,
    x_negative: torch.Tensor | None,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    row_states: dict[tuple[int, int], LayerState],
) -> torch.Tensor:
    """One forward-forward step of every model; returns the losses, shape (S, n_layers).

    The same update as :func:`ffoc.trainers.ff.ff_step` for each model: each
    layer's loss is back-propagated into its own weights at once, its output
    is handed on detached, and the optimizer steps once at the end. The loss
    of model ``s`` is that model's mean positive loss plus the weighted mean
    negative loss, as in :meth:`ffoc.objectives.Objective.loss`; summing the
    models' losses before the backward pass leaves each model's gradient alone,
    because no weight is shared.
    """
    objective = config.objective
    n_models, n_rows = x.shape[0], x.shape[1]
    use_negatives = x_negative is not None and config.negative_weight > 0
    losses = torch.zeros(n_models, len(batched))
    # Zero the gradient buffers in place rather than free them. Freed and reallocated each
    # step, they made the measured step peak grow with depth (2.3x from 2 to 32 layers).
    optimizer.zero_grad(set_to_none=False)
    for k, layer in enumerate(batched):
        key = (k, n_rows)
        if key not in row_states:
            row_states[key] = _row_state([states[s][k] for s in range(n_models)], n_rows, x.device)
        row_state = row_states[key]

        h = layer(x)  # (S, B, width_k)
        loss = objective.positive_loss(h.reshape(n_models * n_rows, -1), row_state).view(n_models, n_rows).mean(1)
        h_negative = None
        if x_negative is not None:
            h_negative = layer(x_negative)
        if use_negatives:
            negative = objective.negative_loss(h_negative.reshape(n_models * n_rows, -1), row_state)
            loss = loss + config.negative_weight * negative.view(n_models, n_rows).mean(1)
        loss.sum().backward()  # each model's gradient reaches its own weights only
        losses[:, k] = loss.detach().cpu()

        x = h.detach()
        x_negative = None if h_negative is None else h_negative.detach()
    optimizer.step()
    return losses

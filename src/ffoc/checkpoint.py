"""Checkpoints of online training, so that an interrupted stream can resume.

A checkpoint is a model file in the format of :func:`ffoc.persistence.save`
(one safetensors file, JSON metadata, SHA-256 checksum, atomic write), so
:func:`ffoc.load` reads it as a fitted detector. On top of the model it stores
what :meth:`FFOneClass.partial_fit` needs to continue exactly where it stopped:

* the optimizer's state (Adam's moment estimates and step counts),
* the torch random generator's state (shuffling, negatives, reservoir draws),
* the running statistics: reservoir rows, warm-up rows and counters,
* the centers, radii and thresholds of the training loss,
* an optional ``progress`` dictionary of the caller's own (for example how many
  chunks of a file were read).

On the CPU, a run restored from a checkpoint taken between two ``partial_fit``
calls gives bit-identical weights and scores to a run that never stopped.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from ffoc import FFOneClass
>>> from ffoc.checkpoint import save_checkpoint, load_checkpoint
>>> rng = np.random.default_rng(0)
>>> chunks = [rng.normal(size=(300, 3)) for _ in range(4)]
>>> path = os.path.join(tempfile.mkdtemp(), "run.checkpoint.safetensors")
>>> first = FFOneClass(random_state=0).fit_stream(chunks[:2])
>>> save_checkpoint(first, path, progress={"chunks_done": 2})
>>> resumed, progress = load_checkpoint(path)
>>> for chunk in chunks[progress["chunks_done"]:]:
...     resumed = resumed.partial_fit(chunk)
>>> straight = FFOneClass(random_state=0).fit_stream(chunks)
>>> bool(np.array_equal(resumed.score_samples(chunks[0]), straight.score_samples(chunks[0])))
True
"""

from __future__ import annotations

import json

import numpy as np
import torch

from .persistence import (
    ModelFileError,
    _estimator_class,
    _json_default,
    _metadata,
    _read_file,
    _restore_tuples,
    atomic_write_bytes,
    to_bytes,
)

__all__ = ["save_checkpoint", "load_checkpoint"]

_PREFIX = "stream."


def save_checkpoint(estimator, path, *, progress: dict | None = None) -> None:
    """Write the estimator and its online-training state to ``path`` atomically.

    Parameters
    ----------
    estimator : FFOneClass
        A detector trained with :meth:`~FFOneClass.partial_fit` or
        :meth:`~FFOneClass.fit_stream`.
    path : str or os.PathLike
        Target file, conventionally ending in ``.safetensors``.
    progress : dict, optional
        JSON-serialisable values of the caller's, returned by :func:`load_checkpoint`.

    Raises
    ------
    ValueError
        If the estimator has no online-training state (it was fitted with
        ``fit``, or loaded from a model file).
    """
    stream = getattr(estimator, "_stream", None)
    if stream is None or stream.layers is not getattr(estimator, "layers_", None):
        raise ValueError(
            f"{type(estimator).__name__} has no online-training state to checkpoint; train it with "
            "partial_fit or fit_stream first (a detector from fit or load is saved with save)."
        )
    tensors, fitted = estimator._fitted_state()

    # Optimizer state: tensors by parameter index, everything else in JSON.
    optimizer_state = stream.optimizer.state_dict()
    optimizer_scalars: dict[str, dict] = {}
    for index, entries in optimizer_state["state"].items():
        optimizer_scalars[str(index)] = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_PREFIX}optimizer.{index}.{key}"] = value
            else:
                optimizer_scalars[str(index)][key] = value

    tensors[f"{_PREFIX}generator"] = stream.generator.get_state()
    tensors[f"{_PREFIX}reservoir"] = torch.from_numpy(stream.reservoir[: stream.reservoir_filled].copy())
    if stream.warm_up_rows:
        tensors[f"{_PREFIX}warm_up_rows"] = torch.from_numpy(np.concatenate(stream.warm_up_rows))
    train_states = None
    if stream.train_states is not None:
        train_states = []
        for k, layer_state in enumerate(stream.train_states):
            if layer_state.center is not None:
                tensors[f"{_PREFIX}train_states.{k}.center"] = layer_state.center.clone()  # safetensors rejects shared storage
            train_states.append({"radius2": layer_state.radius2, "theta": layer_state.theta,
                                 "scale": layer_state.scale})
    state = {
        "n_seen": stream.n_seen,
        "train_states": train_states,
        "n_calls": stream.n_calls,
        "n_steps": stream.n_steps,
        "warmed_up": stream.warmed_up,
        "weight": stream.weight,
        "reservoir_capacity": int(stream.reservoir.shape[0]),
        "optimizer_param_groups": optimizer_state["param_groups"],
        "optimizer_scalars": optimizer_scalars,
        "progress": progress or {},
    }
    metadata = _metadata(estimator, fitted)
    metadata["stream"] = json.dumps(state, default=_json_default)
    atomic_write_bytes(path, to_bytes(tensors, metadata))


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    estimator : FFOneClass
        The detector, on the CPU, ready for further :meth:`~FFOneClass.partial_fit` calls.
    progress : dict
        The ``progress`` given to :func:`save_checkpoint` (empty if none).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is damaged, or is a model file without online-training state.
    """
    from .objectives import LayerState
    from .online import StreamState

    tensors, metadata, source = _read_file(path, "Checkpoint")
    if "stream" not in metadata:
        raise ModelFileError(
            f"{source} is a model file without online-training state; load it with ffoc.load "
            "(partial_fit then continues with a new optimizer)."
        )
    name, estimator_class = _estimator_class(metadata, source)

    try:
        params = json.loads(metadata["params"])
        fitted = json.loads(metadata["fitted"])
        state = json.loads(metadata["stream"])
        estimator = estimator_class()
        estimator.set_params(**_restore_tuples(estimator, params))
        estimator._restore_fitted_state(tensors, fitted)
        estimator._objective = estimator._get_objective()

        # Rebuild the optimizer over the restored layers, then give it its saved state.
        optimizer = estimator._make_stream_optimizer()
        optimizer_state = {"state": {}, "param_groups": state["optimizer_param_groups"]}
        for index, scalars in state["optimizer_scalars"].items():
            entries = dict(scalars)
            prefix = f"{_PREFIX}optimizer.{index}."
            entries.update({key[len(prefix):]: t for key, t in tensors.items() if key.startswith(prefix)})
            optimizer_state["state"][int(index)] = entries
        optimizer.load_state_dict(optimizer_state)

        generator = torch.Generator()
        generator.set_state(tensors[f"{_PREFIX}generator"])
        sampled = tensors[f"{_PREFIX}reservoir"].numpy()
        reservoir = np.empty((int(state["reservoir_capacity"]), estimator.n_features_in_), dtype=np.float64)
        reservoir[: sampled.shape[0]] = sampled
        warm_up = tensors.get(f"{_PREFIX}warm_up_rows")
        train_states = None
        if state["train_states"] is not None:
            train_states = [
                LayerState(center=tensors.get(f"{_PREFIX}train_states.{k}.center"), radius2=entry["radius2"],
                           theta=entry["theta"], scale=float(entry["scale"]))
                for k, entry in enumerate(state["train_states"])
            ]
    except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as error:
        raise ModelFileError(
            f"{source} does not match what {name} expects ({type(error).__name__}: {error}). "
            "Start the run again with this ffoc version."
        ) from None

    estimator._stream = StreamState(
        n_seen=int(state["n_seen"]),
        n_calls=int(state["n_calls"]),
        n_steps=int(state["n_steps"]),
        warmed_up=bool(state["warmed_up"]),
        weight=float(state["weight"]),
        reservoir=reservoir,
        reservoir_filled=int(sampled.shape[0]),
        optimizer=optimizer,
        generator=generator,
        layers=estimator.layers_,
        warm_up_rows=[] if warm_up is None else [warm_up.numpy().copy()],
        train_states=train_states,
    )
    estimator.n_samples_seen_ = estimator._stream.n_seen
    estimator._training_before_stream = (fitted.get("training") or {}).get("continued_from")
    return estimator, dict(state.get("progress") or {})

"""Trainers: forward-forward (``ff``) and backprop (``bp``)."""

from .bp import bp_step, train_bp
from .common import TrainConfig, TrainHistory, TrainingDivergedError, estimate_states, layer_scores
from .ff import ff_step, train_ff

__all__ = [
    "TrainConfig",
    "TrainHistory",
    "TrainingDivergedError",
    "bp_step",
    "estimate_states",
    "ff_step",
    "layer_scores",
    "train_bp",
    "train_ff",
]

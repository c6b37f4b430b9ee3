"""One-class objectives that each layer (forward-forward) or the last layer (backprop) minimises.

Every objective defines three things for a layer's activations ``h`` of shape
``(n_samples, ...)`` (flattened per sample):

* a **positive loss** on normal data, as written in the literature;
* a **negative loss** on negatives made from the training data (see
  :mod:`ffoc.negatives`), which keeps the trivial solutions away;
* an **anomaly score** per sample that grows with abnormality and is monotone in
  the goodness or in the distance to the center, never a loss that is flat
  inside the sphere.

The per-layer state (``center``, ``radius2``, ``theta``) is a :class:`LayerState`,
computed from forward passes over the whole training set by
:func:`ffoc.trainers.common.estimate_states`.

Notation: ``G(h) = sum_i h_i^2`` is the goodness and ``d^2(h) = ||h - c||^2`` the
squared distance to the center ``c``; ``R^2`` is the squared radius.

=====================  ===========================================  ==================
objective              positive loss                                 anomaly score
=====================  ===========================================  ==================
``goodness``           ``softplus(G - theta)``                       ``G``
``goodness-sigmoid``   ``sigmoid(G - theta)``                        ``G``
``hb-svdd``            ``d^2``                                       ``d^2``
``svdd``               ``R^2 + (1/nu) * max(0, d^2 - R^2)``          ``d^2 - R^2``
``ls-svdd``            ``R^2 + (1/nu) * (d^2 - R^2)^2``              ``d^2 - R^2``
=====================  ===========================================  ==================

The negative loss mirrors the positive one. For the goodness objectives it is
``softplus(theta - G)`` or ``sigmoid(theta - G)``: Hinton's forward-forward rule
with the roles swapped, because here normal data gets *low* goodness. For the
distance objectives it is ``softplus(R^2 - d^2)``, which pushes negatives out of
the sphere.

Units: every loss divides goodness and squared distances by the layer's
``scale``, fixed at initialisation (the mean training goodness, or the initial
``R^2``). This multiplies the distance losses by a constant and makes the
softplus and sigmoid arguments independent of the layer's width and input scale;
the scores are not divided.

Examples
--------
>>> import torch
>>> from ffoc.objectives import get_objective, LayerState
>>> objective = get_objective("hb-svdd")
>>> state = LayerState(center=torch.ones(3), radius2=1.0)
>>> objective.score(torch.zeros(2, 3), state)
tensor([3., 3.])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = [
    "LayerState",
    "Objective",
    "Goodness",
    "GoodnessSigmoid",
    "HardBoundarySVDD",
    "SoftBoundarySVDD",
    "LeastSquaresSVDD",
    "OBJECTIVES",
    "get_objective",
    "goodness",
    "squared_distance",
]


@dataclass
class LayerState:
    """Fitted state of one layer's objective.

    Parameters
    ----------
    center : torch.Tensor or None
        Center ``c`` of the hypersphere (flattened activation shape), for the
        distance objectives.
    radius2 : float or None
        Squared radius ``R^2``: the ``(1 - nu)`` quantile of the training
        samples' squared distances to ``center``.
    theta : float or None
        Goodness threshold of the goodness objectives.
    scale : float
        Positive reference value of the layer's score at initialisation (``theta``
        or ``R^2``), used to make the negative loss scale-free.
    """

    center: torch.Tensor | None = None
    radius2: float | None = None
    theta: float | None = None
    scale: float = 1.0
    extra: dict = field(default_factory=dict)


def goodness(h: torch.Tensor) -> torch.Tensor:
    """Return the goodness ``sum(h^2)`` of each sample.

    Examples
    --------
    >>> goodness(torch.tensor([[1.0, 2.0], [0.0, 0.0]]))
    tensor([5., 0.])
    """
    return h.flatten(1).square().sum(dim=1)


def squared_distance(h: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Return ``||h - center||^2`` for each sample.

    Examples
    --------
    >>> squared_distance(torch.zeros(1, 2), torch.tensor([3.0, 4.0]))
    tensor([25.])
    """
    return (h.flatten(1) - center).square().sum(dim=1)


class Objective:
    """Base class of the one-class objectives.

    Subclasses set ``name``, ``uses_center``, ``uses_radius`` and ``uses_theta``,
    and implement :meth:`positive_loss`, :meth:`negative_loss` and :meth:`score`,
    each returning one value per sample.
    """

    name: str = ""
    uses_center: bool = False
    uses_radius: bool = False
    uses_theta: bool = False

    def __init__(self, nu: float = 0.05) -> None:
        self.nu = float(nu)

    def positive_loss(self, h: torch.Tensor, state: LayerState) -> torch.Tensor:
        """Return the loss of each normal sample."""
        raise NotImplementedError

    def negative_loss(self, h: torch.Tensor, state: LayerState) -> torch.Tensor:
        """Return the loss of each negative sample."""
        raise NotImplementedError

    def score(self, h: torch.Tensor, state: LayerState) -> torch.Tensor:
        """Return the anomaly score of each sample: higher means more anomalous."""
        raise NotImplementedError

    def loss(
        self,
        h: torch.Tensor,
        state: LayerState,
        h_negative: torch.Tensor | None = None,
        negative_weight: float = 1.0,
    ) -> torch.Tensor:
        """Return the mean positive loss plus the weighted mean negative loss.

        Parameters
        ----------
        h : torch.Tensor of shape (n_samples, ...)
            Activations of normal samples.
        state : LayerState
            The layer's center, radius and threshold.
        h_negative : torch.Tensor or None
            Activations of negatives; ``None`` trains on normal data alone.
        negative_weight : float
            Weight of the negative loss.
        """
        value = self.positive_loss(h, state).mean()
        if h_negative is not None and negative_weight > 0:
            value = value + negative_weight * self.negative_loss(h_negative, state).mean()
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nu={self.nu})"


class Goodness(Objective):
    """Hinton's goodness: ``softplus(G - theta)`` on normal data, score ``G``.

    ``softplus`` is evaluated by :func:`torch.nn.functional.softplus`, which
    switches to the identity for large arguments, so huge activations give a
    finite loss and gradient.
    """

    name = "goodness"
    uses_theta = True

    def positive_loss(self, h, state):
        return F.softplus((goodness(h) - state.theta) / state.scale)

    def negative_loss(self, h, state):
        return F.softplus((state.theta - goodness(h)) / state.scale)

    def score(self, h, state):
        return goodness(h)


class GoodnessSigmoid(Goodness):
    """Goodness with a sigmoid: ``sigmoid(G - theta)`` on normal data, score ``G``."""

    name = "goodness-sigmoid"

    def positive_loss(self, h, state):
        return torch.sigmoid((goodness(h) - state.theta) / state.scale)

    def negative_loss(self, h, state):
        return torch.sigmoid((state.theta - goodness(h)) / state.scale)


class _DistanceObjective(Objective):
    uses_center = True
    uses_radius = True

    def negative_loss(self, h, state):
        return F.softplus((state.radius2 - squared_distance(h, state.center)) / state.scale)


class HardBoundarySVDD(_DistanceObjective):
    """Hard-boundary Deep SVDD (Ruff et al., 2018): loss and score ``d^2``."""

    name = "hb-svdd"

    def positive_loss(self, h, state):
        return squared_distance(h, state.center) / state.scale

    def score(self, h, state):
        return squared_distance(h, state.center)


class SoftBoundarySVDD(_DistanceObjective):
    """Soft-boundary Deep SVDD: ``R^2 + (1/nu) max(0, d^2 - R^2)``, score ``d^2 - R^2``.

    The loss is flat inside the sphere, so it is never used as a score.
    """

    name = "svdd"

    def positive_loss(self, h, state):
        excess = squared_distance(h, state.center) - state.radius2
        return (state.radius2 + torch.clamp(excess, min=0.0) / self.nu) / state.scale

    def score(self, h, state):
        return squared_distance(h, state.center) - state.radius2


class LeastSquaresSVDD(_DistanceObjective):
    """Least-squares SVDD: ``R^2 + (1/nu) (d^2 - R^2)^2``, score ``d^2 - R^2``.

    The loss is not monotone in the distance (points near the center cost as
    much as points just outside), so the score is the signed excess instead.
    Because the loss is quadratic in ``d^2``, activations above about 1e9 overflow
    float32; the other objectives stay finite up to about 1e18.
    """

    name = "ls-svdd"

    def positive_loss(self, h, state):
        excess = (squared_distance(h, state.center) - state.radius2) / state.scale
        return state.radius2 / state.scale + excess.square() / self.nu

    def score(self, h, state):
        return squared_distance(h, state.center) - state.radius2


OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls
    for cls in (Goodness, GoodnessSigmoid, HardBoundarySVDD, SoftBoundarySVDD, LeastSquaresSVDD)
}


def get_objective(name: str, nu: float = 0.05) -> Objective:
    """Return the objective called ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`OBJECTIVES`.

    Examples
    --------
    >>> get_objective("svdd", nu=0.1)
    SoftBoundarySVDD(nu=0.1)
    """
    try:
        cls = OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}."
        ) from None
    return cls(nu=nu)

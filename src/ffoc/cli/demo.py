"""``ffoc demo``: forward-forward and backprop on the bundled banknote data."""

from __future__ import annotations

import argparse
import time

import numpy as np

from .stream import _positive_int

__all__ = ["add_parser", "run_demo"]


def run_demo(*, n_splits: int = 5, objective: str | None = None, verbose: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Fit FF and BP on banknote's one-class protocol over ``n_splits`` split seeds.

    Protocol: a stratified 60/20/20 split of the 1,372 banknotes; the detector
    trains on the genuine notes of the training part only, and is scored on the
    test part (genuine = normal, forged = anomaly). Each seed changes the split
    and the model's initialisation.

    Returns
    -------
    dict
        ``results[trainer][metric]`` is an array of one value per seed.
    """
    from ..datasets import load_banknote, one_class_split
    from ..estimator import FFOneClass
    from ..metrics import detection_metrics

    X, y = load_banknote(return_X_y=True)
    results: dict[str, dict[str, list]] = {}
    for trainer in ("ff", "bp"):
        results[trainer] = {}
        for seed in range(n_splits):
            split = one_class_split(X, y, random_state=seed)
            params = {"trainer": trainer, "random_state": seed, "verbose": verbose}
            if objective is not None:
                params["objective"] = objective
            detector = FFOneClass(**params).fit(split.X_train)
            metrics = detection_metrics(
                split.y_test, -detector.score_samples(split.X_test), detector.predict(split.X_test) == -1
            )
            for name, value in metrics.items():
                results[trainer].setdefault(name, []).append(value)
    return {trainer: {k: np.asarray(v) for k, v in r.items()} for trainer, r in results.items()}


def _demo(args: argparse.Namespace) -> int:
    from ..estimator import FFOneClass

    start = time.perf_counter()
    objective = args.objective or FFOneClass().objective
    results = run_demo(n_splits=args.splits, objective=objective, verbose=args.verbose)
    print(f"banknote, one-class protocol: train on genuine notes of a stratified 60/20/20 split, "
          f"test on the held-out 20% (forged = anomaly); objective {objective!r}; "
          f"mean +- std over {args.splits} split seeds")
    header = f"{'trainer':<8}" + "".join(f"{name:>18}" for name in ("accuracy", "F1", "AUROC", "AUPRC"))
    print(header)
    for trainer, metrics in results.items():
        cells = "".join(
            f"{metrics[name].mean():>10.4f} +- {metrics[name].std():.4f}" for name in ("accuracy", "f1", "auroc", "auprc")
        )
        print(f"{trainer:<8}{cells}")
    print(f"({time.perf_counter() - start:.1f} s)")
    return 0


def add_parser(subparsers) -> None:
    """Register ``demo``."""
    demo = subparsers.add_parser(
        "demo", help="train FF and BP on the bundled banknote data and print metrics",
        description="Train forward-forward and backprop detectors on the bundled banknote data (one-class "
                    "protocol: genuine notes train, forged notes are the anomalies) and print accuracy, F1, "
                    "AUROC and AUPRC over several split seeds.")
    demo.add_argument("--splits", type=_positive_int, default=5, help="number of split seeds (default: %(default)s)")
    from ..objectives import OBJECTIVES

    demo.add_argument("--objective", choices=sorted(OBJECTIVES), default=None,
                      help="objective (default: the estimator's default)")
    demo.add_argument("-v", "--verbose", action="count", default=0)
    demo.set_defaults(handler=_demo)

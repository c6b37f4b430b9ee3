"""``ffoc bench objectives``: every objective with both trainers on banknote, and the tuning sets.

Part 1 is the core acceptance figure: banknote's one-class protocol (stratified
60/20/20 split, training on the genuine notes of the training part), test AUROC
and AUPRC of every objective with forward-forward and backprop, mean and standard
deviation over split seeds, with ffoc's defaults otherwise.

Part 2 reports the validation AUROC of the default configuration on the tuning
sets (banknote's validation part; 6_cardio, 38_thyroid and 31_satimage-2 split
60/20/20 over normal rows, anomalies halved between validation and test), the
figures the defaults were chosen on.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from .report import machine_description, markdown_table, write_section

__all__ = ["add_parser", "run_objectives", "run_tuning_sets", "TUNING_SETS"]

OBJECTIVE_NAMES = ("goodness", "goodness-sigmoid", "hb-svdd", "svdd", "ls-svdd")
TUNING_SETS = ("6_cardio", "38_thyroid", "31_satimage-2")


def run_objectives(n_seeds: int = 10, objectives=OBJECTIVE_NAMES, trainers=("ff", "bp")) -> list[dict]:
    """Return one row per objective and trainer with test AUROC/AUPRC mean and std over split seeds."""
    from ..datasets import load_banknote, one_class_split
    from ..estimator import FFOneClass
    from ..metrics import detection_metrics

    X, y = load_banknote(return_X_y=True)
    rows = []
    for objective in objectives:
        for trainer in trainers:
            aurocs, auprcs, seconds = [], [], []
            for seed in range(n_seeds):
                split = one_class_split(X, y, random_state=seed)
                start = time.perf_counter()
                detector = FFOneClass(objective=objective, trainer=trainer, random_state=seed).fit(split.X_train)
                seconds.append(time.perf_counter() - start)
                metrics = detection_metrics(
                    split.y_test, -detector.score_samples(split.X_test), detector.predict(split.X_test) == -1
                )
                aurocs.append(metrics["auroc"])
                auprcs.append(metrics["auprc"])
            rows.append({
                "objective": objective, "trainer": trainer,
                "auroc_mean": float(np.mean(aurocs)), "auroc_std": float(np.std(aurocs)),
                "auroc_min": float(np.min(aurocs)), "auprc_mean": float(np.mean(auprcs)),
                "fit_seconds": float(np.median(seconds)),
            })
    return rows


def run_collapse(n_seeds: int = 5, epochs=(20, 100, 300), objectives=("goodness", "hb-svdd")) -> list[dict]:
    """Measure collapse: test AUROC and activity with and without negatives as training grows longer.

    For each setting the row reports the mean test AUROC on banknote (one-class
    protocol) and the mean goodness of the last layer on the training rows,
    which falls towards zero when the goodness objective drives all activity to
    zero (its trivial minimiser).
    """
    from ..datasets import load_banknote, one_class_split
    from ..estimator import FFOneClass
    from ..objectives import goodness

    X, y = load_banknote(return_X_y=True)
    rows = []
    for objective in objectives:
        for negative_weight in (0.0, "auto"):
            for n_epochs in epochs:
                aurocs, activity = [], []
                for seed in range(n_seeds):
                    split = one_class_split(X, y, random_state=seed)
                    detector = FFOneClass(
                        objective=objective, negative_weight=negative_weight, epochs=n_epochs, random_state=seed
                    ).fit(split.X_train)
                    from sklearn.metrics import roc_auc_score

                    aurocs.append(roc_auc_score(split.y_test, -detector.score_samples(split.X_test)))
                    with torch.no_grad():
                        h = detector._to_tensor(split.X_train)
                        for layer in detector.layers_:
                            h = layer(h)
                        activity.append(float(goodness(h).mean()))
                rows.append({
                    "objective": objective, "negatives": "none" if negative_weight == 0.0 else "mixed (auto weight)",
                    "epochs": n_epochs, "auroc": float(np.mean(aurocs)), "last_goodness": float(np.mean(activity)),
                })
    return rows


def _tuning_split(y: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    normal, anomalous = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    rng.shuffle(normal)
    rng.shuffle(anomalous)
    n_train, n_val, half = int(0.6 * len(normal)), int(0.8 * len(normal)), len(anomalous) // 2
    train = normal[:n_train][:10_000]
    validation = np.r_[normal[n_train:n_val], anomalous[:half]]
    return train, validation


def run_tuning_sets(data_dir, n_seeds: int = 3, **params) -> list[dict]:
    """Return the validation AUROC of ``FFOneClass(**params)`` on banknote and the tuning sets."""
    from sklearn.metrics import roc_auc_score

    from ..datasets import load_adbench, load_banknote, one_class_split
    from ..estimator import FFOneClass

    rows = []
    X, y = load_banknote(return_X_y=True)
    values = []
    for seed in range(n_seeds):
        split = one_class_split(X, y, random_state=seed)
        detector = FFOneClass(random_state=seed, **params).fit(split.X_train)
        values.append(roc_auc_score(split.y_val, -detector.score_samples(split.X_val)))
    rows.append({"data set": "banknote (validation part)", "auroc": float(np.mean(values))})
    for name in TUNING_SETS:
        X, y = load_adbench(name, data_dir)
        values = []
        for seed in range(n_seeds):
            train, validation = _tuning_split(y, seed)
            detector = FFOneClass(random_state=seed, **params).fit(X[train])
            values.append(roc_auc_score(y[validation], -detector.score_samples(X[validation])))
        rows.append({"data set": f"{name} (validation part)", "auroc": float(np.mean(values))})
    return rows


def _bench(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = run_objectives(n_seeds=args.seeds)
    body = [
        "## Objectives on banknote (one-class protocol)",
        "",
        f"Command: `ffoc bench objectives --seeds {args.seeds}"
        + (f" --data-dir {args.data_dir}" if args.data_dir else "") + f" --threads {args.threads}`; "
        f"machine: {machine_description()}.",
        "",
        "Stratified 60/20/20 split of banknote, trained on the genuine notes of the training part, test AUROC "
        f"on the held-out 20%; mean, std and min over {args.seeds} split seeds (seed = split and model seed). "
        "All other parameters are FFOneClass's defaults.",
        "",
        markdown_table(
            ["objective", "trainer", "AUROC mean", "AUROC std", "AUROC min", "AUPRC mean", "fit s (median)"],
            [[r["objective"], r["trainer"], r["auroc_mean"], r["auroc_std"], r["auroc_min"], r["auprc_mean"],
              round(r["fit_seconds"], 3)] for r in rows],
        ),
    ]
    collapse = run_collapse()
    body += [
        "",
        "### Collapse: negatives against none, as training grows longer",
        "",
        "Forward-forward, banknote one-class protocol, mean over 5 split seeds. 'last-layer goodness' is the "
        "mean sum of squared activations of the last layer on the training rows: the goodness objective's "
        "trivial minimiser drives it to zero, and the distance objectives' collapse shows as falling AUROC.",
        "",
        markdown_table(
            ["objective", "negatives", "epochs", "test AUROC", "last-layer goodness"],
            [[r["objective"], r["negatives"], r["epochs"], r["auroc"], r["last_goodness"]] for r in collapse],
        ),
    ]
    if args.data_dir:
        tuning = run_tuning_sets(args.data_dir, n_seeds=3)
        body += [
            "",
            "Tuning data: validation AUROC of the defaults (mean over 3 seeds). ADBench sets: normal rows split "
            "60/20/20, anomalies halved between validation and test; training rows capped at 10,000.",
            "",
            markdown_table(["data set", "validation AUROC"], [[r["data set"], r["auroc"]] for r in tuning]),
        ]
    body.append("")
    body.append(f"Total time: {time.perf_counter() - start:.0f} s.")
    text = "\n".join(body)
    print(text)
    if not args.no_report:
        write_section(args.report, "objectives", text)
    return 0


def add_parser(subparsers) -> None:
    """Register ``ffoc bench objectives``."""
    parser = subparsers.add_parser(
        "objectives", help="every objective x trainer on banknote, and the tuning sets",
        description="Test AUROC of every objective with both trainers on banknote (one-class protocol, "
                    "stratified 60/20/20), collapse with and without negatives, and the validation AUROC of "
                    "the defaults on the tuning sets; writes the objectives section of BENCHMARKS.md.",
    )
    parser.add_argument("--seeds", type=int, default=10, help="split seeds (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder of ADBench .npz files for the tuning-set table (skipped without it)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--report", default="BENCHMARKS.md", help="Markdown file to update (default: %(default)s)")
    parser.add_argument("--no-report", action="store_true", help="print only")
    parser.set_defaults(handler=_bench)

"""``ffoc bench images``: one-vs-rest digit detection with convolutional FF and BP networks.

Protocol (Ruff et al., "Deep One-Class Classification", ICML 2018, with a
smaller training set): for each digit, a random 80% of that digit's images form
the training set. The test set is the other 20% of that digit (normal) and
every image of the other nine digits (anomalies). :class:`ffoc.images.FFOneClassImage` is trained with its defaults,
forward-forward and by backprop, over several seeds (the seed sets both the
split and the network). Three baselines run on the raw pixels scaled to [0, 1]:
scikit-learn's OneClassSVM (RBF kernel, ``gamma="scale"``, ``nu=0.1``),
IsolationForest (100 trees) and the distance to the 5th nearest training image
(KNN).

Data: the MNIST test set (10,000 images of 28x28, IDX files in ``--data-dir``)
or scikit-learn's bundled 8x8 digits (``--dataset digits``, no folder needed),
on which the estimator's defaults were chosen.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .report import machine_description, markdown_table, write_section

__all__ = ["add_parser", "run_images", "summarize", "plot_extremes", "BASELINES", "DETECTORS"]

BASELINES = ("ocsvm", "iforest", "knn")
#: ffoc's detectors: FF and BP with the defaults, FF scored by the objective
#: (score_rule="center"), and the untrained network with the default score rule.
NETWORKS = {
    "ff": {"trainer": "ff"},
    "bp": {"trainer": "bp"},
    "ff-center": {"trainer": "ff", "score_rule": "center"},
    "untrained": {"trainer": "ff", "epochs": 0},
}
DETECTORS = tuple(NETWORKS) + BASELINES
_KNN_NEIGHBORS = 5
_TRAIN_FRACTION = 0.8


def _baseline_scores(name: str, X_train: np.ndarray, X_test: np.ndarray, seed: int) -> np.ndarray:
    """Return the anomaly scores (higher = more anomalous) of a raw-pixel baseline."""
    if name == "ocsvm":
        from sklearn.svm import OneClassSVM

        return -OneClassSVM(kernel="rbf", gamma="scale", nu=0.1).fit(X_train).score_samples(X_test)
    if name == "iforest":
        from sklearn.ensemble import IsolationForest

        return -IsolationForest(n_estimators=100, random_state=seed).fit(X_train).score_samples(X_test)
    if name == "knn":
        from sklearn.neighbors import NearestNeighbors

        distances, _ = NearestNeighbors(n_neighbors=_KNN_NEIGHBORS).fit(X_train).kneighbors(X_test)
        return distances[:, -1]
    raise ValueError(f"Unknown baseline {name!r}; choose one of {list(BASELINES)}.")


def run_images(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    digits=range(10),
    seeds=(0, 1, 2),
    detectors=DETECTORS,
    estimator_params: dict | None = None,
    keep_scores: bool = False,
    verbose: int = 0,
) -> tuple[list[dict], dict]:
    """Run the one-vs-rest protocol and return one result row per digit, detector and seed.

    Parameters
    ----------
    images : ndarray of shape (n, H, W) or (n, C, H, W)
        All images.
    labels : ndarray of shape (n,)
        Their classes; each class in ``digits`` is the normal class once.
    digits : iterable of int
        Normal classes to run.
    seeds : iterable of int
        Seeds of the split and of the detectors.
    detectors : iterable of str
        Any of ``"ff"``, ``"bp"`` (:class:`ffoc.images.FFOneClassImage` with that
        trainer), ``"ff-center"`` (FF scored by the objective, ``score_rule="center"``),
        ``"untrained"`` (the network as initialised, ``epochs=0``, default score
        rule) and the baselines ``"ocsvm"``, ``"iforest"``, ``"knn"``.
    estimator_params : dict or None
        Parameters passed to :class:`ffoc.images.FFOneClassImage` besides
        ``trainer`` and ``random_state``; ``None`` keeps its defaults.
    keep_scores : bool
        Also return the FF anomaly scores of the first seed, for :func:`plot_extremes`.
    verbose : int
        1 or more prints one line per finished digit on standard error.

    Returns
    -------
    rows : list of dict
        Keys ``digit``, ``detector``, ``seed``, ``auroc``, ``fit_seconds``, ``score_seconds``.
    scores : dict
        ``scores[digit] = (test_index, anomaly_score, y_test)`` when ``keep_scores``.
    """
    from sklearn.metrics import roc_auc_score

    from ..datasets import novelty_split
    from ..images import FFOneClassImage

    images = np.asarray(images)
    labels = np.asarray(labels)
    flat = images.reshape(len(images), -1).astype(np.float64)
    low, high = float(flat.min()), float(flat.max())
    flat = (flat - low) / max(high - low, 1e-12)
    seeds = list(seeds)
    rows: list[dict] = []
    kept: dict = {}
    for digit in digits:
        for seed in seeds:
            split = novelty_split(
                np.arange(len(labels)), labels, train_fraction=_TRAIN_FRACTION, random_state=seed,
                normal_label=digit,
            )
            train, test = split.train_index, split.test_index
            for name in detectors:
                start = time.perf_counter()
                if name in NETWORKS:
                    params = {**(estimator_params or {}), **NETWORKS[name]}
                    detector = FFOneClassImage(random_state=seed, **params).fit(images[train])
                    fitted = time.perf_counter()
                    scores = -detector.score_samples(images[test])
                else:
                    scores = _baseline_scores(name, flat[train], flat[test], seed)
                    fitted = time.perf_counter()
                done = time.perf_counter()
                rows.append({
                    "digit": int(digit), "detector": name, "seed": int(seed),
                    "auroc": float(roc_auc_score(split.y_test, scores)),
                    "fit_seconds": fitted - start, "score_seconds": done - fitted,
                })
                if keep_scores and name == "ff" and seed == seeds[0]:
                    kept[int(digit)] = (test, scores, split.y_test)
        if verbose:
            done_rows = [r for r in rows if r["digit"] == int(digit)]
            aurocs = ", ".join(
                f"{name} {np.mean([r['auroc'] for r in done_rows if r['detector'] == name]):.4f}" for name in detectors
            )
            print(f"digit {digit}: {aurocs} ({time.process_time():.0f} s CPU so far)", file=sys.stderr, flush=True)
    return rows, kept


def summarize(rows: list[dict]) -> tuple[list[str], list[list]]:
    """Return a per-digit table of mean AUROC over seeds, one column per detector, and a mean row."""
    detectors = [d for d in DETECTORS if any(r["detector"] == d for r in rows)]
    digits = sorted({r["digit"] for r in rows})
    header = ["digit"] + [f"{d.upper() if d in ('ff', 'bp', 'ff-center') else d} AUROC" for d in detectors]
    table = []
    means = {d: [] for d in detectors}
    for digit in digits:
        line: list = [digit]
        for detector in detectors:
            values = [r["auroc"] for r in rows if r["digit"] == digit and r["detector"] == detector]
            means[detector].append(float(np.mean(values)))
            line.append(float(np.mean(values)))
        table.append(line)
    table.append(["**mean**"] + [float(np.mean(means[d])) for d in detectors])
    return header, table


def plot_extremes(images: np.ndarray, scores: dict, path, *, n_images: int = 8, digits=None) -> None:
    """Save a figure of the most normal and most anomalous held-out images of the normal class.

    For each digit, the top row shows the ``n_images`` held-out images of that
    digit with the lowest FF anomaly score, and the bottom row those with the
    highest.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    digits = sorted(scores) if digits is None else [d for d in digits if d in scores]
    if not digits:  # none of the chosen digits was run: show the digits that were
        digits = sorted(scores)[:4]
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else np.moveaxis(images, 1, -1)
    figure, axes = plt.subplots(
        2 * len(digits), n_images, figsize=(n_images * 0.9, 2 * len(digits) * 0.95), squeeze=False
    )
    for row, digit in enumerate(digits):
        test, anomaly, y_test = scores[digit]
        normal = np.flatnonzero(y_test == 0)
        order = normal[np.argsort(anomaly[normal])]
        for half, chosen in enumerate((order[:n_images], order[::-1][:n_images])):
            for column in range(n_images):
                axis = axes[2 * row + half, column]
                axis.set_xticks([])
                axis.set_yticks([])
                if column < len(chosen):
                    axis.imshow(images[test[chosen[column]]], cmap="gray_r")
            label = "most normal" if half == 0 else "most anomalous"
            axes[2 * row + half, 0].set_ylabel(f"{digit}: {label}", fontsize=6, rotation=0, ha="right", va="center")
    figure.suptitle("Held-out images of the normal digit, FF scores", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _load(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    if args.dataset == "digits":
        from ..datasets import load_digits_images

        images, labels = load_digits_images()
        return images, labels, "scikit-learn 8x8 digits (1,797 images)"
    from ..datasets import load_mnist

    if args.data_dir is None:
        raise ValueError("--dataset mnist needs --data-dir, the folder with the MNIST IDX files")
    images, labels = load_mnist(args.data_dir)
    return images, labels, f"MNIST test set ({len(labels):,} images of 28x28)"


def _parse_digits(text: str) -> list[int]:
    try:
        digits = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid digits {text!r}; give comma-separated digits such as 0,1,2") from None
    if not digits or min(digits) < 0 or max(digits) > 9:
        raise argparse.ArgumentTypeError(f"invalid digits {text!r}; each must be 0 to 9")
    return digits


def _bench(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    images, labels, description = _load(args)
    estimator_params = {} if args.epochs is None else {"epochs": args.epochs}
    start = time.perf_counter()
    cpu_start = time.process_time()
    rows, scores = run_images(
        images, labels, digits=args.digits, seeds=range(args.seeds), estimator_params=estimator_params,
        keep_scores=True, verbose=args.verbose,
    )
    elapsed = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    header, table = summarize(rows)
    print(markdown_table(header, table))
    print(f"({elapsed:.0f} s wall, {cpu_seconds:.0f} s CPU)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / f"images_{args.dataset}.csv", index=False)
    figure = out / f"images_{args.dataset}_extremes.png"
    plot_extremes(images, scores, figure, digits=args.figure_digits)
    if args.no_report:
        return 0

    from ..images import FFOneClassImage

    digits_text = ",".join(str(d) for d in args.digits)
    command = (f"ffoc bench images --dataset {args.dataset} --digits {digits_text} --seeds {args.seeds} "
               f"--threads {args.threads}" + (" --data-dir DIR" if args.dataset == "mnist" else "")
               + (f" --epochs {args.epochs}" if args.epochs is not None else ""))
    fit_seconds = {d: float(np.median([r["fit_seconds"] for r in rows if r["detector"] == d]))
                   for d in DETECTORS if any(r["detector"] == d for r in rows)}
    defaults = FFOneClassImage().get_params()
    body = "\n".join([
        f"## Images: one-vs-rest digits, {description}",
        "",
        f"Command: `{command}`; machine: {machine_description()}; total {elapsed:.0f} s wall clock, "
        f"{cpu_seconds:.0f} s CPU time of the process (the two differ when other jobs share the cores).",
        "",
        "For each digit, a random 80% of its images train the detector; the test set is the other 20% "
        "and every image of the other digits (anomalies). AUROC is averaged over "
        f"{args.seeds} seed(s) (seed = split and network). FF and BP: FFOneClassImage with its defaults "
        f"(conv_channels={tuple(defaults['conv_channels'])}, kernel_size={defaults['kernel_size']}, "
        f"objective={defaults['objective']!r}, negatives={defaults['negatives']!r}, "
        f"negative_weight={defaults['negative_weight']}, score_rule={defaults['score_rule']!r}, "
        f"n_neighbors={defaults['n_neighbors']}, epochs="
        f"{estimator_params.get('epochs', defaults['epochs'])}). FF-center: the same FF network scored by "
        "its objective (score_rule='center', the squared distance to each block's center). untrained: the "
        "network as initialised (epochs=0) with the default score rule, which shows what training adds. "
        "Baselines on raw pixels scaled to [0, 1]: "
        "OneClassSVM (RBF, gamma='scale', nu=0.1), IsolationForest (100 trees), distance to the 5th nearest "
        "training image (knn).",
        "",
        markdown_table(header, table),
        "",
        "Median fit-and-score seconds per run: "
        + ", ".join(f"{d} {s:.2f}" for d, s in fit_seconds.items()) + ".",
    ])
    write_section(args.report, f"images-{args.dataset}", body)
    return 0


def add_parser(subparsers) -> None:
    """Register ``ffoc bench images``."""
    parser = subparsers.add_parser(
        "images", help="one-vs-rest digits (MNIST or 8x8 digits): conv FF and BP against raw-pixel baselines",
        description=(
            "One-vs-rest digits: for each digit, train on 80% of its images and test on the other 20% and "
            "all images of the other digits. FFOneClassImage with its defaults, trained forward-forward and "
            "by backprop, against OneClassSVM, IsolationForest and KNN on raw pixels."
        ),
    )
    parser.add_argument("--dataset", choices=["mnist", "digits"], default="mnist",
                        help="MNIST test set from --data-dir, or scikit-learn's 8x8 digits (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the MNIST IDX files (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)")
    parser.add_argument("--digits", type=_parse_digits, default=list(range(10)),
                        help="normal digits to run, comma-separated (default: all ten)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per digit (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs of FF and BP (default: the estimator's default)")
    parser.add_argument("--figure-digits", type=_parse_digits, default=[0, 2, 5, 9],
                        help="digits shown in the figure of extreme images (default: 0,2,5,9)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--out", default="bench_results/images", help="folder for the CSV and figure (default: %(default)s)")
    parser.add_argument("--report", default="BENCHMARKS.md", help="Markdown file to update (default: %(default)s)")
    parser.add_argument("--no-report", action="store_true", help="write the CSV and figure, not the Markdown section")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="print each digit's AUROC when it is done")
    parser.set_defaults(handler=_bench)

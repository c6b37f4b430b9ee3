"""``ffoc fit``, ``ffoc score`` and ``ffoc info``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import CommandError, plural

__all__ = ["add_parser", "add_estimator_options", "estimator_params", "parse_layer_sizes", "write_scores"]


def parse_layer_sizes(text: str) -> tuple[int, ...]:
    """Parse ``"64,64"`` into ``(64, 64)``."""
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid layer sizes {text!r}; give comma-separated positive integers such as 64,64"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"invalid layer sizes {text!r}; every width must be at least 1")
    return sizes


def _contamination(text: str):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid contamination {text!r}; give 'auto' or a number in [0, 0.5]") from None


def _epochs(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid epochs {text!r}; give 'auto' or a non-negative integer")
    return value


def add_estimator_options(parser: argparse.ArgumentParser) -> None:
    """Add the estimator's main parameters as options (defaults: the estimator's own)."""
    from ..estimator import FFOneClass
    from ..objectives import OBJECTIVES

    defaults = FFOneClass().get_params()
    group = parser.add_argument_group("model")
    group.add_argument("--objective", choices=sorted(OBJECTIVES), default=defaults["objective"],
                       help="one-class loss of each layer (default: %(default)s)")
    group.add_argument("--trainer", choices=["ff", "bp"], default=defaults["trainer"],
                       help="ff: forward-forward, each layer trained by its own loss; bp: backprop (default: %(default)s)")
    group.add_argument("--hidden-layer-sizes", type=parse_layer_sizes, default=defaults["hidden_layer_sizes"],
                       metavar="W1,W2,...", help="layer widths (default: %(default)s)")
    group.add_argument("--activation", choices=["relu", "leaky_relu", "tanh", "identity"], default=defaults["activation"],
                       help="activation of every layer (default: %(default)s)")
    group.add_argument("--epochs", type=_epochs, default=defaults["epochs"],
                       help="passes over the data, or auto (default: %(default)s)")
    group.add_argument("--batch-size", type=int, default=defaults["batch_size"], help="rows per mini-batch (default: %(default)s)")
    group.add_argument("--learning-rate", type=float, default=defaults["learning_rate"],
                       help="step size of the optimizer (default: %(default)s)")
    group.add_argument("--optimizer", choices=["adam", "sgd"], default=defaults["optimizer"],
                       help="optimizer of every layer (default: %(default)s)")
    group.add_argument("--schedule", choices=["interleaved", "layerwise"], default=defaults["schedule"],
                       help="ff only: every layer on every mini-batch, or each layer to completion before "
                            "the next (default: %(default)s)")
    group.add_argument("--nu", type=float, default=defaults["nu"],
                       help="expected share of training rows outside the boundary (default: %(default)s)")
    group.add_argument("--contamination", type=_contamination, default=defaults["contamination"],
                       help="share of training rows labelled outliers, or auto (= nu) (default: %(default)s)")
    group.add_argument("--negatives", choices=["mixed", "shuffle", "noise", "scale", "none"], default=defaults["negatives"],
                       help="negatives made from each mini-batch (default: %(default)s)")
    group.add_argument("--score-layers", choices=["all", "last"], default=defaults["score_layers"],
                       help="layers whose standardised scores are averaged (default: %(default)s)")
    group.add_argument("--device", default=defaults["device"], help="cpu, cuda or auto (default: %(default)s)")
    group.add_argument("--random-state", type=int, default=0, help="seed (default: %(default)s)")


def estimator_params(args: argparse.Namespace) -> dict:
    """Return the estimator parameters given on the command line."""
    return {
        "objective": args.objective,
        "trainer": args.trainer,
        "hidden_layer_sizes": args.hidden_layer_sizes,
        "activation": args.activation,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "nu": args.nu,
        "contamination": args.contamination,
        "negatives": args.negatives,
        "score_layers": args.score_layers,
        "device": args.device,
        "random_state": args.random_state,
        "verbose": args.verbose,
    }


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-header", action="store_true",
                        help="the CSV file has no header row; columns are then named 0, 1, ... "
                             "(by default a first row that is not all numbers is taken as the header)")
    parser.add_argument("--label-column", metavar="NAME",
                        help="column holding labels; it is never used as a feature")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show progress")


def _read_features(args: argparse.Namespace, *, keep_normal: bool):
    """Read DATA and return (features DataFrame, labels or None)."""
    from ..io import read_table, split_features_labels

    frame = read_table(args.data, header=False if args.no_header else None)
    label_column = args.label_column
    normal_label = getattr(args, "normal_label", None) if keep_normal else None
    if normal_label is not None and label_column is None:
        raise CommandError("--normal-label requires --label-column, the column that contains the labels")
    return split_features_labels(frame, label_column=label_column, normal_label=normal_label)


def _check_output_path(output, data, option: str) -> Path:
    """Reject an output path that is empty, the input file, a folder, or in a missing folder, before any work."""
    if str(output) == "":
        raise CommandError(f"{option} is empty; give a file name")
    output = Path(output)
    if output.is_dir():
        raise CommandError(f"{option} {str(output)!r} is a folder; give a file name")
    if output.exists() and not output.is_file():
        raise CommandError(f"{option} {str(output)!r} is not a regular file (a device, pipe or socket); give a file name")
    if not output.parent.is_dir() and str(output.parent):
        raise CommandError(f"{option} {str(output)!r}: folder {str(output.parent)!r} does not exist; create it first")
    if output.exists() and Path(data).exists() and output.resolve() == Path(data).resolve():
        raise CommandError(f"{option} {str(output)!r} is the input file; choose another name so the data is kept")
    from ..io import check_replaceable

    check_replaceable(output)  # a read-only file is refused now, not after the work
    return output


def _fit(args: argparse.Namespace) -> int:
    from ..estimator import FFOneClass

    from .stream import check_stream_options

    check_stream_options(args)
    out = _check_output_path(args.out, args.data, "--out")
    if args.stream:
        from .stream import fit_stream_command

        return fit_stream_command(args)
    features, _ = _read_features(args, keep_normal=True)
    detector = FFOneClass(**estimator_params(args)).fit(features)
    detector.save(out)
    n_outliers = int((detector.predict(features) == -1).sum())
    print(
        f"fitted {args.trainer} {args.objective} on {plural(features.shape[0], 'row')} x "
        f"{plural(features.shape[1], 'feature')}; {plural(n_outliers, 'training row')} "
        f"{'falls' if n_outliers == 1 else 'fall'} outside the threshold; model saved to {out}"
    )
    return 0


def _short_list(names: list[str], limit: int = 10) -> str:
    """Return ``names`` as a list, cut to its first ``limit`` entries when longer."""
    if len(names) <= limit:
        return str(names)
    return f"{str(names[:limit])[:-1]}, ...] ({len(names)} in all)"


def _select_model_features(features, names: list[str], *, no_header: bool = False):
    """Return the model's feature columns of ``features``, in the model's order.

    Extra columns (an id or the label column) are left out, with a note on
    standard error; a missing feature column is an error that names it, with
    DATA's own columns and, when the header setting looks wrong, a hint on
    ``--no-header``.
    """
    columns = [str(column) for column in features.columns]
    missing = [name for name in names if name not in columns]
    if missing:
        message = (
            f"DATA lacks the model's feature column(s) {_short_list(missing)}; DATA has the columns "
            f"{_short_list(columns)}, the model was fitted on {_short_list(names)}"
        )
        model_numbered = all(name.isdigit() for name in names)
        data_numbered = all(column.isdigit() for column in columns)
        if no_header and data_numbered and not model_numbered:
            message += ("; with --no-header DATA's columns are numbered 0, 1, ...: drop --no-header to read "
                        "the column names from its header row")
        elif not no_header and model_numbered and not data_numbered:
            message += ("; the model was fitted on a file without a header row (columns numbered 0, 1, ...): "
                        "add --no-header if DATA has no header row either")
        raise CommandError(message)
    extra = [column for column in columns if column not in names]
    if extra:
        print(f"ffoc score: ignoring column(s) not used by the model: {extra}", file=sys.stderr)
    features = features.copy()
    features.columns = columns
    return features[names]


def write_scores(scores: np.ndarray, offset: float, output: str | None, unit: str, first_columns=None) -> None:
    """Write score_samples, decision_function and label of each sample to ``output``, or as CSV to stdout.

    ``first_columns`` (a dict of name to values) goes before the scores, and
    ``unit`` ("row", "image") names one sample in the one-line summary.
    """
    import pandas as pd

    from ..io import write_table

    decision = scores - offset
    result = pd.DataFrame({
        **(first_columns or {}),
        "score_samples": scores,
        "decision_function": decision,
        "label": np.where(decision >= 0, 1, -1),
    })
    if output:
        write_table(result, output)
        n_outliers = int((result["label"] == -1).sum())
        print(f"scored {plural(len(result), unit)}, {plural(n_outliers, 'outlier')}; written to {output}")
    else:
        result.to_csv(sys.stdout, index=False)


def _score(args: argparse.Namespace) -> int:
    from .. import load

    if args.output is not None:
        _check_output_path(args.output, args.data, "--output")
    detector = load(args.model)
    from ..images import FFOneClassImage

    if isinstance(detector, FFOneClassImage):
        raise CommandError(f"{args.model} is an image model (FFOneClassImage); score a folder of images with "
                           "ffoc score-images")
    features, _ = _read_features(args, keep_normal=False)
    names = getattr(detector, "feature_names_in_", None)
    if names is None:
        features = features.to_numpy()
    else:
        features = _select_model_features(features, [str(name) for name in names], no_header=args.no_header)
    write_scores(detector.score_samples(features), detector.offset_, args.output, "row")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .. import load

    detector = load(args.model)
    params = detector.get_params()
    summary = {
        "estimator": type(detector).__name__,
        "n_features_in": detector.n_features_in_,
        "feature_names_in": None if getattr(detector, "feature_names_in_", None) is None
        else [str(name) for name in detector.feature_names_in_],
        **({"image_shape": list(detector.image_shape_)} if hasattr(detector, "image_shape_") else {}),
        "layers": [layer.out_features for layer in detector.layers_],
        "offset": detector.offset_,
        **detector._training_summary(),
        "params": {key: (list(value) if isinstance(value, tuple) else value) for key, value in params.items()},
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


def add_parser(subparsers) -> None:
    """Register ``fit``, ``score`` and ``info``."""
    fit = subparsers.add_parser("fit", help="fit a detector on a CSV or Parquet file and save it",
                                description="Fit a detector on the rows of DATA (CSV or Parquet) and save it.")
    fit.add_argument("data", metavar="DATA", help="CSV or Parquet file of training rows")
    fit.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.safetensors)")
    fit.add_argument("--normal-label", metavar="VALUE",
                     help="keep only the rows whose --label-column equals VALUE")
    fit.add_argument("--stream", action="store_true",
                     help="read DATA in chunks and train online (partial_fit); memory does not grow with the file")
    from .stream import add_stream_options

    add_stream_options(fit)
    _add_data_options(fit)
    add_estimator_options(fit)
    fit.set_defaults(handler=_fit)

    score = subparsers.add_parser("score", help="score the rows of a file with a saved detector",
                                  description="Write score_samples (higher = more normal), decision_function "
                                              "and label (+1 normal, -1 outlier) for every row of DATA.")
    score.add_argument("model", metavar="MODEL", help="model file written by ffoc fit")
    score.add_argument("data", metavar="DATA", help="CSV or Parquet file of rows to score")
    score.add_argument("--output", metavar="FILE", help="CSV or Parquet file to write (default: CSV on stdout)")
    _add_data_options(score)
    score.set_defaults(handler=_score)

    info = subparsers.add_parser("info", help="describe a saved detector",
                                 description="Print a saved detector's parameters, layers, threshold and training as JSON; "
                                             "image models add image_shape, [channels, height, width]. "
                                             "trained_with is fit (with epochs_trained, and epochs_kept when "
                                             "early stopping kept the weights of an earlier epoch; one entry per layer "
                                             "with --schedule layerwise) or partial_fit "
                                             "(ffoc fit --stream), with n_samples_seen, n_partial_fit_calls and "
                                             "n_optimizer_steps, and continued_from when the stream continued "
                                             "an earlier model.")
    info.add_argument("model", metavar="MODEL", help="model file written by ffoc fit or ffoc fit-images")
    info.set_defaults(handler=_info)

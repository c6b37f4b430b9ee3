"""``ffoc fit-images`` and ``ffoc score-images``: detectors on folders of PNG or JPEG files."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import CommandError, plural

__all__ = ["add_parser"]


def _positive_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid list {text!r}; give comma-separated positive integers such as 16,32") from None
    if values and min(values) < 1:
        raise argparse.ArgumentTypeError(f"invalid list {text!r}; every value must be at least 1")
    return values


#: Largest image side accepted by --size: 4096 x 4096 float32 pixels are already 64 MiB per image.
_MAX_SIDE = 4096


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}; give WIDTHxHEIGHT such as 28x28") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}; width and height must be at least 1")
    if width > _MAX_SIDE or height > _MAX_SIDE:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}; width and height must be at most {_MAX_SIDE} pixels (a one-class "
            "network needs far fewer; downscale the images)"
        )
    return width, height


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add the image estimator's main parameters as options (defaults: the estimator's own)."""
    from ..images import SCALINGS, SCORE_RULES, FFOneClassImage
    from ..objectives import OBJECTIVES
    from .model import _contamination

    defaults = FFOneClassImage().get_params()
    group = parser.add_argument_group("model")
    group.add_argument("--objective", choices=sorted(OBJECTIVES), default=defaults["objective"],
                       help="one-class loss of each block (default: %(default)s)")
    group.add_argument("--trainer", choices=["ff", "bp"], default=defaults["trainer"],
                       help="ff: forward-forward, each block trained by its own loss; bp: backprop (default: %(default)s)")
    group.add_argument("--conv-channels", type=_positive_ints, default=tuple(defaults["conv_channels"]),
                       metavar="C1,C2,...", help="filters of each convolutional block (default: %(default)s)")
    group.add_argument("--kernel-size", type=int, default=defaults["kernel_size"],
                       help="side of the square filters, in pixels (default: %(default)s)")
    group.add_argument("--hidden-layer-sizes", type=_positive_ints, default=tuple(defaults["hidden_layer_sizes"]),
                       metavar="W1,W2,...", help="widths of dense layers after the convolutions (default: none)")
    group.add_argument("--scaling", choices=list(SCALINGS), default=defaults["scaling"],
                       help="'fixed': one range for all images; 'image': each image's own range (default: %(default)s)")
    group.add_argument("--score-rule", choices=list(SCORE_RULES), default=defaults["score_rule"],
                       help="'knn': distance to the n-th nearest training image's activations in each block; "
                            "'center': the objective's own score (default: %(default)s)")
    group.add_argument("--n-neighbors", type=int, default=defaults["n_neighbors"],
                       help="which neighbour's distance is the score with --score-rule knn (default: %(default)s)")
    group.add_argument("--epochs", type=int, default=defaults["epochs"],
                       help="passes over the training images (default: %(default)s)")
    group.add_argument("--batch-size", type=int, default=defaults["batch_size"],
                       help="images per mini-batch (default: %(default)s)")
    group.add_argument("--learning-rate", type=float, default=defaults["learning_rate"],
                       help="step size of the optimizer (default: %(default)s)")
    group.add_argument("--nu", type=float, default=defaults["nu"],
                       help="expected share of training images outside the boundary (default: %(default)s)")
    group.add_argument("--contamination", type=_contamination, default=defaults["contamination"],
                       help="share of training images labelled outliers, or auto (= nu) (default: %(default)s)")
    group.add_argument("--device", default=defaults["device"], help="cpu, cuda or auto (default: %(default)s)")
    group.add_argument("--random-state", type=int, default=0, help="seed (default: %(default)s)")


def _add_folder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=_size, metavar="WxH",
                        help="resize every image to WIDTHxHEIGHT pixels first (default: keep; sizes must then match)")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="leave out PNG/JPEG files that cannot be read as images, with a warning naming each "
                             "(default: stop with an error that names them)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show progress")


def _fit_images(args: argparse.Namespace) -> int:
    from ..images import FFOneClassImage
    from ..io_images import read_image_folder

    out = Path(args.out)
    if out.is_dir():
        raise CommandError(f"--out {str(out)!r} is a folder; give a file name such as model.safetensors")
    images, names = read_image_folder(args.folder, mode=args.mode, size=args.size,
                                      skip_unreadable=args.skip_unreadable)
    detector = FFOneClassImage(
        objective=args.objective,
        trainer=args.trainer,
        conv_channels=args.conv_channels,
        kernel_size=args.kernel_size,
        hidden_layer_sizes=args.hidden_layer_sizes,
        scaling=args.scaling,
        score_rule=args.score_rule,
        n_neighbors=args.n_neighbors,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        nu=args.nu,
        contamination=args.contamination,
        device=args.device,
        random_state=args.random_state,
        verbose=args.verbose,
    ).fit(images)
    detector.save(out)
    channels, height, width = detector.image_shape_
    n_outliers = int((detector.predict(images) == -1).sum())
    print(
        f"fitted {args.trainer} {args.objective} on {plural(len(names), 'image')} of {width}x{height} pixels, "
        f"{plural(channels, 'channel')}; {plural(n_outliers, 'training image')} "
        f"{'falls' if n_outliers == 1 else 'fall'} outside the threshold; model saved to {out}"
    )
    return 0


def _score_images(args: argparse.Namespace) -> int:
    from .. import load
    from ..images import FFOneClassImage
    from ..io_images import read_image_folder
    from .model import _check_output_path, write_scores

    if args.output is not None:
        _check_output_path(args.output, args.folder, "--output")
    detector = load(args.model)
    if not isinstance(detector, FFOneClassImage):
        raise CommandError(
            f"{args.model} contains a {type(detector).__name__}, not an image model; use ffoc score for tabular models"
        )
    channels = detector.image_shape_[0]
    mode = "grey" if channels == 1 else "rgb"
    images, names = read_image_folder(args.folder, mode=mode, size=args.size, skip_unreadable=args.skip_unreadable)
    _, height, width = detector.image_shape_
    if images.shape[2:] != (height, width):
        raise CommandError(
            f"the images in {str(args.folder)!r} are {images.shape[3]}x{images.shape[2]} pixels (width x height), "
            f"but the model was fitted on {width}x{height}; pass --size {width}x{height} to resize them"
        )
    write_scores(detector.score_samples(images), detector.offset_, args.output, "image", {"file": names})
    return 0


def add_parser(subparsers) -> None:
    """Register ``fit-images`` and ``score-images``."""
    fit = subparsers.add_parser(
        "fit-images", help="fit a convolutional detector on a folder of PNG/JPEG images and save it",
        description="Fit FFOneClassImage on every PNG and JPEG file of FOLDER (all normal) and save it.",
    )
    fit.add_argument("folder", metavar="FOLDER", help="folder of training images (.png, .jpg, .jpeg)")
    fit.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.safetensors)")
    fit.add_argument("--mode", choices=["auto", "grey", "rgb"], default="auto",
                     help="read the images as one grey channel or three RGB channels; 'auto': grey when "
                          "every file is grey (default: %(default)s)")
    _add_folder_options(fit)
    _add_model_options(fit)
    fit.set_defaults(handler=_fit_images)

    score = subparsers.add_parser(
        "score-images", help="score a folder of PNG/JPEG images with a saved image detector",
        description="Write file, score_samples (higher = more normal), decision_function and label "
                    "(+1 normal, -1 outlier) for every PNG and JPEG file of FOLDER. Images are read with "
                    "the model's channel count. A file that cannot be read stops the run with an error that "
                    "names it, unless --skip-unreadable is given: then it is left out of the output, with a "
                    "warning.",
    )
    score.add_argument("model", metavar="MODEL", help="model file written by ffoc fit-images")
    score.add_argument("folder", metavar="FOLDER", help="folder of images to score")
    score.add_argument("--output", metavar="FILE", help="CSV or Parquet file to write (default: CSV on stdout)")
    _add_folder_options(score)
    score.set_defaults(handler=_score_images)

"""``ffoc fit DATA --stream``: online training on a CSV or Parquet file read in chunks.

Only one chunk of the file is in memory at a time, so peak memory depends on
``--chunk-size`` and not on the file's size. Every ``--checkpoint-every``
chunks the detector and its online-training state are written to a checkpoint
file. ``--resume`` reads that file, skips the chunks already trained on and
continues, so the final model equals that of a run that was never interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import CommandError, plural

__all__ = ["add_stream_options", "fit_stream_command", "default_checkpoint_path"]

_DEFAULT_CHUNK_SIZE = 10_000


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}; give a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}; give a positive integer")
    return value


def add_stream_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--chunk-size``, ``--checkpoint-every``, ``--checkpoint`` and ``--resume`` to ``ffoc fit``."""
    group = parser.add_argument_group("streaming (with --stream)")
    group.add_argument("--chunk-size", type=_positive_int, metavar="N",
                       help=f"rows read and trained on per partial_fit call (default: {_DEFAULT_CHUNK_SIZE})")
    group.add_argument("--checkpoint-every", type=_positive_int, metavar="K",
                       help="write a checkpoint after every K chunks (default: no checkpoints)")
    group.add_argument("--checkpoint", metavar="FILE",
                       help="checkpoint file (default: MODEL with the suffix .checkpoint.safetensors)")
    group.add_argument("--forgetting", type=float, metavar="F",
                       help="per-row decay of the running statistics, a memory of about 1/F rows, "
                            "so that the detector follows drift (default: 0, no decay)")
    group.add_argument("--resume", action="store_true",
                       help="continue the run saved in the checkpoint file, skipping the chunks it "
                            "already trained on; give the same DATA, --chunk-size and model options")


_STREAM_ONLY = ("chunk_size", "checkpoint_every", "checkpoint", "forgetting", "resume")


def check_stream_options(args: argparse.Namespace) -> None:
    """Reject streaming options given without ``--stream``, which a full fit would ignore."""
    stream_options = [name for name in _STREAM_ONLY if getattr(args, name, None) is not None
                      and getattr(args, name) is not False]
    if stream_options and not args.stream:
        options = ", ".join("--" + name.replace("_", "-") for name in stream_options)
        verb = "applies" if len(stream_options) == 1 else "apply"
        raise CommandError(f"{options} {verb} only with --stream; add --stream or drop them")


def default_checkpoint_path(out: Path) -> Path:
    """Return the checkpoint file used when ``--checkpoint`` is not given: ``model.checkpoint.safetensors``."""
    return out.with_name(out.name.removesuffix(".safetensors") + ".checkpoint.safetensors")


def _chunk_features(chunk, args: argparse.Namespace):
    """Return the feature columns of the chunk's normal rows (all rows without --normal-label)."""
    from ..io import _normal_row_mask, split_features_labels

    features, labels = split_features_labels(chunk, label_column=args.label_column)
    if args.normal_label is not None:
        features = features[_normal_row_mask(labels, args.normal_label).to_numpy()]
    return features


def _resume(args: argparse.Namespace, checkpoint: Path, params: dict):
    """Load the checkpoint and check that it belongs to this run; return (detector, chunks done)."""
    from ..checkpoint import load_checkpoint

    if not checkpoint.is_file():
        raise CommandError(f"--resume: checkpoint {str(checkpoint)!r} not found; run without --resume to start")
    detector, progress = load_checkpoint(checkpoint)
    saved_data = progress.get("data")
    if saved_data is not None and Path(saved_data).resolve() != Path(args.data).resolve():
        raise CommandError(
            f"--resume: the checkpoint was written while training on {saved_data!r}, not {str(args.data)!r}; "
            "resume with the same DATA"
        )
    for key, option in (("label_column", "--label-column"), ("normal_label", "--normal-label")):
        if key in progress and progress[key] != _as_text(getattr(args, key)):
            raise CommandError(
                f"--resume: the checkpoint was written with {option} {progress[key]!r}, not "
                f"{_as_text(getattr(args, key))!r}; resume with the same rows selected"
            )
    if progress.get("chunk_size") != args.chunk_size:
        raise CommandError(
            f"--resume: the checkpoint was written with --chunk-size {progress.get('chunk_size')}, "
            f"not {args.chunk_size}; resume with the same chunk size"
        )
    saved = detector.get_params()
    different = [f"{key} ({saved[key]!r} in the checkpoint, {value!r} now)"
                 for key, value in params.items() if key != "verbose" and _as_json(saved.get(key)) != _as_json(value)]
    if different:
        raise CommandError(f"--resume: model options differ from the checkpoint's: {'; '.join(different)}")
    return detector, int(progress.get("chunks_done", 0))


def _as_json(value):
    return list(value) if isinstance(value, tuple) else value


def _as_text(value):
    return None if value is None else str(value)


def fit_stream_command(args: argparse.Namespace) -> int:
    """Train on DATA chunk by chunk, with optional checkpoints and resume; save the model to --out."""
    from tqdm.auto import tqdm

    from ..checkpoint import save_checkpoint
    from ..estimator import FFOneClass
    from ..io import iter_table_chunks
    from .model import _check_output_path, estimator_params

    out = Path(args.out)
    if out.is_dir():
        raise CommandError(f"--out {str(out)!r} is a folder; give a file name such as model.safetensors")
    if args.normal_label is not None and args.label_column is None:
        raise CommandError("--normal-label requires --label-column, the column that contains the labels")
    args.chunk_size = args.chunk_size or _DEFAULT_CHUNK_SIZE
    if args.checkpoint == "":
        raise CommandError("--checkpoint is empty; give a file name, or leave it out for the default name")
    if args.checkpoint and not args.checkpoint_every and not args.resume:
        raise CommandError(
            "--checkpoint names a file that is written only with --checkpoint-every K; add it, or drop --checkpoint"
        )
    checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path(out)
    if args.checkpoint_every:  # the checkpoint is written in this run
        _check_output_path(checkpoint, args.data, "--checkpoint")
    if checkpoint.resolve() == out.resolve():
        raise CommandError(f"--checkpoint {str(checkpoint)!r} is the --out file; give the checkpoint another name")
    params = {**estimator_params(args), "forgetting": args.forgetting or 0.0}

    chunks_done = 0
    detector = FFOneClass(**params)
    if args.resume:
        detector, chunks_done = _resume(args, checkpoint, params)
        detector.set_params(verbose=args.verbose)

    detector._validate_params()
    chunks = iter_table_chunks(args.data, args.chunk_size, header=False if args.no_header else None)
    # The number of chunks is unknown until the file ends, so the bar counts chunks and rows.
    bar = tqdm(desc="stream", unit="chunk", disable=not args.verbose, file=sys.stderr)
    n_chunks = 0
    n_rows = 0
    n_read = 0  # Rows of every chunk, counted before the --normal-label filter.
    for n_chunks, chunk in enumerate(chunks, start=1):
        bar.update(1)
        n_read += chunk.shape[0]
        if n_chunks <= chunks_done:
            continue  # trained on before the interruption
        features = _chunk_features(chunk, args)
        if features.shape[0] == 0:
            continue
        # As partial_fit, with the flat-layer warning left to _end_stream, which describes the final model.
        detector._partial_fit(features, start=False, in_stream=True)
        n_rows += features.shape[0]
        bar.set_postfix(rows=n_rows)
        if args.checkpoint_every and n_chunks % args.checkpoint_every == 0:
            save_checkpoint(detector, checkpoint, progress={
                "data": str(Path(args.data).resolve()), "chunk_size": args.chunk_size, "chunks_done": n_chunks,
                "label_column": _as_text(args.label_column), "normal_label": _as_text(args.normal_label),
            })
    bar.close()
    if not hasattr(detector, "layers_"):
        raise CommandError(f"{args.data} has no training rows" + (
            f" with label {args.normal_label!r}" if args.normal_label is not None else ""))
    if n_chunks < chunks_done:
        raise CommandError(
            f"--resume: the checkpoint has {plural(chunks_done, 'chunk')} done but {args.data} has only {n_chunks}; "
            "resume with the same DATA"
        )
    detector._end_stream()

    detector.save(out)
    chunks_text = f"{plural(n_chunks, 'chunk')} of up to {plural(args.chunk_size, 'row')}"
    if args.normal_label is None:
        rows_text = f"read in {chunks_text}"
    else:  # The chunks contain every row, but only the rows with the normal label are trained on.
        rows_text = f"the rows with {args.label_column} = {args.normal_label} among {n_read} read in {chunks_text}"
    print(
        f"fitted {detector.trainer} {detector.objective} online on {plural(detector.n_samples_seen_, 'row')} x "
        f"{plural(detector.n_features_in_, 'feature')}, {rows_text} ({n_rows} in this run); model saved to {out}"
    )
    return 0

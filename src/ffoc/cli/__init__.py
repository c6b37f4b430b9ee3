"""The ``ffoc`` command line: ``ffoc fit``, ``score``, ``info``, ``demo`` and the tools built on them.

Each sub-command lives in its own module with an ``add_parser(subparsers)``
function that registers its arguments and sets ``handler``. Errors the user can
fix are printed as one line on standard error with exit code 1; usage errors
exit with code 2, as argparse does.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
import warnings

__all__ = ["main", "CommandError", "plural"]

# Modules that register sub-commands, in the order ``ffoc --help`` lists them.
COMMAND_MODULES = [
    "ffoc.cli.model",
    "ffoc.cli.demo",
    "ffoc.cli.bench",
    "ffoc.cli.reproduce",
    "ffoc.cli.images",
]


class CommandError(Exception):
    """An error with a message meant for the user; printed without a traceback."""


def plural(count: int, noun: str) -> str:
    """Return ``count`` and ``noun``, with an ``s`` added unless ``count`` is 1: ``1 row``, ``2 rows``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def build_parser() -> argparse.ArgumentParser:
    """Return the ``ffoc`` argument parser with every sub-command registered."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="ffoc",
        description="Deep one-class anomaly detection trained forward-forward.",
    )
    parser.add_argument("--version", action="version", version=f"ffoc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``ffoc`` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", 0) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    previous_format = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _interrupt_on_sigterm) if in_main_thread else None
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("ffoc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output (for example `head`) closed the pipe. For the scoring commands
        # that reader has what it wanted, so they stop quietly. Other commands stopped before
        # saving their result, so they exit with the shell's code for a broken pipe (128 + SIGPIPE).
        for stream in (sys.stdout, sys.stderr):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        return 0 if args.command in _SCORING_COMMANDS else 141
    except (CommandError, ValueError, TypeError, OSError, FloatingPointError, ImportError) as error:
        message = str(error).strip().replace("\n", " ") or type(error).__name__
        print(f"ffoc {args.command}: error: {message}", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = previous_format
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)


#: Commands whose whole output is the scores on stdout, so that a closed pipe ends them successfully.
_SCORING_COMMANDS = ("score", "score-images")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Format a warning as one line for the terminal, without the source line that raised it."""
    return f"ffoc: warning: {message}\n"


def _interrupt_on_sigterm(signum, frame) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so that file writes in progress clean up as on Ctrl-C."""
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

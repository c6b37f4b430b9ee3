"""Writing benchmark figures into BENCHMARKS.md, one named section per benchmark."""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["machine_description", "markdown_table", "write_section"]


def write_section(path, name: str, body: str) -> None:
    """Replace the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` in ``path``.

    The section is appended when it is not there yet, and the file is created when
    missing; the other sections are left as they are. The write is atomic.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "B.md")
    >>> write_section(path, "demo", "one")
    >>> write_section(path, "demo", "two")
    >>> "two" in open(path).read() and "one" not in open(path).read()
    True
    """
    from ..persistence import atomic_write_bytes

    path = Path(path)
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if begin in text and end in text and text.index(begin) < text.index(end):
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def markdown_table(header: list[str], rows: list[list]) -> str:
    """Return a Markdown table; floats are written with 4 decimals.

    Examples
    --------
    >>> print(markdown_table(["a", "b"], [[1, 0.5]]))
    | a | b |
    |---|---|
    | 1 | 0.5000 |
    """
    def cell(value) -> str:
        if not isinstance(value, float):
            return str(value)
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.2e}"  # 4 decimals would print a small positive value as 0.0000
        return f"{value:.4f}"

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_description() -> str:
    """Return a one-line description of this machine: processor, cores, Python and torch versions."""
    import os

    import torch

    return (
        f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
    ).replace("  ", " ")

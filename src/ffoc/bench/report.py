"""Writing benchmark figures into BENCHMARKS.md, one named section per benchmark."""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["check_section", "machine_description", "markdown_table", "write_section"]


def write_section(path, name: str, body: str) -> None:
    """Replace the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` in ``path``.

    The section is appended when it is not there yet, and the file is created when
    missing; the other sections are left as they are. The write is atomic.

    Raises
    ------
    ValueError
        If the file's markers of section ``name`` are out of order, repeated or
        unpaired (see :func:`check_section`); the file is left unchanged.

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
    begin, end = _markers(name)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if _has_section(text, name, path):
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def check_section(path, name: str) -> None:
    r"""Check that :func:`write_section` can write section ``name`` of ``path``.

    Call it before long work, so that a bad file is reported before the
    results exist. A missing file passes.

    Parameters
    ----------
    path : str or os.PathLike
        Markdown file, such as BENCHMARKS.md.
    name : str
        Section name, as in ``<!-- begin NAME -->``.

    Raises
    ------
    ValueError
        If the file has one marker of the section without the other, either
        marker more than once, or the end marker before the begin marker.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "B.md"
    >>> _ = path.write_text("<!-- end demo -->\n<!-- begin demo -->\n")
    >>> check_section(path, "demo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ... has '<!-- end demo -->' before '<!-- begin demo -->'; ...
    """
    path = Path(path)
    if path.is_file():
        _has_section(path.read_text(encoding="utf-8"), name, path)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- begin {name} -->", f"<!-- end {name} -->"


def _has_section(text: str, name: str, path: Path) -> bool:
    """Return whether ``text`` has section ``name``; raise a ValueError if its markers are broken."""
    begin, end = _markers(name)
    n_begin, n_end = text.count(begin), text.count(end)
    fix = "fix the markers by hand so that each appears once, begin first, or remove both"
    if n_begin == 0 and n_end == 0:
        return False
    if n_begin != n_end:
        present, missing = (begin, end) if n_begin > n_end else (end, begin)
        raise ValueError(f"{str(path)!r} has {present!r} without a matching {missing!r}; {fix}")
    if n_begin > 1:
        raise ValueError(f"{str(path)!r} has {begin!r} and {end!r} {n_begin} times each; {fix}")
    if text.index(end) < text.index(begin):
        raise ValueError(f"{str(path)!r} has {end!r} before {begin!r}; {fix}")
    return True


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

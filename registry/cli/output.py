"""How the CLI writes: tables, JSON, and errors and warnings (coloured on a terminal only).

Colour follows the common conventions: none when ``NO_COLOR`` is set to anything non-empty
(https://no-color.org), when ``TERM=dumb``, or when the stream is not a terminal (piped, a
file); ``FORCE_COLOR`` (non-empty) turns it on for a stream that is not a terminal.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from registry.masking import escape_control

__all__ = [
    "escaped_lines",
    "print_json",
    "report_error",
    "report_warning",
    "styled",
    "table",
    "wants_colour",
]

_STYLES = {"error": "1;31", "warning": "33", "ok": "32", "dim": "2", "bold": "1"}


def wants_colour(stream: TextIO) -> bool:
    """Whether to colour ``stream``: a terminal, no ``NO_COLOR``, not ``TERM=dumb``."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def styled(text: str, style: str, stream: TextIO) -> str:
    """``text`` in ``style`` (``error``, ``warning``, ``ok``, ``dim``, ``bold``) when coloured.

    Unchanged when ``stream`` is not coloured (:func:`wants_colour`).
    """
    if not wants_colour(stream):
        return text
    return f"\033[{_STYLES[style]}m{text}\033[0m"


def escaped_lines(text: str) -> str:
    """Our own multi-line messages keep their lines; every line is escaped for the terminal."""
    return "\n".join(escape_control(line) for line in text.split("\n"))


def print_json(data: Any, out: TextIO) -> None:
    """``data`` as indented JSON (values JSON cannot hold as their ``str``)."""
    out.write(json.dumps(data, indent=2, default=str) + "\n")


def table(rows: list[list[str]], out: TextIO) -> None:
    """Rows as aligned columns, every cell escaped; the first row is the header."""
    if not rows:
        return
    rows = [[escape_control(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  " + "  ".join([*cells, row[-1]]).rstrip() + "\n")


def report_error(message: str, kind: str, *, as_json: bool, prefix: str = "error") -> None:
    """An error on stderr: ``modelreg: error: ...``, or one JSON object with ``--json``.

    The object is ``{"error": ..., "kind": ...}`` (JSON escapes control characters itself).
    """
    _report("error", prefix, message, kind, as_json)


def report_warning(message: str, kind: str, *, as_json: bool) -> None:
    """A warning on stderr, as one line or (``--json``) one ``{"warning", "kind"}`` object."""
    _report("warning", "warning", message, kind, as_json)


def _report(field: str, label: str, message: str, kind: str, as_json: bool) -> None:
    err = sys.stderr
    if as_json:
        err.write(json.dumps({field: message, "kind": kind}) + "\n")
        return
    err.write(f"modelreg: {styled(label + ':', field, err)} {escaped_lines(message)}\n")

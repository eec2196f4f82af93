"""``modelreg tokens --prefetch DIR``: download the tokenizer files, with a bar on a terminal.

Standard output gets one ``wrote PATH (ENCODING, SIZE)`` line a file (or, with ``--json``, one
object), wherever it goes. Standard error gets a progress bar only when it is a terminal: piped
or redirected, a bar is noise, and the ``wrote`` lines say the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from registry.cli.output import print_json
from registry.cli.parser import UsageError
from registry.masking import shown_path

__all__ = ["ProgressBar", "cmd_prefetch"]


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB"):
        if count < 1000 or unit == "MB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


class ProgressBar:
    """One line on a terminal, redrawn in place (at most ten times a second per file)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._current: str | None = None
        self._drawn_at = 0.0

    def __call__(self, name: str, done: int, total: int | None) -> None:
        """Show ``done`` of ``total`` bytes of ``name``; a finished file keeps its line."""
        finished = total is not None and done >= total
        if name != self._current:
            self.end()
            self._current = name
        elif not finished and time.monotonic() - self._drawn_at < 0.1:
            return
        self._drawn_at = time.monotonic()
        self.stream.write("\r" + self._line(name, done, total) + "\033[K")
        if finished:
            self.end()
        self.stream.flush()

    def _line(self, name: str, done: int, total: int | None) -> str:
        if total is None:
            return f"{name}  {_size(done)}"
        counts = f"  {_size(done)} / {_size(total)}  {100 * done // max(total, 1):3d}%"
        width = shutil.get_terminal_size((80, 24)).columns - len(name) - len(counts) - 5
        width = max(10, min(width, 40))
        filled = width * done // max(total, 1)
        return f"{name}  [{'#' * filled}{'.' * (width - filled)}]{counts}"

    def end(self) -> None:
        """Finish the current line (before the next file, or before an error message)."""
        if self._current is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._current = None


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def cmd_prefetch(args: argparse.Namespace, out: TextIO) -> int:
    """Download the encodings of the ``openai`` token counter into ``args.prefetch``."""
    from backends.encodings import ENCODING_FILES, prefetch

    if not args.prefetch:
        raise UsageError("give the directory: --prefetch DIR (see: modelreg tokens --help)")
    if args.name or args.file or args.tools:
        raise UsageError("--prefetch downloads files: give no model, messages file or --tools")
    bar = ProgressBar(sys.stderr) if _stderr_is_terminal() else None
    try:
        written = prefetch(args.prefetch, base_url=args.prefetch_from, progress=bar)
    finally:
        if bar is not None:
            bar.end()
    sizes = [Path(path).stat().st_size for path in written]
    if args.json:
        files = [
            {"encoding": name, "path": str(path), "bytes": size}
            for name, path, size in zip(ENCODING_FILES, written, sizes, strict=True)
        ]
        print_json({"directory": str(args.prefetch), "files": files}, out)
        return 0
    for name, path, size in zip(ENCODING_FILES, written, sizes, strict=True):
        out.write(f"wrote {shown_path(path)} ({name}, {_size(size)})\n")
    return 0

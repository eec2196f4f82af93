"""What the CLI's commands share.

The settings and registry the global options choose, and reading a JSON file or standard input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from registry.cli.parser import UsageError
from registry.errors import RegistryError
from registry.masking import escape_control
from registry.settings import Settings, load_settings

if TYPE_CHECKING:
    from registry.factory import ModelRegistry

__all__ = ["COMMAND_LINE", "read_input", "read_json", "registry", "settings", "stdin_is_terminal"]

#: The origin of an option given as a flag (``--env prod``).
COMMAND_LINE = "command line"


def settings(args: argparse.Namespace) -> Settings:
    """The settings, with --settings/--dotenv/--env as options given on the command line."""
    return load_settings(
        args.settings, dotenv_path=args.dotenv, env=args.env, given_origin=COMMAND_LINE
    )


def registry(args: argparse.Namespace) -> ModelRegistry:
    """A registry over :func:`settings` (plugins load here)."""
    from registry.factory import ModelRegistry

    return ModelRegistry(settings(args))


def stdin_is_terminal() -> bool:
    """Whether standard input is a terminal (a prompt would wait for typing, not a pipe)."""
    try:
        return sys.stdin is None or sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def read_input(path: str, what: str) -> str:
    """A file's text, or standard input's for ``-``; errors name the file, never the content."""
    from pathlib import Path

    from registry.sources import decode_text, read_text

    if path == "-":
        if sys.stdin is None:  # started with stdin closed (`<&-`)
            raise UsageError(f"standard input is closed: there is no {what} to read from it")
        return decode_text(sys.stdin.buffer.read(), "standard input", what)
    return read_text(Path(path), what)


def read_json(path: str, what: str) -> Any:
    """A JSON file (or stdin); errors name the file and the line, never the content."""
    text = read_input(path, what)
    if not text.strip():
        source = "standard input" if path == "-" else f"{what} {escape_control(repr(path))}"
        raise RegistryError(f"{source} is empty: give the {what} as JSON.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    except RecursionError:
        problem = "it is nested too deeply"
    raise RegistryError(f"{what} {escape_control(repr(path))} is not valid JSON: {problem}.")

"""``modelreg init``: write a commented starter ``settings.toml``, never over an existing file.

The file goes where every other command would read it (``--settings``, else
``MODELREG_SETTINGS`` from the environment or ``.env``, else ``./settings.toml``). It holds no
secret: the comments name the variable the key comes from. It is written to a temporary file
beside the target and linked into place, so a failure leaves no partial file and a file that
appears meanwhile is not replaced.
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import shlex
from pathlib import Path
from typing import TextIO

from registry.cli.common import COMMAND_LINE
from registry.cli.output import print_json
from registry.errors import ConfigError, RegistryError
from registry.masking import escape_control, shown_path

__all__ = ["BACKENDS", "KEY_VARIABLES", "cmd_init", "starter_text"]

#: The backends ``init`` has a starter for, and the variable each one's key is read from.
KEY_VARIABLES = {"azure": "AZURE_OPENAI_API_KEY", "openai": "OPENAI_API_KEY"}
BACKENDS = tuple(KEY_VARIABLES)


def starter_text(backend: str) -> str:
    """The starter settings for ``backend`` (shipped as ``registry/cli/starter/*.toml``)."""
    from importlib.resources import files

    return files("registry.cli").joinpath("starter", f"{backend}.toml").read_text("utf-8")


def _target(args: argparse.Namespace) -> tuple[Path, str]:
    """The file to write and what chose it: the same rule every command reads the file by."""
    from registry.options import early_option
    from registry.settings import DEFAULT_DOTENV_FILE, DEFAULT_SETTINGS_FILE
    from registry.sources import display_path, read_dotenv_variables

    environ = dict(os.environ)
    given = {"settings": args.settings, "dotenv": args.dotenv}
    named = early_option("dotenv", given, COMMAND_LINE, environ)
    dotenv_file = Path(named[0] if named else DEFAULT_DOTENV_FILE)
    if named and not dotenv_file.is_file():
        raise ConfigError(
            f".env file {escape_control(str(dotenv_file))!r} (from {named[1]}) does not exist "
            f"or is not a file. Check the path, or unset it to use ./{DEFAULT_DOTENV_FILE}."
        )
    variables = read_dotenv_variables(dotenv_file)
    chosen = early_option(
        "settings", given, COMMAND_LINE, environ, variables, display_path(dotenv_file)
    )
    if chosen is None:
        return Path(DEFAULT_SETTINGS_FILE), "the default"
    return Path(chosen[0]), chosen[1]


def _write_new(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all; an existing ``path`` is never replaced."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if path exists: no check-then-write race
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if os.path.lexists(path):  # a file system without hard links
                raise FileExistsError(errno.EEXIST, "File exists") from None
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _next_steps(path: Path, origin: str, backend: str) -> list[str]:
    """What to do after ``init``; ``--settings`` is repeated only if it chose the file."""
    shown = shown_path(path)
    option = f" --settings {shlex.quote(shown)}" if origin == COMMAND_LINE else ""
    return [
        f"edit {'endpoint and deployment' if backend == 'azure' else 'model'} in {shown}",
        f"set {KEY_VARIABLES[backend]} in the environment or in .env (never in the settings file)",
        f"modelreg check{option}",
        f'MODELREG_ENV=test modelreg chat{option} chat "Hello"   (the fake backend, offline)',
    ]


def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    """Write the starter settings for ``--backend`` where the settings are read from."""
    path, origin = _target(args)
    label = repr(shown_path(path))
    if os.path.lexists(path):
        raise ConfigError(
            f"{label} (from {origin}) already exists: not overwritten. Edit it, remove it, or "
            "give another file with --settings PATH."
        )
    if not path.parent.is_dir():
        raise RegistryError(
            f"cannot write {label} (from {origin}): its directory does not exist (or is not a "
            "directory). Create it first, or give another file with --settings PATH."
        )
    try:
        _write_new(path, starter_text(args.backend))
    except FileExistsError:
        raise ConfigError(f"{label} (from {origin}) appeared meanwhile: not overwritten.") from None
    except OSError as exc:
        raise RegistryError(
            f"cannot write {label} (from {origin}): {exc.strerror or type(exc).__name__}."
        ) from None
    steps = _next_steps(path, origin, args.backend)
    if args.json:
        written = os.fsencode(path).decode("utf-8", "backslashreplace")
        print_json({"written": written, "backend": args.backend, "next_steps": steps}, out)
        return 0
    out.write(f"wrote {shown_path(path)} ({args.backend} backend). Next:\n")
    out.writelines(f"  {number}. {step}\n" for number, step in enumerate(steps, 1))
    return 0

"""The ``modelreg`` command line.

Exit codes: 0 success; 1 a problem the user must fix (one plain message, no traceback);
2 a usage error; 130 interrupted; 141 the output's reader went away. With ``--json``, errors
and warnings are JSON objects on stderr (``{"error": "...", "kind": "ConfigError"}``) with the
same exit codes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TextIO

from registry.cli.common import COMMAND_LINE
from registry.cli.output import report_error, report_warning
from registry.cli.parser import COMMANDS, GLOBAL_OPTIONS, UsageError, build_parser, unrecognized
from registry.errors import RegistryError

__all__ = ["COMMAND_LINE", "build_parser", "main"]

Handler = Callable[[argparse.Namespace, TextIO], int]


def _handler(name: str) -> Handler:
    """The function that runs command ``name`` (its module is imported only when it runs)."""
    from registry.cli import calling, checking, completion, init_command, inspecting

    handlers: dict[str, Handler] = {
        "list": inspecting.cmd_list,
        "show": inspecting.cmd_show,
        "check": checking.cmd_check,
        "plugins": inspecting.cmd_plugins,
        "config": inspecting.cmd_config,
        "routes": inspecting.cmd_routes,
        "tokens": calling.cmd_tokens,
        "chat": calling.cmd_chat,
        "init": init_command.cmd_init,
        "completion": completion.cmd_completion,
    }
    return handlers[name]


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` was asked for (read before parsing, so usage errors honour it)."""
    words = list(argv)
    return "--json" in (words[: words.index("--")] if "--" in words else words)


def _unused_globals(args: argparse.Namespace) -> None:
    """A global option given before a command that does not read it is a usage error."""
    command = next(c for c in COMMANDS if c.name == args.command)
    for option in GLOBAL_OPTIONS:
        if option in command.global_options:
            continue
        if getattr(args, option.lstrip("-"), None):
            raise UsageError(
                f"{command.name} does not use {option} (see: modelreg {command.name} --help)"
            )


#: The exit code of a command whose reader went away (`modelreg check | head -1`): what a
#: process killed by SIGPIPE reports, so `set -o pipefail` sees it, and never 0 for a failed check.
BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI; return the exit code."""
    out = out or sys.stdout
    try:
        code = _main(sys.argv[1:] if argv is None else list(argv), out)
        out.flush()  # here, not at exit: a reader that went away is reported as one
    except BrokenPipeError:
        # Stop quietly, as other CLIs do; the interpreter's own flush at exit must not fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE
    except KeyboardInterrupt:
        return 130
    return code


def _main(words: list[str], out: TextIO) -> int:
    as_json = _wants_json(words)
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(words)
        if extras:
            raise UsageError(unrecognized(parser, args.command, extras))
        if args.command is None:
            parser.print_help(out)
            return 0
        _unused_globals(args)
    except UsageError as exc:
        report_error(str(exc), "UsageError", as_json=as_json)
        return 2
    logged = _LogPrinter(as_json)
    logger = logging.getLogger("modelreg")
    logger.addHandler(logged)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(as_json)
            return _run(args, out, as_json)
    finally:
        logger.removeHandler(logged)


class _LogPrinter(logging.Handler):
    """modelreg's own log warnings (an unreachable routing state) as the CLI's warnings.

    Without it Python's last-resort handler prints them as bare text, also with ``--json``.
    """

    def __init__(self, as_json: bool) -> None:
        super().__init__(logging.WARNING)
        self.as_json = as_json

    def emit(self, record: logging.LogRecord) -> None:
        report_warning(record.getMessage(), record.name, as_json=self.as_json)


def _warning_printer(as_json: bool) -> Callable[..., None]:
    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        """Warnings as one plain line (``modelreg: warning: ...``), not Python's source excerpt."""
        report_warning(str(message), category.__name__, as_json=as_json)

    return show


def _run(args: argparse.Namespace, out: TextIO, as_json: bool) -> int:
    try:
        return _handler(args.command)(args, out)
    except UsageError as exc:
        report_error(str(exc), "UsageError", as_json=as_json)
        return 2
    except RegistryError as exc:
        report_error(str(exc), type(exc).__name__, as_json=as_json)
        return 1
    except (KeyboardInterrupt, BrokenPipeError):
        raise  # main's
    except Exception as exc:
        kind = type(exc).__name__
        if type(exc).__module__.startswith("openai"):
            report_error(f"{kind}: {exc}", kind, as_json=as_json, prefix="request failed")
            return 1
        # Not a traceback, and not the message either: it may quote a value from the settings.
        report_error(
            f"internal error ({kind}) in modelreg or a plugin. Please report it with the "
            "command you ran (not your settings' values).",
            "InternalError",
            as_json=as_json,
        )
        return 1

"""``modelreg check``: every model in every environment, each problem once, then a summary."""

from __future__ import annotations

import argparse
from typing import TextIO

from registry.cli import common
from registry.cli.output import escaped_lines, print_json, styled

__all__ = ["cmd_check"]


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    """Validate every model in every environment; list every problem."""
    from registry.checks import check_settings
    from registry.settings import choose_env

    settings = common.settings(args)
    # --env is an option from the command line (its origin says so), matched as every command
    # matches it (`--env PROD` means prod): check exactly the environment the others would use.
    only_env = choose_env(settings, None) if args.env else None
    report = check_settings(settings, only_env=only_env, strict=args.strict)
    if args.json:
        print_json(report.to_dict(), out)
    else:
        for line in report.lines():
            out.write(_coloured(escaped_lines(line), out) + "\n")
    return 1 if report.errors else 0


def _coloured(line: str, out: TextIO) -> str:
    """The line's leading ``error:``/``warning:``/``OK:`` in colour on a terminal."""
    for word, style in (("error:", "error"), ("warning:", "warning"), ("OK:", "ok")):
        if line.startswith(word):
            return styled(word, style, out) + line[len(word) :]
    return line

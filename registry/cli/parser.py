"""The ``modelreg`` argument parser: commands, their options, and help with examples.

Each command is described once in :data:`COMMANDS` (summary, examples, the variables it reads,
which global options it takes, its own exit codes); the parser, every ``--help`` and the shell
completion are built from that description.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = ["COMMANDS", "GLOBAL_OPTIONS", "Command", "UsageError", "build_parser"]

#: Options every command may take before or after its name, and their help.
GLOBAL_OPTIONS: dict[str, tuple[str, str]] = {
    "--settings": ("PATH", "settings file (default: $MODELREG_SETTINGS, else ./settings.toml)"),
    "--env": ("NAME", "environment overlay to apply (default: $MODELREG_ENV)"),
    "--dotenv": ("PATH", ".env file to read (default: $MODELREG_DOTENV, else ./.env)"),
    "--json": ("", "print JSON instead of text; errors too, as JSON on stderr"),
}
_SETTINGS = ("--settings", "--env", "--dotenv", "--json")

_SETTINGS_VARIABLES = (
    "MODELREG_SETTINGS, MODELREG_DOTENV, MODELREG_ENV   which settings file, .env and environment",
    "MODELREG_MODELS__<NAME>__<FIELD>, MODELREG_DEFAULTS__<FIELD>   override settings values",
)
_BACKEND_VARIABLES = (
    "MODELREG_PLUGINS, MODELREG_DISABLE_PLUGINS   which installed plugins load",
    "MODELREG_SECRETS_DIR, MODELREG_AZURE_KEY_VAULT_URL   where ${VAR} secrets come from",
    "AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT, OPENAI_API_KEY, ...   conventional "
    "variables (README: Options)",
)
_EXIT_CODES = {0: "success", 1: "a problem to fix (the message says which)", 2: "usage error"}


@dataclass(frozen=True)
class Command:
    """One subcommand: what it does, how to call it, what it reads and what it returns."""

    name: str
    summary: str
    examples: tuple[str, ...]
    variables: tuple[str, ...] = ()
    global_options: tuple[str, ...] = _SETTINGS
    exit_codes: tuple[tuple[int, str], ...] = ()

    def epilog(self) -> str:
        """The ``--help`` text after the options: examples, variables, exit codes."""
        codes = {**_EXIT_CODES, **dict(self.exit_codes), 130: "interrupted (Ctrl-C)"}
        codes[141] = "the output's reader went away (| head)"
        parts = ["examples:", *(f"  {example}" for example in self.examples)]
        variables = (*self.variables, "NO_COLOR   no colour in messages (also when piped)")
        parts += ["", "environment variables:", *(f"  {v}" for v in variables)]
        parts += ["", "exit codes:", *(f"  {code}  {what}" for code, what in codes.items())]
        return "\n".join(parts)


COMMANDS: tuple[Command, ...] = (
    Command(
        "list",
        "list the models and aliases of the active environment (* marks default_model)",
        ("modelreg list", "modelreg list --env prod", "modelreg list --json"),
        _SETTINGS_VARIABLES,
    ),
    Command(
        "show",
        "show a model's resolved settings, where each came from, and which credential it uses",
        ("modelreg show", "modelreg show chat --env prod", "modelreg show chat --json"),
        (*_SETTINGS_VARIABLES, *_BACKEND_VARIABLES),
    ),
    Command(
        "check",
        "validate every model in every environment; print each problem once",
        ("modelreg check", "modelreg check --env prod --strict", "modelreg check --json"),
        (*_SETTINGS_VARIABLES, *_BACKEND_VARIABLES),
        exit_codes=((1, "an error in the settings (with --strict: a warning too)"),),
    ),
    Command(
        "plugins",
        "list installed plugins, what each registered, and their problems",
        ("modelreg plugins", "MODELREG_DISABLE_PLUGINS=acme modelreg plugins --json"),
        ("MODELREG_PLUGINS, MODELREG_DISABLE_PLUGINS   which plugins load (also from ./.env)",),
        global_options=("--json",),
        exit_codes=((1, "a plugin failed to load or registered something invalid"),),
    ),
    Command(
        "config",
        "show the registry's own settings (files, environment, secrets, plugins, tokenizer "
        "cache, routing state) and where each came from",
        ("modelreg config", "modelreg config --json"),
        (
            "MODELREG_SETTINGS, MODELREG_DOTENV, MODELREG_ENV, MODELREG_PLUGINS, "
            "MODELREG_DISABLE_PLUGINS, MODELREG_SECRETS_DIR, MODELREG_AZURE_KEY_VAULT_URL, "
            "MODELREG_TIKTOKEN_CACHE_DIR, MODELREG_ROUTING_STATE",
            "TIKTOKEN_CACHE_DIR   tiktoken's own cache directory",
        ),
    ),
    Command(
        "routes",
        "show a pool's deployments: weight, state, cooldown left, recent failures",
        ("modelreg routes chat", "modelreg routes chat --json"),
        (*_SETTINGS_VARIABLES, "MODELREG_ROUTING_STATE   the shared state (redis://...)"),
        exit_codes=((1, "not a pool, or the shared state is unreachable"),),
    ),
    Command(
        "tokens",
        "count the prompt tokens of a JSON messages file for a model",
        (
            "modelreg tokens chat messages.json",
            "modelreg tokens chat - < messages.json",
            "modelreg tokens chat messages.json --tools tools.json --json",
            "modelreg tokens --prefetch ./tiktoken-cache",
            "modelreg tokens --prefetch ./tiktoken-cache --prefetch-from "
            "https://mirror.example/encodings/",
        ),
        (
            *_SETTINGS_VARIABLES,
            "MODELREG_TIKTOKEN_CACHE_DIR, TIKTOKEN_CACHE_DIR   where tokenizer files are read",
            "HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE   how --prefetch reaches the internet",
        ),
    ),
    Command(
        "chat",
        "send one prompt to a model and print the reply as it arrives",
        (
            'modelreg chat chat "Say hello"',
            'echo "Say hello" | modelreg chat',
            'modelreg chat writer - --system "Answer in French" < prompt.txt',
        ),
        (*_SETTINGS_VARIABLES, *_BACKEND_VARIABLES),
        exit_codes=((1, "a settings problem, or the request failed"),),
    ),
    Command(
        "init",
        "write a commented starter settings.toml (a test environment on the fake backend); "
        "never overwrites",
        (
            "modelreg init",
            "modelreg init --backend openai --settings openai.toml",
            "modelreg init --json",
        ),
        (
            "MODELREG_SETTINGS   where to write (also from .env; default ./settings.toml)",
            "MODELREG_DOTENV   the .env file MODELREG_SETTINGS may be read from",
        ),
        global_options=("--settings", "--dotenv", "--json"),
        exit_codes=((1, "the file exists (it is kept as it is) or cannot be written"),),
    ),
    Command(
        "completion",
        "print the shell completion script for bash or zsh (commands, options, model names)",
        ("modelreg completion bash", "modelreg completion zsh"),
        (
            "MODELREG_SETTINGS, MODELREG_DOTENV, MODELREG_ENV   where model names are read "
            "from while completing (--settings, --env, --dotenv typed on the line win)",
        ),
        global_options=(),
    ),
)


class UsageError(Exception):
    """A command line the parser cannot run (exit 2), reported as text or JSON."""


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised to :func:`registry.cli.main` instead of printed."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}{_suggestion(message)} (see: {self.prog} --help)")


def _suggestion(message: str) -> str:
    """A did-you-mean for argparse's ``invalid choice: 'shwo' (choose from 'list', ...)``."""
    from registry.errors import did_you_mean

    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if found is None:
        return ""
    return did_you_mean(found.group(1), re.findall(r"'([^']*)'", found.group(2)))


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, and the top level's under ``""``."""
    found = {"": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def unrecognized(parser: argparse.ArgumentParser, command: str | None, extras: list[str]) -> str:
    """The usage error for arguments no parser took, pointing at the command's own help."""
    from registry.errors import did_you_mean

    chosen = command_parsers(parser)[command or ""]
    options = [o for action in chosen._actions for o in action.option_strings]
    hint = "".join(did_you_mean(word, options) for word in extras if word.startswith("--"))
    where = f"modelreg {command}" if command else "modelreg"
    return f"unrecognized arguments: {' '.join(extras)}.{hint} (see: {where} --help)"


class _CommandParser(Parser):
    """A command's parser: its positionals may come after its options.

    Plain argparse fills every ``nargs="?"`` positional at the first one it meets, so in
    ``modelreg chat writer --system "Be brief" "Hello"`` the prompt after ``--system`` is left
    over ("unrecognized arguments"). Intermixed parsing reads options first, then positionals.
    """

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # Not after `--` (argparse's intermixed passes would drop it and read `--json` after it
        # as the option), nor inside the two passes of parse_known_intermixed_args.
        if self._intermixing or "--" in (args or ()):
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


class _Version(argparse.Action):
    """``--version``: the installed distribution's version (read only when asked)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("modelreg")
        except PackageNotFoundError:
            number = "unknown (not installed)"
        python = ".".join(map(str, sys.version_info[:3]))
        sys.stdout.write(f"modelreg {number} (Python {python})\n")
        parser.exit()


def _add_global_options(
    parser: argparse.ArgumentParser, names: Sequence[str], *, top: bool
) -> None:
    """Add the global options ``names``.

    A subcommand's default is SUPPRESS, so a value given before the command is kept.
    """
    for option in names:
        metavar, help_text = GLOBAL_OPTIONS[option]
        default: Any = None if top else argparse.SUPPRESS
        if option == "--json":
            default = False if top else argparse.SUPPRESS
            parser.add_argument(option, action="store_true", default=default, help=help_text)
        else:
            parser.add_argument(option, metavar=metavar, default=default, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    """The ``modelreg`` parser; global options work before or after the command."""
    # No abbreviations (`--jso`): --json is spotted before parsing so usage errors are JSON too,
    # and an abbreviation that works today would break when an option sharing its prefix comes.
    parser = Parser(
        prog="modelreg",
        allow_abbrev=False,
        description="Configuration-driven model registry: which deployment each model name "
        "means, per environment.",
        epilog="Run `modelreg COMMAND --help` for a command's examples, variables and exit codes.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    _add_global_options(parser, list(GLOBAL_OPTIONS), top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.summary[0].upper() + command.summary[1:] + ".",
            epilog=command.epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        _add_global_options(sub, command.global_options, top=False)
        _ARGUMENTS[command.name](sub)
    return parser


def _list(parser: argparse.ArgumentParser) -> None:
    del parser


def _named(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="model name or alias (default: default_model)")


def _check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")


def _tokens(parser: argparse.ArgumentParser) -> None:
    _named(parser)
    parser.add_argument(
        "file", nargs="?", help="JSON messages file, or - for stdin (default: stdin if piped)"
    )
    parser.add_argument("--tools", metavar="FILE", help="JSON file of tool definitions")
    parser.add_argument(
        "--prefetch",
        metavar="DIR",
        help="download the tokenizer encodings into DIR (run on a connected machine)",
    )
    parser.add_argument(
        "--prefetch-from",
        metavar="URL",
        help="with --prefetch: a mirror holding the same files (their sha256 is checked)",
    )


def _chat(parser: argparse.ArgumentParser) -> None:
    _named(parser)
    parser.add_argument(
        "prompt", nargs="?", help="the user message, or - for stdin (default: stdin if piped)"
    )
    parser.add_argument("--system", metavar="TEXT", help="a system message to send first")


def _init(parser: argparse.ArgumentParser) -> None:
    from registry.cli.init_command import BACKENDS

    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=BACKENDS[0],
        help=f"the backend of the starter model (default: {BACKENDS[0]})",
    )


def _completion(parser: argparse.ArgumentParser) -> None:
    from registry.cli.completion import add_arguments

    add_arguments(parser)


_ARGUMENTS = {
    "list": _list,
    "show": _named,
    "check": _check,
    "plugins": _list,
    "config": _list,
    "routes": _named,
    "tokens": _tokens,
    "chat": _chat,
    "init": _init,
    "completion": _completion,
}

"""The ``modelreg`` command line: list, show, check, plugins, tokens, chat.

Exit codes: 0 success; 1 a problem the user must fix (one plain message, no traceback);
2 a usage error (argparse's own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from registry.errors import BackendError, RegistryError
from registry.masking import escape_control
from registry.settings import Settings, choose_env, load_settings

if TYPE_CHECKING:
    from registry.factory import ModelRegistry

__all__ = ["COMMAND_LINE", "main"]

#: The origin of an option given as a flag (``--env prod``).
COMMAND_LINE = "command line"


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--settings",
        metavar="PATH",
        default=default,
        help="settings file (default: $MODELREG_SETTINGS, else ./settings.toml)",
    )
    parser.add_argument(
        "--env",
        metavar="NAME",
        default=default,
        help="environment overlay to apply (default: $MODELREG_ENV)",
    )
    parser.add_argument(
        "--dotenv",
        metavar="PATH",
        default=default,
        help=".env file to read (default: $MODELREG_DOTENV, else ./.env)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON instead of text",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (global options work before or after the command)."""
    parser = argparse.ArgumentParser(
        prog="modelreg", description="Configuration-driven model registry."
    )
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, suppress=True)
        return sub

    command("list", "list models and aliases of the active environment")
    show = command("show", "show a model's resolved settings and where each came from")
    show.add_argument("name", nargs="?", help="model name or alias (default: default_model)")
    check = command("check", "validate every model in every environment; exit 1 on errors")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    command("plugins", "list plugins and what each registered")
    command("config", "show the registry's options (MODELREG_*) and where each came from")
    routes = command("routes", "a pool's deployments: weight, state, cooldown, recent failures")
    routes.add_argument("name", nargs="?", help="model name or alias (default: default_model)")
    tokens = command("tokens", "count the prompt tokens of a JSON messages file for a model")
    tokens.add_argument("name", nargs="?", help="model name or alias")
    tokens.add_argument("file", nargs="?", default="-", help="JSON messages file, or - for stdin")
    tokens.add_argument("--tools", metavar="FILE", help="JSON file of tool definitions")
    tokens.add_argument(
        "--prefetch",
        metavar="DIR",
        help="download the tokenizer encodings into DIR (run on a connected machine)",
    )
    chat = command("chat", "send one prompt to a model and print the reply")
    chat.add_argument("name", help="model name or alias")
    chat.add_argument("prompt", help="the user message")
    chat.add_argument("--system", help="a system message to send first")
    return parser


def _registry(args: argparse.Namespace) -> ModelRegistry:
    from registry.factory import ModelRegistry

    return ModelRegistry(_settings(args))


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, with --settings/--dotenv/--env as options given on the command line."""
    return load_settings(
        args.settings, dotenv_path=args.dotenv, env=args.env, given_origin=COMMAND_LINE
    )


def _escaped_lines(text: str) -> str:
    """Our own multi-line messages keep their lines; every line is escaped for the terminal."""
    return "\n".join(escape_control(line) for line in text.split("\n"))


def _print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, default=str) + "\n")


def _table(rows: list[list[str]], out: TextIO) -> None:
    if not rows:
        return
    rows = [[escape_control(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  " + "  ".join([*cells, row[-1]]).rstrip() + "\n")


def _listed(value: Any, settings: Settings) -> str | None:
    """An unvalidated value for ``list``: ``${VAR}`` applied, shown only if it looks like a name."""
    from registry.masking import shown_name
    from registry.variables import MalformedReference, substitute

    if value is None:
        return None
    try:
        text, _, missing = (
            substitute(value, lambda n: settings.variable(n, secret_stores=False))
            if isinstance(value, str)
            else ("", [], [])
        )
    except MalformedReference:
        return shown_name(None)
    if missing:
        return f"(${{{missing[0]}}} is not set)"
    return shown_name(text if isinstance(value, str) else value)


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    """List models with backend, deployment/model and aliases.

    Reads the merged settings without validating them (``check`` and ``show`` validate), so it
    starts without importing pydantic, plugins or the SDK.
    """
    from registry.layers import merged_fields, model_names, plain

    settings = _settings(args)
    env = choose_env(settings, None)
    names = model_names(settings, env)
    entries: list[dict[str, Any]] = []
    for name in sorted(names.names):
        data = plain(merged_fields(settings, name, env, {}))
        target = data.get("deployment") or data.get("model")
        entries.append(
            {
                "name": name,
                "backend": _listed(data.get("backend"), settings),
                "target": _listed(target, settings),
                "aliases": sorted(a for a, n in names.aliases.items() if n == name),
            }
        )
    if args.json:
        _print_json({"settings_file": settings.label, "env": env, "models": entries}, out)
        return 0
    out.write(escape_control(f"{settings.label} (env: {env or 'none'})") + "\n")
    rows = [["NAME", "BACKEND", "DEPLOYMENT/MODEL", "ALIASES"]]
    rows += [
        [
            e["name"],
            str(e["backend"] or "-"),
            str(e["target"] or "-"),
            ", ".join(e["aliases"]) or "-",
        ]
        for e in entries
    ]
    _table(rows, out)
    return 0


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """Every field of one model with its value (secrets ***) and source."""
    explained = _registry(args).explain(args.name)
    if args.json:
        _print_json(explained.to_dict(), out)
        return 0
    heading = (
        f"{explained.name} (env: {explained.env or 'none'}, backend: {explained.backend}, "
        f"settings: {explained.settings_file})"
    )
    out.write(escape_control(heading) + "\n")
    rows = [["FIELD", "VALUE", "SOURCE"]]
    for key, field in explained.fields.items():
        value = (
            "(unset)"
            if field.value is None
            else json.dumps(field.value)
            if not isinstance(field.value, str)
            else field.value
        )
        source = field.source + (f"  [{field.note}]" if field.note else "")
        rows.append([key, value, source])
    _table(rows, out)
    return 0


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    """Validate every model in every environment; list every problem."""
    from registry.checks import check_settings

    settings = _settings(args)
    report = check_settings(settings, only_env=args.env, strict=args.strict)
    if args.json:
        _print_json(report.to_dict(), out)
    else:
        for line in report.lines():
            out.write(_escaped_lines(line) + "\n")
    return 1 if report.errors else 0


def cmd_plugins(args: argparse.Namespace, out: TextIO) -> int:
    """Every plugin, what it registered, whether a variable kept it out, and its problems."""
    from registry.plugins import get_plugin_host
    from registry.registrations import kept_out_by

    plugins = get_plugin_host().plugins()
    if args.json:
        _print_json([p.to_dict() for p in plugins], out)
        return 0
    for plugin in plugins:
        kind = (
            "built-in"
            if plugin.builtin
            else f"{plugin.distribution or '?'} {plugin.version or '?'}"
        )
        disabled = f": disabled, {kept_out_by(plugin)}" if plugin.disabled_by else ""
        out.write(escape_control(f"{plugin.name} ({kind}){disabled}") + "\n")
        for what, names in plugin.registered.items():
            if names:
                out.write(escape_control(f"  {what.replace('_', ' ')}: {', '.join(names)}") + "\n")
        for error in plugin.errors:
            out.write(_escaped_lines(f"  ERROR: {error}") + "\n")
    return 1 if any(p.errors for p in plugins) else 0


def cmd_config(args: argparse.Namespace, out: TextIO) -> int:
    """The registry's options with their values and origins."""
    options = _settings(args).options.describe()
    if args.json:
        _print_json({option.name: option.to_dict() for option in options}, out)
        return 0
    rows = [["OPTION", "VARIABLE", "VALUE", "SOURCE"]]
    for option in options:
        value = option.to_dict()["value"]
        shown = (
            "(unset)" if value is None else value if isinstance(value, str) else json.dumps(value)
        )
        rows.append([option.name, option.variable, shown, option.source])
    _table(rows, out)
    return 0


def cmd_routes(args: argparse.Namespace, out: TextIO) -> int:
    """A pool's deployments and their state (from the shared state when configured)."""
    from registry.routing.from_spec import pool_for

    registry = _registry(args)
    spec = registry.resolve(args.name)
    if not spec.deployments:
        raise RegistryError(
            f"model {spec.name!r} is not a pool: give it [[models.{spec.name}.deployments]] "
            "entries to spread its calls over several deployments."
        )
    pool = pool_for(spec, registry.settings.options)
    states = pool.snapshot(failures=True)
    options = registry.settings.options
    shared = options.get("routing_state") is not None
    unread = not pool.store.reachable  # not the shared state: the process's own, empty one
    if args.json:
        shown = [{"id": s.deployment.id, **_route_dict(s, unread)} for s in states]
        where = "unreachable" if unread else ("shared" if shared else "in-process")
        data = {"model": spec.name, "routing": spec.common.routing, "state": where}
        _print_json({**data, "deployments": shown}, out)
        return 1 if unread else 0
    where = f"shared ({options.origin('routing_state')})" if shared else "in this process"
    if unread:
        where += f": {pool.store.where} is unreachable, so each deployment's state is unknown"
    out.write(escape_control(f"{spec.name}: {spec.common.routing} routing, state {where}") + "\n")
    rows = [["DEPLOYMENT", "WEIGHT", "STATE", "COOLDOWN LEFT", "RECENT FAILURES"]]
    for state in states:
        cooldown = state.cooldown
        rows.append(
            [
                state.deployment.label,
                f"{state.deployment.weight:g}",
                "unknown" if unread else cooldown.kind.value if cooldown else "available",
                f"{cooldown.remaining:.1f} s ({cooldown.reason})" if cooldown else "-",
                "?" if unread else str(state.failures or 0),
            ]
        )
    _table(rows, out)
    return 1 if unread else 0


def _route_dict(state: Any, unread: bool) -> dict[str, Any]:
    """``routes --json``'s entry: what the store could not tell is null."""
    shown = state.to_dict()
    if unread:
        unknown = ("available", "cooldown_remaining", "cooldown_kind", "cooldown_reason")
        shown.update(dict.fromkeys((*unknown, "failures")))
    return dict(shown)


def _read_json(path: str, what: str) -> Any:
    """A JSON file (or stdin); errors name the file and the line, never the content."""
    from pathlib import Path

    from registry.sources import decode_text, read_text

    if path == "-":
        text = decode_text(sys.stdin.buffer.read(), "standard input", what)
    else:
        text = read_text(Path(path), what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    except RecursionError:
        problem = "it is nested too deeply"
    raise RegistryError(f"{what} {escape_control(repr(path))} is not valid JSON: {problem}.")


def cmd_tokens(args: argparse.Namespace, out: TextIO) -> int:
    """Count a messages file for a model, or prefetch encodings for air-gapped machines."""
    if args.prefetch:
        from registry.plugins import get_plugin_host

        counter = get_plugin_host().lookup("token_counters", "openai")
        for path in counter.prefetch(args.prefetch):
            out.write(f"wrote {path}\n")
        return 0
    if not args.name:
        raise RegistryError("tokens: give a model NAME (or --prefetch DIR).")
    data = _read_json(args.file, "messages file")
    tools = data.get("tools") if isinstance(data, dict) else None
    messages = data.get("messages") if isinstance(data, dict) else data
    if args.tools:
        tools = _read_json(args.tools, "tools file")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise RegistryError(
            f"messages file {escape_control(repr(args.file))}: expected a JSON list of messages "
            '([{"role": "user", "content": "..."}]) or {"messages": [...], "tools": [...]}.'
        )
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)
    ):
        raise RegistryError(
            "tools: expected a JSON list of tool definitions "
            '([{"type": "function", "function": {"name": "...", "parameters": {...}}}]).'
        )
    counter = _registry(args).token_counter(args.name)
    count = counter.count_tokens_from_messages(messages, tools=tools)
    note = getattr(counter, "note", "")
    result = {
        "model": args.name,
        "tokens": count,
        "encoding": counter.encoding_name,
        "exact": counter.exact,
    }
    if note:
        result["note"] = note
    if args.json:
        _print_json(result, out)
    else:
        exact = "exact" if counter.exact else "approximate"
        out.write(f"{count} tokens ({counter.encoding_name}, {exact})\n")
        if note:
            out.write(f"note: {note}\n")
    return 0


def _reply_text(model: Any, result: Any) -> str:
    """The reply's text; a BackendError if a custom client returned something else."""
    choices = getattr(result, "choices", None)
    message = getattr(choices[0], "message", None) if choices else None
    if message is None:
        raise BackendError(
            f"model {model.name!r} returned {type(result).__name__}, not a chat completion"
        )
    return str(getattr(message, "content", None) or "")


def cmd_chat(args: argparse.Namespace, out: TextIO) -> int:
    """One real call; streams to the terminal when the model streams."""
    registry = _registry(args)
    model = registry.create(args.name)
    messages = [{"role": "user", "content": args.prompt}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    try:
        result = model.run(messages)
        if model.stream and not args.json:
            for chunk in result:
                choices = getattr(chunk, "choices", None)
                delta = getattr(choices[0], "delta", None) if choices else None
                text = getattr(delta, "content", None)
                if text:
                    out.write(escape_control(text, keep="\n\t"))
                    out.flush()
            out.write("\n")
        elif model.stream:
            _print_json([chunk.model_dump(mode="json") for chunk in result], out)
        elif args.json:
            _print_json(result.model_dump(mode="json"), out)
        elif not result.choices:
            raise BackendError(f"model {args.name!r} replied with no choices.")
        else:
            out.write(escape_control(_reply_text(model, result), keep="\n\t") + "\n")
    finally:
        registry.close()
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "list": cmd_list,
    "show": cmd_show,
    "check": cmd_check,
    "plugins": cmd_plugins,
    "config": cmd_config,
    "routes": cmd_routes,
    "tokens": cmd_tokens,
    "chat": cmd_chat,
}


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Warnings as one plain line (``modelreg: warning: ...``), not Python's source excerpt."""
    sys.stderr.write(_escaped_lines(f"modelreg: warning: {message}") + "\n")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI; return the exit code."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args, out)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        return _COMMANDS[args.command](args, out)
    except RegistryError as exc:
        sys.stderr.write(_escaped_lines(f"modelreg: error: {exc}") + "\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`modelreg show chat | head`): stop quietly, as other CLIs do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if type(exc).__module__.startswith("openai"):
            sys.stderr.write(f"modelreg: request failed: {type(exc).__name__}: {exc}\n")
            return 1
        # Not a traceback, and not the message either: it may quote a value from the settings.
        sys.stderr.write(
            f"modelreg: internal error ({type(exc).__name__}) in modelreg or a plugin. Please "
            "report it with the command you ran (not your settings' values).\n"
        )
        return 1

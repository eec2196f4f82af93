"""Commands that read the settings and say what they mean: list, show, config, plugins, routes."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from registry.cli import common
from registry.cli.output import escaped_lines, print_json, table
from registry.errors import RegistryError
from registry.masking import escape_control, shown_name
from registry.settings import Settings, choose_env

__all__ = ["cmd_config", "cmd_list", "cmd_plugins", "cmd_routes", "cmd_show"]


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


def _pool_size(data: dict[str, Any]) -> int | None:
    """How many deployments a model spreads its calls over (1 when it is not a pool).

    None when ``deployments`` is no non-empty list of tables: the model cannot be built.
    """
    deployments = data.get("deployments")
    if deployments is None:
        return 1
    valid = isinstance(deployments, list) and all(isinstance(d, dict) for d in deployments)
    return len(deployments) if valid and deployments else None


def _default_model(settings: Settings, env: str | None, names: Any) -> str | None:
    """The model ``default_model`` names; a warning (without the value) when it names none."""
    import warnings

    from registry.errors import RegistryWarning
    from registry.layers import default_model_name

    found = default_model_name(settings, env)
    if found is None:
        return None
    default: str | None = names.canonical(found[0])
    if default is None:
        warnings.warn(
            escape_control(
                f"default_model ({found[1]}) is no model or alias of environment {env or 'none'}, "
                "so no model is marked (the value is not shown; see modelreg check)"
            ),
            RegistryWarning,
            stacklevel=2,
        )
    return default


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    """List models with backend, deployment/model, pool size and aliases; mark the default.

    Reads the merged settings without validating them (``check`` and ``show`` validate), so it
    starts without importing pydantic, plugins or the SDK.
    """
    from registry.layers import merged_fields, model_names, plain

    settings = common.settings(args)
    env = choose_env(settings, None)
    names = model_names(settings, env)
    default = _default_model(settings, env, names)
    entries: list[dict[str, Any]] = []
    for name in sorted(names.names):
        data = plain(merged_fields(settings, name, env, {}))
        entries.append(
            {
                "name": name,
                "default": name == default,
                "backend": _listed(data.get("backend"), settings),
                "target": _listed(data.get("deployment") or data.get("model"), settings),
                "deployments": _pool_size(data),
                "aliases": sorted(shown_name(a) for a, n in names.aliases.items() if n == name),
            }
        )
    if args.json:
        data = {"settings_file": settings.label, "env": env, "default_model": default}
        print_json({**data, "models": entries}, out)
        return 0
    out.write(escape_control(f"{settings.label} (env: {env or 'none'})") + "\n")
    rows = [["", "NAME", "BACKEND", "DEPLOYMENT/MODEL", "DEPLOYMENTS", "ALIASES"]]
    rows += [
        [
            "*" if e["default"] else "",
            e["name"],
            str(e["backend"] or "-"),
            str(e["target"] or ("(pool)" if (e["deployments"] or 0) > 1 else "-")),
            str(e["deployments"] or "(invalid: see modelreg check)"),
            ", ".join(e["aliases"]) or "-",
        ]
        for e in entries
    ]
    table(rows, out)
    if default:
        out.write("  * default_model\n")
    return 0


def _field_text(value: Any) -> str:
    if value is None:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value)


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """Every field of one model with its value (secrets ***) and source, and its credential."""
    from registry.credentials import describe_credentials

    with common.registry(args) as registry:
        explained = registry.explain(args.name)
        credentials = describe_credentials(registry, explained)
    if args.json:
        print_json({**explained.to_dict(), "credentials": [c.to_dict() for c in credentials]}, out)
        return 0
    heading = (
        f"{explained.name} (env: {explained.env or 'none'}, backend: {explained.backend}, "
        f"settings: {explained.settings_file})"
    )
    out.write(escape_control(heading) + "\n")
    for credential in credentials:
        out.write(escaped_lines(f"credential: {credential.line()}") + "\n")
    rows = [["FIELD", "VALUE", "SOURCE"]]
    for key, field in explained.fields.items():
        source = field.source + (f"  [{field.note}]" if field.note else "")
        rows.append([key, _field_text(field.value), source])
    table(rows, out)
    return 0


def cmd_plugins(args: argparse.Namespace, out: TextIO) -> int:
    """Every plugin, what it registered, whether a variable kept it out, and its problems."""
    from registry.plugins import get_plugin_host
    from registry.registrations import kept_out_by

    plugins = get_plugin_host().plugins()
    if args.json:
        print_json([p.to_dict() for p in plugins], out)
        return 1 if any(p.errors for p in plugins) else 0
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
            out.write(escaped_lines(f"  ERROR: {error}") + "\n")
    return 1 if any(p.errors for p in plugins) else 0


def cmd_config(args: argparse.Namespace, out: TextIO) -> int:
    """The registry's own settings, each with its effective value and origin."""
    from registry.cli.config_report import config_report

    report = config_report(common.settings(args))
    if args.json:
        print_json({entry.name: entry.to_dict() for entry in report}, out)
        return 0
    rows = [["SETTING", "VALUE", "SOURCE"]]
    rows += [[entry.name, _field_text(entry.text()), entry.source] for entry in report]
    table(rows, out)
    return 0


def cmd_routes(args: argparse.Namespace, out: TextIO) -> int:
    """A pool's deployments and their state (from the shared state when configured)."""
    from registry.routing.from_spec import pool_for

    registry = common.registry(args)
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
        print_json({**data, "deployments": shown}, out)
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
    table(rows, out)
    return 1 if unread else 0


def _route_dict(state: Any, unread: bool) -> dict[str, Any]:
    """``routes --json``'s entry: what the store could not tell is null."""
    shown = state.to_dict()
    if unread:
        unknown = ("available", "cooldown_remaining", "cooldown_kind", "cooldown_reason")
        shown.update(dict.fromkeys((*unknown, "failures")))
    return dict(shown)

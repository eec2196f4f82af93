"""Settings tables by precedence: which tables apply to a model, merged field by field.

No validation here (and no pydantic): this is what ``modelreg list`` needs, and what
:mod:`registry.resolve` validates. Precedence of tables, highest first: keyword arguments,
``MODELREG_*`` variables, ``.env``, the environment overlay, the model table; defaults apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from registry.errors import ConfigError
from registry.settings import Layer, Settings

__all__ = [
    "BUILTIN_SOURCE",
    "KWARG_SOURCE",
    "ModelNames",
    "default_model_name",
    "merged_tables",
    "model_names",
]

BUILTIN_SOURCE = "built-in default"
KWARG_SOURCE = "keyword argument"


@dataclass(frozen=True)
class _Table:
    """A model or defaults table from one layer, with where it sits."""

    layer: Layer | None
    path: tuple[str, ...]
    data: Mapping[str, Any]

    def origin(self, *keys: str) -> str:
        if self.layer is None:
            return KWARG_SOURCE
        return self.layer.describe((*self.path, *keys))


def _get(data: Mapping[str, Any], *path: str) -> Any:
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _model_tables(settings: Settings, name: str, env: str | None) -> Iterator[_Table]:
    """Model tables in precedence order: env vars, .env, environment overlay, model table."""
    for layer in settings.layers:
        paths = [("models", name)]
        if env is not None:
            paths.insert(0, ("environments", env, "models", name))  # type: ignore[arg-type]
        for path in paths:
            table = _get(layer.data, *path)
            if table is not None:
                yield _Table(layer, path, table)


def _defaults_tables(settings: Settings, env: str | None) -> Iterator[_Table]:
    for layer in settings.layers:
        if env is not None:
            table = _get(layer.data, "environments", env, "defaults")
            if table:
                yield _Table(layer, ("environments", env, "defaults"), table)
        table = _get(layer.data, "defaults")
        if table:
            yield _Table(layer, ("defaults",), table)


def _decode_env_value(value: Any, layer: Layer | None) -> Any:
    """Values from variables are strings; JSON lists and tables are decoded for list/dict fields."""
    if layer is None or layer.kind == "toml" or not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def _merge(
    tables: list[_Table], ranks: dict[str, int] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge tables (highest first) field by field; dict values merge key by key.

    ``ranks``, when given, receives the index of the table each field came from.
    """
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for index, table in enumerate(tables):
        if not isinstance(table.data, Mapping):
            raise ConfigError(
                f"{table.origin('')}: expected a table, got {type(table.data).__name__}"
            )
        for key, raw in table.data.items():
            value = _decode_env_value(raw, table.layer)
            if isinstance(value, Mapping):
                current = merged.setdefault(key, {})
                if not isinstance(current, dict):
                    continue  # a higher table replaced the whole value
                for sub_key, sub_value in value.items():
                    if sub_key not in current:
                        current[sub_key] = _decode_env_value(sub_value, table.layer)
                        sources[f"{key}.{sub_key}"] = table.origin(key, sub_key)
                sources.setdefault(key, table.origin(key))
            elif key not in merged:
                merged[key] = value
                sources[key] = table.origin(key)
            if ranks is not None:
                ranks.setdefault(key, index)
    return merged, sources


@dataclass(frozen=True)
class _MergedTables:
    """A model's settings tables merged (without keyword arguments), cached per Settings."""

    data: dict[str, Any]
    sources: dict[str, str]
    ranks: dict[str, int]
    table_count: int
    defaults: dict[str, Any]
    default_sources: dict[str, str]


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}


def merged_tables(
    settings: Settings, name: str, env: str | None, overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str], dict[str, int], int, dict[str, Any], dict[str, str]]:
    """The merged tables for ``name`` with keyword arguments applied on top (fresh copies)."""
    key = ("merged", name, env)
    base: _MergedTables | None = settings.memo.get(key)
    if base is None:
        ranks: dict[str, int] = {}
        tables = list(_model_tables(settings, name, env))
        data, sources = _merge(tables, ranks)
        defaults, default_sources = _merge(list(_defaults_tables(settings, env)))
        base = settings.memo[key] = _MergedTables(
            data, sources, ranks, len(tables), defaults, default_sources
        )
    data, sources = _copy(base.data), dict(base.sources)
    ranks = dict(base.ranks)
    if overrides:
        ranks = {k: rank + 1 for k, rank in ranks.items()}
        for field, value in overrides.items():
            current = data.get(field)
            if isinstance(value, Mapping):
                if isinstance(current, dict):
                    current.update(value)
                else:
                    data[field] = dict(value)
                sources.update({f"{field}.{sub}": KWARG_SOURCE for sub in value})
            else:
                data[field] = value
            sources[field] = KWARG_SOURCE
            ranks[field] = 0
    table_count = base.table_count + (1 if overrides else 0)
    return data, sources, ranks, table_count, _copy(base.defaults), dict(base.default_sources)


@dataclass(frozen=True)
class ModelNames:
    """The model names and aliases defined for one environment."""

    names: frozenset[str]
    aliases: Mapping[str, str]

    def canonical(self, name: str) -> str | None:
        """The model a name or alias stands for, or None."""
        if name in self.names:
            return name
        return self.aliases.get(name)

    def all(self) -> list[str]:
        """Names and aliases, sorted."""
        return sorted(self.names | set(self.aliases))


def model_names(settings: Settings, env: str | None) -> ModelNames:
    """Collect model names and aliases for ``env``; a clashing alias is a :class:`ConfigError`."""
    key = ("names", env)
    cached: ModelNames | None = settings.memo.get(key)
    if cached is None:
        cached = settings.memo[key] = _collect_model_names(settings, env)
    return cached


def _collect_model_names(settings: Settings, env: str | None) -> ModelNames:
    names: set[str] = set()
    for layer in settings.layers:
        names.update(_get(layer.data, "models") or {})
        if env is not None:
            names.update(_get(layer.data, "environments", env, "models") or {})
    aliases: dict[str, str] = {}
    alias_origin: dict[str, str] = {}
    for name in sorted(names):
        merged, sources = _merge(list(_model_tables(settings, name, env)))
        raw = merged.get("aliases") or []
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
            raise ConfigError(
                f"model {name!r}, field 'aliases' ({sources.get('aliases')}): "
                'expected a list of strings, e.g. aliases = ["default"]'
            )
        for alias in raw:
            origin = sources.get("aliases", "")
            if alias in names and alias != name:
                raise ConfigError(
                    f"model {name!r}, field 'aliases' ({origin}): alias {alias!r} is also the name "
                    f"of a model. Remove the alias or rename the model."
                )
            if alias in aliases and aliases[alias] != name:
                raise ConfigError(
                    f"model {name!r}, field 'aliases' ({origin}): alias {alias!r} is already an "
                    f"alias of model {aliases[alias]!r} ({alias_origin[alias]}). Each alias may "
                    f"name one model."
                )
            if alias != name:
                aliases[alias] = name
                alias_origin[alias] = origin
    return ModelNames(frozenset(names), aliases)


def default_model_name(settings: Settings, env: str | None) -> tuple[str, str] | None:
    """``default_model`` and its origin (variables beat the overlay, which beats the file)."""
    for layer in settings.layers:
        if env is not None:
            value = _get(layer.data, "environments", env, "default_model")
            if value:
                return str(value), layer.describe(("environments", env, "default_model"))
        value = _get(layer.data, "default_model")
        if value:
            return str(value), layer.describe(("default_model",))
    return None

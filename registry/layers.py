"""Settings tables merged field by field, every value with its origin; model names and aliases.

The one structure resolution works on is a :class:`Fields` mapping: field name → :class:`Sourced`
(value, origin, precedence level and rank). A table-valued field (``config``, ``client_kwargs``)
merges key by key, so its value is itself a mapping of key → :class:`Sourced`. No validation
here (and no pydantic): this is what ``modelreg list`` needs, and what :mod:`registry.resolve`
validates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.errors import ConfigError, did_you_mean
from registry.precedence import (
    BUILTIN_LEVEL,
    DEFAULTS_LEVEL,
    Table,
    lookup,
    model_tables,
    root_values,
)
from registry.settings import Settings
from registry.sources import parse_json

__all__ = [
    "Fields",
    "ModelNames",
    "Sourced",
    "SourcedTable",
    "default_model_name",
    "merge",
    "merged_fields",
    "model_names",
    "origins",
    "orphan_message",
    "plain",
    "secret_paths",
]


@dataclass(frozen=True, slots=True)
class Sourced:
    """A settings value and where it came from.

    Attributes:
        value: the value (for a table-valued field, a ``dict`` of key → :class:`Sourced`).
        origin: where it came from, as shown to users (``env MODELREG_MODELS__CHAT__...``).
        level: its row in :data:`registry.precedence.LEVELS` (1 = keyword argument).
        rank: the position of its table among the model's tables (lower = higher precedence).
        secret: it came from a secret store, so it is shown as ``***`` whatever the field.
    """

    value: Any
    origin: str
    level: int = BUILTIN_LEVEL
    rank: int = 1 << 30
    secret: bool = False

    def with_value(self, value: Any) -> Sourced:
        """The same provenance for a new value."""
        return Sourced(value, self.origin, self.level, self.rank, self.secret)


Fields = dict[str, Sourced]


class SourcedTable(dict[str, Sourced]):
    """The value of a table-valued field (``config``...): each key with its own origin."""


def _decode(value: Any, table: Table, *keys: str) -> Any:
    """Values from variables are strings; one that starts with ``[`` or ``{`` must be JSON."""
    if not table.from_variables or not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith(("[", "{")):
        return value
    parsed, problem = parse_json(text)
    if problem:
        raise ConfigError(
            f"{table.origin(*keys)} starts like JSON but {problem}. Fix it (a list is "
            '["a", "b"], a table {"key": "value"}).'
        )
    return parsed


def merge(tables: Iterable[Table]) -> Fields:
    """Merge tables (highest first) field by field; mapping values merge key by key."""
    merged: Fields = {}
    for table in tables:
        if not isinstance(table.data, Mapping):
            raise ConfigError(
                f"{table.origin('')}: expected a table, got {type(table.data).__name__}."
            )
        for key, raw in table.data.items():
            value = _decode(raw, table, key)
            current = merged.get(key)
            if isinstance(value, Mapping):
                if current is None:
                    current = merged[key] = Sourced(
                        SourcedTable(), table.origin(key), table.level, table.rank
                    )
                if isinstance(current.value, SourcedTable):  # else a higher table set a value
                    for sub_key, sub_value in value.items():
                        if sub_key not in current.value:
                            current.value[sub_key] = Sourced(
                                _decode(sub_value, table, key, sub_key),
                                table.origin(key, sub_key),
                                table.level,
                                table.rank,
                            )
            elif current is None:
                merged[key] = Sourced(value, table.origin(key), table.level, table.rank)
    return merged


def plain(fields: Mapping[str, Sourced]) -> dict[str, Any]:
    """The values alone (table-valued fields as plain dicts)."""
    return {
        key: {k: v.value for k, v in s.value.items()} if _is_table(s) else s.value
        for key, s in fields.items()
    }


def origins(fields: Mapping[str, Sourced]) -> dict[str, str]:
    """Origins by dotted path: ``deployment``, ``config``, ``config.temperature``..."""
    found: dict[str, str] = {}
    for key, sourced in fields.items():
        found[key] = sourced.origin
        if _is_table(sourced):
            found.update({f"{key}.{k}": v.origin for k, v in sourced.value.items()})
    return found


def secret_paths(fields: Mapping[str, Sourced]) -> frozenset[str]:
    """Dotted paths of the values that came from a secret store."""
    found = {key for key, s in fields.items() if s.secret}
    for key, sourced in fields.items():
        if _is_table(sourced):
            found.update(f"{key}.{k}" for k, v in sourced.value.items() if v.secret)
    return frozenset(found)


def _is_table(sourced: Sourced) -> bool:
    return isinstance(sourced.value, SourcedTable)


def merged_fields(
    settings: Settings, name: str, env: str | None, overrides: Mapping[str, Any]
) -> Fields:
    """Every table of ``name`` (defaults included) merged, keyword arguments on top.

    The settings' own tables are merged once per :class:`Settings` (they never change); each
    call gets a fresh copy to work on.
    """
    key = ("merged", name, env)
    base: Fields | None = settings.memo.get(key)
    if base is None:
        base = settings.memo[key] = merge(model_tables(settings, name, env, {}))
    if not overrides:
        return _copy(base)
    top = merge([Table(1, -1, overrides, (), None)])
    for field_name, sourced in base.items():
        current = top.get(field_name)
        if current is None:
            top[field_name] = (
                sourced.with_value(SourcedTable(sourced.value)) if _is_table(sourced) else sourced
            )
        elif _is_table(sourced) and _is_table(current):
            for sub_key, sub in sourced.value.items():
                current.value.setdefault(sub_key, sub)
    return top


def _copy(fields: Fields) -> Fields:
    return {
        key: s.with_value(SourcedTable(s.value)) if _is_table(s) else s for key, s in fields.items()
    }


@dataclass(frozen=True)
class ModelNames:
    """The model names and aliases defined for one environment.

    Attributes:
        names: model names.
        aliases: alias → model name.
        orphans: variables that name no model (``env MODELREG_MODELS__CAHT__DEPLOYMENT``), each
            with the lower-cased name it uses.
    """

    names: frozenset[str]
    aliases: Mapping[str, str]
    orphans: Mapping[str, str] = field(default_factory=dict)

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


def _table_names(data: Mapping[str, Any], env: str | None, fold: bool) -> set[str]:
    names: set[str] = set()
    paths: list[tuple[str, ...]] = [("models",)]
    if env is not None:
        paths.append(("environments", env.lower() if fold else env, "models"))
    for path in paths:
        table = lookup(data, path, fold_case=False)
        if isinstance(table, Mapping):
            names.update(str(n) for n in table)
    return names


def _collect_model_names(settings: Settings, env: str | None) -> ModelNames:
    file_names: set[str] = set()
    for source in settings.sources_of("toml"):
        file_names |= _table_names(source.data, env, fold=False)
    by_folded: dict[str, list[str]] = {}
    for name in file_names:
        by_folded.setdefault(name.lower(), []).append(name)
    names = set(file_names)
    orphans: dict[str, str] = {}
    for kind in ("env", "dotenv"):
        for source in settings.sources_of(kind):
            for lowered in _table_names(source.data, env, fold=True):
                matches = by_folded.get(lowered, [])
                if len(matches) > 1:
                    raise ConfigError(
                        f"{source.describe(('models', lowered, ''))}: variables name models "
                        f"case-insensitively, and {' and '.join(sorted(matches))} differ only by "
                        "case. Rename one of them."
                    )
                if matches:
                    continue
                if _declares_backend(settings, lowered, env):
                    names.add(lowered)
                else:
                    orphans.update(_variables_for(source, lowered, env))
    aliases = _collect_aliases(settings, names, env)
    return ModelNames(frozenset(names), aliases, orphans)


def _declares_backend(settings: Settings, name: str, env: str | None) -> bool:
    """A model defined only by variables must set ``backend`` (else it is taken for a typo)."""
    fields = merge(t for t in model_tables(settings, name, env, {}) if t.level < DEFAULTS_LEVEL)
    return "backend" in fields


def _variables_for(source: Any, name: str, env: str | None) -> dict[str, str]:
    prefixes: list[tuple[str, ...]] = [("models", name)]
    if env is not None:
        prefixes.append(("environments", env.lower(), "models", name))
    names: Mapping[tuple[str, ...], str] = getattr(source, "names", {})
    return {
        source.describe(path): name for path in names if any(path[: len(p)] == p for p in prefixes)
    }


def _collect_aliases(settings: Settings, names: set[str], env: str | None) -> dict[str, str]:
    aliases: dict[str, str] = {}
    alias_origin: dict[str, str] = {}
    for name in sorted(names):
        tables = (t for t in model_tables(settings, name, env, {}) if t.level < DEFAULTS_LEVEL)
        found = merge(tables).get("aliases")
        if found is None:
            continue
        raw, origin = found.value, found.origin
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
            raise ConfigError(
                f"model {name!r}, field 'aliases' ({origin}): "
                'expected a list of strings, e.g. aliases = ["default"]'
            )
        for alias in raw:
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
    return aliases


def orphan_message(names: ModelNames, variable: str) -> str:
    """What to say about a variable that names no model (the one wording for check and create)."""
    used = names.orphans[variable]
    alias_of = names.aliases.get(used)
    if alias_of is not None:
        hint = f" {used!r} is an alias of {alias_of!r}: variables use the model's name."
    else:
        hint = (
            did_you_mean(used, names.names) or f" Known models: {', '.join(sorted(names.names))}."
        )
    return (
        f"{variable} names no model {used!r}, so it has no effect (a model defined only by "
        f"variables must set its backend).{hint}"
    )


def default_model_name(settings: Settings, env: str | None) -> tuple[str, str] | None:
    """``default_model`` and its origin (variables beat the overlay, which beats the file)."""
    for value, origin in root_values(settings, env, "default_model"):
        if value:
            return str(value), origin
    return None

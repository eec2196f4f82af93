"""Resolution: from a model name to a validated :class:`ModelSpec`, every value with its origin.

One pipeline over one structure (:class:`registry.layers.Sourced` per field):

1. the name or alias → the canonical model name (:func:`canonical_name`);
2. every table that applies, merged in the order of :data:`registry.precedence.LEVELS`
   (keyword arguments, ``MODELREG_*``, ``.env``, overlay, model table, defaults);
3. the backend it names, through the plugin manager; fields of another backend are set aside
   as ignored, fields no backend has are errors with a did-you-mean;
4. the backend's conventional variables fill what is still unset (level 7);
5. ``${VAR}`` references are replaced (:mod:`registry.variables`);
6. validation by the common fields, the backend's settings model and its request-config model
   (:mod:`registry.spec_validation`); every problem names the model, the field and where its
   value came from — never the value.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, SecretStr

from registry.deployments import DEPLOYMENTS, Entry, split_deployments
from registry.errors import ConfigError, PluginError, UnknownModelError, did_you_mean
from registry.layers import (
    Fields,
    ModelNames,
    Sourced,
    SourcedTable,
    default_model_name,
    merged_fields,
    model_names,
    plain,
)
from registry.masking import is_secret_name, shown_key, shown_names
from registry.precedence import CONVENTIONAL_LEVEL, DEFAULTS_LEVEL
from registry.settings import Settings
from registry.spec import (
    COMMON_ENV_FALLBACKS,
    COMMON_FIELD_NAMES,
    IgnoredField,
    display,
)
from registry.variables import Found, MalformedReference, substitute

__all__ = [
    "BackendCatalog",
    "BackendInfo",
    "ModelNames",
    "Resolved",
    "canonical_name",
    "default_model_name",
    "model_names",
    "resolve_fields",
    "secret_fields",
]


class BackendInfo(Protocol):
    """What resolution needs to know about a backend class."""

    settings_model: ClassVar[type[BaseModel]]
    env_fallbacks: ClassVar[Mapping[str, tuple[str, ...]]]


class BackendCatalog(Protocol):
    """Where resolution looks plugins up (the plugin manager's registrations)."""

    def backend(self, name: str) -> type[BackendInfo]:
        """Return the backend class registered as ``name``; KeyError or PluginError if none."""
        ...

    def backend_names(self) -> list[str]:
        """Every registered backend name."""
        ...

    def lookup(self, kind: str, name: str) -> Any:
        """The object of ``kind`` registered as ``name``; KeyError or PluginError if none."""
        ...

    def names(self, kind: str) -> list[str]:
        """Every name of one kind."""
        ...


@dataclass
class Resolved:
    """A model's fields after steps 1-5, before validation."""

    name: str
    env: str | None
    backend_cls: type[BackendInfo]
    fields: Fields
    ignored: dict[str, IgnoredField] = field(default_factory=dict)
    #: field path -> (the unset variable, where the field's value came from)
    unset: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: field path -> a remark for ``show`` (a credential variable that was not used...)
    notes: dict[str, str] = field(default_factory=dict)
    #: the entries of a pool (``deployments``), each over the model's backend fields
    deployments: list[Entry] = field(default_factory=list)


def canonical_name(settings: Settings, name: str | None, env: str | None) -> str:
    """The model ``name`` (or ``default_model``) stands for in ``env``."""
    names = model_names(settings, env)
    if not names.names:
        raise ConfigError(_no_models(settings))
    if name is None:
        found = default_model_name(settings, env)
        if found is None:
            raise ConfigError(
                f"{settings.label}: no model name given and no default_model set. Pass a name, "
                'or add default_model = "<name>" at the top of the settings file.'
            )
        name = found[0]
        if names.canonical(name) is None:
            raise ConfigError(
                f"default_model ({found[1]}) is not a model or alias (the value is not shown)."
                f"{did_you_mean(name, names.all())} Known: {shown_names(names.all())}."
            )
    canonical = names.canonical(name)
    if canonical is None:
        where = settings.label + (f" (env {env!r})" if env else "")
        raise UnknownModelError(name, names.all(), where=where)
    return canonical


def _no_models(settings: Settings) -> str:
    if settings.path is None:
        return (
            f"no models are defined: {settings.label[1:-1]}, and no "
            "MODELREG_MODELS__<NAME>__BACKEND variable defines one. Create settings.toml with a "
            "[models.NAME] table that sets a backend."
        )
    return f"{settings.label} defines no models: add a [models.NAME] table with a backend."


def _backend_class(catalog: BackendCatalog, name: str, fields: Fields) -> type[BackendInfo]:
    sourced = fields.get("backend")
    if sourced is None or sourced.value in (None, ""):
        raise ConfigError(
            f'model {name!r}: no backend set. Add backend = "azure" (or one of: '
            f"{', '.join(catalog.backend_names())}) to its table."
        )
    backend, origin = sourced.value, sourced.origin
    if not isinstance(backend, str):
        raise ConfigError(
            f"model {name!r}, field 'backend' ({origin}): must be a string naming a backend "
            f"({', '.join(catalog.backend_names())}), not {type(backend).__name__}."
        )
    try:
        return catalog.backend(backend)
    except PluginError as exc:
        plugin_problem: str | None = str(exc)
    except KeyError:
        plugin_problem = None
    if plugin_problem is not None:
        raise PluginError(f"model {name!r}, field 'backend' ({origin}): {plugin_problem}")
    known = catalog.backend_names()
    raise ConfigError(
        f"model {name!r}, field 'backend' ({origin}): not a registered backend (the value is "
        f"not shown).{did_you_mean(backend, known)} Registered backends: {', '.join(known)}. "
        "A third-party backend needs its plugin installed (see `modelreg plugins`)."
    )


@functools.cache
def _allowed_fields(settings_model: type[BaseModel]) -> frozenset[str]:
    """Common fields plus the backend's own."""
    return COMMON_FIELD_NAMES | frozenset(settings_model.model_fields)


def _owners(catalog: BackendCatalog, key: str) -> list[str]:
    """The registered backends that have a field called ``key``."""
    return [
        name
        for name in catalog.backend_names()
        if key in _allowed_fields(catalog.backend(name).settings_model)
    ]


def _set_aside_foreign(catalog: BackendCatalog, resolved: Resolved) -> None:
    """Ignore another backend's fields; a field no backend has is an error (step 3)."""
    fields = resolved.fields
    allowed = _allowed_fields(resolved.backend_cls.settings_model) | {DEPLOYMENTS}
    backend = fields["backend"]
    for key in sorted(fields.keys() - allowed):
        sourced = fields.pop(key)
        owners = _owners(catalog, key)
        if sourced.level == DEFAULTS_LEVEL and owners:
            continue  # [defaults] serve every backend
        if not owners:
            everything = allowed if sourced.level != DEFAULTS_LEVEL else _every_field(catalog)
            raise ConfigError(
                f"model {resolved.name!r} ({sourced.origin}): unknown field "
                f"{shown_key(key)}.{did_you_mean(key, everything)} Fields for backend "
                f"{backend.value!r}: {', '.join(sorted(allowed))}."
            )
        resolved.ignored[key] = IgnoredField(
            display(key, plain({key: sourced})[key]),
            sourced.origin,
            f"backend {backend.value!r} has no field {key!r} (backend {', '.join(owners)} has)",
            suspicious=sourced.rank <= backend.rank,
        )
    if "aliases" in fields and fields["aliases"].level == DEFAULTS_LEVEL:
        raise ConfigError(
            f"{fields['aliases'].origin}: aliases cannot be a default (each alias names one "
            "model); set them in the model's own table."
        )


def _every_field(catalog: BackendCatalog) -> set[str]:
    every = set(COMMON_FIELD_NAMES)
    for name in catalog.backend_names():
        every |= _allowed_fields(catalog.backend(name).settings_model)
    return every


def _apply_conventional(settings: Settings, resolved: Resolved) -> None:
    """Fill unset fields from the backend's conventional variables (step 4).

    Fields in an exclusive group (credentials) are all-or-nothing: if any of them is set at a
    higher level, none of the group's variables is consulted; else the first one found wins.
    """
    backend_cls, fields = resolved.backend_cls, resolved.fields
    secret = secret_fields(backend_cls.settings_model)
    fallbacks = {**COMMON_ENV_FALLBACKS, **backend_cls.env_fallbacks}
    groups: tuple[tuple[str, ...], ...] = getattr(backend_cls, "exclusive_fallbacks", ())
    grouped = {key: group for group in groups for key in group}
    satisfied = {group for group in groups if any(_is_set(fields, key) for key in group)}
    ordered = sorted(fallbacks, key=lambda k: grouped[k].index(k) if k in grouped else -1)
    for key in ordered:
        group = grouped.get(key)
        if _is_set(fields, key) or (group is not None and group in satisfied):
            continue
        for variable in fallbacks[key]:
            found = settings.variable(variable, secret_stores=key in secret)
            if found is not None and found.value != "":
                fields[key] = Sourced(
                    found.value, found.origin, CONVENTIONAL_LEVEL, 1 << 29, secret=found.secret
                )
                if group is not None:
                    satisfied.add(group)
                break
    _note_unused_credentials(settings, resolved, fallbacks, groups)


def _note_unused_credentials(
    settings: Settings,
    resolved: Resolved,
    fallbacks: Mapping[str, tuple[str, ...]],
    groups: tuple[tuple[str, ...], ...],
) -> None:
    """Say when a credential variable is set but another credential was chosen (one per model)."""
    for group in groups:
        chosen = next((key for key in group if _is_set(resolved.fields, key)), None)
        if chosen is None:
            continue
        for key in group:
            if key == chosen or _is_set(resolved.fields, key):
                continue
            for variable in fallbacks.get(key, ()):
                if settings.variable(variable, secret_stores=False) is not None:
                    resolved.notes[key] = (
                        f"{variable} is set but not used: {chosen} "
                        f"({resolved.fields[chosen].origin}) is chosen (one credential per model)"
                    )
                    break


def _is_set(fields: Fields, key: str) -> bool:
    sourced = fields.get(key)
    return sourced is not None and sourced.value not in (None, "")


class _Substitution:
    """Step 5: ``${VAR}`` in every string of every field, recording origins and unset names."""

    def __init__(self, settings: Settings, resolved: Resolved, strict: bool) -> None:
        self.settings = settings
        self.resolved = resolved
        self.strict = strict

    def run(self, fields: Fields, keys: Collection[str] | None = None, prefix: str = "") -> None:
        """Substitute in ``fields`` (only ``keys`` when given); paths get ``prefix``."""
        for key, sourced in list(fields.items()):
            if keys is not None and key not in keys:
                continue
            if isinstance(sourced.value, SourcedTable):
                table = sourced.value
                for sub_key, sub in list(table.items()):
                    replaced = self._field(f"{prefix}{key}.{sub_key}", sub)
                    if replaced is None:
                        del table[sub_key]
                    else:
                        table[sub_key] = replaced
            else:
                replaced = self._field(f"{prefix}{key}", sourced)
                if replaced is None:
                    del fields[key]
                else:
                    fields[key] = replaced

    def _field(self, path: str, sourced: Sourced) -> Sourced | None:
        used: list[Found] = []
        missing: list[str] = []
        value = self._walk(path, sourced, sourced.value, used, missing)
        if missing:
            if self.strict:
                variable = missing[0]
                raise ConfigError(
                    f"model {self.resolved.name!r}, field {path!r} ({sourced.origin}): variable "
                    f"${{{variable}}} is not set (looked in: "
                    f"{', '.join(self.settings.variables.where(variable))}). Set {variable}, or "
                    f"write ${{{variable}:-default}} to give a default."
                )
            self.resolved.unset[path] = (missing[0], sourced.origin)
            return None
        if not used:
            return sourced
        origin = f"{sourced.origin} via {', '.join(found.origin for found in used)}"
        secret = sourced.secret or any(found.secret for found in used)
        return Sourced(value, origin, sourced.level, sourced.rank, secret=secret)

    def _walk(
        self, path: str, sourced: Sourced, value: Any, used: list[Found], missing: list[str]
    ) -> Any:
        if isinstance(value, str) and "$" not in value:
            return value
        if isinstance(value, str):
            try:
                text, found, unset = substitute(value, self.settings.variable)
            except MalformedReference as exc:
                problem = str(exc)
            else:
                used.extend(found)
                missing.extend(unset)
                return text
            raise ConfigError(
                f"model {self.resolved.name!r}, field {path!r} ({sourced.origin}): malformed "
                f"reference: {problem} (the value is not shown)."
            )
        if isinstance(value, list):
            return [self._walk(path, sourced, item, used, missing) for item in value]
        if isinstance(value, dict):
            return {k: self._walk(path, sourced, v, used, missing) for k, v in value.items()}
        return value


def resolve_fields(
    settings: Settings,
    catalog: BackendCatalog,
    name: str | None,
    *,
    env: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    strict: bool = True,
) -> Resolved:
    """Steps 1-5: a model's fields with their origins, not yet validated."""
    canonical = canonical_name(settings, name, env)
    fields = merged_fields(settings, canonical, env, overrides or {})
    resolved = Resolved(canonical, env, _backend_class(catalog, canonical, fields), fields)
    _set_aside_foreign(catalog, resolved)
    _apply_conventional(settings, resolved)
    pool = fields.pop(DEPLOYMENTS, None)
    substitution = _Substitution(settings, resolved, strict)
    substitution.run(fields)
    if pool is not None:
        backend_fields = list(resolved.backend_cls.settings_model.model_fields)
        resolved.deployments = split_deployments(resolved, pool, backend_fields)
        for entry in resolved.deployments:
            substitution.run(entry.fields, entry.own, prefix=f"deployments.{entry.index}.")
    return resolved


@functools.cache
def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields typed SecretStr, or named like a secret even when typed ``str``."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if SecretStr in _types(info.annotation) or is_secret_name(name)
    )


def _types(annotation: Any) -> set[Any]:
    return {annotation, *typing.get_args(annotation)}

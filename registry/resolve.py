"""Resolution: from a model name to a validated :class:`ModelSpec`, every value with its origin.

Precedence, highest first (each field independently; tables such as ``config`` merge key by key):

1. keyword arguments to ``create_model`` / ``ModelRegistry.create``
2. ``MODELREG_*`` environment variables
3. the same names in ``.env``
4. ``[environments.<env>.models.<name>]`` in the settings file
5. ``[models.<name>]`` in the settings file
6. ``[defaults]`` (``MODELREG_DEFAULTS__*``, ``.env``, ``[environments.<env>.defaults]``, file)
7. the backend's conventional variables (``AZURE_OPENAI_API_KEY``, ``MODEL_TIMEOUT``, ...)
8. built-in defaults
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ValidationError

from backends.configs import config_problems, validation_problems
from registry.errors import ConfigError, PluginError, UnknownModelError, did_you_mean
from registry.layers import ModelNames, default_model_name, merged_tables, model_names
from registry.settings import Settings
from registry.spec import COMMON_ENV_FALLBACKS, COMMON_FIELD_NAMES, CommonFields, ModelSpec

__all__ = [
    "BackendCatalog",
    "BackendInfo",
    "ModelNames",
    "default_model_name",
    "model_names",
    "resolve",
]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class BackendInfo(Protocol):
    """What resolution needs to know about a backend class."""

    settings_model: ClassVar[type[BaseModel]]
    config_model: ClassVar[type[BaseModel]]
    env_fallbacks: ClassVar[Mapping[str, tuple[str, ...]]]


class BackendCatalog(Protocol):
    """Where resolution looks backends up (the plugin manager's registrations)."""

    def backend(self, name: str) -> type[BackendInfo]:
        """Return the backend class registered as ``name``; KeyError or PluginError if none."""
        ...

    def backend_names(self) -> list[str]:
        """Every registered backend name."""
        ...


def _apply_env_fallbacks(
    settings: Settings,
    backend_cls: type[BackendInfo],
    model_data: dict[str, Any],
    sources: dict[str, str],
) -> None:
    """Fill unset fields from the backend's conventional variables (precedence level 7).

    Fields in an exclusive group (credentials) are all-or-nothing: if any of them is set at a
    higher level, none of the group's variables is consulted; else the first one found wins.
    """
    fallbacks = {**COMMON_ENV_FALLBACKS, **backend_cls.env_fallbacks}
    groups: tuple[tuple[str, ...], ...] = getattr(backend_cls, "exclusive_fallbacks", ())
    grouped = {key: group for group in groups for key in group}
    satisfied: set[tuple[str, ...]] = {
        group for group in groups if any(model_data.get(k) not in (None, "") for k in group)
    }
    ordered = sorted(fallbacks, key=lambda k: grouped[k].index(k) if k in grouped else -1)
    for key in ordered:
        group = grouped.get(key)
        if model_data.get(key) not in (None, "") or (group is not None and group in satisfied):
            continue
        for variable in fallbacks[key]:
            found = settings.variable(variable)
            if found is not None and found[0] != "":
                model_data[key], sources[key] = found
                if group is not None:
                    satisfied.add(group)
                break


class _Substituter:
    """Replaces ``${VAR}`` / ``${VAR:-default}`` in strings, recording which variables it used."""

    def __init__(self, settings: Settings, model: str, strict: bool) -> None:
        self.settings = settings
        self.model = model
        self.strict = strict
        self.unset: dict[str, str] = {}

    def apply(self, field: str, value: Any, origin: str) -> tuple[Any, str]:
        if isinstance(value, str):
            return self._string(field, value, origin)
        if isinstance(value, list):
            return [
                self._string(field, v, origin)[0] if isinstance(v, str) else v for v in value
            ], origin
        return value, origin

    def _string(self, field: str, value: str, origin: str) -> tuple[Any, str]:
        used: list[str] = []
        missing: list[str] = []

        def replace(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            found = self.settings.variable(var)
            if found is not None:
                used.append(f"${{{var}}} from {found[1]}")
                return found[0]
            if default is not None:
                used.append(f"${{{var}}} unset, default used")
                return default
            missing.append(var)
            return ""

        result = _VAR.sub(replace, value)
        if missing:
            if self.strict:
                raise ConfigError(
                    f"model {self.model!r}, field {field!r} ({origin}): variable "
                    f"${{{missing[0]}}} is not set. Set {missing[0]} in the environment or .env, "
                    f"or write ${{{missing[0]}:-default}} to give a default."
                )
            self.unset[field] = missing[0]
            return None, origin
        if used:
            origin = f"{origin} via {', '.join(used)}"
        return result, origin


@functools.cache
def _allowed_fields(settings_model: type[BaseModel]) -> frozenset[str]:
    """Common fields plus the backend's own."""
    return COMMON_FIELD_NAMES | frozenset(settings_model.model_fields)


@functools.cache
def _secret_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(
        name for name, info in model.model_fields.items() if "SecretStr" in repr(info.annotation)
    )


def _origin(sources: Mapping[str, str], field: str) -> str:
    """Where ``field`` (or the closest enclosing field, for ``config.tools.0.type``) came from."""
    parts = field.split(".")
    for size in range(len(parts), 0, -1):
        origin = sources.get(".".join(parts[:size]))
        if origin:
            return origin
    return "built-in default"


def _problems_message(
    name: str, problems: list[tuple[str, str]], sources: Mapping[str, str]
) -> str:
    return "; ".join(
        f"model {name!r}, field {field!r} ({_origin(sources, field)}): {message}"
        for field, message in problems
    )


def _lookup_backend(
    catalog: BackendCatalog, name: str, backend: Any, origin: str
) -> type[BackendInfo]:
    if not isinstance(backend, str) or not backend:
        raise ConfigError(
            f'model {name!r}: no backend set. Add backend = "azure" (or one of: '
            f"{', '.join(catalog.backend_names())}) to its table."
        )
    try:
        return catalog.backend(backend)
    except PluginError as exc:
        raise PluginError(f"model {name!r}, field 'backend' ({origin}): {exc}") from None
    except KeyError:
        known = catalog.backend_names()
        raise ConfigError(
            f"model {name!r}, field 'backend' ({origin}): unknown backend {backend!r}."
            f"{did_you_mean(backend, known)} Registered backends: {', '.join(known)}. "
            f"A third-party backend needs its plugin installed (see `modelreg plugins`)."
        ) from None


def _check_default_key(catalog: BackendCatalog, key: str, origin: str) -> None:
    """A ``[defaults]`` key may belong to another backend, but must belong to some backend."""
    every = set(COMMON_FIELD_NAMES)
    for name in catalog.backend_names():
        every.update(_allowed_fields(catalog.backend(name).settings_model))
    if key not in every:
        raise ConfigError(
            f"{origin}: unknown field {key!r} in defaults.{did_you_mean(key, every)} "
            f"No backend has it; fields: {', '.join(sorted(every))}."
        )


def resolve(
    settings: Settings,
    catalog: BackendCatalog,
    name: str | None,
    *,
    env: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    strict: bool = True,
) -> tuple[ModelSpec, dict[str, str]]:
    """Resolve ``name`` (or ``default_model``) in ``env`` to a :class:`ModelSpec`.

    Args:
        settings: the loaded sources.
        catalog: where backends are looked up.
        name: a model name or alias; None means ``default_model``.
        env: the active environment (overlay), or None.
        overrides: keyword-argument field values (precedence level 1).
        strict: when False, an unset ``${VAR}`` leaves the field unset instead of raising, and is
            reported in the returned dict (field -> variable) — for ``show``.

    Returns:
        The spec, and the fields whose ``${VAR}`` was unset (empty when strict).

    Raises:
        UnknownModelError: no model or alias of that name.
        ConfigError: the model's settings are invalid or incomplete.
    """
    names = model_names(settings, env)
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
                f"default_model {name!r} ({found[1]}) is not a model or alias."
                f"{did_you_mean(name, names.all())} Known: {', '.join(names.all()) or 'none'}."
            )
    canonical = names.canonical(name)
    if canonical is None:
        where = settings.label + (f" (env {env!r})" if env else "")
        raise UnknownModelError(name, names.all(), where=where)

    model_data, sources, ranks, table_count, defaults_data, default_sources = merged_tables(
        settings, canonical, env, overrides or {}
    )

    backend_cls = _lookup_backend(
        catalog,
        canonical,
        model_data.get("backend", defaults_data.get("backend")),
        sources.get("backend", default_sources.get("backend", "")),
    )
    allowed = _allowed_fields(backend_cls.settings_model)

    # A table that sets `backend` starts afresh: another backend's fields from the tables below
    # it (e.g. Azure fields of [models.chat] when the test overlay says backend = "fake") are
    # ignored; unknown fields in that table itself or above it are errors.
    backend_rank = ranks.get("backend", table_count)
    for key in sorted(model_data.keys() - allowed):
        if ranks.get(key, 0) > backend_rank:
            del model_data[key]
            sources.pop(key, None)
        else:
            raise ConfigError(
                f"model {canonical!r} ({sources[key]}): unknown field {key!r}."
                f"{did_you_mean(key, allowed)} Fields for backend "
                f"{model_data.get('backend', defaults_data.get('backend'))!r}: "
                f"{', '.join(sorted(allowed))}."
            )
    for key, value in defaults_data.items():
        if key not in allowed:
            _check_default_key(catalog, key, default_sources.get(key, "[defaults]"))
        elif key not in model_data:
            model_data[key] = value
            sources[key] = default_sources[key]
            sources.update({k: v for k, v in default_sources.items() if k.startswith(f"{key}.")})
        elif isinstance(value, dict) and isinstance(model_data.get(key), dict):
            for sub_key, sub_value in value.items():
                if sub_key not in model_data[key]:
                    model_data[key][sub_key] = sub_value
                    sources[f"{key}.{sub_key}"] = default_sources[f"{key}.{sub_key}"]

    _apply_env_fallbacks(settings, backend_cls, model_data, sources)

    substituter = _Substituter(settings, canonical, strict)
    for key, value in list(model_data.items()):
        if isinstance(value, dict):
            for sub_key, sub_value in list(value.items()):
                path = f"{key}.{sub_key}"
                value[sub_key], sources[path] = substituter.apply(
                    path, sub_value, sources.get(path, "")
                )
        else:
            model_data[key], sources[key] = substituter.apply(key, value, sources[key])
    for key in substituter.unset:
        if "." not in key:
            model_data.pop(key, None)

    common_data = {k: v for k, v in model_data.items() if k in COMMON_FIELD_NAMES}
    backend_data = {k: v for k, v in model_data.items() if k not in COMMON_FIELD_NAMES}
    try:
        common = CommonFields.model_validate(common_data)
        options = backend_cls.settings_model.model_validate(backend_data)
    except ValidationError as exc:
        raise ConfigError(_problems_message(canonical, validation_problems(exc), sources)) from None

    config = _validate_config(canonical, backend_cls, common.config, sources)
    for key in list(sources):
        if key.startswith("config.") and key[7:] not in config:
            del sources[key]
    spec = ModelSpec(
        name=canonical,
        env=env,
        common=common,
        options=options,
        config=config,
        sources={k: v for k, v in sources.items() if v},
        secret_fields=_secret_fields(backend_cls.settings_model),
    )
    return spec, dict(substituter.unset)


def _validate_config(
    name: str, backend_cls: type[BackendInfo], config: Mapping[str, Any], sources: Mapping[str, str]
) -> dict[str, Any]:
    """Validate ``[models.<name>.config]`` against the backend's config model."""
    validated, problems = config_problems(config, backend_cls.config_model)
    if validated is None:
        raise ConfigError(_problems_message(name, problems, sources))
    return {key: getattr(validated, key) for key in validated.model_fields_set}

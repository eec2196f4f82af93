"""Step 6 of resolution: resolved fields validated into a :class:`ModelSpec`, or explained.

``modelreg show`` explains a model's fields as they are when a ``${VAR}`` they need is unset.
Every problem names the model, the field and where its value came from, never the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from registry.errors import ConfigError, PluginError, did_you_mean
from registry.layers import origins, plain, secret_paths
from registry.resolve import BackendCatalog, Resolved, resolve_fields, secret_fields
from registry.settings import Settings
from registry.sources import env_name
from registry.spec import (
    BUILTIN_SOURCE,
    COMMON_FIELD_NAMES,
    CommonFields,
    ExplainedField,
    ModelSpec,
    explained,
)
from registry.validation import (
    Problem,
    config_problems,
    describe_problems,
    non_finite_paths,
    validate,
)

__all__ = ["explained_fields", "resolve", "spec_from"]

_PLUGIN_FIELDS = {"token_counter": "token_counters", "client_provider": "client_providers"}


def _required_message(settings: Settings, resolved: Resolved, path: str) -> str:
    if path in resolved.unset:
        variable = resolved.unset[path][0]
        return f"is not set: ${{{variable}}} is unset. Set {variable} in the environment or .env"
    name = resolved.name
    return (
        f"is required and set nowhere: add {path} = ... to [models.{name}] in {settings.label}, "
        f"set {env_name(('models', name, path))}, or pass {path}=... to create_model"
    )


def _plugin_problems(catalog: BackendCatalog, common: CommonFields) -> list[Problem]:
    """An unknown ``token_counter`` or ``client_provider`` name, with a did-you-mean."""
    problems: list[Problem] = []
    for field_name, kind in _PLUGIN_FIELDS.items():
        value = getattr(common, field_name)
        if value is None:
            continue
        try:
            catalog.lookup(kind, value)
        except PluginError as exc:
            problems.append((field_name, str(exc)))
        except KeyError:
            known = catalog.names(kind)
            what = kind[:-1].replace("_", " ")
            problems.append(
                (
                    field_name,
                    f"not a registered {what} (the value is not shown).{did_you_mean(value, known)}"
                    f" Registered: {', '.join(known) or 'none'} (plugins add more; see "
                    "`modelreg plugins`).",
                )
            )
    return problems


def _validated(
    settings: Settings, catalog: BackendCatalog, resolved: Resolved
) -> tuple[CommonFields | None, BaseModel | None, dict[str, Any], list[Problem]]:
    """Step 6: the common fields, the backend's options, the request config, and problems."""
    values = plain(resolved.fields)
    problems: list[Problem] = []
    backend_cls = resolved.backend_cls
    common_data = {k: v for k, v in values.items() if k in COMMON_FIELD_NAMES}
    common, found = validate(CommonFields, common_data)
    problems += found
    options, found = validate(
        backend_cls.settings_model, {k: v for k, v in values.items() if k not in COMMON_FIELD_NAMES}
    )
    problems += found
    config: dict[str, Any] = {}
    if isinstance(common, CommonFields):
        config_model = getattr(backend_cls, "config_model", None)
        if config_model is not None:
            validated, found = config_problems(common.config, config_model)
            problems += found
            if validated is not None:
                config = {key: getattr(validated, key) for key in validated.model_fields_set}
        else:
            config = dict(common.config)
        problems += _plugin_problems(catalog, common)
    reported = {path for path, _ in problems}
    problems += [
        (path, "must be a finite number and nested at most 100 levels (no NaN or infinity)")
        for path in non_finite_paths(values)
        if path not in reported
    ]
    problems = [
        (path, _required_message(settings, resolved, path) if msg == "Field required" else msg)
        for path, msg in dict.fromkeys(problems)
    ]
    return (common if isinstance(common, CommonFields) else None), options, config, problems


def spec_from(settings: Settings, catalog: BackendCatalog, resolved: Resolved) -> ModelSpec:
    """Validate resolved fields into a :class:`ModelSpec` (step 6)."""
    common, options, config, problems = _validated(settings, catalog, resolved)
    sources = origins(resolved.fields)
    if problems or common is None or options is None:
        raise ConfigError(describe_problems(resolved.name, problems, sources))
    for key in list(sources):
        if key.startswith("config.") and key[7:] not in config:
            del sources[key]
    return ModelSpec(
        name=resolved.name,
        env=resolved.env,
        common=common,
        options=options,
        config=config,
        sources=sources,
        secret_fields=secret_fields(resolved.backend_cls.settings_model),
        ignored=dict(resolved.ignored),
        secret_values=secret_paths(resolved.fields),
    )


def resolve(
    settings: Settings,
    catalog: BackendCatalog,
    name: str | None,
    *,
    env: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ModelSpec:
    """Resolve ``name`` (or ``default_model``) in ``env`` to a :class:`ModelSpec`.

    Raises:
        UnknownModelError: no model or alias of that name.
        ConfigError: the model's settings are invalid or incomplete.
    """
    resolved = resolve_fields(settings, catalog, name, env=env, overrides=overrides)
    return spec_from(settings, catalog, resolved)


def explained_fields(
    settings: Settings, catalog: BackendCatalog, resolved: Resolved
) -> dict[str, ExplainedField]:
    """Every field with its value (secrets ``***``) and source, for ``modelreg show``.

    Fields whose ``${VAR}`` is unset are shown as unset with the variable — even a required
    one — while any other problem raises as :func:`resolve` would.
    """
    problems = _validated(settings, catalog, resolved)[3]
    blocking = [p for p in problems if p[0] not in resolved.unset]
    if blocking:
        raise ConfigError(describe_problems(resolved.name, blocking, origins(resolved.fields)))
    if not problems:
        fields = spec_from(settings, catalog, resolved).explain()
    else:
        fields = _unvalidated_fields(resolved)
    for path, (variable, origin) in resolved.unset.items():
        fields[path] = ExplainedField(None, origin, note=f"${{{variable}}} is not set")
    for path, note in resolved.notes.items():
        if path in fields:
            fields[path] = dataclasses.replace(fields[path], note=note)
    return dict(sorted(fields.items()))


def _unvalidated_fields(resolved: Resolved) -> dict[str, ExplainedField]:
    """The resolved values as they are (validation could not finish: a variable is unset)."""
    values = plain(resolved.fields)
    sources = origins(resolved.fields)
    secret = secret_fields(resolved.backend_cls.settings_model) | secret_paths(resolved.fields)
    shown: dict[str, ExplainedField] = {}
    models = (CommonFields, resolved.backend_cls.settings_model)
    for key, info in ((k, i) for m in models for k, i in m.model_fields.items()):
        if key == "config":
            for sub, value in (values.get("config") or {}).items():
                path = f"config.{sub}"
                name = sub if isinstance(value, Mapping) else ""
                shown[path] = explained(value, sources[path], name=name, secret=path in secret)
            continue
        value = values[key] if key in values else info.get_default(call_default_factory=True)
        source = sources.get(key, BUILTIN_SOURCE)
        shown[key] = explained(value, source, name=key, secret=key in secret)
    return shown

"""Step 6 of resolution: resolved fields validated into a :class:`ModelSpec`, or explained.

``modelreg show`` explains a model's fields as they are when a ``${VAR}`` they need is unset.
Every problem names the model, the field and where its value came from, never the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel

from registry.deployments import DeploymentSpec, entry_weight
from registry.errors import ConfigError, PluginError, did_you_mean
from registry.layers import model_names, origins, plain, secret_paths
from registry.masking import shown_names
from registry.resolve import BackendCatalog, Resolved, resolve_fields, secret_fields
from registry.secret_settings import masked_settings_model
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

__all__ = ["FALLBACK_FIELDS", "explained_fields", "resolve", "spec_from"]

#: Fields that name a plugin registration: the kind, and what one is called in messages.
_PLUGIN_FIELDS = {
    "token_counter": ("token_counters", "token counter"),
    "client_provider": ("client_providers", "client provider"),
    "routing": ("routing_strategies", "routing strategy"),
}
FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")


def _required_message(settings: Settings, resolved: Resolved, path: str) -> str:
    if path in resolved.unset:
        variable = resolved.unset[path][0]
        return f"is not set: ${{{variable}}} is unset. Set {variable} in the environment or .env"
    name = resolved.name
    return (
        f"is required and set nowhere: add {path} = ... to [models.{name}] in {settings.label}, "
        f"set {env_name(('models', name, path))}, or pass {path}=... to create_model"
    )


def _fallback_problems(
    settings: Settings, resolved: Resolved, common: CommonFields
) -> list[Problem]:
    """Fallbacks must name other models (or aliases) of the same environment."""
    names = model_names(settings, resolved.env)
    problems: list[Problem] = []
    for field_name in FALLBACK_FIELDS:
        seen: set[str] = set()
        for index, name in enumerate(getattr(common, field_name)):
            target = names.canonical(name)
            path = f"{field_name}.{index}"
            if target is not None and target in seen:
                problems.append((path, "names a model already in the list: each is tried once"))
            seen.add(target or name)
            if target is None:
                problems.append(
                    (
                        path,
                        f"names no model (the value is not shown).{did_you_mean(name, names.all())}"
                        f" Models: {shown_names(names.all())}.",
                    )
                )
            elif target == resolved.name:
                problems.append((path, "names the model itself: a fallback is another model"))
    return problems


def _plugin_problems(catalog: BackendCatalog, common: CommonFields) -> list[Problem]:
    """An unknown ``token_counter`` or ``client_provider`` name, with a did-you-mean."""
    problems: list[Problem] = []
    for field_name, (kind, what) in _PLUGIN_FIELDS.items():
        value = getattr(common, field_name)
        if value is None:
            continue
        try:
            catalog.lookup(kind, value)
        except PluginError as exc:
            problems.append((field_name, str(exc)))
        except KeyError:
            known = catalog.names(kind)
            problems.append(
                (
                    field_name,
                    f"not a registered {what} (the value is not shown).{did_you_mean(value, known)}"
                    f" Registered: {', '.join(known) or 'none'} (plugins add more; see "
                    "`modelreg plugins`).",
                )
            )
    return problems


def _pool(
    settings: Settings, resolved: Resolved
) -> tuple[list[DeploymentSpec], list[Problem], dict[str, str]]:
    """Each deployment validated with the backend's settings model; problems; entry origins."""
    pool: list[DeploymentSpec] = []
    problems: list[Problem] = []
    sources: dict[str, str] = {}
    for entry in resolved.deployments:
        prefix = f"deployments.{entry.index}."
        entry_sources = origins(entry.fields)
        sources.update({prefix + k: v for k, v in entry_sources.items() if k in entry.own})
        weight = entry_weight(entry, resolved.name)
        values = {k: v for k, v in plain(entry.fields).items() if k != "weight"}
        options, found = validate(
            masked_settings_model(resolved.backend_cls.settings_model), values, prefix=prefix
        )
        problems += found
        if options is not None:
            secret = frozenset(k for k in secret_paths(entry.fields) if k in entry.own)
            own = {k: v for k, v in entry_sources.items() if k in entry.own}
            pool.append(DeploymentSpec(entry.index, weight, options, own, secret))
    return pool, problems, sources


class _Validated(NamedTuple):
    common: CommonFields | None
    options: BaseModel | None
    config: dict[str, Any]
    pool: list[DeploymentSpec]
    pool_sources: dict[str, str]
    problems: list[Problem]


def _validated(settings: Settings, catalog: BackendCatalog, resolved: Resolved) -> _Validated:
    """Step 6: the common fields, the backend's options, the request config, the pool, problems."""
    values = plain(resolved.fields)
    problems: list[Problem] = []
    backend_cls = resolved.backend_cls
    common_data = {k: v for k, v in values.items() if k in COMMON_FIELD_NAMES}
    common, found = validate(CommonFields, common_data)
    problems += found
    pool, found, pool_sources = _pool(settings, resolved)
    problems += found
    options: BaseModel | None = None
    if resolved.deployments:
        options = pool[0].options if len(pool) == len(resolved.deployments) else None
    else:
        backend_data = {k: v for k, v in values.items() if k not in COMMON_FIELD_NAMES}
        options, found = validate(masked_settings_model(backend_cls.settings_model), backend_data)
        problems += found
    config: dict[str, Any] = {}
    if isinstance(common, CommonFields):
        config, found = _config(backend_cls, common, values.get("api"))
        problems += found + _plugin_problems(catalog, common) + _capability_problems(common)
        problems += _fallback_problems(settings, resolved, common)
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
    common = common if isinstance(common, CommonFields) else None
    return _Validated(common, options, config, pool, pool_sources, problems)


def _capability_problems(common: CommonFields) -> list[Problem]:
    """``[models.NAME.capabilities]``: unknown keys and bad values, as ``capabilities.<key>``."""
    if not common.capabilities:
        return []
    from registry.capability_fields import capability_problems

    return capability_problems(common.capabilities)


def _config(
    backend_cls: Any, common: CommonFields, api: Any
) -> tuple[dict[str, Any], list[Problem]]:
    """The request config, validated for the model's API by the backend's ``config_schema``.

    A backend class without one may carry a pydantic ``config_model``; with neither, the config
    is passed on unchecked.
    """
    for_api = getattr(backend_cls, "api_config_problems", None)
    api_problems = for_api(common.config, common.api) if callable(for_api) else []
    schema_for = getattr(backend_cls, "config_schema", None)
    if callable(schema_for):
        clean, problems = schema_for(api if isinstance(api, str) else None).check(common.config)
        return clean or {}, problems + api_problems
    config_model = getattr(backend_cls, "config_model", None)
    if config_model is None:
        return dict(common.config), api_problems
    validated, problems = config_problems(common.config, config_model)
    problems += api_problems
    if validated is None:
        return {}, problems
    return {key: getattr(validated, key) for key in validated.model_fields_set}, problems


def spec_from(settings: Settings, catalog: BackendCatalog, resolved: Resolved) -> ModelSpec:
    """Validate resolved fields into a :class:`ModelSpec` (step 6)."""
    result = _validated(settings, catalog, resolved)
    sources = {**origins(resolved.fields), **result.pool_sources}
    if result.problems or result.common is None or result.options is None:
        raise ConfigError(describe_problems(resolved.name, result.problems, sources))
    for key in list(sources):
        if key.startswith("config.") and key[7:] not in result.config:
            del sources[key]
    return ModelSpec(
        name=resolved.name,
        env=resolved.env,
        common=result.common,
        options=result.options,
        config=result.config,
        sources=sources,
        secret_fields=secret_fields(resolved.backend_cls.settings_model),
        ignored=dict(resolved.ignored),
        secret_values=secret_paths(resolved.fields),
        deployments=tuple(result.pool),
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
    problems = _validated(settings, catalog, resolved).problems
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

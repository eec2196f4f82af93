"""What each base model can do: context window, output limit, features, parameter rules, image rule.

Capabilities are keyed by the **base model** (``model = "gpt-4o"`` in settings), never by the
Azure deployment name. A name matches a table entry exactly or with a snapshot suffix
(``gpt-4o-2024-08-06``, ``gpt-4-0613``, ``gpt-5-chat-latest``); Azure's spellings
(``gpt-35-turbo``), provider prefixes and fine-tune names are normalised first
(:mod:`backends.model_names`).

**Data.** ``backends/data/capabilities.json``, shipped in the package, read on first lookup (never
at import, never from the network). Its values come from LiteLLM's
``model_prices_and_context_window.json`` (MIT licence, Copyright (c) 2023 Berri AI), OpenAI's
model pages and vision guide, and Microsoft Learn's Azure OpenAI model and reasoning pages; the
file names each entry's sources and, where sources disagree, which value was taken and why.

**Unknown models** get declared defaults with ``known = False``: a 128,000-token context window
(the smallest of the current OpenAI chat families, see the file's ``unknown.notes``), ``None``
(not known) for every feature flag, no parameter rules, and gpt-4o's image rule marked inexact.
Never CAMEL's silent 999,999,999.

**Layers**, lowest first, merged field by field in one place (:meth:`CapabilityRegistry.lookup`):
the built-in table < plugins (``modelreg_register_capabilities``) < per-model overrides
(``[models.NAME.capabilities]``). Two plugins giving the same name is a clash: neither applies.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Container, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

from backends.image_tokens import DEFAULT_IMAGE_RULE, ImageTokenRule
from backends.model_names import normalise_model_name
from registry.capability_fields import CAPABILITY_KEYS, capability_problems, clean_capabilities
from registry.errors import ConfigError, PluginError

__all__ = [
    "BUILTIN_ORIGIN",
    "CAPABILITY_KEYS",
    "SETTINGS_ORIGIN",
    "UNKNOWN_ORIGIN",
    "CapabilityRegistry",
    "ModelCapabilities",
    "builtin_entries",
    "builtin_registry",
    "capabilities_for",
    "check_capability_overrides",
    "family_of",
    "registry_from_layers",
]

BUILTIN_ORIGIN = "built-in table (backends/data/capabilities.json)"
UNKNOWN_ORIGIN = "default for models not in the table"
SETTINGS_ORIGIN = "per-model settings ([models.NAME.capabilities])"
_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4}|latest)$")


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """The merged capabilities of one base model (frozen; build it with :func:`capabilities_for`).

    Attributes:
        model: the base model name as given.
        family: the table entry it matched, or None when unknown.
        known: whether a table (built-in or plugin) describes the model.
        context_window: prompt plus output tokens the model holds (``token_limit``).
        max_input_tokens: a lower prompt limit, when there is one (gpt-5: 272,000).
        max_output_tokens: the most tokens one reply may have, or None when not known.
        vision, tools, structured_outputs, responses_api, reasoning, system_messages: features;
            None means not known.
        rejected_params: config keys the model rejects (reasoning models: temperature, top_p...).
        max_tokens_param: the request key ``max_tokens`` is sent as.
        image_tokens: how an image part is billed.
        source: the sources of the table values.
        notes: per field, where sources disagree and which value was taken.
        origins: per field, the layer its value came from.
    """

    model: str
    family: str | None
    known: bool
    context_window: int
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    vision: bool | None = None
    tools: bool | None = None
    structured_outputs: bool | None = None
    responses_api: bool | None = None
    reasoning: bool | None = None
    system_messages: bool | None = None
    rejected_params: frozenset[str] = frozenset()
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    image_tokens: ImageTokenRule = DEFAULT_IMAGE_RULE
    source: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=_empty)
    origins: Mapping[str, str] = field(default_factory=_empty)

    @property
    def input_limit(self) -> int:
        """The most prompt tokens a request may carry."""
        return min(self.context_window, self.max_input_tokens or self.context_window)

    def config_problems(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(field, message)`` for each request setting the model refuses (values not shown).

        The keys it rejects (reasoning models: temperature, top_p...); and, where ``max_tokens``
        is sent as ``max_completion_tokens``, both of them at once.
        """
        kind = "a reasoning model" if self.reasoning else "this model"
        label = self.family or self.model
        problems = [
            (
                f"config.{key}",
                f"{label} ({kind}) does not accept {key!r}; remove it from the config",
            )
            for key in sorted(set(config) & self.rejected_params)
        ]
        if (
            self.max_tokens_param == "max_completion_tokens"
            and config.get("max_tokens") is not None
            and config.get("max_completion_tokens") is not None
        ):
            problems.append(
                (
                    "config.max_tokens",
                    f"{label} takes max_completion_tokens, and max_tokens is sent as that: set "
                    "only one of them",
                )
            )
        return problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``modelreg show --json``)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["rejected_params"] = sorted(self.rejected_params)
        data["image_tokens"] = asdict(self.image_tokens)
        data["source"] = list(self.source)
        data["notes"] = dict(self.notes)
        data["origins"] = dict(self.origins)
        return data


def _problems(data: Any, *, entry: bool, prefix: str) -> list[str]:
    """Unknown keys (with a did-you-mean) and ill-typed values; never echoes a value."""
    return [
        f"{path}: {message}"
        for path, message in capability_problems(data, entry=entry, prefix=prefix)
    ]


def check_capability_overrides(
    overrides: Mapping[str, Any] | None, *, context: str = "model"
) -> dict[str, Any]:
    """Validate ``[models.NAME.capabilities]``: a clean copy, or ConfigError naming each problem.

    Args:
        overrides: the settings table (None is an empty one).
        context: whose overrides these are, for messages (``"model 'chat'"``).
    """
    problems = _problems(overrides or {}, entry=False, prefix="capabilities.")
    if problems:
        raise ConfigError(f"{context}: " + "; ".join(problems))
    return clean_capabilities(overrides or {})


def _merge(
    into: dict[str, Any], origins: dict[str, str], data: Mapping[str, Any], origin: str
) -> None:
    """Lay ``data`` over ``into`` field by field; ``image_tokens`` and ``notes`` one level deep."""
    for key, value in data.items():
        if key == "extends":
            continue
        if key in ("image_tokens", "notes"):
            into[key] = {**into.get(key, {}), **value}
        else:
            into[key] = value
        origins[key] = origin


class CapabilityRegistry:
    """Capability entries by base-model family, in layers: built-in first, then plugins.

    :meth:`register` is what the ``modelreg_register_capabilities`` hook's ``register`` callback
    should call, with ``origin`` bound to the plugin's label and ``builtin`` to whether it is a
    built-in plugin. Lookups are cached until the next registration.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._layers: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._plugin_owner: dict[str, str] = {}
        self._clashed: set[str] = set()
        self._unknown: dict[str, Any] = {}
        self._cache: dict[str, ModelCapabilities] = {}

    def set_unknown_defaults(self, data: Mapping[str, Any]) -> None:
        """The values a model not in any table gets (the built-in file's ``unknown``)."""
        problems = _problems(data, entry=True, prefix="unknown.")
        if not problems and "context_window" not in data:
            problems = ["unknown: no context_window"]
        if problems:
            raise ConfigError("capability defaults: " + "; ".join(problems))
        with self._lock:
            self._unknown = clean_capabilities(data)
            self._cache.clear()

    def register(
        self, name: str, data: Mapping[str, Any], *, origin: str, builtin: bool = False
    ) -> None:
        """Add ``data`` for the family ``name`` as a layer over what is registered already.

        Raises:
            PluginError: the name is empty, the data is invalid (values are never shown), or
                another plugin registered the same name (then neither plugin's entry applies).
        """
        family = normalise_model_name(name) if isinstance(name, str) else ""
        if not family:
            raise PluginError(f"{origin}: capabilities registered under an empty model name")
        problems = _problems(data, entry=True, prefix=f"capabilities[{family!r}].")
        if problems:
            raise PluginError(f"{origin}: " + "; ".join(problems))
        with self._lock:
            self._cache.clear()
            if not builtin:
                self._claim(family, origin)
            self._layers.setdefault(family, []).append((origin, clean_capabilities(data)))

    def _claim(self, family: str, origin: str) -> None:
        """Record ``origin`` as the plugin giving ``family``; a second plugin voids both."""
        owner = self._plugin_owner.pop(family, None)
        if owner is None and family not in self._clashed:
            self._plugin_owner[family] = origin
            return
        if owner is not None:
            self._layers[family] = [layer for layer in self._layers[family] if layer[0] != owner]
        self._clashed.add(family)
        raise PluginError(
            f"{origin}: capabilities of {family!r} are also registered by "
            f"{owner or 'another plugin'}; neither applies. Uninstall or disable one of them "
            "(MODELREG_DISABLE_PLUGINS)."
        )

    def names(self) -> list[str]:
        """Every registered family, presets (``_name``) excluded."""
        return sorted(name for name in self._layers if not name.startswith("_"))

    def _merged(
        self, family: str, seen: frozenset[str] = frozenset()
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """A family's values over its ``extends`` chain (a cycle stops where it closes)."""
        layers = self._layers.get(family, [])
        parent = next((d["extends"] for _, d in reversed(layers) if "extends" in d), None)
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        seen = seen | {family}
        if parent is not None and normalise_model_name(parent) not in seen:
            values, origins = self._merged(normalise_model_name(parent), seen)
        for origin, data in layers:
            _merge(values, origins, data, origin)
        return values, origins

    def _table_values(self, family: str | None) -> tuple[dict[str, Any], dict[str, str]]:
        """The family's values, with the unknown-model defaults where the tables say nothing."""
        defaults = self._unknown or _builtin_data()["unknown"]
        if family is None:
            values: dict[str, Any] = {}
            origins: dict[str, str] = {}
            _merge(values, origins, defaults, UNKNOWN_ORIGIN)
            return values, origins
        values, origins = self._merged(family)
        for key in ("context_window", "image_tokens"):
            if key in values or key not in defaults:
                continue
            if key == "image_tokens" and values.get("vision") is False:
                continue  # never sent an image: the default rule, exact, is harmless
            values[key] = defaults[key]
            origins[key] = UNKNOWN_ORIGIN
            note = defaults.get("notes", {}).get(key)
            if note:
                values["notes"] = {**values.get("notes", {}), key: note}
        return values, origins

    def lookup(
        self,
        base_model: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        context: str = "model",
        overrides_origin: str = SETTINGS_ORIGIN,
    ) -> ModelCapabilities:
        """Capabilities of ``base_model``: defaults < built-in < plugins < ``overrides``.

        This is the one place the layers are merged. A table entry that gives no context window
        gets the unknown-model default; one with vision and no image rule gets the default rule
        marked inexact.

        Raises:
            ConfigError: ``overrides`` has an unknown key (with a did-you-mean) or a bad value.
        """
        clean = check_capability_overrides(overrides, context=context) if overrides else {}
        cached = None if clean else self._cache.get(base_model)
        if cached is not None:
            return cached
        with self._lock:
            family = family_of(base_model, self._layers)
            values, origins = self._table_values(family)
        _merge(values, origins, clean, overrides_origin)
        capabilities = _build(base_model, family, values, origins)
        if not clean:
            self._cache[base_model] = capabilities
        return capabilities


def _build(
    base_model: str, family: str | None, values: dict[str, Any], origins: dict[str, str]
) -> ModelCapabilities:
    """The frozen result; ``source`` and ``notes`` describe the data, not the model."""
    fields = {key: values[key] for key in CAPABILITY_KEYS if key in values}
    if "image_tokens" in fields:
        fields["image_tokens"] = ImageTokenRule(**fields["image_tokens"])
    if "rejected_params" in fields:
        fields["rejected_params"] = frozenset(fields["rejected_params"])
    return ModelCapabilities(
        model=base_model,
        family=family,
        known=family is not None,
        source=tuple(values.get("source", ())),
        notes=MappingProxyType(dict(values.get("notes", {}))),
        origins=MappingProxyType({k: v for k, v in origins.items() if k in CAPABILITY_KEYS}),
        **fields,
    )


def family_of(base_model: str, families: Container[str]) -> str | None:
    """The family of ``base_model`` among ``families``: exact, else without a snapshot suffix.

    Presets (names starting with ``_``) never match.
    """
    name = normalise_model_name(base_model)
    for candidate in (name, _SNAPSHOT_SUFFIX.sub("", name)):
        if candidate in families and not candidate.startswith("_"):
            return candidate
    return None


@cache
def _builtin_data() -> dict[str, Any]:
    """The shipped table, read once (on first lookup, never at import)."""
    text = resources.files("backends").joinpath("data", "capabilities.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def builtin_registry() -> CapabilityRegistry:
    """A new registry holding the built-in table (the base plugins are layered over)."""
    registry = CapabilityRegistry()
    data = _builtin_data()
    registry.set_unknown_defaults(data["unknown"])
    for name, entry in data["models"].items():
        registry.register(name, entry, origin=BUILTIN_ORIGIN, builtin=True)
    return registry


@cache
def _default_registry() -> CapabilityRegistry:
    return builtin_registry()


def builtin_entries() -> dict[str, dict[str, Any]]:
    """The built-in table's entries by family (what ``backends.builtin`` registers)."""
    return dict(_builtin_data()["models"])


_from_layers: dict[tuple[Any, ...], tuple[Sequence[Any], CapabilityRegistry]] = {}
_from_layers_lock = threading.Lock()


def registry_from_layers(layers: Sequence[Any]) -> CapabilityRegistry:
    """A registry of the plugin host's capability layers, built once per set of layers.

    Each layer has ``name``, ``obj`` (the data), ``origin`` and ``builtin``.
    A layer whose data is invalid is skipped here; the plugin host has reported its shape.
    """
    key = tuple((layer.name, id(layer.obj), layer.origin, layer.builtin) for layer in layers)
    with _from_layers_lock:
        cached = _from_layers.get(key)
        if cached is not None:
            return cached[1]
    registry = CapabilityRegistry()
    registry.set_unknown_defaults(_builtin_data()["unknown"])
    for layer in layers:
        with contextlib.suppress(PluginError):
            registry.register(layer.name, layer.obj, origin=layer.origin, builtin=layer.builtin)
    with _from_layers_lock:
        _from_layers[key] = (list(layers), registry)  # the list keeps the ids valid
    return registry


def capabilities_for(
    base_model: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    registry: CapabilityRegistry | None = None,
    context: str = "model",
) -> ModelCapabilities:
    """Capabilities of ``base_model`` with per-model ``overrides`` applied.

    Args:
        base_model: the base model (``gpt-4o``, ``gpt-35-turbo``, ``gpt-4o-2024-08-06``...).
        overrides: ``[models.NAME.capabilities]``; unknown keys are a ConfigError.
        registry: the registry with plugin entries; the built-in table alone by default.
        context: whose capabilities these are, for messages (``"model 'chat'"``).
    """
    return (registry or _default_registry()).lookup(base_model, overrides, context=context)

"""What the plugins registered, by kind and name, and the rules every kind follows.

Every kind of registration (backends, token counters, client providers, settings sources, and
kinds added later: add a :class:`Kind` to :data:`KINDS` and its hookspec) is settled by
:func:`settle`, so each gets the same rules:

* **No takeover.** A name registered by two plugins is unavailable: neither wins, because
  install order must not decide whose code runs a model. Looking the name up raises a
  :class:`PluginError` naming both plugins and their distributions, and ``modelreg plugins``
  shows the conflict on both.
* **Built-in names are reserved.** A plugin registering a built-in's name (``azure``) is refused
  with an error on that plugin, and the built-in keeps working: installing a package cannot
  break (or replace) every Azure model, and using a built-in never needs the installed plugins
  imported to find out. To replace a built-in, register another name and select it in settings.
* **Layered kinds** (capabilities) are data about things, not code that runs them: a plugin
  entry for a built-in name layers over the built-in's fields instead of being refused (a
  plugin may correct a context window), while two plugins giving the same name still clash and
  neither applies. :attr:`Registrations.layers` keeps them in order, built-ins first.
* **Invalid objects are reported, not used.** Each kind validates what it receives; a plugin
  that fails (to import, in a hook, or validation) affects only the names it would provide,
  and a lookup of such a name says which plugin and why.
* **Built-ins may name an object instead of importing it** (:class:`ImportPath`): the name is
  claimed (and reserved) at once, and the object is imported and validated when it is first
  looked up, so a first request imports only the backend its model uses. A plugin's
  :class:`ImportPath` is validated as the object it is (and refused).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from registry.errors import PluginError, did_you_mean

__all__ = [
    "KINDS",
    "Claim",
    "ImportPath",
    "Kind",
    "Layer",
    "PluginInfo",
    "Registrations",
    "kept_out_by",
    "settle",
]


def _check_backend(obj: Any) -> str | None:
    """A backend is a class with ``from_spec``, ``run``, ``arun`` and a pydantic settings_model.

    Checked by shape, so the registry never imports a backend module itself.
    """
    from pydantic import BaseModel

    missing = [m for m in ("from_spec", "run", "arun") if not callable(getattr(obj, m, None))]
    if not isinstance(obj, type) or missing:
        return (
            f"{obj!r} is not a backend class (it needs from_spec, run and arun: subclass "
            "backends.base.BaseModelBackend)"
        )
    settings_model = getattr(obj, "settings_model", None)
    if not (isinstance(settings_model, type) and issubclass(settings_model, BaseModel)):
        return f"{obj.__name__}.settings_model is not a pydantic model class"
    mode = getattr(obj, "client_overrides", "routed")
    if mode not in _CLIENT_OVERRIDE_MODES:
        shown = mode if isinstance(mode, str) and mode.isidentifier() else type(mode).__name__
        modes = _CLIENT_OVERRIDE_MODES
        return (
            f"{obj.__name__}.client_overrides is {shown!r}, not one of "
            f"{', '.join(map(repr, modes))}.{did_you_mean(str(mode), modes)}"
        )
    return None


#: What ``BaseModelBackend.client_overrides`` may say (see backends.base).
_CLIENT_OVERRIDE_MODES = ("routed", "handled", "refused")


def _check_token_counter(obj: Any) -> str | None:
    return None if callable(obj) else f"{obj!r} is not callable (a factory taking the model name)"


def _check_client_provider(obj: Any) -> str | None:
    if callable(getattr(obj, "sync_client", None)) or callable(getattr(obj, "async_client", None)):
        return None
    return f"{obj!r} has neither a sync_client(spec) nor an async_client(spec) method"


def _check_capabilities(obj: Any) -> str | None:
    """Checked against the hook's contract (:mod:`registry.capability_fields`), values unseen."""
    from collections.abc import Mapping

    if not isinstance(obj, Mapping):
        return f"capabilities must be a mapping of fields, not {type(obj).__name__}"
    from registry.capability_fields import capability_problems

    problems = capability_problems(obj, entry=True, prefix="")
    return "; ".join(f"{path}: {message}" for path, message in problems) or None


def _check_routing_strategy(obj: Any) -> str | None:
    if callable(obj):
        return None  # what it builds is checked when a pool builds it
    return (
        f"{obj!r} is not callable: register a class (or a factory with no arguments) whose "
        "instances have choose(candidates, rng)"
    )


def _check_settings_source(obj: Any) -> str | None:
    from registry.secret_stores import SettingsSource

    if isinstance(obj, SettingsSource):
        return None
    return f"{obj!r} is not a registry.secret_stores.SettingsSource"


class ImportPath:
    """Where a built-in's object lives (``module``, ``attribute``): imported on first lookup.

    A plain class rather than a dataclass: one is created on every cold start.
    """

    __slots__ = ("attribute", "module")

    def __init__(self, module: str, attribute: str) -> None:
        self.module = module
        self.attribute = attribute

    def __repr__(self) -> str:
        return f"<{self.module}.{self.attribute}>"

    def load(self) -> Any:
        """Import the module and return the object."""
        return getattr(importlib.import_module(self.module), self.attribute)

    def loaded(self) -> bool:
        """Whether the module is imported (an object from it may exist)."""
        return self.module in sys.modules


def _identity(obj: Any) -> object:
    """What tells two registered objects apart (an import path by where it points)."""
    return (obj.module, obj.attribute) if isinstance(obj, ImportPath) else id(obj)


@dataclass(frozen=True)
class Kind:
    """One kind of registration: ``modelreg_register_<key>`` hands objects of it to the host."""

    key: str
    label: str
    validate: Callable[[Any], str | None]
    #: Plugins layer over built-ins instead of being refused (see the module docstring).
    layered: bool = False

    @property
    def hook(self) -> str:
        """The hook that registers this kind."""
        return f"modelreg_register_{self.key}"


KINDS: tuple[Kind, ...] = (
    Kind("backends", "backend", _check_backend),
    Kind("token_counters", "token counter", _check_token_counter),
    Kind("client_providers", "client provider", _check_client_provider),
    Kind("settings_sources", "settings source", _check_settings_source),
    Kind("capabilities", "capabilities", _check_capabilities, layered=True),
    Kind("routing_strategies", "routing strategy", _check_routing_strategy),
)
_BY_KEY = {kind.key: kind for kind in KINDS}


@dataclass
class PluginInfo:
    """One plugin as ``modelreg plugins`` shows it.

    Attributes:
        disabled_by: the variable that kept this installed plugin out and where it was set
            (``env MODELREG_DISABLE_PLUGINS``, ``.env (MODELREG_PLUGINS)``), or None.
        incomplete: why the plugin may not have registered everything it meant to (it failed to
            import, a hook raised or is never called); empty when it did.
    """

    name: str
    builtin: bool
    distribution: str | None = None
    version: str | None = None
    disabled_by: str | None = None
    registered: dict[str, list[str]] = field(default_factory=lambda: {k.key: [] for k in KINDS})
    errors: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``name (distribution version)`` for messages."""
        if self.builtin:
            return f"{self.name} (built-in)"
        if self.distribution:
            return f"{self.name} ({self.distribution} {self.version or '?'})"
        return self.name

    def fail(self, message: str, *, incomplete: bool = False) -> None:
        """Record a problem; ``incomplete``: the plugin may be missing registrations."""
        self.errors.append(message)
        if incomplete:
            self.incomplete.append(message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "builtin": self.builtin,
            "distribution": self.distribution,
            "version": self.version,
            "disabled_by": self.disabled_by,
            **{kind: list(names) for kind, names in self.registered.items()},
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class Layer:
    """One plugin's entry of a layered kind: the data, who gave it, and whether it is built in."""

    name: str
    obj: Any
    origin: str
    builtin: bool


@dataclass(frozen=True)
class Claim:
    """``plugin`` called ``register(name, obj)`` in its hook for ``kind``."""

    kind: str
    name: str
    obj: Any
    plugin: str


class Registrations:
    """The settled registrations: usable objects, unavailable names and why, by kind."""

    def __init__(self, plugins: list[PluginInfo]) -> None:
        self.plugins = plugins
        self.objects: dict[str, dict[str, Any]] = {kind.key: {} for kind in KINDS}
        self.owner: dict[str, dict[str, PluginInfo]] = {kind.key: {} for kind in KINDS}
        self.unavailable: dict[str, dict[str, str]] = {kind.key: {} for kind in KINDS}
        #: Entries of layered kinds, built-ins first (what :meth:`layered` returns).
        self.layers: dict[str, list[Layer]] = {kind.key: [] for kind in KINDS if kind.layered}

    def has(self, kind: str, name: str) -> bool:
        """Whether any plugin registered ``name`` (usable or not)."""
        return name in self.objects[kind] or name in self.unavailable[kind]

    def get(self, kind: str, name: str, *, load: bool = True) -> Any:
        """The object registered as ``name``.

        ``load=False``: the same checks, but a built-in named by path stays an
        :class:`ImportPath` (not imported).

        Raises:
            PluginError: the name is unavailable (a conflict, an invalid object), or it is not
                registered and a plugin kept out or broken may be the one that provides it.
            KeyError: no plugin registered the name, and none could have.
        """
        if name in self.objects[kind]:
            obj = self.objects[kind][name]
            return self._load(kind, name, obj) if load and isinstance(obj, ImportPath) else obj
        if name in self.unavailable[kind]:
            raise PluginError(self.unavailable[kind][name])
        raise self._missing(kind, name)

    def _load(self, kind: str, name: str, path: ImportPath) -> Any:
        """Import a built-in's object named by its path, validate it, and keep it."""
        obj = path.load()
        problem = _BY_KEY[kind].validate(obj)
        if problem is not None:  # a bug in modelreg itself; said as plainly as a plugin's
            raise PluginError(f"built-in {_BY_KEY[kind].label} {name!r} ({path!r}): {problem}")
        self.objects[kind][name] = obj
        return obj

    def loaded(self, kind: str) -> dict[str, Any]:
        """Every usable object of one kind by name, built-ins named by path imported."""
        return {name: self.get(kind, name) for name in self.objects[kind]}

    def _missing(self, kind: str, name: str) -> Exception:
        kept_out = [p for p in self.plugins if p.disabled_by]
        broken = [p for p in self.plugins if p.incomplete]
        if not kept_out and not broken:
            return KeyError(name)
        causes = []
        if kept_out:
            causes.append(
                "an installed plugin that was kept out: "
                + "; ".join(f"{p.label}, {kept_out_by(p)}" for p in kept_out)
                + f"; let it load if it provides {name!r}"
            )
        if broken:
            causes.append(
                "a plugin with problems: "
                + "; ".join(f"{p.label}: {'; '.join(p.incomplete)}" for p in broken)
            )
        label = _BY_KEY[kind].label
        return PluginError(
            f"{label} {name!r} is not registered.{did_you_mean(name, self.names(kind))} It may "
            f"come from {'; or from '.join(causes)}. See `modelreg plugins`."
        )

    def names(self, kind: str) -> list[str]:
        """Usable names of one kind, sorted."""
        return sorted(self.objects[kind])

    def registered_as(self, kind: str, obj: Any) -> tuple[str, PluginInfo] | None:
        """The name ``obj`` is registered under and its plugin, or None.

        A built-in named by path is imported only if its module is (else ``obj`` is not it).
        """
        for name, candidate in list(self.objects[kind].items()):
            if isinstance(candidate, ImportPath) and candidate.loaded():
                candidate = self.get(kind, name)
            if candidate is obj:
                return name, self.owner[kind][name]
        return None


def kept_out_by(plugin: PluginInfo) -> str:
    """``kept out by env MODELREG_PLUGINS, which does not list it`` for messages."""
    from registry.plugin_selection import BLOCK_VARIABLE  # loaded with the installed plugins

    if BLOCK_VARIABLE in (plugin.disabled_by or ""):
        return f"kept out by {plugin.disabled_by}"
    return f"kept out by {plugin.disabled_by}, which does not list it"


def settle(plugins: dict[str, PluginInfo], claims: list[Claim]) -> Registrations:
    """Apply the module's rules to every claim; record problems on the plugins involved."""
    registrations = Registrations(list(plugins.values()))
    groups: dict[tuple[str, str], list[Claim]] = {}
    for claim in claims:
        groups.setdefault((claim.kind, claim.name), []).append(claim)
    for (kind_key, name), group in groups.items():
        kind = _BY_KEY[kind_key]
        if kind.layered:
            _layer(kind, name, group, plugins, registrations)
            continue
        builtin = [c for c in group if plugins[c.plugin].builtin]
        if builtin:
            for claim in group:
                if not plugins[claim.plugin].builtin:
                    plugins[claim.plugin].fail(
                        f"{kind.label} {name!r}: refused, the name is built in "
                        f"({plugins[builtin[0].plugin].label}); register another name and "
                        "select it in settings"
                    )
            group = builtin
        distinct = list({(c.plugin, _identity(c.obj)): c for c in group}.values())
        if len(distinct) > 1:
            _conflict(kind, name, distinct, plugins, registrations)
            continue
        claim = distinct[0]
        owner = plugins[claim.plugin]
        deferred = owner.builtin and isinstance(claim.obj, ImportPath)
        problem = None if deferred else kind.validate(claim.obj)
        if problem is not None:
            owner.fail(f"{kind.label} {name!r}: {problem}")
            registrations.unavailable[kind.key][name] = (
                f"plugin {owner.label} registered an invalid {kind.label} {name!r}: {problem}"
            )
            continue
        registrations.objects[kind.key][name] = claim.obj
        registrations.owner[kind.key][name] = owner
        owner.registered[kind.key].append(name)
    return registrations


def _layer(
    kind: Kind,
    name: str,
    claims: list[Claim],
    plugins: dict[str, PluginInfo],
    registrations: Registrations,
) -> None:
    """Built-in entries first, then one plugin's; two plugins on one name void both of theirs."""
    builtin = [c for c in claims if plugins[c.plugin].builtin]
    others = [c for c in claims if not plugins[c.plugin].builtin]
    if len({c.plugin for c in others}) > 1:
        _conflict(kind, name, others, plugins, registrations)
        others = []
    for claim in builtin + others:
        info = plugins[claim.plugin]
        problem = kind.validate(claim.obj)
        if problem is not None:
            info.fail(f"{kind.label} {name!r}: {problem}")
            continue
        registrations.layers[kind.key].append(Layer(name, claim.obj, info.label, info.builtin))
        info.registered[kind.key].append(name)


def _conflict(
    kind: Kind,
    name: str,
    claims: list[Claim],
    plugins: dict[str, PluginInfo],
    registrations: Registrations,
) -> None:
    owners = sorted({c.plugin for c in claims})
    if len(owners) == 1:
        plugins[owners[0]].fail(
            f"{kind.label} {name!r} is registered twice, with different objects: neither is used"
        )
        registrations.unavailable[kind.key][name] = (
            f"plugin {plugins[owners[0]].label} registers {kind.label} {name!r} twice, with "
            "different objects, so neither is used. Fix the plugin."
        )
        return
    from registry.plugin_selection import BLOCK_VARIABLE

    for owner in owners:
        others = ", ".join(plugins[o].label for o in owners if o != owner)
        plugins[owner].fail(
            f"{kind.label} {name!r} is also registered by {others}: neither is used"
        )
    registrations.unavailable[kind.key][name] = (
        f"{kind.label} {name!r} is registered by {len(owners)} plugins: "
        f"{' and '.join(plugins[o].label for o in owners)}. Neither is used: which one ran "
        "would depend on install order. Uninstall one, or keep one out with "
        f"{BLOCK_VARIABLE}=<its name>."
    )

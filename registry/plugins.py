"""The plugin manager: built-in plugins, entry-point discovery and what each plugin registered.

Built-ins (:data:`DEFAULT_PLUGINS`) come in through the same hooks a third party uses. Third-party
plugins are found in the ``modelreg`` entry-point group, and only loaded when a name is not
provided by a built-in (or when ``modelreg plugins`` lists them). ``MODELREG_PLUGINS`` (comma
list; empty: none) limits which load, ``MODELREG_DISABLE_PLUGINS`` blocks named ones. Each
plugin's hook is called on its own, so a plugin that fails to import, raises, or registers a bad
object is recorded with its distribution and version and affects only the names it would provide.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from registry import hookspecs
from registry.errors import PluginError

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginInfo",
    "Registrations",
    "get_plugin_host",
]

DEFAULT_PLUGINS: tuple[str, ...] = ("backends.builtin", "registry.secret_stores")
ENTRY_POINT_GROUP = "modelreg"
_KINDS = ("backends", "token_counters", "client_providers", "settings_sources")


@dataclass
class PluginInfo:
    """One plugin as ``modelreg plugins`` shows it."""

    name: str
    builtin: bool
    distribution: str | None = None
    version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in _KINDS})
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``name (distribution version)`` for messages."""
        if self.distribution:
            return f"{self.name} ({self.distribution} {self.version or '?'})"
        return self.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "builtin": self.builtin,
            "distribution": self.distribution,
            "version": self.version,
            **{kind: list(names) for kind, names in self.registered.items()},
            "errors": list(self.errors),
        }


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
    return None


def _check_token_counter(obj: Any) -> str | None:
    return None if callable(obj) else f"{obj!r} is not callable (a factory taking the model name)"


def _check_client_provider(obj: Any) -> str | None:
    if callable(getattr(obj, "sync_client", None)) or callable(getattr(obj, "async_client", None)):
        return None
    return f"{obj!r} has neither a sync_client(spec) nor an async_client(spec) method"


def _check_settings_source(obj: Any) -> str | None:
    from registry.secret_stores import SettingsSource

    if isinstance(obj, SettingsSource):
        return None
    return f"{obj!r} is not a registry.secret_stores.SettingsSource"


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "backends": _check_backend,
    "token_counters": _check_token_counter,
    "client_providers": _check_client_provider,
    "settings_sources": _check_settings_source,
}


class Registrations:
    """Everything the loaded plugins registered, by kind and name, with failures kept apart."""

    def __init__(self, plugins: list[PluginInfo], entry_points_loaded: bool) -> None:
        self.plugins = plugins
        self.entry_points_loaded = entry_points_loaded
        self.objects: dict[str, dict[str, Any]] = {kind: {} for kind in _KINDS}
        self.owner: dict[str, dict[str, PluginInfo]] = {kind: {} for kind in _KINDS}
        self.failed: dict[str, dict[str, str]] = {kind: {} for kind in _KINDS}

    def get(self, kind: str, name: str) -> Any:
        """The object registered as ``name``; PluginError if a plugin failed to provide it."""
        if name in self.objects[kind]:
            return self.objects[kind][name]
        if name in self.failed[kind]:
            raise PluginError(self.failed[kind][name])
        broken = [p for p in self.plugins if p.errors and not p.builtin]
        if broken:
            causes = "; ".join(f"{p.label}: {p.errors[0]}" for p in broken)
            raise PluginError(
                f"{kind[:-1].replace('_', ' ')} {name!r} is not registered, and plugins failed to "
                f"load: {causes}. Fix or uninstall them (see `modelreg plugins`)."
            )
        raise KeyError(name)

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self.objects[kind])


class _TrackingPluginManager(pluggy.PluginManager):
    """A PluginManager that lets the host know when plugins come and go."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self._on_change = on_change

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        result = super().register(plugin, name)
        self._on_change()
        return result

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        result = super().unregister(plugin, name)
        self._on_change()
        return result


def _plugin_filters() -> tuple[set[str] | None, set[str]]:
    """``MODELREG_PLUGINS`` (None: no limit) and ``MODELREG_DISABLE_PLUGINS``, env then .env."""
    from registry.options import process_options

    options = process_options().values
    allowed = set(options.plugins) if options.plugins is not None else None
    return allowed, set(options.disable_plugins)


class PluginHost:
    """Owns the pluggy manager; loads built-ins and entry points on demand; caches registrations."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.pm = _TrackingPluginManager(self._invalidate)
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._builtins_loaded = False
        self._entry_points_loaded = False
        self._cache: Registrations | None = None

    def _invalidate(self) -> None:
        self._cache = None

    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            self._infos[module_name] = PluginInfo(module_name, builtin=True)
            self.pm.register(module, name=module_name)

    def load_entry_points(self) -> None:
        """Import the ``modelreg`` entry points allowed by MODELREG_PLUGINS / _DISABLE_PLUGINS."""
        with self._lock:
            if self._entry_points_loaded:
                return
            self._load_builtins()
            self._entry_points_loaded = True
            from importlib.metadata import entry_points

            allowed, blocked = _plugin_filters()
            for entry_point in entry_points(group=ENTRY_POINT_GROUP):
                dist = entry_point.dist
                dist_name = dist.metadata["Name"] if dist is not None else None
                names = {entry_point.name, dist_name} - {None}
                if allowed is not None and not names & allowed:
                    continue
                if names & blocked or self.pm.has_plugin(entry_point.name):
                    continue
                info = PluginInfo(
                    entry_point.name,
                    builtin=False,
                    distribution=dist_name,
                    version=dist.version if dist is not None else None,
                )
                self._infos[entry_point.name] = info
                try:
                    plugin = entry_point.load()
                    self.pm.register(plugin, name=entry_point.name)
                except Exception as exc:
                    info.errors.append(f"failed to load: {type(exc).__name__}: {exc}")
            self._invalidate()

    def registrations(self, *, with_entry_points: bool = False) -> Registrations:
        """What every loaded plugin registered (loading entry points first if asked)."""
        with self._lock:
            self._load_builtins()
            if with_entry_points:
                self.load_entry_points()
            if self._cache is None:
                self._cache = self._collect()
            return self._cache

    def _info(self, name: str) -> PluginInfo:
        if name not in self._infos:
            self._infos[name] = PluginInfo(name, builtin=False)
        return self._infos[name]

    def _collect(self) -> Registrations:
        for info in self._infos.values():
            info.registered = {kind: [] for kind in _KINDS}
            info.errors = [e for e in info.errors if e.startswith("failed to load")]
        registrations = Registrations([], self._entry_points_loaded)
        impls_by_kind = {
            kind: getattr(self.pm.hook, f"modelreg_register_{kind}").get_hookimpls()
            for kind in _KINDS
        }
        # Built-ins first, so a third party can never take a built-in's name.
        for kind, impls in impls_by_kind.items():
            ordered = sorted(impls, key=lambda impl: not self._info(impl.plugin_name).builtin)
            for impl in ordered:
                self._call(kind, impl, registrations)
        registrations.plugins = sorted(
            (
                i
                for i in self._infos.values()
                if i.builtin or self.pm.has_plugin(i.name) or i.errors
            ),
            key=lambda i: (not i.builtin, i.name),
        )
        return registrations

    def _call(self, kind: str, impl: Any, registrations: Registrations) -> None:
        info = self._info(impl.plugin_name)
        pending: list[tuple[str, Any]] = []

        def register(name: str, obj: Any) -> None:
            pending.append((name, obj))

        try:
            impl.function(register=register)
        except Exception as exc:
            message = f"modelreg_register_{kind} raised {type(exc).__name__}: {exc}"
            info.errors.append(message)
            return
        for name, obj in pending:
            problem = _CHECKS[kind](obj) if isinstance(name, str) and name else "empty name"
            owner = registrations.owner[kind].get(name)
            if problem is None and owner is not None:
                problem = f"name {name!r} is already registered by {owner.label}"
            if problem is not None:
                info.errors.append(f"{kind[:-1].replace('_', ' ')} {name!r}: {problem}")
                if owner is None:
                    registrations.failed[kind][name] = (
                        f"plugin {info.label} registered an invalid {kind[:-1].replace('_', ' ')} "
                        f"{name!r}: {problem}"
                    )
                continue
            registrations.objects[kind][name] = obj
            registrations.owner[kind][name] = info
            info.registered[kind].append(name)

    def lookup(self, kind: str, name: str) -> Any:
        """Find ``name``: built-ins first, then (loading them now) the entry-point plugins."""
        try:
            return self.registrations().get(kind, name)
        except KeyError:
            if self._entry_points_loaded:
                raise
        return self.registrations(with_entry_points=True).get(kind, name)

    def names(self, kind: str) -> list[str]:
        """Every name of one kind, entry-point plugins included."""
        return self.registrations(with_entry_points=True).names(kind)

    def objects(self, kind: str) -> dict[str, Any]:
        """Every object of one kind by name, entry-point plugins included."""
        return dict(self.registrations(with_entry_points=True).objects[kind])

    def plugins(self) -> list[PluginInfo]:
        """Every plugin (built-in, installed, failed), for ``modelreg plugins``."""
        return self.registrations(with_entry_points=True).plugins

    def backend(self, name: str) -> Any:
        """BackendCatalog: the backend class registered as ``name``."""
        return self.lookup("backends", name)

    def backend_names(self) -> list[str]:
        """BackendCatalog: every registered backend name."""
        return self.names("backends")


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_plugin_host() -> PluginHost:
    """The process-wide plugin host, created on first use (never at import)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost()
        return _host


def reset_plugin_host() -> None:
    """Forget loaded plugins (tests; or after installing a plugin in a running process)."""
    global _host
    with _host_lock:
        _host = None


def describe(items: Iterable[str]) -> str:
    """Comma list, or ``none``."""
    items = list(items)
    return ", ".join(items) if items else "none"

"""The plugin host: built-in plugins, entry-point discovery, and each plugin's hooks called alone.

Built-ins (:data:`DEFAULT_PLUGINS`) come in through the same hooks a third party uses. Third-party
plugins are found in the ``modelreg`` entry-point group and only imported when a name is not
provided by a built-in (or when ``modelreg plugins`` lists them); :mod:`registry.plugin_selection`
decides which may load, and the ones kept out are blocked in pluggy (``set_blocked``) and listed
as disabled. Each plugin's hook implementation is called on its own, so a plugin that fails to
import, raises, misspells a hook or registers a bad object is recorded with its distribution and
version and affects only the names it would provide. What the calls registered is settled by
:mod:`registry.registrations` (a name registered twice is unavailable).
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING, Any

import pluggy

from registry import hookspecs
from registry.errors import PluginWarning, did_you_mean
from registry.registrations import (
    KINDS,
    Claim,
    Kind,
    Layer,
    PluginInfo,
    Registrations,
    settle,
)

if TYPE_CHECKING:  # imported when entry points are loaded: a built-in's name never needs it
    from registry.plugin_selection import PluginSelection

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginInfo",
    "Registrations",
    "get_plugin_host",
    "reset_plugin_host",
]

DEFAULT_PLUGINS: tuple[str, ...] = (
    "backends.builtin",
    "registry.secret_stores",
    "registry.routing.builtin",
)
ENTRY_POINT_GROUP = "modelreg"
_HOOK_NAMES = tuple(kind.hook for kind in KINDS)


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

    def set_blocked(self, name: str) -> None:
        super().set_blocked(name)
        self._on_change()


class PluginHost:
    """Owns the pluggy manager; loads built-ins and entry points on demand; caches registrations.

    Args:
        entry_points: False keeps installed plugins out entirely (:mod:`registry.testing`).
        selection: which installed plugins may load; default: read from the environment when
            entry points are first loaded.
    """

    def __init__(
        self, *, entry_points: bool = True, selection: PluginSelection | None = None
    ) -> None:
        self._lock = threading.RLock()
        self.pm = _TrackingPluginManager(self._invalidate)
        self.pm.add_hookspecs(hookspecs)
        self._use_entry_points = entry_points
        self._selection = selection
        self._infos: dict[str, PluginInfo] = {}
        self._builtins_loaded = False
        self._entry_points_loaded = False
        #: Registrations without / with the layered kinds (capabilities: read only when needed).
        self._cache: dict[bool, Registrations] = {}
        #: Problems with MODELREG_PLUGINS / MODELREG_DISABLE_PLUGINS (also issued as warnings).
        self.selection_warnings: list[str] = []

    def _invalidate(self) -> None:
        self._cache = {}

    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            self._infos[module_name] = PluginInfo(module_name, builtin=True)
            self.pm.register(module, name=module_name)

    def load_entry_points(self) -> None:
        """Import the ``modelreg`` entry points the selection allows; block the others."""
        with self._lock:
            if self._entry_points_loaded:
                return
            self._load_builtins()
            self._entry_points_loaded = True
            if self._use_entry_points:
                from importlib.metadata import entry_points

                from registry.plugin_selection import read_selection

                found = list(entry_points(group=ENTRY_POINT_GROUP))
                selection = self._selection or read_selection()
                for entry_point in found:
                    self._load_entry_point(entry_point, selection)
                installed = {ep.name for ep in found} | {_distribution(ep)[0] or "" for ep in found}
                self.selection_warnings = selection.unknown_names(installed - {""}, DEFAULT_PLUGINS)
            self._invalidate()
        for message in self.selection_warnings:  # last: under -W error, loading is complete
            warnings.warn(message, PluginWarning, stacklevel=2)

    def _load_entry_point(self, entry_point: EntryPoint, selection: PluginSelection) -> None:
        dist_name, version = _distribution(entry_point)
        name = entry_point.name
        if self.pm.has_plugin(name) and name not in self._infos:
            return  # registered by hand under this name (a test): that one is used
        if name in self._infos:  # two distributions chose the same entry-point name
            name = f"{name}[{dist_name}]"
        info = PluginInfo(name, builtin=False, distribution=dist_name, version=version)
        self._infos[name] = info
        info.disabled_by = selection.kept_out_by({entry_point.name, dist_name or name})
        if info.disabled_by is not None:
            self.pm.set_blocked(name)
            return
        try:
            self.pm.register(entry_point.load(), name=name)
        except Exception as exc:
            info.fail(f"failed to load: {type(exc).__name__}: {exc}", incomplete=True)

    def registrations(
        self, *, with_entry_points: bool = False, layered: bool = False
    ) -> Registrations:
        """What every loaded plugin registered (loading entry points first if asked).

        ``layered``: include the layered kinds (capabilities), whose built-in table is only
        read when a model's capabilities are needed.
        """
        with self._lock:
            self._load_builtins()
            if with_entry_points:
                self.load_entry_points()
            if layered not in self._cache:
                kinds = KINDS if layered else tuple(k for k in KINDS if not k.layered)
                self._cache[layered] = self._collect(kinds)
            return self._cache[layered]

    def _collect(self, kinds: tuple[Kind, ...]) -> Registrations:
        infos = {
            name: replace(
                base,
                registered={kind.key: [] for kind in KINDS},
                errors=list(base.errors),
                incomplete=list(base.incomplete),
            )
            for name, base in self._infos.items()
        }
        claims: list[Claim] = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is not None:  # None: blocked
                info = infos.setdefault(name, PluginInfo(name, builtin=False))
                _check_hooks(self.pm, plugin, info)
        for kind in kinds:
            # pluggy's call order (tryfirst/trylast); the outcome does not depend on it.
            for impl in reversed(getattr(self.pm.hook, kind.hook).get_hookimpls()):
                if not (impl.hookwrapper or impl.wrapper):
                    claims += _call(kind, impl, infos[impl.plugin_name])
        shown = {
            name: info
            for name, info in sorted(infos.items(), key=lambda item: (not item[1].builtin, item[0]))
            if info.builtin or self.pm.has_plugin(name) or info.errors or info.disabled_by
        }
        return settle(shown, claims)

    def lookup(self, kind: str, name: str, *, load: bool = True) -> Any:
        """Find ``name``: a built-in's without loading installed plugins, else after loading them.

        ``load=False``: check only; a built-in registered by path is not imported (an
        :class:`~registry.registrations.ImportPath` is returned for it).

        Raises PluginError when the name is unavailable or may be provided by a plugin that was
        kept out or broken, KeyError when nothing registered it.
        """
        layered = kind in _LAYERED
        registrations = self.registrations(layered=layered)
        owner = registrations.owner[kind].get(name)
        if owner is None or not owner.builtin:  # a plugin's name may be claimed twice
            registrations = self.registrations(with_entry_points=True, layered=layered)
        return registrations.get(kind, name, load=load)

    def names(self, kind: str) -> list[str]:
        """Every usable name of one kind, entry-point plugins included."""
        return self.registrations(with_entry_points=True, layered=kind in _LAYERED).names(kind)

    def objects(self, kind: str) -> dict[str, Any]:
        """Every usable object of one kind by name, entry-point plugins included."""
        registrations = self.registrations(with_entry_points=True, layered=kind in _LAYERED)
        return registrations.loaded(kind)

    def layers(self, kind: str) -> list[Layer]:
        """The entries of a layered kind (capabilities), built-ins first, plugins loaded."""
        return list(self.registrations(with_entry_points=True, layered=True).layers[kind])

    def plugins(self) -> list[PluginInfo]:
        """Every plugin (built-in, installed, disabled, failed), for ``modelreg plugins``."""
        return self.registrations(with_entry_points=True, layered=True).plugins

    def registered_as(self, kind: str, obj: Any) -> tuple[str, PluginInfo] | None:
        """The name ``obj`` is registered under and its plugin (among those loaded), or None."""
        return self.registrations().registered_as(kind, obj)

    def backend(self, name: str) -> Any:
        """BackendCatalog: the backend class registered as ``name``."""
        return self.lookup("backends", name)

    def backend_names(self) -> list[str]:
        """BackendCatalog: every registered backend name."""
        return self.names("backends")


def _distribution(entry_point: EntryPoint) -> tuple[str | None, str | None]:
    dist = entry_point.dist
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _check_hooks(pm: pluggy.PluginManager, plugin: Any, info: PluginInfo) -> None:
    """Report hooks pluggy would never call, each as an error of this plugin alone.

    Misspelt names (the rule of pluggy's ``check_pending``, which raises on the first one it
    finds in any plugin), wrappers, and ``modelreg_*`` functions without ``@hookimpl``.
    """
    impls = [
        (caller, impl)
        for caller in pm.get_hookcallers(plugin) or []
        for impl in caller.get_hookimpls()
        if impl.plugin is plugin
    ]
    problems = [
        f"unknown hook {caller.name!r}, never called.{did_you_mean(caller.name, _HOOK_NAMES)} "
        f"Hooks: {', '.join(_HOOK_NAMES)}"
        for caller, impl in impls
        if not caller.has_spec() and not impl.optionalhook
    ]
    problems += [
        f"{caller.name} is a hook wrapper, never called: a wrapper around other plugins' "
        "registrations could change them; use a plain @hookimpl"
        for caller, impl in impls
        if caller.has_spec() and (impl.hookwrapper or impl.wrapper)
    ]
    problems += [
        f"{attribute} is not decorated with @registry.hookimpl, so it is never called"
        for attribute in dir(plugin)
        if attribute.startswith("modelreg_")
        and callable(getattr(plugin, attribute, None))
        and pm.parse_hookimpl_opts(plugin, attribute) is None
    ]
    for problem in problems:
        info.fail(problem, incomplete=True)


_LAYERED = frozenset(kind.key for kind in KINDS if kind.layered)


def _call(kind: Kind, impl: Any, info: PluginInfo) -> list[Claim]:
    """Call one plugin's hook for ``kind``; what it registered, or [] if it raised."""
    pending: list[Claim] = []

    def register(name: str, obj: Any) -> None:
        if isinstance(name, str) and name:
            pending.append(Claim(kind.key, name, obj, info.name))
        else:
            info.fail(f"{kind.label} {name!r}: a name must be a non-empty string")

    arguments = {"register": register}
    try:
        impl.function(*(arguments[name] for name in impl.argnames))
    except Exception as exc:
        info.fail(f"{kind.hook} raised {type(exc).__name__}: {exc}", incomplete=True)
        return []
    return pending


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
    set_plugin_host(None)


def set_plugin_host(host: PluginHost | None) -> PluginHost | None:
    """Make ``host`` the process-wide one (None: a fresh one on next use); return the previous."""
    global _host
    with _host_lock:
        previous, _host = _host, host
        return previous

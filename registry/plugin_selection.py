"""Which installed plugins may load: ``MODELREG_PLUGINS`` and ``MODELREG_DISABLE_PLUGINS``.

A name in either list matches an entry point's name or its distribution's name, compared as pip
compares distribution names (case-insensitive, ``-``, ``_`` and ``.`` alike), so ``example``,
``modelreg-example-plugin`` and ``modelreg_example_plugin`` all select the example plugin. A plugin
named in both lists stays out. A name that matches no installed plugin is reported with a
did-you-mean, since a typo there would otherwise silently load (or keep out) the wrong plugins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from registry.errors import did_you_mean

__all__ = ["ALLOW_VARIABLE", "BLOCK_VARIABLE", "PluginSelection", "read_selection"]

ALLOW_VARIABLE = "MODELREG_PLUGINS"
BLOCK_VARIABLE = "MODELREG_DISABLE_PLUGINS"


def normalise(name: str) -> str:
    """A plugin or distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PluginSelection:
    """The allow-list (None: every installed plugin) and the block-list, as written.

    ``origins`` says where each variable was set (``env MODELREG_PLUGINS``, ``.env
    (MODELREG_PLUGINS)``), for messages.
    """

    allowed: tuple[str, ...] | None = None
    blocked: tuple[str, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)

    def kept_out_by(self, names: Iterable[str]) -> str | None:
        """Where the variable that keeps out a plugin known by ``names`` was set, or None."""
        keys = {normalise(name) for name in names}
        if keys & {normalise(name) for name in self.blocked}:
            return self.origins.get(BLOCK_VARIABLE, BLOCK_VARIABLE)
        if self.allowed is not None and not keys & {normalise(n) for n in self.allowed}:
            return self.origins.get(ALLOW_VARIABLE, ALLOW_VARIABLE)
        return None

    def unknown_names(self, installed: Iterable[str], builtins: Iterable[str]) -> list[str]:
        """One message per listed name that matches no installed plugin or distribution."""
        installed = sorted(set(installed))
        known = {normalise(name) for name in installed}
        builtin = {normalise(name) for name in builtins}
        messages = []
        for variable, names in (
            (ALLOW_VARIABLE, self.allowed or ()),
            (BLOCK_VARIABLE, self.blocked),
        ):
            for name in names:
                if normalise(name) in known:
                    continue
                if normalise(name) in builtin:
                    if variable == BLOCK_VARIABLE:
                        messages.append(
                            f"{variable} names the built-in plugin {name!r}: built-ins cannot "
                            "be disabled (settings choose which backends models use)."
                        )
                    continue
                messages.append(
                    f"{variable} names {name!r}, which is no installed modelreg plugin (entry "
                    f"point or distribution).{did_you_mean(name, installed)} Installed: "
                    f"{', '.join(installed) or 'none'}."
                )
        return messages


def read_selection() -> PluginSelection:
    """The selection this process asks for: the environment, then the ``.env`` file.

    Read through :func:`registry.options.process_options`, like every other option.
    """
    from registry.options import process_options

    loaded = process_options()
    plugins = loaded.get("plugins")
    allowed = tuple(plugins) if plugins is not None else None
    origins = {
        ALLOW_VARIABLE: loaded.origin("plugins"),
        BLOCK_VARIABLE: loaded.origin("disable_plugins"),
    }
    return PluginSelection(allowed, tuple(loaded.get("disable_plugins") or ()), origins)

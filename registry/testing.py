"""Helpers for testing plugins: a plugin registered for one test, installed plugins kept out.

::

    import modelreg_acme
    from registry.testing import use_plugins

    def test_acme_backend():
        with use_plugins(modelreg_acme):
            ...  # create_model / ModelRegistry see the built-ins and modelreg_acme only

It works whether or not the plugin is also installed, and whether or not installed plugins were
already loaded in this process: the block gets a plugin host of its own. It does not import
pytest; for a fixture, ``yield`` inside the ``with``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from registry.errors import PluginError
from registry.plugins import PluginHost, set_plugin_host

__all__ = ["use_plugins"]


@contextmanager
def use_plugins(
    *plugins: Any, entry_points: bool = False, strict: bool = True
) -> Iterator[PluginHost]:
    """Inside the block, models see the built-in plugins and ``plugins``, and nothing else.

    The process-wide plugin host is replaced for the block (in every thread: run such tests one
    at a time, or in separate processes) and restored after it. Models created inside keep
    their objects after the block.

    Args:
        plugins: modules or objects with ``@hookimpl`` functions, each registered under its
            ``__name__`` (a module) or its class name.
        entry_points: also load the installed plugins (``MODELREG_PLUGINS`` and
            ``MODELREG_DISABLE_PLUGINS`` apply), to test them together.
        strict: raise :class:`PluginError` on entering if a plugin has a problem (a misspelt
            hook, an invalid object, a name another plugin also registers), rather than let
            the test fail later with a less direct error. False lets a test examine the
            problems through the yielded host's ``plugins()``.

    Yields:
        The block's plugin host.
    """
    host = PluginHost(entry_points=entry_points)
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        while host.pm.has_plugin(name):  # two objects of one class
            name += "+"
        host.pm.register(plugin, name=name)
    if strict:
        problems = [f"{p.label}: {error}" for p in host.plugins() for error in p.errors]
        if problems:
            raise PluginError("use_plugins: " + "; ".join(problems))
    previous = set_plugin_host(host)
    try:
        yield host
    finally:
        set_plugin_host(previous)

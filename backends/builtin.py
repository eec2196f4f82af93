"""The built-in plugin: registers modelreg's own backends, token counters and capability table.

It is loaded from :data:`registry.plugins.DEFAULT_PLUGINS` through the same hooks a third-party
plugin implements. It imports no backend: backends are registered by where they live
(:class:`~registry.registrations.ImportPath`, a built-in's privilege), and so are the token
counters, so a first request imports the
backend its model uses and nothing else (a fresh ``azure`` model never imports the ``openai`` or
``fake`` backends, nor the token counting code unless it counts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from registry.hookspecs import RegisterCapabilities, hookimpl
from registry.registrations import ImportPath

__all__ = [
    "BUILTIN_BACKENDS",
    "BUILTIN_TOKEN_COUNTERS",
    "modelreg_register_backends",
    "modelreg_register_capabilities",
    "modelreg_register_token_counters",
]


#: Backend name -> (module, class): imported when a model first uses the name.
BUILTIN_BACKENDS = {
    "azure": ("backends.azure", "AzureOpenAIModel"),
    "openai": ("backends.openai_compatible", "OpenAICompatibleModel"),
    "fake": ("backends.fake", "FakeModel"),
}
#: Token counter name -> class in :mod:`backends.token_counting`, imported when first counted.
BUILTIN_TOKEN_COUNTERS = {"openai": "OpenAITokenCounter", "approximate": "ApproximateTokenCounter"}


@hookimpl
def modelreg_register_backends(register: Callable[[str, Any], None]) -> None:
    """Register ``azure``, ``openai`` and ``fake`` by import path (see the module docstring)."""
    for name, (module, attribute) in BUILTIN_BACKENDS.items():
        register(name, ImportPath(module, attribute))


@hookimpl
def modelreg_register_token_counters(register: Callable[[str, Any], None]) -> None:
    """Register ``openai`` (tiktoken, exact for OpenAI models) and ``approximate`` (no download)."""
    for name, attribute in BUILTIN_TOKEN_COUNTERS.items():
        register(name, ImportPath("backends.token_counting", attribute))


@hookimpl
def modelreg_register_capabilities(register: RegisterCapabilities) -> None:
    """Register every family of the shipped table (``backends/data/capabilities.json``)."""
    from backends.capabilities import builtin_entries

    for name, data in builtin_entries().items():
        register(name, data)

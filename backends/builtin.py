"""The built-in plugin: registers modelreg's own backends, token counters and capability table.

It is loaded from :data:`registry.plugins.DEFAULT_PLUGINS` through the same hooks a third-party
plugin implements. Importing it imports the backend modules, which import neither ``openai`` nor
``tiktoken`` (those load on first request / first count).
"""

from __future__ import annotations

from registry.hookspecs import (
    RegisterBackend,
    RegisterCapabilities,
    RegisterTokenCounter,
    hookimpl,
)

__all__ = [
    "modelreg_register_backends",
    "modelreg_register_capabilities",
    "modelreg_register_token_counters",
]


@hookimpl
def modelreg_register_backends(register: RegisterBackend) -> None:
    """Register ``azure``, ``openai`` and ``fake``."""
    from backends.azure import AzureOpenAIModel
    from backends.fake import FakeModel
    from backends.openai_compatible import OpenAICompatibleModel

    register("azure", AzureOpenAIModel)
    register("openai", OpenAICompatibleModel)
    register("fake", FakeModel)


@hookimpl
def modelreg_register_token_counters(register: RegisterTokenCounter) -> None:
    """Register ``openai`` (tiktoken, exact for OpenAI models) and ``approximate`` (no download)."""
    from backends.token_counting import ApproximateTokenCounter, OpenAITokenCounter

    register("openai", OpenAITokenCounter)
    register("approximate", ApproximateTokenCounter)


@hookimpl
def modelreg_register_capabilities(register: RegisterCapabilities) -> None:
    """Register every family of the shipped table (``backends/data/capabilities.json``)."""
    from backends.capabilities import builtin_entries

    for name, data in builtin_entries().items():
        register(name, data)

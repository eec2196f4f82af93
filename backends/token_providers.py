"""Named Entra ID token providers for ``azure_ad_token_provider = "<name>"`` in settings.

``azure-identity`` uses :class:`azure.identity.DefaultAzureCredential` (and its ``aio``
counterpart for the async client) with the Cognitive Services scope. It needs the optional
extra: ``pip install 'modelreg[azure-identity]'``. The credential is created on the first
token request, so building a model does no I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from registry.errors import ConfigError, did_you_mean

__all__ = [
    "COGNITIVE_SERVICES_SCOPE",
    "PROVIDER_NAMES",
    "UNKNOWN_PROVIDER",
    "AsyncAzureIdentityTokenProvider",
    "AzureIdentityTokenProvider",
    "named_token_providers",
]

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
PROVIDER_NAMES = ("azure-identity",)
UNKNOWN_PROVIDER = (
    f"not a known token provider (the value is not shown). Known: {', '.join(PROVIDER_NAMES)}; "
    "in code, pass a callable as azure_ad_token_provider=."
)


class AzureIdentityTokenProvider:
    """Sync provider: a bearer token from ``DefaultAzureCredential`` on every call."""

    def __init__(self, scope: str = COGNITIVE_SERVICES_SCOPE) -> None:
        self.scope = scope
        self._provider: Callable[[], str] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """A fresh (or cached-by-azure-identity) bearer token."""
        if self._provider is None:
            with self._lock:
                if self._provider is None:
                    from azure.identity import (  # type: ignore[import-not-found, unused-ignore]
                        DefaultAzureCredential,
                        get_bearer_token_provider,
                    )

                    self._provider = get_bearer_token_provider(DefaultAzureCredential(), self.scope)
        token: str = self._provider()
        return token

    def __repr__(self) -> str:
        return f"AzureIdentityTokenProvider(scope={self.scope!r})"


class AsyncAzureIdentityTokenProvider:
    """Async provider: a bearer token from ``azure.identity.aio.DefaultAzureCredential``."""

    def __init__(self, scope: str = COGNITIVE_SERVICES_SCOPE) -> None:
        self.scope = scope
        self._provider: Callable[[], Any] | None = None

    async def __call__(self) -> str:
        """A fresh (or cached-by-azure-identity) bearer token."""
        if self._provider is None:
            from azure.identity.aio import (  # type: ignore[import-not-found, unused-ignore]
                DefaultAzureCredential,
                get_bearer_token_provider,
            )

            self._provider = get_bearer_token_provider(DefaultAzureCredential(), self.scope)
        token: str = await self._provider()
        return token

    def __repr__(self) -> str:
        return f"AsyncAzureIdentityTokenProvider(scope={self.scope!r})"


def named_token_providers(
    name: str, model: str
) -> tuple[AzureIdentityTokenProvider, AsyncAzureIdentityTokenProvider]:
    """The sync and async providers called ``name``; ConfigError if unknown or not installed."""
    if name not in PROVIDER_NAMES:
        raise ConfigError(
            f"model {model!r}, field 'azure_ad_token_provider': {UNKNOWN_PROVIDER}"
            f"{did_you_mean(name, PROVIDER_NAMES)}"
        )
    try:
        import azure.identity  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"model {model!r}, field 'azure_ad_token_provider': 'azure-identity' needs the "
            "azure-identity package. Install it with: pip install 'modelreg[azure-identity]'"
        ) from None
    return AzureIdentityTokenProvider(), AsyncAzureIdentityTokenProvider()

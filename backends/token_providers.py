"""Named Entra ID token providers for ``azure_ad_token_provider = "<name>"`` in settings.

``azure-identity`` uses :class:`azure.identity.DefaultAzureCredential` (and its ``aio``
counterpart for the async client) with the Cognitive Services scope. It needs the optional
extra: ``pip install 'modelreg[azure-identity]'``. The credential is created on the first
token request, so building a model does no I/O.

The providers cache the token until five minutes before it expires (azure-core's own rule), as
``get_bearer_token_provider`` does — but that cache cannot be told to let go, so after a 401 the
retry would resend the token the server just rejected. These providers have ``invalidate()``,
which the Azure backend calls after a 401: the retry then asks the credential itself.
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import TYPE_CHECKING, Any

from registry.errors import ConfigError, did_you_mean
from registry.event_loops import LoopLocal

if TYPE_CHECKING:
    import asyncio

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
#: A cached token is replaced this many seconds before it expires.
REFRESH_MARGIN = 300.0


def _new_lock() -> asyncio.Lock:
    import asyncio  # on first use in a loop, so building a model does not import it

    return asyncio.Lock()


def _usable(token: Any) -> bool:
    return token is not None and token.expires_on - time.time() > REFRESH_MARGIN


class _CachingProvider:
    """What the sync and async providers share: the scope, the credential and the cached token."""

    _module = "azure.identity"

    def __init__(self, scope: str = COGNITIVE_SERVICES_SCOPE, credential: Any = None) -> None:
        self.scope = scope
        self._credential = credential
        self._token: Any = None  # azure.core.credentials.AccessToken

    def invalidate(self) -> None:
        """Forget the cached token (the server rejected it): the next call asks the credential."""
        self._token = None

    def _get_credential(self) -> Any:
        """``DefaultAzureCredential()`` from azure-identity, created on the first token request."""
        if self._credential is None:
            self._credential = importlib.import_module(self._module).DefaultAzureCredential()
        return self._credential

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scope={self.scope!r})"


class AzureIdentityTokenProvider(_CachingProvider):
    """Sync provider: a cached bearer token from ``DefaultAzureCredential``."""

    def __init__(self, scope: str = COGNITIVE_SERVICES_SCOPE, credential: Any = None) -> None:
        super().__init__(scope, credential)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """The cached token, or a new one from the credential when it is near expiry."""
        token = self._token
        if not _usable(token):
            with self._lock:
                token = self._token
                if not _usable(token):
                    token = self._token = self._get_credential().get_token(self.scope)
        return str(token.token)


class AsyncAzureIdentityTokenProvider(_CachingProvider):
    """Async provider: a cached bearer token from ``azure.identity.aio.DefaultAzureCredential``."""

    _module = "azure.identity.aio"

    def __init__(self, scope: str = COGNITIVE_SERVICES_SCOPE, credential: Any = None) -> None:
        super().__init__(scope, credential)
        # One refresh at a time per event loop (500 concurrent calls make one token request).
        self._locks: LoopLocal[asyncio.Lock] = LoopLocal(_new_lock)

    async def __call__(self) -> str:
        """The cached token, or a new one from the credential when it is near expiry."""
        token = self._token
        if not _usable(token):
            async with self._locks.get():
                token = self._token
                if not _usable(token):
                    token = self._token = await self._get_credential().get_token(self.scope)
        return str(token.token)


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

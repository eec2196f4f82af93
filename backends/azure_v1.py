"""SDK clients for Azure's v1 GA surface: ``{endpoint}/openai/v1/``, no ``api-version`` query.

``api_version = "v1"`` selects it. Azure documents the plain ``openai.OpenAI`` client for it,
with the base URL above and the deployment as each request's ``model``:

* Entra ID: the token, or the token provider (a callable ``api_key``, called by the SDK on
  every request), is sent as ``Authorization: Bearer``;
* an API key goes in the ``api-key`` header, as on Azure's other surfaces: the plain client would
  send it as a bearer token, so :class:`AzureV1KeyClient` / :class:`AsyncAzureV1KeyClient` put
  it in ``api-key`` instead (the same two hooks the SDK's own ``AzureOpenAI`` overrides).

Imported when a v1 client is first built (it imports :mod:`openai`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from openai import AsyncOpenAI, OpenAI
from openai._models import SecurityOptions
from openai._types import Headers

__all__ = [
    "AsyncAzureV1KeyClient",
    "AzureV1KeyClient",
    "async_token_provider",
    "token_provider",
    "v1_base_url",
]


def v1_base_url(endpoint: str) -> str:
    """``https://NAME.openai.azure.com`` → ``https://NAME.openai.azure.com/openai/v1/``."""
    return f"{endpoint.rstrip('/')}/openai/v1/"


def _has_key(headers: Headers) -> bool:
    return any(name.lower() == "api-key" for name in headers)


class AzureV1KeyClient(OpenAI):
    """``openai.OpenAI`` sending its ``api_key`` in Azure's ``api-key`` header."""

    def _auth_headers(self, security: SecurityOptions) -> dict[str, str]:
        return {"api-key": self.api_key} if self.api_key else {}

    def _validate_headers(self, headers: Headers, custom_headers: Headers) -> None:
        if not (_has_key(headers) or _has_key(custom_headers)):
            super()._validate_headers(headers, custom_headers)


class AsyncAzureV1KeyClient(AsyncOpenAI):
    """``openai.AsyncOpenAI`` sending its ``api_key`` in Azure's ``api-key`` header."""

    def _auth_headers(self, security: SecurityOptions) -> dict[str, str]:
        return {"api-key": self.api_key} if self.api_key else {}

    def _validate_headers(self, headers: Headers, custom_headers: Headers) -> None:
        if not (_has_key(headers) or _has_key(custom_headers)):
            super()._validate_headers(headers, custom_headers)


def _checked_token(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("azure_ad_token_provider must return a non-empty string (a token)")
    return value


def token_provider(provider: Callable[[], Any]) -> Callable[[], str]:
    """A provider for ``OpenAI(api_key=...)``: called on every request, its token checked."""

    def token() -> str:
        return _checked_token(provider())

    return token


def async_token_provider(provider: Callable[[], Any]) -> Callable[[], Awaitable[str]]:
    """A provider for ``AsyncOpenAI(api_key=...)``, which awaits what it returns.

    Azure accepts sync and async providers for the async client; this takes either.
    """

    async def token() -> str:
        value = provider()
        if inspect.isawaitable(value):
            value = await value
        return _checked_token(value)

    return token

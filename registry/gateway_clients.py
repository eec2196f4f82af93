"""The SDK clients a gateway scope builds: ``openai.OpenAI`` / ``AsyncOpenAI`` with pinned fields.

Every request they send, whatever the endpoint (chat completions, Responses), carries the scope's
headers and body fields, over the request's own (``extra_headers``, ``extra_body``, the model's
config): a framework pins a session header or sampling settings for its whole rollout. They do it
in the SDK's per-request options hook, so retries carry them too. Imported only when a gateway
scope first sends (it imports :mod:`openai`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from openai import AsyncOpenAI, OpenAI
from openai._models import FinalRequestOptions

__all__ = ["AsyncGatewayClient", "GatewayClient"]


def pin(
    options: FinalRequestOptions, headers: Mapping[str, str], body: Mapping[str, Any]
) -> FinalRequestOptions:
    """``options`` with ``headers`` and ``body`` fields set over what the request itself gives."""
    if headers:
        given = options.headers if isinstance(options.headers, Mapping) else {}
        pinned = {name.lower() for name in headers}
        kept = {name: value for name, value in given.items() if name.lower() not in pinned}
        options.headers = {**kept, **headers}
    if body and options.method.lower() == "post" and options.files is None:
        options.extra_json = {**(options.extra_json or {}), **body}
    return options


class GatewayClient(OpenAI):
    """``openai.OpenAI`` whose requests all carry the gateway scope's headers and body fields."""

    def __init__(
        self,
        *,
        pinned_headers: Mapping[str, str] | None = None,
        pinned_body: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._pinned = (dict(pinned_headers or {}), dict(pinned_body or {}))
        defaults = {**(kwargs.pop("default_headers", None) or {}), **self._pinned[0]}
        super().__init__(default_headers=defaults, **kwargs)

    def _prepare_options(self, options: FinalRequestOptions) -> FinalRequestOptions:
        return pin(super()._prepare_options(options), *self._pinned)

    def copy(self, **kwargs: Any) -> Self:
        """The SDK's ``copy``/``with_options``, keeping the pinned fields."""
        copied = super().copy(**kwargs)
        copied._pinned = self._pinned
        return copied

    with_options = copy


class AsyncGatewayClient(AsyncOpenAI):
    """``openai.AsyncOpenAI`` whose requests all carry the scope's headers and body fields."""

    def __init__(
        self,
        *,
        pinned_headers: Mapping[str, str] | None = None,
        pinned_body: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._pinned = (dict(pinned_headers or {}), dict(pinned_body or {}))
        defaults = {**(kwargs.pop("default_headers", None) or {}), **self._pinned[0]}
        super().__init__(default_headers=defaults, **kwargs)

    async def _prepare_options(self, options: FinalRequestOptions) -> FinalRequestOptions:
        return pin(await super()._prepare_options(options), *self._pinned)

    def copy(self, **kwargs: Any) -> Self:
        """The SDK's ``copy``/``with_options``, keeping the pinned fields."""
        copied = super().copy(**kwargs)
        copied._pinned = self._pinned
        return copied

    with_options = copy

"""Gateway overrides: ``override_clients(base_url=, api_key=, default_headers=, extra_body=)``.

The RL-gateway shape (rLLM's ``…/sessions/{sid}/v1``, SkyRL's ``X-Session-ID`` header): every
call in the scope goes to one OpenAI-compatible server with the scope's key, headers and body
fields, whatever model made it and in whichever API mode, without the framework building
clients. The scope builds ``openai.OpenAI`` / ``AsyncOpenAI`` clients
(:mod:`registry.gateway_clients`) on first use, on HTTP clients shared by every gateway scope on
the same server (:class:`~registry.pools.HttpClientPool`, one per event loop for async ones), so
thousands of short scopes reuse a handful of connections, and each model's ``timeout`` still
bounds an attempt (:mod:`registry.http_clients`).

The URL is checked like a ``base_url`` setting, the key like a credential, header values like
any header: problems are named, values never shown. The key and header values never appear in
a repr or message.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from registry.endpoints import check_base_url
from registry.masking import PUBLIC_HEADERS, Redacted, mask_url, redact
from registry.pools import HttpClientPool
from registry.validation import checked, non_finite_paths
from registry.wire import check_header_values, credential_secret

__all__ = ["Gateway", "gateway_pool"]

#: Sent as the key to a gateway that needs none (the SDK insists on one); never a model's key.
NO_KEY = "no-key-required"
_POOL = HttpClientPool()


def gateway_pool() -> HttpClientPool:
    """The HTTP clients every gateway scope shares, one per server origin (per event loop)."""
    return _POOL


def _headers(value: Any) -> Redacted:
    if value is None:
        return redact({}, key="headers")
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of header names to values, not {type(value).__name__}")
    check_header_values(value)
    return redact(dict(value), key="headers")


def _body(value: Any) -> Redacted:
    if value is None:
        return redact({})
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError("must be a mapping of field names (strings) to JSON values")
    bad = non_finite_paths(value)
    if bad:
        raise ValueError(f"{bad[0]}: must be a finite number (no NaN or infinity)")
    return redact(dict(value))


@dataclass(frozen=True, eq=False)
class Gateway:
    """A validated gateway; builds (and keeps) the SDK clients that talk to it."""

    base_url: str
    api_key: Any = None  # SecretStr | None
    headers: Redacted = field(default_factory=Redacted)
    extra_body: Redacted = field(default_factory=Redacted)
    _clients: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def checked(
        cls,
        *,
        base_url: Any,
        api_key: Any = None,
        default_headers: Any = None,
        extra_body: Any = None,
        allow_http: bool = False,
    ) -> Gateway:
        """Validate the arguments of ``override_clients``; ConfigError names the bad one."""
        where = "override_clients"
        url = checked(
            lambda u: check_base_url(u, allow_http=allow_http), base_url, f"{where}(base_url=...)"
        )
        key = checked(credential_secret, api_key, f"{where}(api_key=...)")
        headers = checked(_headers, default_headers, f"{where}(default_headers=...)")
        body = checked(_body, extra_body, f"{where}(extra_body=...)")
        return cls(url, key, headers, body)

    @property
    def origin(self) -> str:
        """``scheme://host:port``: gateways on one server share its connections."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def secret_values(self) -> list[str]:
        """The key and header values sent to the gateway (masked wherever a reply is shown)."""
        values = [self.api_key.get_secret_value()] if self.api_key is not None else []
        return values + [
            value
            for name, value in self.headers.items()
            if name.lower() not in PUBLIC_HEADERS and len(value) >= 8
        ]

    def sdk_client(self, *, is_async: bool, timeout: float, retries: int) -> Any:
        """The SDK client for this gateway on the shared HTTP client (built on first use)."""
        http_client = (
            _POOL.async_client(self.origin) if is_async else _POOL.sync_client(self.origin)
        )
        key = (is_async, id(http_client), timeout, retries)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = self._build(
                        is_async, http_client, timeout, retries
                    )
        return client

    def _build(self, is_async: bool, http_client: Any, timeout: float, retries: int) -> Any:
        from registry.gateway_clients import AsyncGatewayClient, GatewayClient

        factory = AsyncGatewayClient if is_async else GatewayClient
        return factory(
            api_key=self.api_key.get_secret_value() if self.api_key is not None else NO_KEY,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=retries,
            http_client=http_client,
            pinned_headers=dict(self.headers),
            pinned_body=dict(self.extra_body),
        )

    def __repr__(self) -> str:
        headers = ", ".join(sorted(self.headers)) or "none"
        body = ", ".join(sorted(self.extra_body)) or "none"
        return (
            f"override_clients(base_url={mask_url(self.base_url)!r}, headers: {headers}; "
            f"extra_body: {body})"
        )

"""Shared HTTP clients: one sync client and one async client per endpoint (per event loop).

Every model on the same endpoint reuses the same connection pool, whatever its deployment,
timeout or credentials (those are per request in the SDK). Async clients are kept per event
loop, because a connection pool cannot outlive the loop it was opened on; a loop's clients are
closed when that loop shuts down (``asyncio.run`` does it), so calling ``asyncio.run`` per
request leaves no socket open. Clients are modelreg's timed clients
(:mod:`registry.http_clients`), created on first request (importing the SDK only then) and
released by :meth:`close` / :meth:`aclose`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from registry.event_loops import LoopLocal

__all__ = ["HttpClientPool"]


async def _aclose_all(clients: dict[str, Any]) -> None:
    for client in list(clients.values()):
        await client.aclose()


class HttpClientPool:
    """Lazily built HTTP clients keyed by endpoint (and event loop for async ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: dict[str, Any] = {}
        self._async: LoopLocal[dict[str, Any]] = LoopLocal(dict, _aclose_all)

    def sync_client(self, key: str) -> Any:
        """The shared sync HTTP client for ``key`` (built on first call)."""
        client = self._sync.get(key)
        if client is None:
            with self._lock:
                client = self._sync.get(key)
                if client is None:
                    from registry.http_clients import TimedHttpClient

                    client = self._sync[key] = TimedHttpClient()
        return client

    def async_client(self, key: str) -> Any:
        """The shared async HTTP client for ``key`` on the running event loop."""
        clients = self._async.get()
        client = clients.get(key)
        if client is None:
            with self._lock:
                client = clients.get(key)
                if client is None:
                    from registry.http_clients import AsyncTimedHttpClient

                    client = clients[key] = AsyncTimedHttpClient()
        return client

    def counts(self) -> tuple[int, int]:
        """How many sync and async clients exist (for tests and benchmarks)."""
        return len(self._sync), sum(len(clients) for clients in self._async.values())

    def close(self) -> None:
        """Close the sync clients (async ones are closed by :meth:`aclose` or their loop)."""
        with self._lock:
            clients, self._sync = list(self._sync.values()), {}
        for client in clients:
            client.close()

    def __del__(self) -> None:
        # A registry dropped without close(): release the sync pools' sockets (async clients
        # are closed with their event loop).
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    async def aclose(self) -> None:
        """Close every client: the async ones of the running loop, and the sync ones."""
        await self._async.aclose()
        self.close()

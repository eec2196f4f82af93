"""Shared HTTP clients: one ``httpx2.Client`` and one ``httpx2.AsyncClient`` per endpoint.

Every model on the same endpoint reuses the same connection pool, whatever its deployment,
timeout or credentials (those are per request in the SDK). Async clients are kept per event
loop, because a connection pool cannot outlive the loop it was opened on. Clients are created
on first request (importing the SDK only then) and released by :meth:`close` / :meth:`aclose`.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

from registry.building import current_loop

__all__ = ["HttpClientPool"]


class HttpClientPool:
    """Lazily built HTTP clients keyed by endpoint (and event loop for async ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: dict[str, Any] = {}
        self._async: dict[tuple[str, int], tuple[weakref.ref[Any] | None, Any]] = {}

    def sync_client(self, key: str) -> Any:
        """The shared ``httpx2.Client`` for ``key`` (built on first call)."""
        client = self._sync.get(key)
        if client is None:
            with self._lock:
                client = self._sync.get(key)
                if client is None:
                    from openai import DefaultHttpxClient

                    client = self._sync[key] = DefaultHttpxClient()
        return client

    def async_client(self, key: str) -> Any:
        """The shared ``httpx2.AsyncClient`` for ``key`` on the running event loop."""
        loop = current_loop()
        slot = (key, id(loop))
        with self._lock:
            entry = self._async.get(slot)
            if entry is not None and (entry[0] is None or entry[0]() is loop):
                return entry[1]
            from openai import DefaultAsyncHttpxClient

            client = DefaultAsyncHttpxClient()
            self._async[slot] = (weakref.ref(loop) if loop is not None else None, client)
            self._forget_closed_loops()
            return client

    def _forget_closed_loops(self) -> None:
        for slot, (ref, _client) in list(self._async.items()):
            loop = ref() if ref is not None else None
            if ref is not None and (loop is None or loop.is_closed()):
                del self._async[slot]

    def counts(self) -> tuple[int, int]:
        """How many sync and async clients exist (for tests and benchmarks)."""
        return len(self._sync), len(self._async)

    def close(self) -> None:
        """Close the sync clients (async ones are closed by :meth:`aclose`)."""
        with self._lock:
            clients, self._sync = list(self._sync.values()), {}
        for client in clients:
            client.close()

    def __del__(self) -> None:
        # A registry dropped without close(): release the sync pools' sockets (async clients
        # need their event loop, which may be gone; the SDK warns about those itself).
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    async def aclose(self) -> None:
        """Close every client: the async ones of the running loop, and the sync ones."""
        loop = current_loop()
        with self._lock:
            mine = [s for s, (ref, _) in self._async.items() if ref is None or ref() is loop]
            clients = [self._async.pop(s)[1] for s in mine]
        for client in clients:
            await client.aclose()
        self.close()

"""One state store per process and ``routing_state`` URL, shared by every pool that uses it.

Pools share state by pool name and deployment id, whatever store holds it: two registries in
one process see each other's cooldowns of a same-named pool exactly as two replicas on one
Redis do, and all of a process's pools on one Redis share its connections.
"""

from __future__ import annotations

import threading

from registry.routing.state import MemoryStateStore, StateStore

__all__ = ["close_shared_state_stores", "shared_state_store"]

_stores: dict[str | None, StateStore] = {}
_lock = threading.Lock()


def shared_state_store(url: str | None, *, origin: str = "routing_state") -> StateStore:
    """The process's store for ``url``: in memory when None, else on that Redis.

    Args:
        url: the ``routing_state`` option's value.
        origin: where it came from (``env MODELREG_ROUTING_STATE``), for messages.

    Raises:
        ConfigError: the redis package is missing (the message says how to install it), or
            the URL cannot be parsed (shown with its password masked).
    """
    with _lock:
        store = _stores.get(url)
        if store is None:
            if url is None:
                store = MemoryStateStore()
            else:
                from registry.routing.redis_state import RedisStateStore

                store = RedisStateStore(url, origin=origin)
            _stores[url] = store
        return store


def close_shared_state_stores() -> None:
    """Close and forget every shared store (tests; a process about to fork)."""
    with _lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()

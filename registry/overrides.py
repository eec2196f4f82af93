"""Scoped client overrides for RL rollouts: ``with override_clients(client=..., async_client=...)``.

Inside the block, every model call made in this thread or asyncio task (and tasks it starts)
goes to the given clients instead of the model's own. It is a :mod:`contextvars` variable, so
two threads or two tasks can each hold a different override at the same time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from registry.errors import ConfigError

__all__ = ["ClientOverride", "active_override", "check_client", "override_clients"]


@dataclass(frozen=True)
class ClientOverride:
    """The clients that replace every model's own while an override is active."""

    client: Any = None
    async_client: Any = None


_ACTIVE: ContextVar[ClientOverride | None] = ContextVar("modelreg_client_override", default=None)


def check_client(client: Any, *, where: str, methods: tuple[str, ...] = ("create",)) -> None:
    """Check that ``client.chat.completions`` has the methods a model will call."""
    completions = getattr(getattr(client, "chat", None), "completions", None)
    missing = [m for m in methods if not callable(getattr(completions, m, None))]
    if missing:
        raise ConfigError(
            f"{where}: the client {type(client).__name__} has no chat.completions."
            f"{', chat.completions.'.join(missing)}; an OpenAI-compatible client is needed "
            "(openai.OpenAI, openai.AzureOpenAI or an object with the same methods)."
        )


def active_override() -> ClientOverride | None:
    """The override in force in this context, or None."""
    return _ACTIVE.get()


@contextmanager
def override_clients(client: Any = None, async_client: Any = None) -> Iterator[ClientOverride]:
    """Route every model call inside the block to ``client`` / ``async_client``.

    Args:
        client: used by ``run`` (sync); None keeps each model's own sync client.
        async_client: used by ``arun``; None keeps each model's own async client.
    """
    if client is None and async_client is None:
        raise ConfigError("override_clients: pass a client, an async_client, or both.")
    if client is not None:
        check_client(client, where="override_clients(client=...)")
    if async_client is not None:
        check_client(async_client, where="override_clients(async_client=...)")
    override = ClientOverride(client, async_client)
    token = _ACTIVE.set(override)
    try:
        yield override
    finally:
        _ACTIVE.reset(token)

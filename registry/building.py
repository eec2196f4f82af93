"""What the registry hands a backend when it builds one (the public piece backends import).

The registry is the host and backends are its plugins: a backend's ``from_spec(spec, context)``
receives the resolved :class:`~registry.spec.ModelSpec` and a :class:`BuildContext`, and the
registry never imports a backend module itself — it finds backends through the plugin manager.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import asyncio

    from backends.token_counting import BaseTokenCounter

__all__ = ["BuildContext", "HttpClientSource", "current_loop"]


class HttpClientSource(Protocol):
    """Where backends get shared HTTP clients (the registry's pool), one per endpoint."""

    def sync_client(self, key: str) -> Any:
        """An ``httpx2.Client`` shared by every model on the endpoint ``key``."""
        ...

    def async_client(self, key: str) -> Any:
        """An ``httpx2.AsyncClient`` shared on the endpoint ``key`` (per event loop)."""
        ...


@dataclass
class BuildContext:
    """What the registry's factory gives a backend besides the spec.

    Attributes:
        runtime: per-call objects that are not settings (``client``, ``async_client``, a callable
            ``azure_ad_token_provider``, a ``token_counter`` instance).
        http_clients: the shared HTTP client pool, or None to let the SDK build its own.
        token_counter_factory: builds the model's token counter on first use.
        capability_layers: the plugins' capability entries (built-ins first), asked for only
            when the model's capabilities are first needed (it may load installed plugins).
    """

    runtime: Mapping[str, Any] = field(default_factory=dict)
    http_clients: HttpClientSource | None = None
    token_counter_factory: Callable[[], BaseTokenCounter] | None = None
    capability_layers: Callable[[], Sequence[Any]] | None = None


def current_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop, or None outside one.

    Without asyncio imported there is no loop: building a model does not import it (~20 ms).
    """
    module = sys.modules.get("asyncio")
    if module is None:
        return None
    try:
        loop: asyncio.AbstractEventLoop = module.get_running_loop()
    except RuntimeError:
        return None
    return loop

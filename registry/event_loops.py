"""Values that belong to one event loop: built on first use in it, closed when it shuts down.

A connection pool opened on one asyncio loop cannot be used from another, so async clients are
kept per loop — weakly, so a finished loop's entry goes with it. Threads that each run their own
loop then keep one client each instead of replacing a single shared one on every call.

``asyncio.run`` closes a loop right after the caller's coroutine returns, which used to leave
that loop's connections open (``ResourceWarning: unclosed transport``). So the first use on a
loop also starts a tiny async generator that only waits: the loop finalises every live async
generator before it closes (``loop.shutdown_asyncgens()``, called by ``asyncio.run`` and test
runners), and this one's ``finally`` closes the loop's value there.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from registry.building import current_loop

if TYPE_CHECKING:
    import asyncio  # not imported at run time: building a model must not load asyncio

__all__ = ["LoopLocal"]

T = TypeVar("T")


async def _close_when_finalised(
    aclose: Callable[[T], Awaitable[None]], value: T
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await aclose(value)


def _start(closer: AsyncGenerator[None, None]) -> None:
    """Run ``closer`` to its ``yield`` now (it does not await), registering it with the loop."""
    step: Any = closer.__anext__()
    with contextlib.suppress(StopIteration):
        step.send(None)


class LoopLocal(Generic[T]):
    """One value per running event loop (and one outside any loop).

    Args:
        build: makes the value, on first use in a loop.
        aclose: closes a value; run on its loop when the loop shuts down or on :meth:`aclose`.
    """

    def __init__(
        self, build: Callable[[], T], aclose: Callable[[T], Awaitable[None]] | None = None
    ) -> None:
        self._build = build
        self._aclose = aclose
        self._lock = threading.Lock()
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None] | None]
        ] = weakref.WeakKeyDictionary()
        self._outside: T | None = None

    def get(self) -> T:
        """The running loop's value, built (and set to close with the loop) on first use."""
        loop = current_loop()
        if loop is None:
            with self._lock:
                if self._outside is None:
                    self._outside = self._build()
                return self._outside
        entry = self._per_loop.get(loop)
        if entry is not None:
            return entry[0]
        with self._lock:
            entry = self._per_loop.get(loop)
            if entry is None:
                value = self._build()
                closer = None
                if self._aclose is not None:
                    closer = _close_when_finalised(self._aclose, value)
                    _start(closer)
                entry = self._per_loop[loop] = (value, closer)
        return entry[0]

    def values(self) -> list[T]:
        """Every live value (for counting)."""
        with self._lock:
            found = [value for value, _ in list(self._per_loop.values())]
            return found + ([self._outside] if self._outside is not None else [])

    async def aclose(self) -> None:
        """Close and forget the running loop's value (and the one kept outside any loop)."""
        loop = current_loop()
        with self._lock:
            entry = self._per_loop.pop(loop, None) if loop is not None else None
            outside, self._outside = self._outside, None
        if entry is not None and entry[1] is not None:
            await entry[1].aclose()  # runs the closer's finally: self._aclose(value)
        elif entry is not None and self._aclose is not None:
            await self._aclose(entry[0])
        if outside is not None and self._aclose is not None:
            await self._aclose(outside)

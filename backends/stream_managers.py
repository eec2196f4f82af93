"""The SDK's stream managers for stream-parse, entered through a model's attempt loop.

``chat.completions.stream(...)`` returns a manager that sends its request only when entered, so
calling it inside the model's ``try`` would leave the request itself — and every error it
raises — outside modelreg's handling. These subclasses (still the SDK's types, so
``isinstance`` checks keep working) send the request from ``__enter__`` through the model's
attempt loop: the same error translation, 401 token renewal and stream checks as every other
path. Imported on the first stream-parse request, when the SDK is loaded anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from openai.lib.streaming.chat import (
    AsyncChatCompletionStreamManager,
    ChatCompletionStreamManager,
)

__all__ = [
    "AsyncRoutedStreamManager",
    "AsyncStreamManager",
    "RoutedStreamManager",
    "StreamManager",
]

#: ``attempts(call)``: the model's attempt loop; ``call(completions)`` makes the SDK's manager.
Attempts = Callable[[Callable[[Any], Any]], Any]


class StreamManager(ChatCompletionStreamManager[Any]):
    """``with model.run(messages, response_format=Model) as stream:`` on a streaming model."""

    def __init__(self, attempts: Attempts, call: Callable[[Any], Any]) -> None:
        # The SDK's __init__ is not called: it stores a request this class makes itself.
        self._attempts, self._call = attempts, call
        self._manager: Any = None

    def __enter__(self) -> Any:
        def enter(completions: Any) -> Any:
            manager = self._call(completions)
            stream = manager.__enter__()
            self._manager = manager
            return stream

        return self._attempts(enter)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._manager is not None:
            self._manager.__exit__(exc_type, exc, tb)


class AsyncStreamManager(AsyncChatCompletionStreamManager[Any]):
    """``async with await model.arun(messages, response_format=Model) as stream:``."""

    def __init__(
        self, attempts: Callable[[Callable[[Any], Any]], Awaitable[Any]], call: Callable[[Any], Any]
    ) -> None:
        self._attempts, self._call = attempts, call
        self._manager: Any = None

    async def __aenter__(self) -> Any:
        async def enter(completions: Any) -> Any:
            manager = self._call(completions)
            stream = await manager.__aenter__()
            self._manager = manager
            return stream

        return await self._attempts(enter)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._manager is not None:
            await self._manager.__aexit__(exc_type, exc, tb)


class RoutedStreamManager(StreamManager):
    """A routed model's stream-parse manager: ``__enter__`` routes the call.

    ``enter()`` tries the model's deployments and fallbacks (:mod:`backends.pooled`) until one
    manager is entered, and returns ``(manager, stream)``; ``__exit__`` is :class:`StreamManager`'s.
    """

    def __init__(self, enter: Callable[[], tuple[Any, Any]]) -> None:
        self._enter = enter
        self._manager: Any = None

    def __enter__(self) -> Any:
        self._manager, stream = self._enter()
        return stream


class AsyncRoutedStreamManager(AsyncStreamManager):
    """Async :class:`RoutedStreamManager`: ``enter()`` returns an awaitable."""

    def __init__(self, enter: Callable[[], Awaitable[tuple[Any, Any]]]) -> None:
        self._enter = enter
        self._manager: Any = None

    async def __aenter__(self) -> Any:
        self._manager, stream = await self._enter()
        return stream

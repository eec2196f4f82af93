"""Custom clients shaped as CAMEL documents them: create on ``chat``, parse on ``beta.chat``.

An RL framework hands a model its own client to record or route every call. CAMEL documents
such clients as objects with ``.chat.completions.create()`` and ``.beta.chat.completions.parse()``
(where openai 1.x had ``parse`` and ``stream``); the 3.x SDK has them on ``chat.completions``.
For a client that is not the SDK's, each method is looked up where either shape has it:

* ``create``: ``chat.completions.create``;
* ``parse`` (a pydantic ``response_format``): ``chat.completions.parse``, else
  ``beta.chat.completions.parse``;
* ``stream`` (a pydantic ``response_format`` on a streaming model): ``chat.completions.stream``,
  else ``beta.chat.completions.stream``, else the SDK's own stream manager over the client's
  ``create(stream=True)`` — what the SDK's ``stream()`` is — so a client with only ``create``
  streams parsed replies too. Its ``create`` then returns an SDK ``Stream`` or any iterable of
  ``ChatCompletionChunk`` (an async iterable for an async client).

SDK clients are used as they are.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Iterable
from typing import Any

__all__ = ["CustomCompletions", "chat_completions_of"]


def chat_completions_of(client: Any) -> Any:
    """``client.chat.completions``, or for a custom client its methods wherever it has them."""
    completions = client.chat.completions
    if type(completions).__module__.startswith("openai."):
        return completions
    return CustomCompletions(client, completions)


class CustomCompletions:
    """A custom client's ``create``, ``parse`` and ``stream`` (None where it has none)."""

    def __init__(self, client: Any, completions: Any) -> None:
        chat = getattr(getattr(client, "beta", None), "chat", None)
        self._places = (completions, getattr(chat, "completions", None))
        self.create: Any = self._find("create", self._places[:1])
        self.parse: Any = self._find("parse", self._places)
        self.stream: Any = self._find("stream", self._places)
        if self.stream is None and self.create is not None:
            self.stream = self._stream_over_create

    @staticmethod
    def _find(name: str, places: tuple[Any, ...]) -> Any:
        for place in places:
            method = getattr(place, name, None)
            if callable(method):
                return method
        return None

    def _stream_over_create(self, *, response_format: Any, **request: Any) -> Any:
        """The SDK's stream manager over ``create(stream=True)``, as ``stream()`` builds it."""
        from openai.lib._parsing import type_to_response_format_param
        from openai.lib.streaming.chat import (
            AsyncChatCompletionStreamManager,
            ChatCompletionStreamManager,
        )

        tools = request.get("tools") or []
        arguments = {
            **request,
            "stream": True,
            "response_format": type_to_response_format_param(response_format),
        }
        if inspect.iscoroutinefunction(self.create):
            return AsyncChatCompletionStreamManager(
                _Deferred(lambda: self.create(**arguments)),
                response_format=response_format,
                input_tools=tools,
            )
        return ChatCompletionStreamManager(
            lambda: _raw_stream(self.create(**arguments)),
            response_format=response_format,
            input_tools=tools,
        )


def _raw_stream(chunks: Any) -> Any:
    """An SDK ``Stream`` as it is; other chunks as the SDK's stream helper reads a Stream."""
    return chunks if hasattr(chunks, "response") else _RawStream(chunks)


class _RawStream:
    """Chunks from a custom client as the SDK's stream helper reads a ``Stream``."""

    def __init__(self, chunks: Iterable[Any]) -> None:
        self._chunks = chunks
        self.response = self

    def __iter__(self) -> Any:
        return iter(self._chunks)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if callable(close):
            close()


class _AsyncRawStream:
    """Async chunks from a custom client as the SDK's stream helper reads an ``AsyncStream``."""

    def __init__(self, chunks: AsyncIterable[Any]) -> None:
        self._chunks = chunks
        self.response = self

    def __aiter__(self) -> Any:
        return aiter(self._chunks)

    async def aclose(self) -> None:
        close = getattr(self._chunks, "aclose", None) or getattr(self._chunks, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result


class _Deferred:
    """An awaitable that makes its request only when awaited (on entering the manager)."""

    def __init__(self, request: Any) -> None:
        self._request = request

    def __await__(self) -> Any:
        return self._raw().__await__()

    async def _raw(self) -> Any:
        chunks = await self._request()
        return chunks if hasattr(chunks, "response") else _AsyncRawStream(chunks)

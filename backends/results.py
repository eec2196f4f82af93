"""What ``run``/``arun`` return: helpers that build it, and the check that enforces it.

``run`` returns a ``ChatCompletion`` (a ``ParsedChatCompletion`` for a pydantic
``response_format``), a stream of ``ChatCompletionChunk`` (the SDK's ``Stream``, or any iterator),
or a stream manager (the SDK's, or an object with ``__enter__`` and ``get_final_completion``).
``arun`` returns the same with ``AsyncStream`` / async iterators / ``__aenter__``.

A backend whose ``_run`` returns anything else (a ``str``, a dict, None, a coroutine) makes ``run``
raise :class:`~registry.errors.BackendError` naming the model, the backend and the plugin that
registered it, instead of an ``AttributeError`` somewhere in the caller's code. Streams that are
not the SDK's are passed through a thin wrapper that checks each chunk the same way.

The check costs one set lookup per call: the verdict on a result's type is remembered.

Plugin authors build results with :func:`completion_from_text`, :func:`chunks_from_text` and
:func:`achunks_from_text` (``openai`` is imported when they are first called).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from registry.errors import BackendError

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from backends.base import BaseModelBackend

__all__ = ["achunks_from_text", "checked_result", "chunks_from_text", "completion_from_text"]

#: Result types that passed the check, per side (False: ``run``, True: ``arun``).
_PASSED: dict[bool, set[type]] = {False: set(), True: set()}
_MAX_REMEMBERED = 1024  # ParsedChatCompletion[X] is a type per X: stay bounded


def completion_from_text(
    text: str | None,
    *,
    model: str,
    response_format: Any = None,
    id: str = "chatcmpl-local",
    finish_reason: str = "stop",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> ChatCompletion:
    """A ``ChatCompletion`` whose one choice says ``text`` (with ``usage`` if counts are given).

    With a pydantic ``response_format`` class, ``text`` must be its JSON and the result is a
    ``ParsedChatCompletion`` with ``message.parsed`` set, as ``chat.completions.parse`` returns.
    """
    from openai.types.chat import ChatCompletion, ParsedChatCompletion

    data: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": text},
            }
        ],
    }
    if prompt_tokens is not None or completion_tokens is not None:
        counts = {"prompt_tokens": prompt_tokens or 0, "completion_tokens": completion_tokens or 0}
        data["usage"] = {**counts, "total_tokens": sum(counts.values())}
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        message = data["choices"][0]["message"]
        message["parsed"] = response_format.model_validate_json(text) if text else None
        parsed: ChatCompletion = ParsedChatCompletion[response_format].model_validate(data)
        return parsed
    return ChatCompletion.model_validate(data)


def _chunk(model: str, id: str, delta: dict[str, Any], finish: str | None) -> ChatCompletionChunk:
    from openai.types.chat import ChatCompletionChunk

    return ChatCompletionChunk.model_validate(
        {
            "id": id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def chunks_from_text(
    pieces: str | Iterable[str], *, model: str, id: str = "chatcmpl-local"
) -> Iterator[ChatCompletionChunk]:
    """A stream for ``run``: one chunk per piece (a ``str`` is one piece), then a ``stop`` chunk.

    Lazy: pass a generator of tokens and each chunk is made when the caller asks for it.
    """
    delta: dict[str, Any] = {"role": "assistant"}  # the role comes once, as in the API's streams
    for piece in [pieces] if isinstance(pieces, str) else pieces:
        yield _chunk(model, id, {**delta, "content": piece}, None)
        delta = {}
    yield _chunk(model, id, {}, "stop")


async def achunks_from_text(
    pieces: str | Iterable[str] | AsyncIterable[str], *, model: str, id: str = "chatcmpl-local"
) -> AsyncIterator[ChatCompletionChunk]:
    """A stream for ``arun``: :func:`chunks_from_text` as an async iterator."""
    if isinstance(pieces, AsyncIterable):
        delta: dict[str, Any] = {"role": "assistant"}
        async for piece in pieces:
            yield _chunk(model, id, {**delta, "content": piece}, None)
            delta = {}
        yield _chunk(model, id, {}, "stop")
    else:
        for chunk in chunks_from_text(pieces, model=model, id=id):
            yield chunk


def checked_result(
    backend: BaseModelBackend, result: Any, *, is_async: bool, via_client: bool = False
) -> Any:
    """``result`` if ``run`` (``is_async``: ``arun``) may return it; else a BackendError.

    ``via_client``: the result came from a client override's client, not from ``_run``.
    """
    if type(result) in _PASSED[is_async]:
        return result
    return _classify(backend, result, is_async, via_client)


def _classify(backend: BaseModelBackend, result: Any, is_async: bool, via_client: bool) -> Any:
    from openai import AsyncStream, Stream
    from openai.lib.streaming.chat import (
        AsyncChatCompletionStreamManager,
        ChatCompletionStreamManager,
    )
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    cls = type(result)
    sdk_types = (
        (AsyncStream, AsyncChatCompletionStreamManager)
        if is_async
        else (Stream, ChatCompletionStreamManager)
    )
    enter, next_ = ("__aenter__", "__anext__") if is_async else ("__enter__", "__next__")
    is_manager = hasattr(cls, enter) and hasattr(cls, "get_final_completion")
    if issubclass(cls, (ChatCompletion, *sdk_types)) or is_manager:
        if len(_PASSED[is_async]) < _MAX_REMEMBERED:
            _PASSED[is_async].add(cls)
        return result
    if hasattr(cls, next_):
        wrapper = _CheckedAsyncStream if is_async else _CheckedStream
        return wrapper(result, backend, ChatCompletionChunk)
    if inspect.iscoroutine(result):
        result.close()  # never awaited: close it, or Python warns about it later
    raise BackendError(
        _message(backend, f"returned {_describe(result, is_async)}", is_async, via_client)
    )


def _describe(result: Any, is_async: bool) -> str:
    if result is None:
        return "None (a missing `return`?)"
    if inspect.iscoroutine(result):
        hint = (
            "a missing `await`?" if is_async else "make _run a plain def; async code goes in _arun"
        )
        return f"a coroutine ({hint})"
    if hasattr(type(result), "__anext__"):
        return "an async iterator (return it from _arun; run() streams are plain iterators)"
    if hasattr(type(result), "__next__"):
        return "a plain iterator (arun() streams are async iterators: achunks_from_text)"
    name = f"{type(result).__module__}.{type(result).__qualname__}".removeprefix("builtins.")
    return f"a value of type {name}"


def _message(
    backend: BaseModelBackend, problem: str, is_async: bool, via_client: bool = False
) -> str:
    method = "_arun" if is_async else "_run"
    side = "arun" if is_async else "run"
    if via_client:
        origin = (
            f"{_origin(type(backend), note=False)}, routed through a client override "
            "(client=, client_provider, override_clients): its client"
        )
    else:
        origin = f"{_origin(type(backend))}: {method}"
    return (
        f"model {backend.name!r}: {origin} {problem}. {side}() must "
        "return a ChatCompletion, a stream of ChatCompletionChunk, a parsed completion or a "
        "stream manager; build them with backends.results.completion_from_text(text, "
        f"model=...) and {'achunks_from_text' if is_async else 'chunks_from_text'}."
    )


def _origin(cls: type, *, note: bool = True) -> str:
    """``backend 'acme' (AcmeModel, plugin acme: modelreg-acme 0.1.0)`` for messages."""
    from registry.plugins import get_plugin_host

    found = get_plugin_host().registered_as("backends", cls)
    where = f"{cls.__module__}.{cls.__qualname__}"
    if found is None:
        return f"backend {where} (not registered by a plugin)"
    name, plugin = found
    origin = f"backend {name!r} ({where}, plugin {plugin.label})"
    if plugin.builtin and note:
        origin += (
            " — built-in backends return what their SDK client returns, so a custom client "
            "(client=, client_provider, override_clients) returned this"
        )
    return origin


class _CheckedStream:
    """A plugin's iterator, checked chunk by chunk; other attributes are the iterator's own."""

    __slots__ = ("_backend", "_chunk", "_inner")

    def __init__(self, inner: Any, backend: BaseModelBackend, chunk: type) -> None:
        self._inner = inner
        self._backend = backend
        self._chunk = chunk

    def __iter__(self) -> _CheckedStream:
        return self

    def __next__(self) -> Any:
        item = next(self._inner)
        if not isinstance(item, self._chunk):
            self.close()
            raise BackendError(_chunk_message(self._backend, item, is_async=False))
        return item

    def close(self) -> None:
        """Close the underlying iterator, if it can be closed."""
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> _CheckedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name in _CheckedStream.__slots__:  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)


class _CheckedAsyncStream:
    """A plugin's async iterator, checked chunk by chunk."""

    __slots__ = ("_backend", "_chunk", "_inner")

    def __init__(self, inner: Any, backend: BaseModelBackend, chunk: type) -> None:
        self._inner = inner
        self._backend = backend
        self._chunk = chunk

    def __aiter__(self) -> _CheckedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        item = await self._inner.__anext__()
        if not isinstance(item, self._chunk):
            await self.aclose()
            raise BackendError(_chunk_message(self._backend, item, is_async=True))
        return item

    async def aclose(self) -> None:
        """Close the underlying async iterator, if it can be closed."""
        for name in ("aclose", "close"):
            close = getattr(self._inner, name, None)
            if callable(close):
                outcome = close()
                if inspect.isawaitable(outcome):
                    await outcome
                return

    async def __aenter__(self) -> _CheckedAsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        if name in _CheckedStream.__slots__:  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)


def _chunk_message(backend: BaseModelBackend, item: Any, *, is_async: bool) -> str:
    return _message(
        backend, f"returned a stream that yielded {_describe(item, is_async)}", is_async
    )

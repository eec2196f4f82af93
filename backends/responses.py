"""The Responses API path of the OpenAI-family backends (``api = "responses"``).

``run``/``arun`` return what they return in chat mode — a ``ChatCompletion``, a ``Stream`` of
``ChatCompletionChunk``, a ``ParsedChatCompletion``, or a stream manager whose stream is the
SDK's ``ChatCompletionStream`` — converted from the Responses objects
(:mod:`backends.responses_results`), so switching ``api`` changes no application code. Requests
are translated by :mod:`backends.responses_requests`; chaining by ``previous_response_id`` is
:mod:`backends.conversations`.

Every request goes through the model's own attempt loop (:mod:`backends.chat_requests`): the
same error translation with the model in front, 401 retry with a fresh token, per-attempt
timeout, checks that a 200 is a response, and cut-stream detection (a stream that ends without
``response.completed`` or ``response.incomplete`` is an
:class:`~registry.errors.IncompleteStreamError`).

The native reply stays reachable: :func:`native_response` gives the ``Response`` a completion
was converted from (for a stream, once it has ended).

``store``: modelreg sends ``store = false`` unless the model's config says otherwise. The API's
own default keeps every prompt and reply on the server (30 days on Azure); modelreg sends the
whole history on every call, so nothing needs keeping unless you chain conversations
(``config.store = true`` with :func:`backends.conversations.conversation`).
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from backends.conversations import Conversation, current_conversation, fingerprint
from backends.responses_requests import ResponsesRequest, responses_request
from backends.responses_results import (
    ChunkConverter,
    ResponsesProgress,
    completion_data,
    failure_message,
    message_data,
    response_problem,
)
from registry.errors import BackendError, RegistryError

if TYPE_CHECKING:
    from backends.base import Messages
    from backends.chat_requests import ChatCompletionsBackend

__all__ = ["ResponsesPath", "native_response"]

logger = logging.getLogger("modelreg")
_NATIVE = "_modelreg_response"
_STREAMS = frozenset({"Stream", "AsyncStream"})
_FAILURES = frozenset({"error", "response.failed"})


def native_response(result: Any) -> Any:
    """The Responses API ``Response`` a result of ``run``/``arun`` was converted from.

    For a stream (or a stream-parse stream), once it has ended; None for anything else.
    """
    found = getattr(result, _NATIVE, None)
    if found is None and hasattr(result, "_raw_stream"):  # a stream-parse ChatCompletionStream
        found = getattr(result._raw_stream, _NATIVE, None)
    return found


@functools.cache
def _sdk_types() -> Any:
    """The SDK's chat types, imported on the first Responses request."""
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    return types.SimpleNamespace(completion=ChatCompletion, chunk=ChatCompletionChunk)


def _responses_of(client: Any) -> Any:
    return getattr(client, "responses", None)


class ResponsesPath:
    """The Responses requests of one model (``backend``), sent through its attempt loop."""

    def __init__(self, backend: ChatCompletionsBackend) -> None:
        self.backend = backend

    def run(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None,
        tools: list[dict[str, Any]] | None,
        *,
        is_async: bool,
    ) -> Any:
        """What ``_run`` returns (``is_async``: a coroutine giving what ``_arun`` returns)."""
        backend = self.backend
        call = _Call(self, messages, response_format, tools, is_async)
        if not (call.stream and call.rf is not None):
            if is_async:
                return backend._async_attempts(call.send, _responses_of, call.checked)
            return backend._attempts(call.send, _responses_of, call.checked)
        from backends.stream_managers import AsyncStreamManager, StreamManager

        if is_async:

            async def attempts(enter: Callable[[Any], Any]) -> Any:
                return await backend._async_attempts(enter, _responses_of, call.checked)

            return _ready(AsyncStreamManager(attempts, call.manager))
        return StreamManager(
            lambda enter: backend._attempts(enter, _responses_of, call.checked), call.manager
        )

    # -- replies ---------------------------------------------------------------------------

    def completion(self, response: Any, call: _Call) -> Any:
        """``response`` as a ``ChatCompletion`` (parsed, with a pydantic response_format)."""
        data = completion_data(response, logprobs=call.translated.logprobs)
        completion = _sdk_types().completion.model_validate(data)
        if call.rf is not None:
            from openai import omit
            from openai.lib._parsing import parse_chat_completion

            completion = parse_chat_completion(
                response_format=call.rf, input_tools=call.tools or omit, chat_completion=completion
            )
        object.__setattr__(completion, _NATIVE, response)
        return completion

    def stream(self, stream: Any, call: _Call) -> Any:
        """The SDK's event stream, now yielding chat chunks (guarded like a chat stream)."""
        converter = ChunkConverter(
            self.backend.model_type,
            include_usage=call.translated.include_usage,
            logprobs=call.translated.logprobs,
        )
        iterator = stream._iterator
        if hasattr(iterator, "__anext__"):
            stream._iterator = self._achunks(stream, iterator, converter, call)
        else:
            stream._iterator = self._chunks(stream, iterator, converter, call)
        return stream

    def _chunks(
        self, stream: Any, events: Iterator[Any], converter: ChunkConverter, call: _Call
    ) -> Iterator[Any]:
        chunk_type = _sdk_types().chunk
        backend, progress = self.backend, ResponsesProgress()
        try:
            for event in events:
                progress.see(event)
                if getattr(event, "type", None) in _FAILURES:
                    self._raise_failure(event, stream)
                for chunk in converter.chunks(event):
                    yield chunk_type.model_validate(chunk)
        except Exception as exc:
            backend._raise_translated(exc, progress)
        backend._check_end(progress, stream.response)
        self._ended(stream, converter, call)

    async def _achunks(
        self, stream: Any, events: AsyncIterator[Any], converter: ChunkConverter, call: _Call
    ) -> AsyncIterator[Any]:
        chunk_type = _sdk_types().chunk
        backend, progress = self.backend, ResponsesProgress()
        try:
            async for event in events:
                progress.see(event)
                if getattr(event, "type", None) in _FAILURES:
                    self._raise_failure(event, stream)
                for chunk in converter.chunks(event):
                    yield chunk_type.model_validate(chunk)
        except Exception as exc:
            backend._raise_translated(exc, progress)
        backend._check_end(progress, stream.response)
        self._ended(stream, converter, call)

    def _raise_failure(self, event: Any, stream: Any) -> None:
        """An ``error`` or ``response.failed`` event: the SDK's APIError, as in a chat stream."""
        import openai

        error = event if event.type == "error" else event.response.error
        message = f"the response failed ({failure_message(error, self.backend._secret_values())})"
        body = {"code": getattr(error, "code", None), "message": getattr(error, "message", None)}
        raise openai.APIError(message, stream.response.request, body=body)

    @staticmethod
    def _ended(stream: Any, converter: ChunkConverter, call: _Call) -> None:
        if converter.response is not None:
            object.__setattr__(stream, _NATIVE, converter.response)
            if call.chain is not None:
                call.chain.record(converter.response)


def _ready(value: Any) -> Any:
    """A coroutine returning ``value`` (``_arun`` awaits what the path gives it)."""

    async def ready() -> Any:
        return value

    return ready()


def _is_lost_previous(exc: BaseException) -> bool:
    """The server no longer has the ``previous_response_id`` (a 400 or 404 saying so)."""
    return getattr(exc, "status_code", None) in (400, 404) and (
        getattr(exc, "code", None) == "previous_response_not_found"
        or getattr(exc, "param", None) == "previous_response_id"
    )


class _Call:
    """One ``run``/``arun``: its translated request, sending, and checking what came back."""

    __slots__ = (
        "chain",
        "is_async",
        "messages",
        "path",
        "request",
        "rf",
        "stream",
        "tools",
        "translated",
    )

    def __init__(
        self,
        path: ResponsesPath,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None,
        tools: list[dict[str, Any]] | None,
        is_async: bool,
    ) -> None:
        backend = path.backend
        self.path, self.messages, self.is_async = path, messages, is_async
        request, rf = backend._prepare(response_format, tools)
        self.request = backend.prepared_request(messages, request)  # the base model's rules
        self.rf: Any = rf  # a pydantic class (parse paths), or None
        self.stream = bool(self.request.pop("stream", False))
        configured = self.request.get("tools")
        #: chat-shaped function tools, for parsing their arguments as chat mode does
        self.tools = [t for t in configured if "function" in t] if configured else []
        store = bool(self.request.setdefault("store", False))
        conversation = current_conversation() if store else None
        #: this call's place in a conversation (None: not in one, or nothing stored to chain)
        self.chain = _Chain(backend, messages, conversation) if conversation else None
        if self.chain is None or self.chain.previous is None:
            self.translated = self._translate(messages)
        else:
            self.translated = self._translate(self.chain.messages)
            self.translated.arguments["previous_response_id"] = self.chain.previous

    def _translate(self, messages: Messages) -> ResponsesRequest:
        backend = self.path.backend
        return responses_request(
            backend.model_type, messages, self.request, self.rf, context=backend._context
        )

    def _arguments(self) -> dict[str, Any]:
        if self.stream:
            return {**self.translated.arguments, "stream": True}
        return self.translated.arguments

    def _create(self, responses: Any) -> Callable[..., Any]:
        create = getattr(responses, "create", None)
        if not callable(create):
            raise BackendError(
                f"model {self.path.backend.name!r}: its client has no responses.create(), needed "
                'for api = "responses". Use a client with the openai SDK\'s methods, or set '
                'api = "chat_completions".'
            )
        return create  # type: ignore[no-any-return]

    def _restart(self) -> None:
        """The previous response is gone: resend the whole history, unchained."""
        logger.debug(
            "model %r: previous response gone; sending the history", self.path.backend.name
        )
        if self.chain is not None:
            self.chain.restart()
        self.translated = self._translate(self.messages)

    def send(self, responses: Any) -> Any:
        """``responses.create`` (a coroutine on the async client)."""
        create = self._create(responses)
        if self.is_async:
            return self._asend(create)
        try:
            return create(**self._arguments())
        except Exception as exc:
            if self.chain is None or self.chain.previous is None or not _is_lost_previous(exc):
                raise
        self._restart()
        return create(**self._arguments())

    async def _asend(self, create: Callable[..., Any]) -> Any:
        try:
            return await create(**self._arguments())
        except Exception as exc:
            if self.chain is None or self.chain.previous is None or not _is_lost_previous(exc):
                raise
        self._restart()
        return await create(**self._arguments())

    def checked(self, result: Any, responses: Any) -> Any:
        """A converted reply: completion, parsed completion or chunk stream."""
        kind = type(result).__name__
        if kind in _STREAMS:
            return self.path.stream(result, self)
        backend = self.path.backend
        if kind.endswith("ChatCompletionStream"):  # stream-parse: its raw stream is converted
            return backend._checked(result, responses)
        problem = response_problem(result, backend._secret_values)
        if problem is not None:
            raise BackendError(f"[{backend._context()}] {problem}")
        try:
            completion = self.path.completion(result, self)
        except Exception as exc:
            if isinstance(exc, RegistryError) or type(exc).__module__.startswith("openai"):
                raise
            raise BackendError(f"[{backend._context()}] {backend._unreadable(exc, None)}") from exc
        if self.chain is not None:
            self.chain.record(result)
        return completion

    def manager(self, responses: Any) -> Any:
        """The SDK's chat stream manager over a converted Responses event stream."""
        from openai import omit

        tools = self.tools or omit
        if self.is_async:
            from openai.lib.streaming.chat import AsyncChatCompletionStreamManager

            async def request() -> Any:
                return self.path.stream(await self.send(responses), self)

            return AsyncChatCompletionStreamManager(
                request(), response_format=self.rf, input_tools=tools
            )
        from openai.lib.streaming.chat import ChatCompletionStreamManager

        return ChatCompletionStreamManager(
            lambda: self.path.stream(self.send(responses), self),
            response_format=self.rf,
            input_tools=tools,
        )


class _Chain:
    """One call's place in a conversation: what it continues, and what it sends."""

    __slots__ = ("conversation", "key", "messages", "previous", "sent")

    def __init__(
        self, backend: ChatCompletionsBackend, messages: Messages, conversation: Conversation
    ) -> None:
        self.conversation = conversation
        self.key = (backend.pool_key, backend.model_type)
        self.sent = [fingerprint(m) for m in messages]
        self.previous, covered = conversation.plan(self.key, self.sent)
        self.messages: Messages = messages[covered:] if self.previous is not None else messages
        if self.previous is not None:
            logger.debug("model %r: continuing response %s", backend.name, self.previous)

    def record(self, response: Any) -> None:
        """The call got ``response``: the conversation continues from it."""
        if getattr(response, "id", None):
            reply, _ = message_data(response)
            self.conversation.record(self.key, self.sent, fingerprint(reply), response.id)

    def restart(self) -> None:
        """The previous response is gone (expired, deleted): forget the chain."""
        self.conversation.forget(self.key)
        self.previous = None

"""Request paths shared by the OpenAI-family backends (Azure, OpenAI-compatible).

``_run(messages, response_format=None, tools=None)``:

* no response_format, or a dict one (``{"type": "json_object"}``, a json_schema dict)
  → ``chat.completions.create``: a ``ChatCompletion``, or a ``Stream`` when ``config.stream``;
* a pydantic model class → ``chat.completions.parse`` (a parsed completion), or with
  ``config.stream`` a context manager over the SDK's ``chat.completions.stream`` (entering it
  sends the request and returns the SDK's ``ChatCompletionStream``).

A per-call ``response_format`` wins over the config's; ``tools=[]`` clears configured tools.

Every path — create, stream, parse, stream-parse, sync and async — goes through one attempt
loop and one error translation: the SDK's errors keep their type and get the model and what to
check in their message; a 401 with a token provider is retried once with a fresh token; a 200
that is not a chat completion, a corrupt or cut stream, and anything the SDK fails on while
reading a reply become a :class:`~registry.errors.BackendError` naming the model, with the
original as ``__cause__``.

SDK clients are built on first use (importing :mod:`openai` only then) on the registry's shared
HTTP clients, or on modelreg's own timed ones (:mod:`registry.http_clients`); async ones once per
event loop. A client override (:mod:`registry.overrides`: a scope, ``client``/``async_client``
given by the caller, a client provider) is used as-is for its side, looked up on every call.

``api = "responses"`` sends the same calls to ``responses.create`` instead
(:mod:`backends.responses`), through the same attempt loop, and returns the same types.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, ValidationError

from backends.base import BaseModelBackend, HttpClientSource, Messages
from backends.custom_clients import chat_completions_of
from backends.reply_checks import (
    StreamProgress,
    completion_problem,
    connection_problem,
    excerpt,
    is_completion,
)
from backends.stream_extras import ChoiceExtras
from registry.errors import BackendError, ConfigError, IncompleteStreamError, RegistryError
from registry.event_loops import LoopLocal
from registry.masking import mask_values, redact
from registry.overrides import ClientOverride, active_override
from registry.validation import (
    API_CHOICES,
    Problem,
    check_api,
    check_max_retries,
    check_timeout,
    checked,
)

if TYPE_CHECKING:
    from backends.responses import ResponsesPath
    from backends.token_counting import BaseTokenCounter

__all__ = ["ChatCompletionsBackend", "annotate_sdk_error"]

_TOOL_KEYS = ("tools", "tool_choice", "parallel_tool_calls")
logger = logging.getLogger("modelreg")
_SDK_STREAMS = frozenset({"Stream", "AsyncStream"})
_SDK_EVENT_STREAMS = frozenset({"ChatCompletionStream", "AsyncChatCompletionStream"})


def annotate_sdk_error(
    exc: BaseException, context: str, hint: str = "", secrets: Sequence[str] = ()
) -> None:
    """Prefix an openai SDK error's message with the model (and add a hint), keeping its type.

    ``secrets`` (the model's credentials) are masked in the message and the parsed ``body``: a
    server may quote the key it rejected ("Incorrect API key provided: ...").
    """
    if not _is_sdk_error(exc) or getattr(exc, "_modelreg_context", False):
        return
    message = str(getattr(exc, "message", None) or (exc.args[0] if exc.args else exc))
    message = mask_values(message, secrets)
    if getattr(exc, "body", None) is not None and secrets:
        exc.body = _masked_body(exc.body, secrets)  # type: ignore[attr-defined]
    annotated = f"[{context}] {message}" + (f" {hint}" if hint else "")
    exc.args = (annotated, *exc.args[1:])
    if hasattr(exc, "message"):
        exc.message = annotated
    exc._modelreg_context = True  # type: ignore[attr-defined]


def _masked_body(body: Any, secrets: Sequence[str]) -> Any:
    """An error body (JSON-like) with every string's secrets masked."""
    if isinstance(body, str):
        return mask_values(body, secrets)
    if isinstance(body, dict):
        return {key: _masked_body(value, secrets) for key, value in body.items()}
    if isinstance(body, list):
        return [_masked_body(value, secrets) for value in body]
    return body


def _is_sdk_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("openai")


def _from_sdk(completions: Any) -> bool:
    return type(completions).__module__.startswith("openai.")


def _raised_reading_reply(exc: BaseException) -> bool:
    """Whether the SDK raised ``exc`` while turning a response into objects (not before sending)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "_process_response":
            return True
        tb = tb.tb_next
    return False


class ChatCompletionsBackend(BaseModelBackend):
    """A backend that talks to ``/chat/completions`` (or ``/responses``) through the openai SDK."""

    apis = API_CHOICES

    client_overrides = "handled"  # its client properties go through override_client()

    def __init__(
        self,
        model_type: str,
        model_config_dict: Mapping[str, Any] | None = None,
        *,
        client: Any = None,
        async_client: Any = None,
        timeout: float = 180.0,
        max_retries: int = 3,
        token_counter: BaseTokenCounter | None = None,
        name: str | None = None,
        base_model: str | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        require_finish_reason: bool = True,
        api: str = "chat_completions",
    ) -> None:
        #: ``"chat_completions"`` or ``"responses"``: the API requests go to.
        self.api = checked(check_api, api, f"model {name or model_type!r}, api")
        self._responses: ResponsesPath | None = None
        super().__init__(
            model_type,
            model_config_dict,
            token_counter=token_counter,
            name=name,
            base_model=base_model,
        )
        where = f"model {self.name!r}"
        self.timeout = checked(check_timeout, timeout, f"{where}, timeout")
        self.max_retries = checked(check_max_retries, max_retries, f"{where}, max_retries")
        #: Whether a stream that ends before every choice has a finish_reason is an error.
        self.require_finish_reason = require_finish_reason
        self.client_kwargs: dict[str, Any] = redact(dict(client_kwargs or {}))
        self._client_limits = (self.timeout, self.max_retries)
        if client is not None or async_client is not None:  # each side falls back on its own
            label = "the model's client=/async_client="
            self._clients = ClientOverride(client, async_client, fallback=True, label=label)
        self._sync_client: Any = None
        self._async_clients: LoopLocal[Any] = LoopLocal(self._build_async_client, self._aclose_own)
        self._lock = threading.Lock()
        self._http_clients: HttpClientSource | None = None
        #: Where each setting came from (set by the registry), for error messages.
        self.sources: Mapping[str, str] = {}

    # -- clients ---------------------------------------------------------------------------

    @property
    def pool_key(self) -> str:
        """Which shared HTTP client this model uses (its endpoint's origin)."""
        return "default"

    @abstractmethod
    def _new_sync_client(self, http_client: Any) -> Any:
        """Build the SDK client (``http_client`` is the shared one, or None)."""

    @abstractmethod
    def _new_async_client(self, http_client: Any) -> Any:
        """Build the async SDK client."""

    def _use_http_clients(self, source: HttpClientSource | None) -> None:
        """Share the registry's HTTP clients (unless client_kwargs brings its own)."""
        if "http_client" not in self.client_kwargs:
            self._http_clients = source

    def _http_client(self, *, is_async: bool) -> Any:
        """The shared HTTP client, else a timed one of our own (None: client_kwargs has one)."""
        if self._http_clients is not None:
            source = self._http_clients
            return (source.async_client if is_async else source.sync_client)(self.pool_key)
        if "http_client" in self.client_kwargs:
            return None
        from registry.http_clients import AsyncTimedHttpClient, TimedHttpClient

        return AsyncTimedHttpClient() if is_async else TimedHttpClient()

    @property
    def client(self) -> Any:
        """The sync SDK client: an override's (:meth:`override_client`), else one built once."""
        chosen = self.override_client(is_async=False)
        if chosen is not None:
            return chosen
        if self._sync_client is None:
            with self._lock:
                if self._sync_client is None:
                    self._sync_client = self._new_sync_client(self._http_client(is_async=False))
        return self._sync_client

    @property
    def async_client(self) -> Any:
        """The async SDK client: an override's, else the one built for the running event loop."""
        chosen = self.override_client(is_async=True)
        if chosen is not None:
            return chosen
        return self._async_clients.get()

    def _build_async_client(self) -> Any:
        return self._new_async_client(self._http_client(is_async=True))

    async def _aclose_own(self, client: Any) -> None:
        """Close an async SDK client unless it runs on the registry's shared HTTP client."""
        if self._http_clients is None:
            await client.close()

    def close(self) -> None:
        """Close the sync SDK client this model built for itself (not injected or shared)."""
        if self._http_clients is None:
            client, self._sync_client = self._sync_client, None
            if client is not None:
                client.close()

    async def aclose(self) -> None:
        """Close the SDK clients this model built for itself (not injected or shared)."""
        await self._async_clients.aclose()
        self.close()

    # -- requests --------------------------------------------------------------------------

    @classmethod
    def api_config_problems(cls, config: Mapping[str, Any], api: str) -> list[Problem]:
        """Settings ``api = "responses"`` cannot send (``stop``, ``n`` > 1...)."""
        if api != "responses":
            return super().api_config_problems(config, api)
        from backends.responses_requests import responses_config_problems

        return responses_config_problems(config)

    def check_model_config(self) -> None:
        """The config's keys and types, and (``api = "responses"``) that the API has them."""
        super().check_model_config()
        problems = self.api_config_problems(self.model_config_dict, self.api)
        if problems:
            described = "; ".join(f"{path}: {message}" for path, message in problems)
            raise ConfigError(f"model {self.name!r}: {described}")

    def _responses_path(self) -> ResponsesPath:
        if self._responses is None:
            from backends.responses import ResponsesPath

            self._responses = ResponsesPath(self)
        return self._responses

    def _context(self) -> str:
        """Who is speaking, for the ``[...]`` prefix of error messages."""
        return f"model {self.name!r}"

    def _secret_values(self) -> list[str]:
        """The model's credentials, masked in any excerpt of a server's reply."""
        return []

    def _overridden(self) -> bool:
        """Whether clients come from elsewhere (given, or a scope active while it is built).

        Then missing endpoint settings are an error only if a call needs them.
        """
        return self._clients is not None or active_override() is not None

    def _masked_values(self) -> list[str]:
        """The model's credentials and those of a gateway override in force."""
        override = active_override() or self._clients
        extra = override.secret_values() if override is not None else []
        return self._secret_values() + extra

    def _method(self, completions: Any, name: str) -> Any:
        """``completions.<name>``, or a BackendError saying the injected client lacks it."""
        method = getattr(completions, name, None)
        if not callable(method):
            raise BackendError(
                f"model {self.name!r}: its client has no chat.completions.{name}()"
                f"{'' if name == 'create' else f' (nor beta.chat.completions.{name}())'}, "
                f"needed for {'a response_format model' if name != 'create' else 'requests'}"
                f"{' with streaming' if name == 'stream' else ''}. Use a client with the openai "
                "SDK's methods, or call without response_format."
            )
        return method

    def _prepare(
        self,
        response_format: type[BaseModel] | dict[str, Any] | None,
        tools: list[dict[str, Any]] | None,
    ) -> tuple[dict[str, Any], type[BaseModel] | dict[str, Any] | None]:
        """The request's keyword arguments, and the response_format that applies."""
        request = dict(self.model_config_dict)
        configured_format = request.pop("response_format", None)
        if tools is not None:
            if tools:
                request["tools"] = tools
            else:
                for key in _TOOL_KEYS:
                    request.pop(key, None)
        chosen = response_format if response_format is not None else configured_format
        if isinstance(chosen, dict):
            request["response_format"] = chosen
            return request, None
        return request, chosen

    def _call(self, completions: Any, messages: Messages, request: dict[str, Any], rf: Any) -> Any:
        """One SDK call (a coroutine for the async client's create/parse)."""
        if rf is None:
            return self._method(completions, "create")(
                messages=messages, model=self.model_type, **request
            )
        if request.pop("stream", False):
            return self._method(completions, "stream")(
                messages=messages, model=self.model_type, response_format=rf, **request
            )
        request.pop("stream_options", None)
        return self._method(completions, "parse")(
            messages=messages, model=self.model_type, response_format=rf, **request
        )

    def _request(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None,
        tools: list[dict[str, Any]] | None,
    ) -> tuple[Callable[[Any], Any], bool]:
        """``call(completions)`` for this request, and whether it needs a stream manager."""
        request, rf = self._prepare(response_format, tools)
        request = self.prepared_request(messages, request)  # the base model's rules

        def call(completions: Any) -> Any:
            return self._call(completions, messages, dict(request), rf)

        return call, rf is not None and bool(request.get("stream"))

    def _run(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        if self.api == "responses":
            return self._responses_path().run(messages, response_format, tools, is_async=False)
        call, managed = self._request(messages, response_format, tools)
        if not managed:
            return self._attempts(call)
        from backends.stream_managers import StreamManager

        self._method(chat_completions_of(self.client), "stream")
        return StreamManager(self._attempts, call)

    async def _arun(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        if self.api == "responses":
            return await self._responses_path().run(messages, response_format, tools, is_async=True)
        call, managed = self._request(messages, response_format, tools)
        if not managed:
            return await self._async_attempts(call)
        from backends.stream_managers import AsyncStreamManager

        self._method(chat_completions_of(self.async_client), "stream")
        return AsyncStreamManager(self._async_attempts, call)

    def _attempts(
        self,
        call: Callable[[Any], Any],
        resource: Callable[[Any], Any] = chat_completions_of,
        check: Callable[[Any, Any], Any] | None = None,
    ) -> Any:
        """``call(completions)``, checked; once more after a 401 if credentials can renew.

        ``resource`` picks what ``call`` gets from the client, ``check`` checks its result
        (the Responses path passes its own: ``client.responses`` and its conversion).
        """
        for attempt in (0, 1):
            try:
                completions = resource(self.client)
                return (check or self._checked)(call(completions), completions)
            except Exception as exc:
                if self._retry_auth(exc, attempt, is_async=False):
                    continue
                self._raise_translated(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _async_attempts(
        self,
        call: Callable[[Any], Any],
        resource: Callable[[Any], Any] = chat_completions_of,
        check: Callable[[Any, Any], Any] | None = None,
    ) -> Any:
        """Async :meth:`_attempts` (``call`` may return a coroutine)."""
        for attempt in (0, 1):
            try:
                completions = resource(self.async_client)
                result = call(completions)
                if inspect.isawaitable(result):
                    result = await result
                return (check or self._checked)(result, completions)
            except Exception as exc:
                if self._retry_auth(exc, attempt, is_async=True):
                    continue
                self._raise_translated(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _checked(self, result: Any, completions: Any) -> Any:
        """Guard a stream's iteration; reject an SDK reply that is not a chat completion."""
        kind = type(result).__name__
        if kind in _SDK_STREAMS:
            return self._guard_stream(result)
        if kind in _SDK_EVENT_STREAMS:
            return self._guard_event_stream(result)
        if _from_sdk(completions) and not is_completion(result):
            problem = completion_problem(result, self._masked_values())
            raise BackendError(f"[{self._context()}] {problem}")
        return result

    # -- credentials -----------------------------------------------------------------------

    def _renew_credentials(self, *, is_async: bool) -> bool:
        """Prepare a fresh credential after a 401; False if there is none to get."""
        return False

    def _retry_auth(self, exc: Exception, attempt: int, *, is_async: bool) -> bool:
        if (
            attempt == 0
            and type(exc).__name__ == "AuthenticationError"
            and self._renew_credentials(is_async=is_async)
        ):
            logger.debug("model %r: 401; retrying once with a fresh token", self.name)
            return True
        return False

    # -- errors ----------------------------------------------------------------------------

    def _hint(self, exc: BaseException) -> str:
        """What to check for an SDK error (backends add theirs); "" if nothing to add."""
        if type(exc).__name__ == "APIConnectionError":
            return connection_problem(exc)
        if type(exc).__name__ == "APITimeoutError":
            return (
                f"No complete response within timeout = {self.timeout:g} s (each attempt; "
                f"max_retries = {self.max_retries})."
            )
        return ""

    def _override_hint(self, exc: BaseException) -> str:
        """:meth:`_hint`, unless a client override took the call: then where it went."""
        override = active_override() or self._clients
        if override is None:
            return self._hint(exc)
        partial = override.gateway is None and None in (override.client, override.async_client)
        if partial and override.fallback:  # this side may have used the model's own endpoint
            return f"{self._hint(exc)} (Under {override.label}, which supplies one side only.)"
        generic = ChatCompletionsBackend._hint(self, exc)
        return f"The call went to {override.label}." + (f" {generic}" if generic else "")

    def _credential_problem(self, exc: BaseException) -> RegistryError | None:
        """A credential source's own error turned into ours (Azure: azure-identity's)."""
        return None

    def _translate(self, exc: Exception, progress: StreamProgress | None) -> BaseException:
        """The exception the caller sees for ``exc`` (may be ``exc`` itself, annotated)."""
        if isinstance(exc, RegistryError):
            return exc
        if _is_sdk_error(exc):
            hint = self._override_hint(exc)
            annotate_sdk_error(exc, self._context(), hint, self._masked_values())
            return exc
        problem = self._credential_problem(exc)
        if problem is not None:
            return problem
        if progress is not None or _raised_reading_reply(exc):
            return BackendError(f"[{self._context()}] {self._unreadable(exc, progress)}")
        return exc

    def _raise_translated(self, exc: Exception, progress: StreamProgress | None = None) -> NoReturn:
        translated = self._translate(exc, progress)
        if translated is exc:
            raise exc from exc.__cause__
        raise translated from exc

    def _unreadable(self, exc: Exception, progress: StreamProgress | None) -> str:
        """What failed while reading a reply, in words."""
        secrets = self._masked_values()
        if isinstance(exc, json.JSONDecodeError):
            found = f"({exc.msg} at character {exc.pos}: {excerpt(exc.doc, secrets)})"
            if progress is None:
                return (
                    f"the server's 200 response is not valid JSON {found}; is the endpoint an "
                    "OpenAI-compatible API?"
                )
            if not progress.chunks:
                return (
                    f"the stream's first event is not valid JSON {found}; is the endpoint an "
                    "OpenAI-compatible API?"
                )
            return (
                f"event {progress.chunks + 1} of the stream is not valid JSON {found}, after "
                f"{progress.chunks} valid chunk(s): the stream was corrupted on the way"
            )
        if isinstance(exc, ValidationError):
            return (
                f"the reply does not match the response_format: {excerpt(str(exc), secrets, 400)}"
            )
        what = "stream" if progress is not None else "response"
        detail = f": {excerpt(str(exc), secrets, 200)}" if str(exc) else ""
        reply = "a chat completion" if self.api == "chat_completions" else "a Responses API reply"
        return (
            f"the server's {what} is not {reply} the openai SDK can read "
            f"({type(exc).__name__}{detail})"
        )

    # -- streams ---------------------------------------------------------------------------

    def _guard_stream(self, stream: Any) -> Any:
        """Translate errors while iterating an SDK stream, and check that it really ended."""
        iterator = getattr(stream, "_iterator", None)
        if iterator is None:
            return stream
        response = getattr(stream, "response", None)
        if hasattr(iterator, "__anext__"):
            stream._iterator = self._guarded_async(iterator, response)
        else:
            stream._iterator = self._guarded_sync(iterator, response)
        return stream

    def _guard_event_stream(self, stream: Any) -> Any:
        """The stream-parse helper: guard its raw stream and its own event assembly."""
        raw = getattr(stream, "_raw_stream", None)
        iterator = getattr(stream, "_iterator", None)
        if raw is None or iterator is None:
            return stream
        self._guard_stream(raw)
        extras = ChoiceExtras.watch(raw)  # token ids etc. of the whole reply on the final one
        final = stream.get_final_completion
        if hasattr(iterator, "__anext__"):
            stream._iterator = self._translated_async(iterator)

            async def get_final_completion_async() -> Any:
                try:
                    return extras.apply(await final())
                except Exception as exc:
                    self._raise_translated(exc, StreamProgress())

            stream.get_final_completion = get_final_completion_async
        else:
            stream._iterator = self._translated_sync(iterator)

            def get_final_completion() -> Any:
                try:
                    return extras.apply(final())
                except Exception as exc:
                    self._raise_translated(exc, StreamProgress())

            stream.get_final_completion = get_final_completion
        return stream

    def _guarded_sync(self, iterator: Iterator[Any], response: Any) -> Iterator[Any]:
        progress = StreamProgress()
        try:
            for chunk in iterator:
                progress.see(chunk)
                yield chunk
        except Exception as exc:
            self._raise_translated(exc, progress)
        self._check_end(progress, response)

    async def _guarded_async(
        self, iterator: AsyncIterator[Any], response: Any
    ) -> AsyncIterator[Any]:
        progress = StreamProgress()
        try:
            async for chunk in iterator:
                progress.see(chunk)
                yield chunk
        except Exception as exc:
            self._raise_translated(exc, progress)
        self._check_end(progress, response)

    def _translated_sync(self, iterator: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from iterator
        except Exception as exc:
            self._raise_translated(exc, StreamProgress())

    async def _translated_async(self, iterator: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            async for item in iterator:
                yield item
        except Exception as exc:
            self._raise_translated(exc, StreamProgress())

    def _check_end(self, progress: StreamProgress, response: Any) -> None:
        """A stream that ended without every choice finishing was cut (or never was one)."""
        if progress.complete:
            return
        headers = getattr(response, "headers", None) or {}
        content_type = headers.get("content-type", "")
        if not progress.chunks and "text/event-stream" not in content_type.lower():
            raise BackendError(
                f"[{self._context()}] the server answered a streaming request with "
                f"{content_type or 'no content type'!r}, not an event stream of "
                f"{progress.contents}; is the endpoint an OpenAI-compatible API?"
            )
        if self.require_finish_reason:
            raise IncompleteStreamError(
                f"[{self._context()}] {progress.describe()}: the reply is incomplete (a proxy "
                "or the connection cut it). Retry the request; if this server never sends "
                "finish_reason, set require_finish_reason = false for this model."
            )

    def _missing_side(self, side: str, problem: str) -> BackendError:
        other = "client" if side == "async" else "async_client"
        return BackendError(
            f"model {self.name!r}: cannot build the {side} client: {problem}. Only a custom "
            f"{other} was given; pass the {side} one too, or configure the endpoint settings."
        )

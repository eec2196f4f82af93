"""Request paths shared by the OpenAI-family backends (Azure, OpenAI-compatible).

``_run(messages, response_format=None, tools=None)``:

* no response_format, or a dict one (``{"type": "json_object"}``, a json_schema dict)
  → ``chat.completions.create``: a ``ChatCompletion``, or a ``Stream`` when ``config.stream``;
* a pydantic model class → ``chat.completions.parse`` (a parsed completion), or with
  ``config.stream`` the SDK's ``ChatCompletionStreamManager`` from ``chat.completions.stream``.

A per-call ``response_format`` wins over the config's; ``tools=[]`` clears configured tools.
SDK clients are built on first use (importing :mod:`openai` only then) on the registry's shared
HTTP clients; a ``client``/``async_client`` given by the caller is used as-is for its side.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from backends.base import BaseModelBackend, HttpClientSource, Messages, current_loop
from registry.errors import BackendError
from registry.masking import redact
from registry.overrides import active_override
from registry.validation import check_max_retries, check_timeout, checked

if TYPE_CHECKING:
    from backends.token_counting import BaseTokenCounter

__all__ = ["ChatCompletionsBackend", "annotate_sdk_error"]

_TOOL_KEYS = ("tools", "tool_choice", "parallel_tool_calls")
logger = logging.getLogger("modelreg")
_SDK_STREAMS = frozenset({"Stream", "AsyncStream"})


def annotate_sdk_error(exc: BaseException, context: str) -> None:
    """Prefix an openai SDK error's message with the model it came from, keeping its type."""
    if not type(exc).__module__.startswith("openai") or getattr(exc, "_modelreg_context", False):
        return
    message = str(getattr(exc, "message", None) or (exc.args[0] if exc.args else exc))
    annotated = f"[{context}] {message}"
    exc.args = (annotated, *exc.args[1:])
    if hasattr(exc, "message"):
        exc.message = annotated
    exc._modelreg_context = True  # type: ignore[attr-defined]


class ChatCompletionsBackend(BaseModelBackend):
    """A backend that talks to ``/chat/completions`` through the openai SDK."""

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
    ) -> None:
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
        self.client_kwargs: dict[str, Any] = redact(dict(client_kwargs or {}))
        self._custom_client = client
        self._custom_async_client = async_client
        self._sync_client: Any = client
        self._async_clients: tuple[Any, Any] | None = None  # (event loop, client)
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

    @property
    def client(self) -> Any:
        """The sync SDK client: the injected one, or one built on first use."""
        override = active_override()
        if override is not None and override.client is not None:
            return override.client
        if self._sync_client is None:
            with self._lock:
                if self._sync_client is None:
                    shared = (
                        self._http_clients.sync_client(self.pool_key)
                        if self._http_clients
                        else None
                    )
                    self._sync_client = self._new_sync_client(shared)
        return self._sync_client

    @property
    def async_client(self) -> Any:
        """The async SDK client: the injected one, or one built for the running event loop."""
        override = active_override()
        if override is not None and override.async_client is not None:
            return override.async_client
        if self._custom_async_client is not None:
            return self._custom_async_client
        loop = current_loop()
        cached = self._async_clients
        if cached is not None and cached[0] is loop:
            return cached[1]
        with self._lock:
            shared = self._http_clients.async_client(self.pool_key) if self._http_clients else None
            built = self._new_async_client(shared)
            self._async_clients = (loop, built)
        return built

    def close(self) -> None:
        """Close the sync SDK client this model built for itself (not injected or shared)."""
        if self._http_clients is None and self._sync_client is not self._custom_client:
            client, self._sync_client = self._sync_client, self._custom_client
            if client is not None:
                client.close()

    async def aclose(self) -> None:
        """Close the SDK clients this model built for itself (not injected or shared)."""
        cached, self._async_clients = self._async_clients, None
        if self._http_clients is None and cached is not None:
            await cached[1].close()
        self.close()

    # -- requests --------------------------------------------------------------------------

    def _context(self) -> str:
        return f"model {self.name!r}, deployment {self.model_type!r}"

    def _method(self, completions: Any, name: str) -> Any:
        """``completions.<name>``, or a BackendError saying the injected client lacks it."""
        method = getattr(completions, name, None)
        if not callable(method):
            raise BackendError(
                f"model {self.name!r}: its client has no chat.completions.{name}(), needed for "
                f"{'a response_format model' if name != 'create' else 'requests'}"
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

    @property
    def _renews_credentials(self) -> bool:
        """Whether a 401 is worth one more attempt (a token provider gives a fresh token)."""
        return False

    def _retry_auth(self, exc: Exception, attempt: int) -> bool:
        if (
            attempt == 0
            and self._renews_credentials
            and type(exc).__name__ == "AuthenticationError"
        ):
            logger.debug(
                "model %r: 401 with a token provider; retrying with a fresh token", self.name
            )
            return True
        return False

    def _run(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        request, parsed_format = self._prepare(response_format, tools)
        for attempt in (0, 1):
            try:
                completions = self.client.chat.completions
                return self._guard_stream(
                    self._call(completions, messages, dict(request), parsed_format)
                )
            except Exception as exc:
                if self._retry_auth(exc, attempt):
                    continue
                raise self._annotate(exc) from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arun(
        self,
        messages: Messages,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Any:
        request, parsed_format = self._prepare(response_format, tools)
        for attempt in (0, 1):
            try:
                completions = self.async_client.chat.completions
                result = self._call(completions, messages, dict(request), parsed_format)
                if inspect.isawaitable(result):
                    result = await result
                return self._guard_stream(result)
            except Exception as exc:
                if self._retry_auth(exc, attempt):
                    continue
                raise self._annotate(exc) from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover

    def _annotate(self, exc: Exception) -> Exception:
        """Add the model (and, for a missing deployment, where its name came from) to an error."""
        if isinstance(exc, json.JSONDecodeError):
            return BackendError(
                f"[{self._context()}] the server's response is not valid JSON ({exc.msg} at "
                f"character {exc.pos}); is the endpoint an OpenAI-compatible API?"
            )
        context = self._context()
        if "DeploymentNotFound" in str(getattr(exc, "body", "") or "") + str(exc):
            origin = self.sources.get("deployment", "the constructor")
            endpoint = getattr(self, "url", None) or "the endpoint"
            context += (
                f". Check `deployment` (from {origin}): no deployment of that name exists "
                f"on {endpoint}"
            )
        annotate_sdk_error(exc, context)
        return exc

    def _guard_stream(self, result: Any) -> Any:
        """Errors while iterating an SDK stream get the same context as request errors."""
        if type(result).__name__ not in _SDK_STREAMS:  # cheap check: attribute misses on
            return result  # pydantic models cost microseconds
        iterator = getattr(result, "_iterator", None)
        if iterator is None:
            return result
        if hasattr(iterator, "__anext__"):
            result._iterator = self._guarded_async(iterator)
        else:
            result._iterator = self._guarded_sync(iterator)
        return result

    def _guarded_sync(self, iterator: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from iterator
        except Exception as exc:
            raise self._annotate(exc) from exc.__cause__

    async def _guarded_async(self, iterator: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            async for item in iterator:
                yield item
        except Exception as exc:
            raise self._annotate(exc) from exc.__cause__

    def _missing_side(self, side: str, problem: str) -> BackendError:
        other = "client" if side == "async" else "async_client"
        return BackendError(
            f"model {self.name!r}: cannot build the {side} client: {problem}. Only a custom "
            f"{other} was given; pass the {side} one too, or configure the endpoint settings."
        )

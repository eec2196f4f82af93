"""Responses API replies as chat completions: a ``Response`` → ``ChatCompletion``, events → chunks.

What is converted (everything else stays in the native ``Response``, see
:func:`backends.responses.native_response`):

* the output messages' text → ``message.content`` (refusals → ``message.refusal``, the text's
  token log probabilities → ``choice.logprobs`` when asked for);
* ``function_call`` items → ``message.tool_calls`` (``call_id`` is the tool call's ``id``);
* ``status`` → ``finish_reason``: ``tool_calls`` when the model called a function, else ``stop``;
  an incomplete response → ``length`` (``max_output_tokens``) or ``content_filter``;
* ``usage``: input/output tokens as prompt/completion tokens, with cached and reasoning tokens.

A response whose status is ``failed`` (or a stream's ``error`` / ``response.failed`` event) is
an error, as an error object in a chat stream is: :class:`openai.APIError` in a stream,
:class:`~registry.errors.BackendError` for a 200 whose body says it failed.

Reasoning items and built-in tool calls (web search, file search...) have no chat form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backends.reply_checks import StreamProgress, excerpt

__all__ = [
    "ChunkConverter",
    "ResponsesProgress",
    "completion_data",
    "failure_message",
    "finish_reason",
    "response_problem",
]

_TERMINAL = frozenset({"response.completed", "response.incomplete"})
_INCOMPLETE_REASONS = {"content_filter": "content_filter"}


def finish_reason(response: Any, called_tools: bool) -> str:
    """The chat ``finish_reason`` of a finished response."""
    if getattr(response, "status", None) == "incomplete":
        details = getattr(response, "incomplete_details", None)
        return _INCOMPLETE_REASONS.get(getattr(details, "reason", None) or "", "length")
    return "tool_calls" if called_tools else "stop"


def usage_data(usage: Any) -> dict[str, Any] | None:
    """Responses ``usage`` in chat completion terms."""
    if usage is None:
        return None
    data: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    cached = getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", None)
    if cached is not None:
        data["prompt_tokens_details"] = {"cached_tokens": cached}
    reasoning = getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", None)
    if reasoning is not None:
        data["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return data


def _logprob(item: Any) -> dict[str, Any]:
    return {
        "token": item.token,
        "logprob": item.logprob,
        "bytes": getattr(item, "bytes", None),
        "top_logprobs": [
            {"token": top.token, "logprob": top.logprob, "bytes": getattr(top, "bytes", None)}
            for top in getattr(item, "top_logprobs", None) or ()
        ],
    }


def message_data(response: Any, *, logprobs: bool = False) -> tuple[dict[str, Any], list[Any]]:
    """The assistant message of a response (chat shape), and its text's log probabilities."""
    text: list[str] = []
    refusal: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    tokens: list[Any] = []
    for item in response.output:
        kind = getattr(item, "type", None)
        if kind == "message":
            for part in item.content:
                if part.type == "output_text":
                    text.append(part.text)
                    if logprobs:
                        tokens.extend(_logprob(t) for t in getattr(part, "logprobs", None) or ())
                elif part.type == "refusal":
                    refusal.append(part.refusal)
        elif kind == "function_call":
            tool_calls.append(
                {
                    "id": item.call_id,
                    "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments},
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not (tool_calls or refusal) else None,
        "refusal": "".join(refusal) if refusal else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message, tokens


def completion_data(response: Any, *, logprobs: bool = False) -> dict[str, Any]:
    """A finished ``Response`` as the data of a ``ChatCompletion``."""
    message, tokens = message_data(response, logprobs=logprobs)
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason(response, "tool_calls" in message),
        "logprobs": {"content": tokens, "refusal": None} if logprobs else None,
    }
    data: dict[str, Any] = {
        "id": response.id,
        "object": "chat.completion",
        "created": int(response.created_at),
        "model": response.model,
        "choices": [choice],
        "usage": usage_data(response.usage),
    }
    if getattr(response, "service_tier", None) is not None:
        data["service_tier"] = response.service_tier
    return data


def failure_message(error: Any, secrets: list[str]) -> str:
    """``code 'x': message`` of a Responses error object (or event), secrets masked."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or "no message"
    return f"code {code!r}: {excerpt(str(message), secrets, 300)}" if code else excerpt(message)


def response_problem(result: Any, secrets: Callable[[], list[str]]) -> str | None:
    """Why ``result`` (what ``responses.create`` returned) is not a usable Response, or None.

    ``secrets()`` gives the values to mask in excerpts (asked only when there is a problem).
    """
    if (
        type(getattr(result, "output", None)) is list
        and getattr(result, "object", None) == "response"
        and getattr(result, "status", None) != "failed"
    ):
        return None
    return _problem(result, secrets())


def _problem(result: Any, secrets: list[str]) -> str:
    if isinstance(result, str | bytes):
        return (
            f"the server answered 200 with a body that is not JSON ({len(result)} characters, "
            f"starting {excerpt(result, secrets)}); is the endpoint an OpenAI-compatible API, "
            "or did a proxy or login page answer instead?"
        )
    output = getattr(result, "output", None)
    if type(output) is list and getattr(result, "object", None) == "response":
        return f"the response failed ({failure_message(result.error, secrets)})"
    names = set(getattr(result, "model_fields_set", ()) or ()) | set(
        getattr(result, "model_extra", None) or {}
    )
    error = getattr(result, "error", None)
    said = error.get("message") if isinstance(error, dict) else getattr(error, "message", None)
    return (
        "the server answered 200 with JSON that is not a Responses API response: "
        f"{'no `output` list' if type(output) is not list else 'its object is not response'} "
        f"(its fields: {', '.join(sorted(names)) or 'none'})"
        + (f"; its error says {excerpt(said, secrets, 200)}" if isinstance(said, str) else "")
    )


class ResponsesProgress(StreamProgress):
    """How far a Responses event stream got, for the end-of-stream check."""

    __slots__ = ("done",)
    contents = "Responses API events"

    def __init__(self) -> None:
        super().__init__()
        self.done = False

    def see(self, chunk: Any) -> None:
        """Note one event (``chunks`` counts events): a terminal one completes the stream."""
        self.chunks += 1
        if getattr(chunk, "type", None) in _TERMINAL:
            self.done = True

    @property
    def complete(self) -> bool:
        """The stream reached response.completed or response.incomplete."""
        return self.done

    def describe(self) -> str:
        """Where the stream stopped, for IncompleteStreamError."""
        if not self.chunks:
            return "the stream ended before its first event"
        return (
            f"the stream ended after {self.chunks} event(s) without response.completed or "
            "response.incomplete"
        )


class ChunkConverter:
    """Responses stream events → ``ChatCompletionChunk`` data, one event at a time."""

    def __init__(self, model: str, *, include_usage: bool = False, logprobs: bool = False) -> None:
        self.base: dict[str, Any] = {
            "id": "",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
        }
        self.include_usage = include_usage
        self.logprobs = logprobs
        self.tool_index: dict[int, int] = {}  # output_index → tool call index
        #: The final Response (from response.completed / response.incomplete), once seen.
        self.response: Any = None

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        choice.update(extra)
        return {**self.base, "choices": [choice]}

    def chunks(self, event: Any) -> list[dict[str, Any]]:
        """The chunks ``event`` becomes (most events become none)."""
        kind = getattr(event, "type", None)  # an event the SDK could not type: none
        if kind == "response.output_text.delta":
            extra: dict[str, Any] = {}
            if self.logprobs:
                extra["logprobs"] = {"content": [_logprob(t) for t in event.logprobs or ()]}
            return [self._chunk({"content": event.delta}, **extra)]
        if kind == "response.function_call_arguments.delta":
            index = self.tool_index.get(event.output_index, 0)
            call = {"index": index, "function": {"arguments": event.delta}}
            return [self._chunk({"tool_calls": [call]})]
        if (
            kind == "response.output_item.added"
            and getattr(event.item, "type", 0) == "function_call"
        ):
            index = self.tool_index[event.output_index] = len(self.tool_index)
            call = {
                "index": index,
                "id": event.item.call_id,
                "type": "function",
                "function": {"name": event.item.name, "arguments": event.item.arguments or ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "response.refusal.delta":
            return [self._chunk({"refusal": event.delta})]
        if kind == "response.created":
            response = event.response
            self.base.update(id=response.id, created=int(response.created_at), model=response.model)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind in _TERMINAL:
            return self._end(event.response)
        return []

    def _end(self, response: Any) -> list[dict[str, Any]]:
        self.response = response
        finish = finish_reason(response, bool(self.tool_index))
        chunks = [self._chunk({}, finish)]
        if self.include_usage:
            chunks.append({**self.base, "choices": [], "usage": usage_data(response.usage)})
        return chunks

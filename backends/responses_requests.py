"""A chat completions request in the Responses API's words.

``run(messages, response_format, tools)`` takes the same arguments whichever API a model speaks;
for ``api = "responses"`` they are translated here into ``responses.create`` arguments:

* messages → ``input`` items: system, developer and user messages (text, images, files, audio)
  as messages; an assistant's text as an assistant message and its ``tool_calls`` as
  ``function_call`` items; ``tool`` messages as ``function_call_output`` items;
* ``max_tokens`` / ``max_completion_tokens`` → ``max_output_tokens``; ``reasoning_effort`` →
  ``reasoning.effort``; ``verbosity`` → ``text.verbosity``; ``logprobs`` → the
  ``message.output_text.logprobs`` include;
* ``response_format`` (a dict, or a pydantic class via the SDK's own schema builder) →
  ``text.format``;
* chat tools ``{"type": "function", "function": {...}}`` flattened to ``{"type": "function",
  "name": ...}`` (``strict`` stays false unless set, as in chat); ``tool_choice`` likewise.
  Tools already in the Responses shape (``{"type": "web_search"}``) pass through.

Settings the Responses API does not have (``stop``, penalties, ``logit_bias``, ``seed``, ``n``
above 1...) are a :class:`~registry.errors.ConfigError` naming them, at construction for the
model's config and at call time for per-call settings: dropping them would change the reply
without a word. Nothing here imports :mod:`openai` until a pydantic ``response_format`` is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from registry.errors import ConfigError
from registry.validation import Problem

__all__ = [
    "CHAT_ONLY_SETTINGS",
    "ResponsesRequest",
    "input_items",
    "responses_config_problems",
    "responses_request",
]

_USE_CHAT = 'remove it, or use api = "chat_completions" for this model'
#: Chat completions settings the Responses API has no equivalent for, and why.
CHAT_ONLY_SETTINGS: Mapping[str, str] = {
    "stop": "the Responses API has no stop sequences",
    "presence_penalty": "the Responses API has no presence penalty",
    "frequency_penalty": "the Responses API has no frequency penalty",
    "logit_bias": "the Responses API has no logit bias",
    "seed": "the Responses API takes no seed",
    "modalities": "audio output is a chat completions feature",
    "audio": "audio output is a chat completions feature",
    "prediction": "predicted outputs are a chat completions feature",
    "web_search_options": 'add a {"type": "web_search"} tool instead',
    "functions": "use tools",
    "function_call": "use tool_choice",
}
_CHAT_ONLY_KEYS = frozenset(CHAT_ONLY_SETTINGS)
_TOKEN_LIMITS = ("max_tokens", "max_completion_tokens")  # the later one wins if both are set
_LOGPROBS_INCLUDE = "message.output_text.logprobs"


@dataclass
class ResponsesRequest:
    """``responses.create`` keyword arguments, and what the chat side still needs to know."""

    arguments: dict[str, Any]
    #: chat's ``stream_options.include_usage``: end the stream with a usage-only chunk.
    include_usage: bool = False
    #: chat's ``logprobs``: put the tokens' log probabilities on each choice.
    logprobs: bool = False


def responses_config_problems(config: Mapping[str, Any]) -> list[Problem]:
    """``(config.key, message)`` for each setting ``api = "responses"`` cannot send."""
    if _CHAT_ONLY_KEYS.isdisjoint(config) and config.get("n") in (None, 1):
        return []  # every call asks: the usual answer costs one set operation
    problems = [
        (f"config.{key}", f'is not supported with api = "responses" ({why}); {_USE_CHAT}')
        for key, why in CHAT_ONLY_SETTINGS.items()
        if key in config
    ]
    n = config.get("n")
    if n is not None and n != 1:
        problems.append(
            (
                "config.n",
                'must be 1 with api = "responses": a Responses request returns one reply; make '
                'several requests for several replies, or use api = "chat_completions"',
            )
        )
    return problems


def responses_request(
    model: str,
    messages: Iterable[Any],
    request: Mapping[str, Any],
    response_format: type[BaseModel] | Mapping[str, Any] | None,
    *,
    context: Callable[[], str],
) -> ResponsesRequest:
    """Translate one chat request for ``responses.create``.

    ``request`` holds its settings as ``chat.completions.create`` would get them; ``context()``
    says whose request it is, for error messages.

    Raises:
        ConfigError: a setting the Responses API does not have, or a message it cannot carry.
    """
    problems = responses_config_problems(request)
    if problems:
        raise ConfigError(f"{context()}: " + "; ".join(f"{path}: {m}" for path, m in problems))
    arguments: dict[str, Any] = {"model": model, "input": input_items(messages, context=context)}
    text: dict[str, Any] = {}
    translated = ResponsesRequest(arguments)
    for key, value in request.items():
        if value is None or key == "n":
            continue
        if key in _TOKEN_LIMITS:
            if key == "max_completion_tokens" or "max_output_tokens" not in arguments:
                arguments["max_output_tokens"] = value
        elif key == "reasoning_effort":
            arguments["reasoning"] = {**arguments.get("reasoning", {}), "effort": value}
        elif key == "reasoning":
            arguments["reasoning"] = {**value, **arguments.get("reasoning", {})}
        elif key == "verbosity":
            text["verbosity"] = value
        elif key == "text":
            text = {**value, **text}
        elif key == "tools":
            arguments["tools"] = [flat_tool(tool) for tool in value]
        elif key == "tool_choice":
            arguments["tool_choice"] = flat_tool_choice(value)
        elif key == "stream_options":
            options = dict(value)
            translated.include_usage = bool(options.pop("include_usage", False))
            if options:
                arguments["stream_options"] = options
        elif key == "logprobs":
            translated.logprobs = bool(value)
            if value:
                include = arguments.setdefault("include", [])
                if _LOGPROBS_INCLUDE not in include:
                    include.append(_LOGPROBS_INCLUDE)
        elif key == "response_format":
            text["format"] = text_format(value)
        elif key == "include":
            arguments["include"] = list(value) + list(arguments.get("include", ()))
        else:
            arguments[key] = value
    if response_format is not None:
        text["format"] = text_format(response_format)
    if text:
        arguments["text"] = text
    return translated


def text_format(response_format: type[BaseModel] | Mapping[str, Any]) -> dict[str, Any]:
    """Chat's ``response_format`` as the Responses API's ``text.format``."""
    if isinstance(response_format, type):
        from openai.lib._parsing._responses import type_to_text_format_param

        return dict(type_to_text_format_param(response_format))
    kind = response_format.get("type")
    if kind == "json_schema" and "json_schema" in response_format:
        schema = response_format["json_schema"]
        return {"type": "json_schema", **schema}
    return dict(response_format)


def flat_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A chat tool definition in the Responses shape (others are returned as they are)."""
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, Mapping):
        return dict(tool)
    return {"type": "function", "strict": False, **function}


def flat_tool_choice(choice: Any) -> Any:
    """``{"type": "function", "function": {"name": n}}`` → ``{"type": "function", "name": n}``."""
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


# -- messages ---------------------------------------------------------------------------------


def input_items(
    messages: Iterable[Any], *, context: Callable[[], str] = lambda: "model"
) -> list[dict[str, Any]]:
    """OpenAI chat messages as Responses ``input`` items (see the module docstring)."""
    items: list[dict[str, Any]] = []
    for index, raw in enumerate(messages):
        message = _as_mapping(raw)
        role = message.get("role")
        if role in ("system", "developer", "user"):
            items.append({"role": role, "content": _input_content(message.get("content"))})
        elif role == "assistant":
            items.extend(_assistant_items(message))
        elif role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id"),
                    "output": _text(message.get("content")),
                }
            )
        else:
            what = "the legacy 'function' role" if role == "function" else f"role {role!r}"
            raise ConfigError(
                f"{context()}: message {index} has {what}, which the Responses API cannot carry; "
                "use tool messages (role 'tool' with tool_call_id)."
            )
    return items


def _as_mapping(message: Any) -> Mapping[str, Any]:
    """A message as a mapping (a pydantic message, e.g. a reply's, is dumped)."""
    if type(message) is dict or isinstance(message, Mapping):
        return message
    dump = getattr(message, "model_dump", None)
    if callable(dump):
        dumped: Mapping[str, Any] = dump(exclude_none=True)
        return dumped
    raise ConfigError(f"a message must be a mapping, not {type(message).__name__}")


def _assistant_items(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    content = _text(message.get("content"))
    if content:
        items.append({"role": "assistant", "content": content})
    for call in message.get("tool_calls") or ():
        call = _as_mapping(call)
        function = _as_mapping(call.get("function") or {})
        items.append(
            {
                "type": "function_call",
                "call_id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments") or "",
            }
        )
    return items


def _text(content: Any) -> str:
    """A message's text: a string, or its text (and refusal) parts joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        part = _as_mapping(part)
        text = part.get("text", part.get("refusal"))
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)


def _input_content(content: Any) -> Any:
    """A system/user message's content: a string as it is, parts in the Responses shape."""
    if content is None or isinstance(content, str):
        return content or ""
    return [_input_part(_as_mapping(part)) for part in content]


def _input_part(part: Mapping[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": part.get("text", "")}
    if kind == "image_url":
        image = part.get("image_url")
        image = {"url": image} if isinstance(image, str) else _as_mapping(image or {})
        return {
            "type": "input_image",
            "image_url": image.get("url"),
            "detail": image.get("detail") or "auto",
        }
    if kind == "file":
        return {"type": "input_file", **_as_mapping(part.get("file") or {})}
    return dict(part)  # input_audio has the same shape; Responses-shaped parts pass through

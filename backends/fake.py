"""A deterministic backend for an application's own tests: no network, real SDK types.

``backend = "fake"`` replies with ``reply`` (or cycles through ``replies``, or echoes the last
user message), returns ``ChatCompletion`` objects (chunks when ``config.stream``), a
schema-valid instance for a pydantic ``response_format``, and a call of the first tool when
tools are given and ``tool_call = true``. ``calls`` records each call, with the request
settings in force (the model's config and the call's own).

``faults`` scripts failures, one entry per call (``["429 retry-after=2", "ok"]``; the grammar
is in :mod:`backends.fake_faults`): a call whose entry is a fault is recorded in ``calls`` and
raises :class:`~backends.fake_faults.FakeFault`, which a pool classifies like the server's
answer; ``cut`` streams the first chunk, then raises. A faulted call takes no reply from
``replies`` (a cut stream does: it began to answer). Once the script is used up, calls answer
normally; ``faults_left`` says how many entries remain.

Under a client override the fake is routed like any plugin backend
(:attr:`~backends.base.BaseModelBackend.client_overrides`): the call goes to the override's
client and the fake does not answer. The fake stands in for a real deployment in an
application's tests; an RL framework testing its rollout against such an application must see
every call on its own client, as it would in production — answering locally instead would be
the silent bypass overrides exist to prevent, and refusing would make the fake unusable there.
"""

from __future__ import annotations

import enum
import itertools
import json
import threading
import types
import typing
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict

from backends.base import BackendSettings, BaseModelBackend, BuildContext, Messages
from backends.results import chunks_from_text

if TYPE_CHECKING:
    from backends.fake_faults import FakeFault
    from registry.spec import ModelSpec

__all__ = ["FakeFault", "FakeModel", "FakeSettings", "example_instance"]


def __getattr__(name: str) -> Any:
    """``FakeFault``, from :mod:`backends.fake_faults` when first asked for."""
    if name == "FakeFault":
        from backends.fake_faults import FakeFault

        return FakeFault
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_fault(value: Any) -> Any:
    """:func:`backends.fake_faults.check_fault`, imported only when a table has ``faults``."""
    from backends.fake_faults import check_fault

    return check_fault(value)


class FakeSettings(BackendSettings):
    """Fields of a ``backend = "fake"`` model table.

    Its validator is built on first use (``defer_build``): a process whose models are all
    Azure does not pay for it, nor import the fault grammar (:mod:`backends.fake_faults`).
    """

    model_config = ConfigDict(defer_build=True)

    reply: str | None = None
    replies: list[str] = []
    tool_call: bool = False
    #: One entry per call, in order (see :mod:`backends.fake_faults`); then normal answers.
    faults: list[Annotated[str, BeforeValidator(_check_fault)]] = []


def _example_value(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _example_value(options[0]) if options else None
    if origin in (list, set, tuple, frozenset):
        return []
    if origin is dict:
        return {}
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return example_instance(annotation).model_dump()
        if issubclass(annotation, enum.Enum):
            return next(iter(annotation)).value
        if issubclass(annotation, bool):
            return False
        if issubclass(annotation, int | float):
            return annotation(0)
        if issubclass(annotation, str):
            return "fake"
    return None


def example_instance(model: type[BaseModel]) -> BaseModel:
    """A valid instance of ``model`` built from its field types (defaults where given)."""
    data = {
        name: _example_value(info.annotation)
        for name, info in model.model_fields.items()
        if info.is_required()
    }
    return model.model_validate(data)


class FakeModel(BaseModelBackend):
    """Deterministic replies; see the module docstring."""

    settings_model = FakeSettings
    #: Its replies have the same types whichever API the real model speaks.
    apis = ("chat_completions", "responses")

    def __init__(
        self,
        model_type: str = "fake",
        model_config_dict: dict[str, Any] | None = None,
        *,
        reply: str | None = None,
        replies: list[str] | None = None,
        tool_call: bool = False,
        faults: list[str] | None = None,
        name: str | None = None,
        base_model: str | None = None,
    ) -> None:
        super().__init__(model_type, model_config_dict, name=name, base_model=base_model)
        from backends.fake_faults import FaultScript

        self._faults = FaultScript(self.name, faults or [])
        self.reply = reply
        self._replies = itertools.cycle(replies) if replies else None
        self._lock = threading.Lock()
        self.tool_call = tool_call
        self.calls: list[dict[str, Any]] = []

    def credential(self) -> tuple[str, str] | None:
        """The fake backend sends no request, so it needs no credential."""
        return "none: the fake backend sends no request", ""

    @classmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> Self:
        """Build from a ``backend = "fake"`` table."""
        options = spec.options
        assert isinstance(options, FakeSettings)
        model = cls(
            spec.common.model or "fake",
            dict(spec.config),
            reply=options.reply,
            replies=list(options.replies),
            tool_call=options.tool_call,
            faults=list(options.faults),
            name=spec.name,
            base_model=spec.common.model,
        )
        return model

    @property
    def faults_left(self) -> int:
        """Entries of the ``faults`` script not consumed yet."""
        return self._faults.left

    def _text(self, messages: Messages) -> str:
        with self._lock:
            if self._replies is not None:
                return next(self._replies)
        if self.reply is not None:
            return self.reply
        for message in reversed(messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    content = " ".join(
                        str(p.get("text", "")) for p in content if isinstance(p, dict)
                    )
                return f"fake reply to: {content}"
        return "fake reply"

    def _completion(self, messages: Messages, rf: Any, tools: list[dict[str, Any]] | None) -> Any:
        from openai.types.chat import ChatCompletion

        message: dict[str, Any] = {"role": "assistant", "content": self._text(messages)}
        finish = "stop"
        if isinstance(rf, type) and issubclass(rf, BaseModel):
            message["content"] = example_instance(rf).model_dump_json()
        if tools and self.tool_call:
            function = tools[0].get("function", {})
            schema = function.get("parameters", {}).get("properties", {})
            arguments = {key: "fake" for key in schema}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_fake_0",
                        "type": "function",
                        "function": {
                            "name": function.get("name", "tool"),
                            "arguments": json.dumps(arguments),
                        },
                    }
                ],
            }
            finish = "tool_calls"
        return ChatCompletion.model_validate(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": self.model_type,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        )

    def _chunks(self, completion: Any) -> list[Any]:
        text = completion.choices[0].message.content or ""
        pieces = [text[i : i + 8] for i in range(0, len(text), 8)] or [""]
        return list(chunks_from_text(pieces, model=self.model_type, id=completion.id))

    def _respond(self, messages: Messages, response_format: Any, tools: Any) -> Any:
        rf = (
            response_format
            if response_format is not None
            else self.model_config_dict.get("response_format")
        )
        active_tools = self.model_config_dict.get("tools") if tools is None else tools
        completion = self._completion(messages, rf, active_tools)
        if isinstance(rf, type) and issubclass(rf, BaseModel):
            completion = _parsed(completion, rf)
        return completion

    def _result(self, messages: Messages, response_format: Any, tools: Any, stream_of: Any) -> Any:
        """A completion, or (streaming) ``stream_of(chunks)`` or a stream manager."""
        request = dict(self.model_config_dict) | ({"tools": tools} if tools else {})
        self.prepared_request(messages, request)  # the base model's rules, as a real backend's
        self.calls.append(
            {
                "messages": messages,
                "response_format": response_format,
                "tools": tools,
                "config": dict(self.model_config_dict),
            }
        )
        fault = self._faults.take()
        if fault is not None and not (fault.cut and self.stream):
            raise fault
        completion = self._respond(messages, response_format, tools)
        if not self.stream:
            return completion
        chunks = self._chunks(completion)
        if hasattr(completion.choices[0].message, "parsed"):
            return _FakeStreamManager(chunks, completion, fault)
        return stream_of(chunks if fault is None else _cut(chunks, fault))

    def _run(self, messages: Messages, response_format: Any = None, tools: Any = None) -> Any:
        return self._result(messages, response_format, tools, iter)

    async def _arun(
        self, messages: Messages, response_format: Any = None, tools: Any = None
    ) -> Any:
        return self._result(messages, response_format, tools, _aiter)


def _parsed(completion: Any, model: type[BaseModel]) -> Any:
    from openai.types.chat import ParsedChatCompletion

    data = completion.model_dump()
    content = data["choices"][0]["message"]["content"]
    data["choices"][0]["message"]["parsed"] = (
        model.model_validate_json(content) if content else None
    )
    return ParsedChatCompletion[model].model_validate(data)  # type: ignore[valid-type]


def _cut(chunks: list[Any], fault: FakeFault) -> Iterator[Any]:
    """The first chunk, then the connection breaks."""
    yield chunks[0]
    raise fault


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class _FakeStreamManager:
    """Stands in for the SDK's (Async)ChatCompletionStreamManager: iterate chunks, get the final."""

    def __init__(self, chunks: list[Any], final: Any, cut: FakeFault | None = None) -> None:
        self._chunks = chunks
        self._final = final
        self._cut = cut

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> _AsyncFakeStream:
        return _AsyncFakeStream(self)

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _stream(self) -> Iterator[Any]:
        return iter(self._chunks) if self._cut is None else _cut(self._chunks, self._cut)

    def __iter__(self) -> Iterator[Any]:
        return self._stream()

    def __aiter__(self) -> AsyncIterator[Any]:
        return _aiter(self._stream())

    def get_final_completion(self) -> Any:
        """The parsed completion, as the SDK's manager returns it (a cut stream raises)."""
        if self._cut is not None:
            raise self._cut
        return self._final


class _AsyncFakeStream:
    """What ``async with`` on the fake's manager gives, as the SDK's AsyncChatCompletionStream.

    An async iterator whose ``get_final_completion`` is awaited.
    """

    def __init__(self, manager: _FakeStreamManager) -> None:
        self._manager = manager

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._manager.__aiter__()

    async def get_final_completion(self) -> Any:
        """The parsed completion (a cut stream raises)."""
        return self._manager.get_final_completion()

"""Conversation chaining for the Responses API: ``with conversation():``.

A chat request carries the whole history every time. The Responses API can instead continue
from a stored response (``previous_response_id``) and take only what is new. Inside a
``conversation()`` block, a model with ``api = "responses"`` and ``config.store = true`` does
that: when the messages of a call start with exactly what it sent last time plus the reply it
got, only the messages after them are sent, with the previous response's id. Anything else —
an edited or shortened history, another model, ``store = false`` — sends the full history, so
chaining never changes what the model sees, only how much goes over the wire.

The scope is a :mod:`contextvars` variable: each thread and each asyncio task has its own
conversation (tasks started inside a block share the block's), so concurrent conversations never
mix. Chains are kept per model (endpoint and deployment): a response id is only valid where it
was created. Outside a block nothing is remembered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["Conversation", "conversation", "current_conversation", "fingerprint"]

#: A message reduced to what the model sees of it (dicts and SDK objects compare equal).
Fingerprint = tuple[Any, ...]


@dataclass(frozen=True)
class _Chain:
    response_id: str
    covered: tuple[Fingerprint, ...]  # the messages sent so far, then the reply


class Conversation:
    """The last response of each model in one conversation (see the module docstring)."""

    def __init__(self) -> None:
        self._chains: dict[Hashable, _Chain] = {}
        self._lock = threading.Lock()

    def plan(self, key: Hashable, messages: Sequence[Fingerprint]) -> tuple[str | None, int]:
        """``(previous_response_id, messages it covers)`` for a call; ``(None, 0)``: send all."""
        with self._lock:
            chain = self._chains.get(key)
        if chain is None:
            return None, 0
        size = len(chain.covered)
        if len(messages) > size and tuple(messages[:size]) == chain.covered:
            return chain.response_id, size
        return None, 0

    def record(
        self, key: Hashable, messages: Sequence[Fingerprint], reply: Fingerprint, response_id: str
    ) -> None:
        """A model answered ``messages`` with ``reply`` as response ``response_id``."""
        with self._lock:
            self._chains[key] = _Chain(response_id, (*messages, reply))

    def forget(self, key: Hashable) -> None:
        """Drop a model's chain (its stored response is gone): the next call sends everything."""
        with self._lock:
            self._chains.pop(key, None)

    def response_id(self, key: Hashable) -> str | None:
        """The last response id of a model in this conversation, if any."""
        with self._lock:
            chain = self._chains.get(key)
        return chain.response_id if chain else None


_CURRENT: ContextVar[Conversation | None] = ContextVar("modelreg_conversation", default=None)


def current_conversation() -> Conversation | None:
    """The conversation of this thread or task, or None outside ``conversation()``."""
    return _CURRENT.get()


@contextmanager
def conversation() -> Iterator[Conversation]:
    """Chain Responses API calls made in this block (see the module docstring)."""
    state = Conversation()
    token = _CURRENT.set(state)
    try:
        yield state
    finally:
        _CURRENT.reset(token)


def _value(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def _dumped(part: Any) -> Any:
    dump = getattr(part, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else part


def _content(content: Any) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list | tuple):
        parts = [_dumped(part) for part in content]
        return json.dumps(parts, sort_keys=True, default=str)
    return json.dumps(content, sort_keys=True, default=str)


def fingerprint(message: Any) -> Fingerprint:
    """What the model sees of one chat message (a dict or a reply's message object)."""
    calls = tuple(
        (_value(call, "id"), _value(function, "name"), _value(function, "arguments") or "")
        for call in _value(message, "tool_calls") or ()
        for function in (_value(call, "function") or {},)
    )
    return (
        _value(message, "role"),
        _content(_value(message, "content")),
        calls,
        _value(message, "tool_call_id"),
    )

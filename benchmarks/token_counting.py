"""Token counting against raw ``encode``: counting a conversation once, and an agent loop.

* **Once**: a 50-turn conversation of text never counted before (every call gets a fresh
  conversation, so neither cache can help) against one ``encode_ordinary`` of every counted
  string concatenated.
* **Agent loop**: a conversation growing from 1 to 200 messages, counted after each append —
  what an agent does every step — against the floor of encoding only the new message at each
  step. Each repetition is a fresh conversation. A second loop has tool calls and tool
  results (nested values); a reference row runs the first loop with the caches off.

Rows are skipped (with the reason in the table) when the tokenizer files are absent.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from benchmarks._util import Figure, paired_blocks, skipped, tokenizer_files_missing

_LOOP = 200
_ONCE = "count 50-turn conversation once"
_AGENT = f"agent loop: 1 to {_LOOP} messages, counted after each append"


def conversation(turns: int = 50, serial: int = 0) -> list[dict[str, str]]:
    """A realistic conversation: a system prompt, then user/assistant turns of varied text.

    ``serial`` makes every message's text new (a different conversation, same shape).
    """
    tag = f"[{serial}] " if serial else ""
    messages = [
        {"role": "system", "content": f"{tag}You are a careful assistant for a logistics team."}
    ]
    for turn in range(turns):
        messages.append(
            {
                "role": "user",
                "name": "dispatcher",
                "content": f"{tag}Turn {turn}: where is shipment {turn * 7919} now, and when "
                "will it reach the Rotterdam depot? List any customs holds.",
            }
        )
        messages.append(
            {
                "role": "assistant",
                "content": f"{tag}Shipment {turn * 7919} left Hamburg at 06:{turn % 60:02d} and "
                "is expected in Rotterdam tomorrow morning. No customs holds "
                "are recorded; the carrier reports normal transit times.",
            }
        )
    return messages


def tool_conversation(size: int, serial: int) -> list[dict[str, Any]]:
    """An agent's history: a task, then tool calls (content None) and their results."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"[{serial}] You track shipments with the tools given."},
        {"role": "user", "content": f"[{serial}] Check every shipment on today's manifest."},
    ]
    for step in itertools.count():
        call_id = f"call_{serial}_{step}"
        arguments = json.dumps({"shipment": step * 7919, "fields": ["position", "eta"]})
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "lookup_shipment", "arguments": arguments},
                    }
                ],
            }
        )
        messages.append(
            {
                "role": "tool",
                "tool_call_id": call_id,
                "content": json.dumps(
                    {
                        "shipment": step * 7919,
                        "position": f"[{serial}] North Sea, 53.{step % 97:02d}N 4.{step % 89:02d}E",
                        "eta": f"2025-03-{step % 28 + 1:02d}T06:{step % 60:02d}:00Z",
                        "holds": [],
                    }
                ),
            }
        )
        if len(messages) >= size:
            return messages[:size]
    raise AssertionError("unreachable")


def _texts(message: dict[str, Any]) -> str:
    """Every string of a message concatenated: what the floor encodes for it."""
    from backends.token_counting import _strings

    return "".join(_strings(message))


def run(quick: bool) -> list[Figure]:
    reason = tokenizer_files_missing("o200k_base")
    if reason:
        return [
            skipped(_ONCE, "<= 1.1x", reason),
            skipped(_AGENT, "<= 3x", reason),
        ]
    return _count_once(quick) + _agent_loops(quick)


def _count_once(quick: bool) -> list[Figure]:
    from backends.count_cache import clear_count_caches
    from backends.encodings import get_encoding
    from backends.token_counting import OpenAITokenCounter

    counter = OpenAITokenCounter("gpt-4o")
    encoding = get_encoding("o200k_base")
    serials = itertools.count(1)
    fresh: dict[str, Iterator[Any]] = {}
    block = 20

    def prepare() -> None:
        batch = [conversation(50, next(serials)) for _ in range(block)]
        fresh["messages"] = iter(batch)
        fresh["joined"] = iter(["".join(v for m in c for v in m.values()) for c in batch])
        fresh["strings"] = iter([[v for m in c for v in m.values()] for c in batch])

    clear_count_caches()
    counter.count_tokens_from_messages(conversation(50, next(serials)))
    ours, baseline, ratio = paired_blocks(
        lambda: counter.count_tokens_from_messages(next(fresh["messages"])),
        lambda: encoding.encode_ordinary(next(fresh["joined"])),
        calls=200 if quick else 2000,
        block=block,
        setup=prepare,
    )
    built, built_base, built_ratio = paired_blocks(
        lambda: counter.count_tokens_from_messages(next(fresh["messages"])),
        lambda: encoding.encode_ordinary("".join(next(fresh["strings"]))),
        calls=100 if quick else 1000,
        block=block,
        setup=prepare,
    )
    messages = conversation(50)
    joined = "".join(value for message in messages for value in message.values())
    counter.count_tokens_from_messages(messages)
    again, again_base, again_ratio = paired_blocks(
        lambda: counter.count_tokens_from_messages(messages),
        lambda: encoding.encode_ordinary(joined),
        calls=100 if quick else 1000,
        block=block,
    )
    return [
        Figure(
            _ONCE,
            ours * 1e6,
            "us",
            baseline * 1e6,
            "raw encode of the concatenated strings",
            "<= 1.1x",
            ratio <= 1.1,
            paired_ratio=ratio,
        ),
        Figure(
            "count once, vs raw encode that also builds the concatenation",
            built * 1e6,
            "us",
            built_base * 1e6,
            "join the strings, then encode",
            "-",
            None,
            paired_ratio=built_ratio,
        ),
        Figure(
            "count the same 50-turn conversation again (cached)",
            again * 1e6,
            "us",
            again_base * 1e6,
            "raw encode of the concatenated strings",
            "-",
            None,
            paired_ratio=again_ratio,
        ),
    ]


def _agent_loops(quick: bool) -> list[Figure]:
    from backends.encodings import get_encoding
    from backends.token_counting import OpenAITokenCounter

    encoding = get_encoding("o200k_base")
    cached = OpenAITokenCounter("gpt-4o")
    uncached = OpenAITokenCounter("gpt-4o")
    uncached.cache_counts = False
    serials = itertools.count(1_000_001)
    plain = _Loop(cached, encoding, lambda: conversation(_LOOP // 2, next(serials))[:_LOOP])
    figures = [
        plain.figure(
            _AGENT,
            "<= 3x",
            repeats=7 if quick else 41,
        )
    ]
    tools = _Loop(cached, encoding, lambda: tool_conversation(_LOOP, next(serials)))
    figures.append(
        tools.figure(
            f"agent loop with tool calls: 1 to {_LOOP} messages", "<= 3x", 7 if quick else 41
        )
    )
    off = _Loop(uncached, encoding, lambda: conversation(_LOOP // 2, next(serials))[:_LOOP])
    figures.append(off.figure("(reference) agent loop, caches off", "-", 2 if quick else 5))
    return figures


class _Loop:
    """One agent loop against its floor, on a fresh conversation per repetition."""

    def __init__(self, counter: Any, encoding: Any, make: Any) -> None:
        self.counter = counter
        self.encoding = encoding
        self.make = make
        self.messages: list[dict[str, Any]] = []
        self.texts: list[str] = []

    def prepare(self) -> None:
        self.messages = self.make()
        self.texts = [_texts(message) for message in self.messages]

    def ours(self) -> None:
        count = self.counter.count_tokens_from_messages
        history: list[dict[str, Any]] = []
        for message in self.messages:
            history.append(message)
            count(history)

    def floor(self) -> None:
        encode = self.encoding.encode_ordinary
        for text in self.texts:
            encode(text)

    def figure(self, name: str, target: str, repeats: int) -> Figure:
        ours, floor, ratio = paired_blocks(
            self.ours, self.floor, calls=repeats, block=1, setup=self.prepare
        )
        limit = float(target.removeprefix("<= ").removesuffix("x")) if target != "-" else None
        return Figure(
            name,
            ours * 1e3,
            "ms",
            floor * 1e3,
            "encode only each new message",
            target,
            None if limit is None else ratio <= limit,
            paired_ratio=ratio,
        )

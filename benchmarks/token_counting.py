"""Counting a 50-turn conversation vs raw ``encode`` of every string the formula counts."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks._util import REPO, Figure, paired_blocks


def conversation(turns: int = 50) -> list[dict[str, str]]:
    """A realistic conversation: a system prompt, then user/assistant turns of varied text."""
    messages = [{"role": "system", "content": "You are a careful assistant for a logistics team."}]
    for turn in range(turns):
        messages.append(
            {
                "role": "user",
                "name": "dispatcher",
                "content": f"Turn {turn}: where is shipment {turn * 7919} now, and when "
                "will it reach the Rotterdam depot? List any customs holds.",
            }
        )
        messages.append(
            {
                "role": "assistant",
                "content": f"Shipment {turn * 7919} left Hamburg at 06:{turn % 60:02d} and "
                "is expected in Rotterdam tomorrow morning. No customs holds "
                "are recorded; the carrier reports normal transit times.",
            }
        )
    return messages


def run(quick: bool) -> list[Figure]:
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        shared = REPO.parent / "shared" / "tiktoken-cache"
        if Path(shared).is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(shared)
    from backends.encodings import get_encoding
    from backends.token_counting import OpenAITokenCounter

    messages = conversation()
    counter = OpenAITokenCounter("gpt-4o")
    encoding = get_encoding("o200k_base")
    joined = "".join(value for message in messages for value in message.values())
    counter.count_tokens_from_messages(messages)
    ours, baseline, ratio = paired_blocks(
        lambda: counter.count_tokens_from_messages(messages),
        lambda: encoding.encode_ordinary(joined),
        calls=200 if quick else 4000,
        block=20,
    )
    strings = [value for message in messages for value in message.values()]
    built, built_base, built_ratio = paired_blocks(
        lambda: counter.count_tokens_from_messages(messages),
        lambda: encoding.encode_ordinary("".join([v for m in messages for v in m.values()])),
        calls=100 if quick else 1000,
        block=20,
    )
    per_string, per_string_base, per_string_ratio = paired_blocks(
        lambda: sum(len(encoding.encode_ordinary(text)) for text in strings),
        lambda: encoding.encode_ordinary(joined),
        calls=100 if quick else 1000,
        block=20,
    )
    return [
        Figure(
            "count 50-turn conversation",
            ours * 1e6,
            "us",
            baseline * 1e6,
            "raw encode of the concatenated strings",
            "<= 1.1x",
            ratio <= 1.1,
            paired_ratio=ratio,
        ),
        Figure(
            "count, vs raw encode that also builds the concatenation",
            built * 1e6,
            "us",
            built_base * 1e6,
            "join the strings, then encode",
            "-",
            None,
            paired_ratio=built_ratio,
        ),
        Figure(
            "(reference) one encode call per string",
            per_string * 1e6,
            "us",
            per_string_base * 1e6,
            "raw encode of the concatenated strings",
            "-",
            None,
            paired_ratio=per_string_ratio,
        ),
    ]

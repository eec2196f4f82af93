"""The token-count caches: a cached count always equals an uncached one, memory stays bounded.

Every check compares a counter using the process caches with a fresh counter of the same model
whose caches are off (``cache_counts = False``), which counts every string with the tokenizer.
"""

from __future__ import annotations

import base64
import copy
import enum
import struct
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import count_cache
from backends.count_cache import ConversationCache, StringCounts, clear_count_caches
from backends.image_tokens import ImageTokenRule
from backends.token_counting import ApproximateTokenCounter, OpenAITokenCounter


@pytest.fixture(autouse=True)
def cold_caches() -> None:
    clear_count_caches()


def uncached(counter: OpenAITokenCounter) -> OpenAITokenCounter:
    fresh = type(counter)(counter.model, image_rule=counter.image_rule)
    fresh.cache_counts = False
    return fresh


def check(counter: OpenAITokenCounter, messages: list[Any], tools: Any = None) -> int:
    """Count twice (the second from the caches) and compare each with an uncached count."""
    expected = uncached(counter).count_tokens_from_messages(copy.deepcopy(messages), tools)
    assert counter.count_tokens_from_messages(messages, tools) == expected
    assert counter.count_tokens_from_messages(messages, tools) == expected
    return expected


def png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    header += struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00" + b"\x00" * 8
    return "data:image/png;base64," + base64.b64encode(header).decode()


def conversation(size: int, tag: str = "") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": f"{tag}Be brief."}]
    for index in range(1, size):
        role = "user" if index % 2 else "assistant"
        messages.append({"role": role, "content": f"{tag}message {index} about parcels"})
    return messages


# --- exactness under random conversations and operations -------------------------------

texts = st.lists(
    st.sampled_from([*"ab c\n.,é日", "<|endoftext|>", " the", "123", "<|endofprompt|>"]),
    max_size=12,
).map("".join)
scalars = st.one_of(
    texts, st.none(), st.integers(-3, 3), st.booleans(), st.sampled_from([1.0, -0.0, 0.0])
)
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(texts, scalars)}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.fixed_dictionaries(
                {
                    "url": st.sampled_from([png(512, 512), png(2048, 900), "https://x/y.png"]),
                    "detail": st.sampled_from(["low", "high", "auto", None, 1]),
                }
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.just("input_audio"), "data": texts}),
)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": texts,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": texts, "arguments": texts}),
        }
    ),
    min_size=1,
    max_size=2,
)
messages_strategy = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "user", "assistant", "tool"]),
        "content": st.one_of(texts, st.none(), st.lists(parts, max_size=3), st.tuples(texts)),
    },
    optional={"name": texts, "tool_calls": tool_calls, "tool_call_id": texts},
)
tools_strategy = st.one_of(
    st.none(),
    st.lists(
        st.fixed_dictionaries(
            {
                "type": st.just("function"),
                "function": st.fixed_dictionaries(
                    {
                        "name": texts,
                        "description": st.one_of(texts, scalars),
                        "parameters": st.fixed_dictionaries(
                            {
                                "type": st.just("object"),
                                "properties": st.dictionaries(
                                    texts,
                                    st.fixed_dictionaries(
                                        {"type": st.sampled_from(["string", "integer"])},
                                        optional={
                                            "enum": st.lists(scalars, max_size=3),
                                            "description": texts,
                                        },
                                    ),
                                    max_size=2,
                                ),
                            }
                        ),
                    }
                ),
            }
        ),
        max_size=2,
    ),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), messages_strategy),
        st.tuples(
            st.just("edit"),
            st.integers(0, 50),
            st.sampled_from(["content", "name", "role"]),
            st.one_of(texts, scalars),
        ),
        st.tuples(st.just("edit part"), st.integers(0, 50), st.one_of(texts, scalars)),
        st.tuples(
            st.just("drop first"),
        ),
        st.tuples(st.just("rewind"), st.integers(0, 5)),
        st.tuples(
            st.just("copy"),
        ),
    ),
    max_size=25,
)
models = st.sampled_from(["gpt-4o", "gpt-4", "gpt-3.5-turbo-0301", "gpt-4.1-mini", "unknown-model"])


def apply(history: list[dict[str, Any]], operation: tuple[Any, ...]) -> list[dict[str, Any]]:
    kind = operation[0]
    if kind == "append":
        history.append(copy.deepcopy(operation[1]))
    elif kind == "edit" and history:
        history[operation[1] % len(history)][operation[2]] = operation[3]  # in place
    elif kind == "edit part" and history:
        message = history[operation[1] % len(history)]
        content = message.get("content")
        if isinstance(content, list) and content and isinstance(content[0], dict):
            content[0]["text"] = operation[2]  # a part edited in place
    elif kind == "drop first" and history:
        del history[0]
    elif kind == "rewind":
        del history[len(history) - operation[1] :]
    elif kind == "copy":
        return copy.deepcopy(history)  # same content, new objects
    return history


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models, steps=operations, tools=tools_strategy, approximate=st.booleans())
def test_cached_count_always_equals_uncached(
    model: str, steps: list[tuple[Any, ...]], tools: Any, approximate: bool
) -> None:
    counter = ApproximateTokenCounter(model) if approximate else OpenAITokenCounter(model)
    reference = uncached(counter)
    history: list[dict[str, Any]] = []
    for operation in steps:
        history = apply(history, operation)
        expected = reference.count_tokens_from_messages(copy.deepcopy(history), tools)
        assert counter.count_tokens_from_messages(history, tools) == expected, operation


# --- the classes of change that must never return a stale count -------------------------


def test_message_edited_in_place_after_it_was_cached() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    messages = conversation(10)
    for size in range(1, 11):
        check(counter, messages[:size])
    messages[3]["content"] = "a much longer replacement text, edited in place " * 3
    check(counter, messages)
    messages[3]["name"] = "alice"  # a key added in place
    check(counter, messages)
    del messages[3]["name"]
    messages[5]["role"] = "tool"
    check(counter, messages)


def test_nested_parts_edited_in_place() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    part = {"type": "text", "text": "short"}
    image = {"type": "image_url", "image_url": {"url": png(2048, 2048), "detail": "high"}}
    messages = [*conversation(3), {"role": "user", "content": [part, image]}]
    high = check(counter, messages)
    image["image_url"]["detail"] = "low"  # only the detail changes
    low = check(counter, messages)
    assert low < high
    part["text"] = "a longer text inside a content part, edited in place"
    check(counter, messages)
    messages[-1]["content"].append({"type": "text", "text": "one more part"})
    check(counter, messages)


def test_tool_calls_edited_in_place() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [*conversation(2), {"role": "assistant", "content": None, "tool_calls": [call]}]
    check(counter, messages)
    call["function"]["arguments"] = '{"city": "Rotterdam", "days": 3}'
    check(counter, messages)


@pytest.mark.parametrize(("first", "second"), [(1, True), (1, 1.0), (0.0, -0.0), ("1", 1)])
def test_values_equal_in_python_but_not_in_text(first: Any, second: Any) -> None:
    """``1 == True == 1.0`` and ``0.0 == -0.0``, but their text (and tokens) differ."""
    counter = OpenAITokenCounter("gpt-4o")
    part = {"type": "text", "text": first}
    messages = [*conversation(2), {"role": "user", "content": [part]}]
    check(counter, messages)
    part["text"] = second
    check(counter, messages)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {"properties": {"n": {"type": "number", "enum": [first]}}},
            },
        }
    ]
    check(counter, messages, tools)
    tools[0]["function"]["parameters"]["properties"]["n"]["enum"] = [second]
    check(counter, messages, tools)


class CaseInsensitive(str):
    """A ``str`` subclass whose equality and hash ignore case, as some libraries define."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.lower()

    def __hash__(self) -> int:
        return hash(self.lower())


class Colour(str, enum.Enum):  # noqa: UP042 (StrEnum has str() == value; this one does not)
    RED = "red"  # str() gives "Colour.RED"; JSON (what is sent) gives "red"


@pytest.mark.parametrize("loud_first", [True, False])
def test_a_str_subclass_with_its_own_equality_never_shares_a_string_count(
    loud_first: bool,
) -> None:
    counter = OpenAITokenCounter("gpt-4o")
    # different roles: two conversations that share only the string counts
    quiet = [{"role": "system", "content": "hello world this is loud"}]
    loud = [{"role": "user", "content": CaseInsensitive("HELLO WORLD THIS IS LOUD")}]
    first, second = (loud, quiet) if loud_first else (quiet, loud)
    counts = [check(counter, first), check(counter, second)]
    assert counts[0] != counts[1]  # different text: the table must not hand one's count out


def test_a_str_enum_in_a_text_part_counts_its_value() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    plain = [*conversation(2), {"role": "user", "content": [{"type": "text", "text": "red"}]}]
    check(counter, plain)
    as_enum = copy.deepcopy(plain)
    as_enum[-1]["content"][0]["text"] = Colour.RED
    assert check(counter, as_enum) == check(counter, plain)


def test_same_text_under_different_roles_and_names() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    as_content = [{"role": "user", "content": "bob"}]
    as_name = [{"role": "user", "name": "bob"}]
    assert check(counter, as_content) + 1 == check(counter, as_name)  # tokens_per_name
    check(counter, [{"role": "assistant", "content": "bob"}])


def test_tools_changed_between_calls() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    messages = conversation(4)
    tool = {"type": "function", "function": {"name": "lookup", "description": "Find it."}}
    without = check(counter, messages)
    with_tool = check(counter, messages, [tool])
    tool["function"]["description"] = "Find the shipment by its number and report where it is."
    longer = check(counter, messages, [tool])
    assert without < with_tool < longer


def test_models_with_different_rules_never_share_an_entry() -> None:
    """Same conversation, alternately: encodings, per-message constants and image rules differ."""
    image = {"type": "image_url", "image_url": {"url": png(1000, 1000), "detail": "high"}}
    japanese = {"role": "user", "content": "出荷はロッテルダムの倉庫に明日の朝に到着します。"}
    messages = [*conversation(6), japanese, {"role": "user", "name": "n", "content": [image]}]
    counters = [
        OpenAITokenCounter("gpt-4o"),  # o200k_base, tile rule 85/170
        OpenAITokenCounter("gpt-4"),  # cl100k_base
        OpenAITokenCounter("gpt-3.5-turbo-0301"),  # cl100k_base, 4 per message, -1 per name
        OpenAITokenCounter("gpt-4.1-mini"),  # o200k_base, patch rule
        OpenAITokenCounter("gpt-4o", image_rule=ImageTokenRule(base_tokens=1, tile_tokens=2)),
        ApproximateTokenCounter("gpt-4o"),
    ]
    counts = [check(counter, messages) for counter in counters for _ in range(2)]
    assert len(set(counts)) == len(counters)
    for counter, expected in zip(counters, counts[::2], strict=True):
        assert counter.count_tokens_from_messages(messages) == expected


def test_counter_whose_rule_changes_after_construction() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    image = {"type": "image_url", "image_url": {"url": png(1000, 1000), "detail": "high"}}
    messages = [*conversation(2), {"role": "user", "content": [image]}]
    before = check(counter, messages)
    counter.image_rule = ImageTokenRule(base_tokens=1, tile_tokens=1)
    assert check(counter, messages) != before


def test_rewind_and_sliding_window_reuse_what_was_counted() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    messages = conversation(30)
    for size in range(1, 31):
        check(counter, messages[:size])
    check(counter, messages[:12])  # rewound
    check(counter, [messages[0], *messages[10:]])  # oldest turns dropped, system kept
    check(counter, messages[5:])  # oldest dropped
    table = counter._cache_slot()[1]
    assert table is not None and messages[20]["content"] in table.table


def test_string_subclass_and_other_objects() -> None:
    class Text(str):
        pass

    class Agreeable(str):
        """Says it equals anything: a copy holding it would accept any later text."""

        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = str.__hash__

    class Holder:
        def __str__(self) -> str:
            return "changes"

    counter = OpenAITokenCounter("gpt-4o")
    holder = Holder()
    messages = [{"role": "user", "content": Text("hello there")}]
    check(counter, messages)
    messages = [*conversation(2), {"role": "user", "content": Agreeable("hi")}]
    check(counter, messages)
    messages[2]["content"] = "a different and much longer text than the agreeable one"
    check(counter, messages)
    messages = [{"role": "user", "content": [{"type": "text", "text": holder}]}]
    check(counter, messages)
    Holder.__str__ = lambda self: "now something much longer than before"  # type: ignore[method-assign]
    check(counter, messages)


# --- bounds -------------------------------------------------------------------------------


def test_string_counts_stay_within_their_bounds() -> None:
    table = StringCounts(max_strings=64, max_chars=2000)
    for index in range(1000):
        texts = [f"string {index} {'x' * (index % 50)}", "repeated"]
        table.remember(texts, [index, 1])
        assert len(table.table) <= 64
        assert table.chars <= 2000
        assert table.chars == sum(map(len, table.table))
    assert "string 999" + " " + "x" * (999 % 50) in table.table  # the newest stay
    table.remember(["y" * 300], [1])  # more than an eighth of the characters: not kept
    assert "y" * 300 not in table.table


def test_conversations_stay_within_their_bounds() -> None:
    cache = ConversationCache(max_conversations=16, max_chars=20_000)
    counter = OpenAITokenCounter("gpt-4o")
    rules = [object(), object()]
    for index in range(300):
        rule = rules[0] if index < 10 else rules[1]  # the first rule stops early
        messages = conversation(1 + index % 12, tag=f"{index} ")
        for _ in range(2):
            expected = uncached(counter)._messages_tokens(copy.deepcopy(messages))
            assert cache.count(rule, messages, counter._messages_tokens) == expected
        assert len(cache.prefixes) <= 16
        assert cache.chars <= 20_000
        held = sum(prefix.chars for prefix in cache.prefixes.values() if prefix is not None)
        assert cache.chars == held
        # the shortcut to each rule's latest conversation holds nothing evicted
        assert all(cache.prefixes.get(p.anchor) is p for p in cache.latest.values())
        for prefix in cache.prefixes.values():
            if prefix is not None:
                assert prefix.chars == sum(
                    len(v) for message in prefix.messages for v in message.values()
                )


def test_process_caches_use_the_documented_bounds() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    _, table, conversations, _ = counter._cache_slot()
    assert (table.max_strings, table.max_chars) == (65_536, 16 * 2**20)
    assert (conversations.max_conversations, conversations.max_chars) == (256, 16 * 2**20)


def test_caches_can_be_turned_off() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    counter.cache_counts = False
    counter.count_tokens_from_messages(conversation(5, tag="off "))
    counter.count_tokens_from_messages(conversation(5, tag="off "))
    assert not any(
        "off " in text
        for text in count_cache.string_counts((OpenAITokenCounter, "o200k_base")).table
    )
    assert not count_cache._CONVERSATIONS.prefixes


# --- threads ------------------------------------------------------------------------------


def test_threads_counting_and_editing_their_conversations() -> None:
    """Eight threads grow, edit and recount conversations sharing a system prompt."""
    counters = [OpenAITokenCounter("gpt-4o"), OpenAITokenCounter("gpt-4")]
    references = {id(c): uncached(c) for c in counters}
    failures: list[str] = []
    small = StringCounts(max_strings=200, max_chars=20_000)
    original = count_cache._TABLES.copy()
    count_cache._TABLES[(OpenAITokenCounter, "o200k_base")] = small  # evictions under load
    original_conversations = count_cache._CONVERSATIONS
    count_cache._CONVERSATIONS = ConversationCache(max_conversations=6, max_chars=50_000)
    for counter in counters:
        counter._slot = None

    def agent(number: int) -> None:
        counter = counters[number % 2]
        history = conversation(1, tag="shared ")
        for step in range(60):
            history.append({"role": "user", "content": f"thread {number} step {step}"})
            if step % 7 == 3:
                history[step % len(history)]["content"] += " (edited)"
            if step % 11 == 5:
                history = history[: len(history) // 2]
            expected = references[id(counter)].count_tokens_from_messages(copy.deepcopy(history))
            got = counter.count_tokens_from_messages(history)
            if got != expected:
                failures.append(f"thread {number} step {step}: {got} != {expected}")

    try:
        threads = [threading.Thread(target=agent, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(small.table) <= 200 and small.chars == sum(map(len, small.table))
        conversations = count_cache._CONVERSATIONS
        assert len(conversations.prefixes) <= 6
        held = sum(p.chars for p in conversations.prefixes.values() if p is not None)
        assert conversations.chars == held
    finally:
        count_cache._TABLES.clear()
        count_cache._TABLES.update(original)
        count_cache._CONVERSATIONS = original_conversations


def test_strings_are_kept_when_their_conversation_comes_back() -> None:
    """A one-off count keeps only short strings (roles, names); the second count keeps all."""
    counter = OpenAITokenCounter("gpt-4o")
    messages = conversation(4, tag="once ")
    table = counter._cache_slot()[1]
    check(counter, messages)  # counts twice: first sight, then kept
    assert messages[2]["content"] in table.table
    clear_count_caches()
    counter.count_tokens_from_messages(conversation(4, tag="one-off "))
    kept = [text for text in table.table if "one-off" in text]
    assert kept == ["one-off Be brief."]  # up to 24 characters: kept from a first sight

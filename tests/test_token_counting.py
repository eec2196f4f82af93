"""Token counts derived by hand from the cookbook formula, published counts, and offline use."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tiktoken

from backends import encodings
from backends.token_counting import ApproximateTokenCounter, OpenAITokenCounter, rules_for_model
from registry import ModelRegistry, TokenizerUnavailableError
from tests.conftest import tiktoken_cache

pytestmark = pytest.mark.skipif(
    tiktoken_cache() is None, reason="needs the tokenizer files (set TIKTOKEN_CACHE_DIR)"
)

O200K = "o200k_base"
CL100K = "cl100k_base"


def n(text: str, encoding: str = O200K) -> int:
    """Raw tiktoken count, independent of the code under test."""
    return len(tiktoken.get_encoding(encoding).encode_ordinary(text))


# -- the cookbook's examples and its published counts --------------------------------------

COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]
COOKBOOK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_TOOL_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.mark.parametrize(
    "model, published",
    [
        ("gpt-3.5-turbo", 129),
        ("gpt-4-0613", 129),
        ("gpt-4", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
        ("gpt-3.5-turbo-0301", 127),
    ],
)
def test_published_conversation_counts(model: str, published: int) -> None:
    assert OpenAITokenCounter(model).count_tokens_from_messages(COOKBOOK_MESSAGES) == published


@pytest.mark.parametrize(
    "model, published",
    [("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101), ("gpt-4o-mini", 101)],
)
def test_published_tool_counts(model: str, published: int) -> None:
    counter = OpenAITokenCounter(model)
    assert (
        counter.count_tokens_from_messages(COOKBOOK_TOOL_MESSAGES, tools=COOKBOOK_TOOLS)
        == published
    )


# -- the formula, by hand ----------------------------------------------------------------


def test_name_adds_one_token() -> None:
    messages = [{"role": "user", "name": "alice", "content": "Hi there"}]
    expected = 3 + n("user") + n("alice") + 1 + n("Hi there") + 3
    assert OpenAITokenCounter("gpt-4o").count_tokens_from_messages(messages) == expected


def test_0301_constants() -> None:
    messages = [
        {"role": "user", "name": "bob", "content": "Hello"},
        {"role": "assistant", "content": "Yo"},
    ]
    expected = (
        (4 + n("user", CL100K) + n("bob", CL100K) - 1 + n("Hello", CL100K))
        + (4 + n("assistant", CL100K) + n("Yo", CL100K))
        + 3
    )
    assert OpenAITokenCounter("gpt-3.5-turbo-0301").count_tokens_from_messages(messages) == expected


def tool(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "f",
            "description": "Does things.",
            "parameters": {"type": "object", "properties": properties},
        },
    }


def test_tool_enum_property() -> None:
    tools = [tool({"mode": {"type": "string", "description": "The mode.", "enum": ["a", "bb"]}})]
    body = (
        7 + n("f:Does things") + 3 + 3 + (-3 + 3 + n("a") + 3 + n("bb")) + n("mode:string:The mode")
    )
    expected_tools = body + 12
    counter = OpenAITokenCounter("gpt-4o")
    assert counter.count_tools(tools) == expected_tools


def test_tool_nested_object_property() -> None:
    tools = [
        tool(
            {
                "where": {
                    "type": "object",
                    "description": "Place",
                    "properties": {"city": {"type": "string", "description": "City"}},
                }
            }
        )
    ]
    nested = 3 + 3 + n("city:string:City")
    expected = 7 + n("f:Does things") + 3 + 3 + n("where:object:Place") + nested + 12
    assert OpenAITokenCounter("gpt-4o").count_tools(tools) == expected


def test_tool_array_property_with_cl100k_constants() -> None:
    tools = [
        tool(
            {
                "tags": {
                    "type": "array",
                    "description": "Tags",
                    "items": {"type": "string", "enum": ["x"]},
                }
            }
        )
    ]
    expected = (
        10
        + n("f:Does things", CL100K)
        + 3
        + 3
        + n("tags:array:Tags", CL100K)
        + (3 + n("x", CL100K))
        + 12
    )
    assert OpenAITokenCounter("gpt-4").count_tools(tools) == expected


def test_tool_calls_and_results_in_history() -> None:
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"a": 1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    first = 3 + n("assistant") + n("call_1") + n("function") + n("f") + n('{"a": 1}')
    second = 3 + n("tool") + n("call_1") + n("42")
    assert OpenAITokenCounter("gpt-4o").count_tokens_from_messages(messages) == first + second + 3


def png(width: int, height: int) -> str:
    header = (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)
    )
    return "data:image/png;base64," + base64.b64encode(header + b"\x08\x02\x00\x00\x00").decode()


def gif(width: int, height: int) -> str:
    return (
        "data:image/gif;base64,"
        + base64.b64encode(b"GIF89a" + struct.pack("<HH", width, height)).decode()
    )


@pytest.mark.parametrize(
    "url, detail, expected",
    [
        (png(4000, 3000), "low", 85),
        (png(100, 100), "auto", 170 * 1 + 85),  # one tile
        (png(1024, 1024), "high", 170 * 4 + 85),  # 768x768 -> 2x2 tiles
        (png(2048, 4096), "high", 170 * 6 + 85),  # fit 1024x2048, then 768x1536 -> 2x3
        (gif(600, 300), None, 170 * 2 + 85),  # no scaling: 2x1 tiles
        ("https://example.com/cat.png", "high", 765),  # never fetched: declared default
    ],
)
def test_image_parts(url: str, detail: str | None, expected: int) -> None:
    image: dict[str, Any] = {"url": url}
    if detail:
        image["detail"] = detail
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": image},
            ],
        }
    ]
    total = 3 + n("user") + n("What is this?") + expected + 3
    assert OpenAITokenCounter("gpt-4o").count_tokens_from_messages(messages) == total


@pytest.mark.parametrize(
    "model, encoding, exact",
    [
        ("gpt-4o-2024-08-06", O200K, True),
        ("gpt-4.1-mini", O200K, True),
        ("gpt-5", O200K, True),
        ("o3-mini", O200K, True),
        ("gpt-4-turbo", CL100K, True),
        ("gpt-35-turbo-16k", CL100K, True),
        ("azure/gpt-4o", O200K, True),
        ("llama3.1:8b", O200K, False),
    ],
)
def test_encoding_by_base_model(model: str, encoding: str, exact: bool) -> None:
    rules = rules_for_model(model)
    assert (rules.encoding_name, rules.exact) == (encoding, exact)
    if not exact:
        assert "approximation" in rules.note


def test_deployment_named_anything_uses_base_model(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        """
        [models.chat]
        backend = "azure"
        deployment = "prod-east-7"
        model = "gpt-35-turbo"
        endpoint = "https://x.example.com"
        api_version = "2024-10-21"
        api_key = "k"
        """
    )
    counter = ModelRegistry.from_settings().create("chat").token_counter
    assert counter.encoding_name == CL100K and counter.exact


def test_special_token_text_is_counted_not_rejected() -> None:
    messages = [{"role": "user", "content": "<|endoftext|>"}]
    expected = 3 + n("user") + n("<|endoftext|>") + 3
    assert OpenAITokenCounter("gpt-4o").count_tokens_from_messages(messages) == expected


def test_encode_decode_round_trip() -> None:
    counter = OpenAITokenCounter("gpt-4o")
    assert counter.decode(counter.encode("héllo wörld")) == "héllo wörld"


def test_encodings_loaded_once() -> None:
    assert encodings.get_encoding(O200K) is encodings.get_encoding(O200K)


def test_approximate_counter(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models.m]\nbackend = "fake"\ntoken_counter = "approximate"\n')
    counter = ModelRegistry.from_settings().create("m").token_counter
    assert isinstance(counter, ApproximateTokenCounter) and counter.exact is False
    messages = [{"role": "user", "content": "abcdefghi"}]  # 9 chars -> 3; "user" -> 1
    assert counter.count_tokens_from_messages(messages) == 3 + 1 + 3 + 3


# -- air-gapped use ----------------------------------------------------------------------


def test_offline_error_names_encoding_directory_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encodings, "_encodings", {})
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    with pytest.raises(TokenizerUnavailableError) as caught:
        OpenAITokenCounter("gpt-4o").count_tokens_from_messages([{"role": "user", "content": "x"}])
    message = str(caught.value)
    assert "o200k_base" in message and str(empty) in message
    assert "modelreg tokens --prefetch" in message and "TIKTOKEN_CACHE_DIR" in message


def test_settings_key_for_cache_dir(
    write_settings: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encodings, "_encodings", {})
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
    write_settings(
        f'tiktoken_cache_dir = "{tmp_path / "nowhere"}"\n[models.m]\nbackend = "fake"\nmodel = "gpt-4o"\n'
    )
    counter = ModelRegistry.from_settings().create("m").token_counter
    with pytest.raises(
        TokenizerUnavailableError, match=r"from settings\.toml \(tiktoken_cache_dir\)"
    ):
        counter.encode("x")


def test_cli_tokens_file_stdin_and_tools(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    # an Azure model with no credentials: counting must not need them
    write_settings('[models.m]\nbackend = "azure"\ndeployment = "prod-7"\nmodel = "gpt-4o"\n')
    (isolated / "messages.json").write_text(json.dumps(COOKBOOK_TOOL_MESSAGES))
    (isolated / "tools.json").write_text(json.dumps(COOKBOOK_TOOLS))

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "registry", "tokens", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = run("m", "messages.json", "--tools", "tools.json", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "model": "m",
        "tokens": 101,
        "encoding": O200K,
        "exact": True,
    }
    piped = run("m", "-", stdin=json.dumps({"messages": COOKBOOK_TOOL_MESSAGES}))
    system, user = (m["content"] for m in COOKBOOK_TOOL_MESSAGES)
    expected = 3 + n("system") + n(system) + 3 + n("user") + n(user) + 3
    assert piped.stdout.startswith(f"{expected} tokens (o200k_base, exact)")
    bad = run("m", "-", stdin="not json")
    assert bad.returncode == 1 and "not valid JSON" in bad.stderr


# -- image tokens per model: the vision guide's rules and published examples ---------------


def image_message(url: str, detail: str | None = None) -> list[dict[str, Any]]:
    image: dict[str, Any] = {"url": url}
    if detail:
        image["detail"] = detail
    return [{"role": "user", "content": [{"type": "image_url", "image_url": image}]}]


def image_count(model: str, url: str, detail: str | None = None) -> int:
    """The image's tokens alone: the message count minus its fixed parts."""
    return OpenAITokenCounter(model).count_tokens_from_messages(image_message(url, detail)) - (
        3 + n("user") + 3
    )


@pytest.mark.parametrize(
    "model, width, height, detail, expected",
    [
        # the guide's worked examples (gpt-4o): 765, 1105, 85
        ("gpt-4o", 1024, 1024, "high", 85 + 170 * 4),
        ("gpt-4o", 2048, 4096, "high", 85 + 170 * 6),
        ("gpt-4o", 4096, 8192, "low", 85),
        ("gpt-4.1", 1024, 1024, "high", 85 + 170 * 4),
        ("gpt-4.5-preview", 1024, 1024, None, 85 + 170 * 4),
        ("gpt-4-turbo", 1024, 1024, "high", 85 + 170 * 4),
        # per-model constants: gpt-4o-mini 2833/5667, o1 & o3 75/150, gpt-5 70/140
        ("gpt-4o-mini", 1024, 1024, "high", 2833 + 5667 * 4),
        ("gpt-4o-mini", 1024, 1024, "low", 2833),
        ("gpt-4o-mini-2024-07-18", 128, 64, "high", 2833 + 5667),  # forum: 8512 with 12 of text
        ("o1", 1024, 1024, "high", 75 + 150 * 4),
        ("o3", 2048, 4096, "high", 75 + 150 * 6),
        ("o3", 512, 512, "low", 75),
        ("gpt-5", 1024, 1024, "high", 70 + 140 * 4),
        ("gpt-5-chat-latest", 600, 300, None, 70 + 140 * 2),
        # patch rule: the guide's examples 1024x1024 -> 1024 patches, 1800x2400 -> 1452
        ("gpt-4.1-mini", 1024, 1024, "high", 1659),  # 1024 x 1.62 = 1658.88
        ("gpt-4.1-mini", 1800, 2400, "high", 2353),  # 1452 x 1.62 = 2352.24, rounded up
        ("gpt-4.1-nano", 1024, 1024, None, 2520),  # 1024 x 2.46 = 2519.04
        ("o4-mini", 1800, 2400, None, 2498),  # 1452 x 1.72 = 2497.44
        ("gpt-5-mini", 1024, 1024, None, 1659),
        ("gpt-5-nano", 1800, 2400, None, 3572),  # 1452 x 2.46 = 3571.92
        ("gpt-4.1-mini", 4000, 1474, None, 2348),  # OpenAI's pricing calculator: 2348
        ("gpt-4.1-nano", 128, 64, "low", 20),  # 8 patches x 2.46; detail does not matter
    ],
)
def test_image_tokens_by_model(
    model: str, width: int, height: int, detail: str | None, expected: int
) -> None:
    assert image_count(model, png(width, height), detail) == expected


def test_patch_rule_ignores_detail() -> None:
    url = png(1800, 2400)
    assert image_count("o4-mini", url, "low") == image_count("o4-mini", url, "high")


@pytest.mark.parametrize(
    "width, height, expected",
    [
        # a side narrower than one patch stays one patch; the other keeps the whole budget
        (1, 100_000, 1536),
        (100_000, 1, 1536),
        (1, 2_000_000, 1536),  # shrink < 1 would make the 1-px side 0 px wide
        # the guide's shrink: sqrt(32*32*1536 / (w*h)), then whole patches on both sides
        (65_000, 65_000, 39 * 39),  # 65000 * 0.01929 = 1254 px -> 39 whole patches a side
        (33, 49_153, 1 * 1490),  # shrink 0.98475, narrowed to 0.9697: 32 x 47664 px
        (40, 40_000, 1 * 1000),  # shrink 0.9915, narrowed by 1/1.239 to 0.8: 32 x 32000 px
        (1024, 1536, 32 * 48),  # exactly the budget: no scaling
    ],
)
def test_patch_budget_for_extreme_shapes(width: int, height: int, expected: int) -> None:
    """Scaling never drops a side to zero patches nor exceeds the 1536-patch budget."""
    from backends.image_tokens import patch_count

    assert patch_count(width, height) == expected
    assert image_count("gpt-4.1-mini", png(width, height)) == -(-expected * 162 // 100)


def test_url_image_counts_as_1024_square_under_the_models_rule() -> None:
    url = "https://example.com/cat.png"
    assert image_count("gpt-4o", url, "high") == 765
    assert image_count("gpt-4o-mini", url, "high") == 2833 + 5667 * 4
    assert image_count("gpt-4.1-mini", url) == 1659
    assert image_count("o3", url, "low") == 75


@pytest.mark.parametrize(
    "model, exact, words",
    [
        ("gpt-4o", True, ""),
        ("gpt-4.1-nano", True, ""),
        ("o4-mini", True, ""),
        ("gpt-35-turbo", True, ""),  # no vision: its (unused) rule does not make counts inexact
        ("gpt-5-mini", False, "pricing-page calculator x 1.2"),
        ("gpt-5-nano", False, "x 1.5"),
        ("gpt-4.1-mini", False, "full budget"),
        ("o1", False, "billed far lower"),
        ("llama3.1:8b", False, "not known"),
    ],
)
def test_counter_not_sure_of_the_image_rule_says_so(model: str, exact: bool, words: str) -> None:
    counter = OpenAITokenCounter(model)
    assert counter.exact is exact
    assert (words in counter.note) if words else counter.note == ""
    if not exact and model != "llama3.1:8b":
        assert counter.note.startswith("image parts: ")


def test_counter_takes_the_registrys_image_rule() -> None:
    from backends.capabilities import capabilities_for
    from backends.image_tokens import ImageTokenRule

    rule = capabilities_for("gpt-4o", {"image_tokens": {"kind": "patch", "multiplier": 2}})
    counter = OpenAITokenCounter("gpt-4o", image_rule=rule.image_tokens)
    assert image_count_with(counter, png(64, 64)) == 8
    approximate = ApproximateTokenCounter("gpt-4o", image_rule=ImageTokenRule(base_tokens=1))
    assert approximate.image_rule.base_tokens == 1 and approximate.exact is False


def image_count_with(counter: OpenAITokenCounter, url: str) -> int:
    return counter.count_tokens_from_messages(image_message(url)) - (3 + n("user") + 3)

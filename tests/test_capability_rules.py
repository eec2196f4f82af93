"""What capabilities drive: reasoning-model rules, the context check, image counts, check, plugins."""

from __future__ import annotations

import asyncio
import io
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.azure import AzureOpenAIModel
from backends.capabilities import capabilities_for
from backends.fake import FakeModel
from backends.token_counting import OpenAITokenCounter
from registry import (
    BackendError,
    ConfigError,
    ContextWindowExceededError,
    ModelRegistry,
    PluginError,
    hookimpl,
)
from registry.checks import check_settings
from registry.cli import main
from registry.settings import load_settings
from registry.testing import use_plugins
from tests.azure_server import AzureServer
from tests.helpers import readme_block

MESSAGES = [{"role": "user", "content": "Hello"}]


def azure_table(name: str, deployment: str, model: str, url: str, extra: str = "") -> str:
    return textwrap.dedent(
        f"""
        [models.{name}]
        backend = "azure"
        deployment = "{deployment}"
        model = "{model}"
        endpoint = "{url}"
        api_version = "2024-12-01-preview"
        api_key = "test-key"
        max_retries = 0
        """
    ) + textwrap.dedent(extra)


@pytest.fixture
def registry_for(
    server: AzureServer, write_settings: Callable[[str], Path]
) -> Callable[[str], ModelRegistry]:
    def make(text: str) -> ModelRegistry:
        write_settings(text.replace("{url}", server.base_url))
        return ModelRegistry.from_settings()

    return make


def check_lines(**kwargs: Any) -> tuple[list[str], list[str]]:
    report = check_settings(load_settings(), **kwargs)
    return report.errors, report.warnings


# -- reasoning models: max_tokens renamed; rejected parameters refused before sending ----------


def test_reasoning_model_gets_max_tokens_as_max_completion_tokens(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    models = registry_for(
        azure_table("o3", "o3-mini-dep", "o3-mini", "{url}", "config = { max_tokens = 50 }")
        + azure_table("chat", "gpt-4o-dep", "gpt-4o", "{url}", "config = { max_tokens = 50 }")
    )
    models.create("o3").run(MESSAGES)
    body = server.requests[-1].body
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    models.create("chat").run(MESSAGES)  # a model that takes max_tokens keeps it
    body = server.requests[-1].body
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body
    assert models.create("o3").model_config_dict == {"max_tokens": 50}  # the settings unchanged


def test_reasoning_model_rename_on_every_path(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    models = registry_for(
        azure_table("o3", "o3-dep", "o3", "{url}", "config = { max_tokens = 7, stream = true }")
    )
    model = models.create("o3")
    for _chunk in model.run(MESSAGES):
        pass
    with model.run(MESSAGES, response_format=Answer) as stream:
        stream.get_final_completion()

    async def scenario() -> None:
        async for _ in await model.arun(MESSAGES):
            pass

    asyncio.run(scenario())
    assert [r.body.get("max_completion_tokens") for r in server.requests] == [7, 7, 7]
    assert all("max_tokens" not in r.body for r in server.requests)


@pytest.mark.parametrize(
    "key, value",
    [
        ("temperature", 0.2),
        ("top_p", 0.9),
        ("presence_penalty", 0.1),
        ("frequency_penalty", 0.1),
        ("logprobs", True),
        ("logit_bias", {"50256": -100}),
    ],
)
def test_rejected_parameter_is_a_check_error_and_never_sent(
    key: str, value: Any, registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    config = f"[models.o3.config]\n{key} = {json.dumps(value).replace(':', '=')}\n"
    models = registry_for(azure_table("o3", "o3-mini-dep", "o3-mini-2025-01-31", "{url}", config))
    errors, _ = check_lines()
    expected = (
        f"model 'o3', field 'config.{key}' (settings.toml [models.o3.config]): o3-mini (a "
        f"reasoning model) does not accept '{key}'; remove it from the config"
    )
    assert errors == [f"error: [env none] {expected}"]
    model = models.create("o3")  # built: the rule needs the capability table, read on first use
    with pytest.raises(ConfigError) as caught:
        model.run(MESSAGES)
    assert str(caught.value) == expected  # the message check gives
    with pytest.raises(ConfigError):
        asyncio.run(model.arun(MESSAGES))
    assert server.requests == []


def test_rejected_parameter_in_model_config_dict_is_refused_before_sending(
    server: AzureServer,
) -> None:
    model = AzureOpenAIModel(
        "o4-mini", {"temperature": 0.5}, api_key="k", url=server.base_url, api_version="v1"
    )
    with pytest.raises(ConfigError, match="o4-mini \\(a reasoning model\\) does not accept"):
        model.run(MESSAGES)
    assert server.requests == []


def test_both_max_tokens_keys_for_a_reasoning_model(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    config = "config = { max_tokens = 5, max_completion_tokens = 9 }"
    models = registry_for(azure_table("o3", "o3-dep", "o3", "{url}", config))
    errors, _ = check_lines()
    assert len(errors) == 1 and "set only one of them" in errors[0]
    with pytest.raises(ConfigError, match="set only one of them"):
        models.create("o3").run(MESSAGES)
    assert server.requests == []


def test_check_finds_rules_even_without_credentials(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        azure_table(
            "o3", "o3-dep", "o3", "https://x.example.com", "config = { top_p = 1 }"
        ).replace('api_key = "test-key"\n', "")
    )
    errors, warnings = check_lines()
    assert any("no credentials" in w for w in warnings)
    assert len(errors) == 1 and "o3 (a reasoning model) does not accept 'top_p'" in errors[0]


def test_settings_can_lift_a_rule_for_one_model(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    extra = """
        config = { temperature = 0.2 }
        capabilities = { rejected_params = [] }
    """
    models = registry_for(azure_table("o3", "o3-dep", "o3", "{url}", extra))
    assert check_lines()[0] == []
    models.create("o3").run(MESSAGES)
    assert server.requests[-1].body["temperature"] == 0.2


def test_fake_backend_applies_the_same_rules(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        """
        [models.o3]
        backend = "fake"
        model = "o3"
        config = { temperature = 0.2 }
        """
    )
    with pytest.raises(ConfigError, match="does not accept 'temperature'"):
        ModelRegistry.from_settings().create("o3").run(MESSAGES)


# -- unknown base models -------------------------------------------------------------------


def test_unknown_base_model_is_a_check_warning_with_the_declared_default(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        azure_table("named", "dep", "gpt-4o-super", "https://x.example.com")
        + azure_table("known", "dep", "gpt-4o", "https://x.example.com")
        + azure_table("told", "dep", "my-model", "https://x.example.com")
        + "[models.told.capabilities]\ncontext_window = 32768\n"
        + "[models.bare]\nbackend = 'azure'\ndeployment = 'prod-east-7'\n"
        + "endpoint = 'https://x.example.com'\napi_version = '2024-10-21'\napi_key = 'k'\n"
    )
    errors, warnings = check_lines()
    assert errors == []
    capability = [w for w in warnings if "capability table" in w or "base model is not" in w]
    assert len(capability) == 2, warnings
    named = next(w for w in capability if "'named'" in w)
    assert "base model 'gpt-4o-super' is not in the capability table" in named
    assert "declared default of 128,000 tokens" in named and "999" not in named
    bare = next(w for w in capability if "'bare'" in w)
    assert "deployment 'prod-east-7' is no model" in bare and 'set model = "..."' in bare
    strict_errors, _ = check_lines(strict=True)
    assert len(strict_errors) == len(warnings)


# -- the opt-in context check ---------------------------------------------------------------


SMALL = """
    check_context = true
    [models.small.capabilities]
    context_window = 100
    max_output_tokens = 40
"""


def long_messages(words: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": " ".join(["hello"] * words)}]


def test_context_check_raises_before_sending_with_the_numbers(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    model = registry_for(azure_table("small", "dep", "gpt-4o", "{url}", SMALL)).create("small")
    messages = long_messages(80)
    prompt = model.token_counter.count_tokens_from_messages(messages)
    assert 60 < prompt <= 100  # fits alone, not with the reply's 40
    with pytest.raises(ContextWindowExceededError) as caught:
        model.run(messages)
    error = caught.value
    assert isinstance(error, BackendError)
    assert (error.prompt_tokens, error.output_tokens, error.context_window) == (prompt, 40, 100)
    assert error.needed_tokens == prompt + 40 and error.exact is True
    assert error.model == "small" and error.base_model == "gpt-4o"
    assert "the model's longest reply, 40" in error.output_source
    assert f"prompt's {prompt} tokens" in str(error) and "nothing was sent" in str(error)
    with pytest.raises(ContextWindowExceededError):
        asyncio.run(model.arun(messages))
    assert server.requests == []


def test_context_check_uses_the_requested_reply_budget(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    extra = SMALL.replace(
        "check_context = true", "check_context = true\nconfig = { max_tokens = 5 }"
    )
    model = registry_for(azure_table("small", "dep", "gpt-4o", "{url}", extra)).create("small")
    model.run(long_messages(80))  # prompt + 5 fits
    assert len(server.requests) == 1
    with pytest.raises(ContextWindowExceededError) as caught:
        model.run(long_messages(200))
    assert (caught.value.output_tokens, caught.value.output_source) == (5, "max_tokens = 5")


def test_context_check_counts_tools_too(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    extra = SMALL.replace("max_output_tokens = 40", "max_output_tokens = 1")
    model = registry_for(azure_table("small", "dep", "gpt-4o", "{url}", extra)).create("small")
    messages = long_messages(60)
    model.run(messages)
    tool = {
        "type": "function",
        "function": {"name": "lookup", "description": " ".join(["word"] * 60), "parameters": {}},
    }
    with pytest.raises(ContextWindowExceededError):
        model.run(messages, tools=[tool])
    assert len(server.requests) == 1


def test_context_check_input_limit(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    extra = """
        check_context = true
        config = { max_completion_tokens = 1 }
        [models.big.capabilities]
        max_input_tokens = 50
    """
    model = registry_for(azure_table("big", "dep", "gpt-5", "{url}", extra)).create("big")
    with pytest.raises(ContextWindowExceededError) as caught:
        model.run(long_messages(80))
    assert caught.value.input_limit == 50 and caught.value.context_window == 400000
    assert "input limit of 50" in str(caught.value)


def test_without_check_context_nothing_is_counted(
    registry_for: Callable[[str], ModelRegistry], server: AzureServer
) -> None:
    extra = SMALL.replace("check_context = true", "")
    model = registry_for(azure_table("small", "dep", "gpt-4o", "{url}", extra)).create("small")
    model.run(long_messages(500))
    assert len(server.requests) == 1 and model._token_counter is None


def test_context_check_on_the_fake_backend_and_from_a_variable(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(
        """
        [models.f]
        backend = "fake"
        model = "gpt-4o"
        [models.f.capabilities]
        context_window = 50
        """
    )
    monkeypatch.setenv("MODELREG_MODELS__F__CHECK_CONTEXT", "true")
    models = ModelRegistry.from_settings()
    assert models.explain("f").fields["check_context"].source == (
        "env MODELREG_MODELS__F__CHECK_CONTEXT"
    )
    with pytest.raises(ContextWindowExceededError, match="context window of 50"):
        models.create("f").run(long_messages(100))


# -- image tokens by the base model's rule, through the registry ----------------------------


def image_messages() -> list[dict[str, Any]]:
    url = "data:image/png;base64," + "iVBORw0KGgo"  # size unknown: counted as 1024x1024
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]


def test_registry_counter_counts_images_by_the_settings_rule(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        azure_table("chat", "dep", "gpt-4o", "https://x.example.com")
        + "[models.chat.capabilities.image_tokens]\nbase_tokens = 1000\ntile_tokens = 0\n"
        + azure_table("plain", "dep", "gpt-4o", "https://x.example.com")
    )
    models = ModelRegistry.from_settings()
    counter = models.token_counter("chat")
    assert isinstance(counter, OpenAITokenCounter)
    assert (counter.image_rule.base_tokens, counter.image_rule.tile_tokens) == (1000, 0)
    custom = counter.count_tokens_from_messages(image_messages())
    plain = models.token_counter("plain").count_tokens_from_messages(image_messages())
    assert custom - plain == 1000 - 765  # gpt-4o's 1024x1024: 85 + 4 x 170
    assert models.create("chat").token_counter.image_rule == counter.image_rule


class Plugin:
    @hookimpl
    def modelreg_register_capabilities(self, register: Callable[..., None]) -> None:
        register("acme-vision", {"extends": "gpt-4o-mini", "context_window": 32000})
        register("gpt-4o", {"image_tokens": {"tile_tokens": 100}})


def test_plugin_capabilities_reach_counter_token_limit_and_check(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        azure_table("acme", "dep", "acme-vision-2025-01-01", "https://x.example.com")
        + azure_table("chat", "dep", "gpt-4o", "https://x.example.com")
    )
    with use_plugins(Plugin()):
        models = ModelRegistry.from_settings()
        assert models.create("acme").token_limit == 32000
        assert models.capabilities("acme").family == "acme-vision"
        assert models.token_counter("acme").image_rule.base_tokens == 2833  # gpt-4o-mini's
        assert models.token_counter("chat").image_rule.tile_tokens == 100
        warnings = check_lines()[1]  # the tokenizer of a plugin's model is not known ...
        assert not [w for w in warnings if "capability table" in w]  # ... its capabilities are


# -- [models.NAME.capabilities] checked at resolution; invalid plugin data reported -----------


@pytest.mark.parametrize(
    "table, field",
    [
        ("context_window = 'sk-live-0123456789abcdef'", "capabilities.context_window"),
        ("contxt_window = 5", "capabilities.contxt_window"),
        ("image_tokens = { multiplyer = 2 }", "capabilities.image_tokens.multiplyer"),
        ("max_tokens_param = 'max_output'", "capabilities.max_tokens_param"),
    ],
)
def test_bad_capabilities_in_settings_are_check_errors_with_origin(
    table: str, field: str, write_settings: Callable[[str], Path]
) -> None:
    write_settings(
        azure_table("chat", "dep", "gpt-4o", "https://x.example.com")
        + f"[models.chat.capabilities]\n{table}\n"
    )
    errors, _ = check_lines()
    assert len(errors) == 1, errors
    assert f"model 'chat', field '{field}' (settings.toml [models.chat.capabilities])" in errors[0]
    assert "sk-live" not in errors[0]
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        ModelRegistry.from_settings().resolve("chat")


def test_capability_from_a_variable_is_named_with_its_variable(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(azure_table("chat", "dep", "gpt-4o", "https://x.example.com"))
    monkeypatch.setenv("MODELREG_MODELS__CHAT__CAPABILITIES__CONTEXT_WINDOW", "-3")
    with pytest.raises(ConfigError) as caught:
        ModelRegistry.from_settings().resolve("chat")
    assert (
        "field 'capabilities.context_window' (env MODELREG_MODELS__CHAT__CAPABILITIES__"
        "CONTEXT_WINDOW)" in str(caught.value)
    )
    monkeypatch.setenv("MODELREG_MODELS__CHAT__CAPABILITIES__CONTEXT_WINDOW", "4096")
    assert ModelRegistry.from_settings().create("chat").token_limit == 4096


class BadCapabilities:
    @hookimpl
    def modelreg_register_capabilities(self, register: Callable[..., None]) -> None:
        register("acme-1", {"context_windw": 1000})
        register("acme-2", {"context_window": "sk-live-0123456789abcdef"})
        register("acme-3", {"context_window": 2000})


def test_invalid_plugin_capabilities_are_that_plugins_error() -> None:
    with (
        pytest.raises(PluginError, match="Did you mean 'context_window'"),
        use_plugins(BadCapabilities()),
    ):
        pass
    with use_plugins(BadCapabilities(), strict=False) as host:
        plugin = next(p for p in host.plugins() if p.name == "BadCapabilities")
        assert plugin.registered["capabilities"] == ["acme-3"]  # the valid one is used
        assert len(plugin.errors) == 2
        assert "capabilities 'acme-1': context_windw: unknown capability" in plugin.errors[0]
        assert "capabilities 'acme-2': context_window:" in plugin.errors[1]
        out = io.StringIO()
        assert main(["plugins"], out=out) == 1
        text = out.getvalue()
        assert "ERROR: capabilities 'acme-1'" in text and "sk-live" not in text
        assert capabilities_for("acme-3").known is False  # the table alone
        model = FakeModel("f", base_model="acme-3")
        model.use_capability_layers(lambda: host.layers("capabilities"))
        assert model.token_limit == 2000


# -- CAMEL's token_limit tests, in spirit (model_type stays a plain string) -------------------


@pytest.mark.parametrize(
    "model_type, limit",
    [
        ("gpt-3.5-turbo", 16385),
        ("gpt-4", 8192),
        ("gpt-4-turbo", 128000),
        ("gpt-4o", 128000),
        ("gpt-4o-mini", 128000),
    ],
)
def test_camel_openai_model(model_type: str, limit: int) -> None:
    model_config_dict: dict[str, Any] = {}  # CAMEL: ChatGPTConfig().as_dict()
    model = AzureOpenAIModel(
        model_type,
        model_config_dict,
        api_version="2024-02-15-preview",
        api_key="test-key",
        url="https://test.openai.azure.com/",
    )
    assert model.model_type == model_type
    assert model.model_config_dict == model_config_dict
    assert isinstance(model.token_counter, OpenAITokenCounter)
    assert isinstance(model.token_counter.encoding_name, str)  # CAMEL: value_for_tiktoken
    assert isinstance(model.token_limit, int) and model.token_limit == limit


@pytest.mark.parametrize("model_type", ["gpt-3.5-turbo", "gpt-4", "gpt-4-turbo", "gpt-4o"])
def test_camel_openai_model_create(model_type: str, write_settings: Callable[[str], Path]) -> None:
    write_settings(
        azure_table("m", model_type, model_type, "https://test.openai.azure.com")
        + "[models.m.config]\ntemperature = 0.8\nn = 3\n"
    )
    model = ModelRegistry.from_settings().create("m")
    assert model.model_type == model_type
    assert model.model_config_dict == {"temperature": 0.8, "n": 3}


# -- the README's context-check example, as written -----------------------------------------


def test_readme_context_check_falls_back(
    server: AzureServer,
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (isolated / "settings.toml").write_text(readme_block("**The context check**", "toml"))
    monkeypatch.setenv("AZURE_OPENAI_BASE_URL", server.base_url)  # the endpoint, key, version
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("AZURE_API_VERSION", "2024-10-21")
    namespace: dict[str, Any] = {}
    exec(readme_block("**The context check**", "python"), namespace)
    prompt, rest = capsys.readouterr().out.split(" + ")
    assert int(prompt) > 14385 and rest.strip() == "2000 > 16385: falling back"
    assert [request.deployment for request in server.requests] == ["gpt-41"]
    assert namespace["reply"].choices[0].message.content.startswith("Hello from the loopback")

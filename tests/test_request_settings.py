"""Request settings (``config``) from the installed openai SDK's own parameter types."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest
from openai.types.chat import completion_create_params as chat_types
from openai.types.responses import response_create_params as responses_types
from pydantic import BaseModel

from backends import sdk_params
from backends.base import BackendSettings, BuildContext
from backends.configs import REQUEST_OPTIONS, config_model_for
from backends.fake import FakeModel
from backends.sdk_params import CHAT_PARAMS, ParamSet, SdkParams
from registry import ConfigError, ModelRegistry, hookimpl
from registry.spec import ModelSpec
from registry.testing import use_plugins
from tests.azure_server import AzureServer

AZURE = """
[models.chat]
backend = "azure"
deployment = "gpt-4o"
model = "gpt-4o"
endpoint = "{url}"
api_version = "2024-10-21"
api_key = "test-key"
max_retries = 0
"""
MESSAGES = [{"role": "user", "content": "Hello"}]
SECRET = "sk-live-0123456789abcdef"


def sdk_keys(*classes: Any) -> set[str]:
    """The parameters the SDK's TypedDicts declare, read by importing them (the reference)."""
    keys: set[str] = set()
    for cls in classes:
        keys |= set(typing.get_type_hints(cls, include_extras=False))
    return keys


def errors(config: dict[str, Any], api: str | None = None) -> dict[str, str]:
    clean, problems = config_model_for(api).check(config)
    assert (clean is None) == bool(problems)
    return dict(problems)


# -- the keys are the SDK's --------------------------------------------------------------------


def test_chat_keys_are_the_sdk_create_parameters() -> None:
    expected = sdk_keys(
        chat_types.CompletionCreateParamsNonStreaming, chat_types.CompletionCreateParamsStreaming
    ) - {"messages", "model"}
    assert config_model_for(None).keys() == expected | set(REQUEST_OPTIONS)
    assert config_model_for("chat_completions") is config_model_for(None)


def test_responses_keys_are_the_sdk_create_parameters_and_the_chat_ones() -> None:
    """Responses parameters go as they are; chat ones are the translation's to map or refuse."""
    expected = sdk_keys(
        responses_types.ResponseCreateParamsNonStreaming,
        responses_types.ResponseCreateParamsStreaming,
    ) - {"input", "model"}
    assert config_model_for("responses").keys() == (
        expected | config_model_for(None).keys() | set(REQUEST_OPTIONS)
    )


@pytest.mark.parametrize(
    "key, value",
    [
        ("store", True),
        ("metadata", {"team": "search"}),
        ("service_tier", "flex"),
        ("verbosity", "low"),
        ("modalities", ["text"]),
        ("prediction", {"type": "content", "content": "draft"}),
        ("safety_identifier", "user-hash-1"),
        ("web_search_options", {"search_context_size": "low"}),
        ("stream_options", {"include_usage": True}),
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ("tool_choice", {"type": "function", "function": {"name": "f"}}),
        ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
        ("stop", ["END"]),
        ("logit_bias", {"50256": -100}),
        ("extra_headers", {"X-Request-Id": "abc"}),
        ("extra_query", {"trace": 1}),
        ("extra_body", {"data_sources": [{"type": "azure_search"}]}),
    ],
)
def test_what_camel_passes_is_accepted(key: str, value: Any) -> None:
    clean, problems = config_model_for(None).check({key: value})
    assert problems == [] and clean == {key: value}


def test_values_from_variables_are_coerced_as_before() -> None:
    clean, problems = config_model_for(None).check(
        {"temperature": "0.5", "stream": "true", "max_tokens": "10"}
    )
    assert problems == [] and clean == {"temperature": 0.5, "stream": True, "max_tokens": 10}


def test_a_pydantic_response_format_is_accepted_as_is() -> None:
    class Answer(BaseModel):
        text: str

    clean, _ = config_model_for(None).check({"response_format": Answer})
    assert clean == {"response_format": Answer}


# -- validation: types, ranges, rules; values never shown -------------------------------------


@pytest.mark.parametrize(
    "config, path, words",
    [
        ({"service_tier": SECRET}, "config.service_tier", "'auto', 'default'"),
        ({"verbosity": SECRET}, "config.verbosity", "'low', 'medium' or 'high'"),
        ({"store": SECRET}, "config.store", "valid boolean"),
        ({"metadata": {"a": 1}}, "config.metadata.a", "valid string"),
        ({"stream_options": {"include_usag": True}}, "config.stream_options.include_usag", "Extra"),
        (
            {"tools": [{"type": "function", "function": {"nme": "f"}}]},
            "config.tools.0.function.name",
            "required",
        ),
        (
            {"tools": [{"type": SECRET}]},
            "config.tools.0",
            "'type' must be one of 'function', 'custom'",
        ),
        ({"response_format": {"type": "json"}}, "config.response_format", "'text', 'json_schema'"),
        ({"max_tokens": True}, "config.max_tokens", "not true/false"),
        ({"logit_bias": {"1": True}}, "config.logit_bias.1", "not true/false"),
        ({"temperature": SECRET}, "config.temperature", "valid number"),
        ({"extra_headers": {"X-Key": "a\nb"}}, "config.extra_headers", "line break"),
        (
            {"web_search_options": {"search_context_size": "huge"}},
            "config.web_search_options.search_context_size",
            "'low'",
        ),
    ],
)
def test_bad_values_name_the_key_path_never_the_value(
    config: dict[str, Any], path: str, words: str
) -> None:
    found = errors(config)
    assert path in found, found
    assert words in found[path]
    assert SECRET not in str(found)


@pytest.mark.parametrize(
    "key, bad, good",
    [
        ("temperature", 2.5, 2),
        ("temperature", -0.1, 0),
        ("top_p", 1.5, 1),
        ("n", 0, 1),
        ("n", 129, 128),
        ("max_tokens", 0, 1),
        ("max_completion_tokens", -5, 1),
        ("presence_penalty", 2.1, -2),
        ("frequency_penalty", -2.1, 2),
        ("top_logprobs", 21, 20),
    ],
)
def test_ranges_of_the_api_reference(key: str, bad: float, good: float) -> None:
    assert f"config.{key}" in errors({key: bad})
    assert errors({key: good}) == {}


def test_logit_bias_values_are_bounded() -> None:
    assert set(errors({"logit_bias": {"1": -101, "2": 100, "3": 5}})) == {"config.logit_bias.1"}


@pytest.mark.parametrize("api", [None, "responses"])
def test_responses_ranges(api: str | None) -> None:
    key = "max_output_tokens" if api else "max_completion_tokens"
    assert f"config.{key}" in errors({key: 0}, api)
    assert "config.temperature" in errors({"temperature": 3}, api)


# -- one API's keys on the other ---------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [
        ("instructions", "Be brief."),
        ("previous_response_id", "resp_1"),
        ("max_output_tokens", 100),
        ("reasoning", {"effort": "low"}),
        ("truncation", "auto"),
        ("text", {"verbosity": "low"}),
    ],
)
def test_responses_only_keys_are_refused_for_chat_and_accepted_for_responses(
    key: str, value: Any
) -> None:
    message = errors({key: value})[f"config.{key}"]
    assert "is a Responses API parameter" in message and 'api = "responses"' in message
    assert errors({key: value}, "responses") == {}


def test_chat_keys_on_responses_are_typed_as_chat_types_them() -> None:
    """Refusing the ones the Responses API lacks (stop, n > 1...) is the translation's rule."""
    assert errors({"stop": "END", "seed": 1, "n": 1}, "responses") == {}
    assert "config.stop" in errors({"stop": 5}, "responses")
    assert "config.response_format" in errors({"response_format": {"type": "x"}}, "responses")


def test_responses_takes_either_shape_of_tools_tool_choice_and_stream_options() -> None:
    chat_tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    flat_tool = {"type": "function", "name": "f", "parameters": {}, "strict": True}
    config = {
        "max_tokens": 5,
        "reasoning_effort": "low",
        "tools": [chat_tool, flat_tool, {"type": "web_search"}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "stream_options": {"include_usage": True},
    }
    assert errors(config, "responses") == {}
    assert errors({"stream_options": {"include_obfuscation": False}}, "responses") == {}
    assert "config.stream_options.x" in errors({"stream_options": {"x": 1}}, "responses")


@pytest.mark.parametrize("key", ["messages", "model", "input", "timeout"])
def test_create_arguments_that_are_not_settings_say_where_they_come_from(key: str) -> None:
    message = errors({key: "x"})[f"config.{key}"]
    assert "is not a request setting" in message


def test_unknown_key_has_did_you_mean_and_names_the_sdk_method() -> None:
    message = errors({"temprature": 0.2})["config.temprature"]
    assert "Did you mean 'temperature'?" in message
    assert "chat.completions.create" in message and "web_search_options" in message


# -- through settings, resolution and real HTTP ------------------------------------------------


def test_new_keys_travel_from_settings_to_the_wire(
    server: AzureServer, write_settings: Callable[[str], Path]
) -> None:
    write_settings(
        AZURE.replace("{url}", server.base_url)
        + textwrap.dedent(
            """
            [models.chat.config]
            store = true
            metadata = { team = "search" }
            service_tier = "flex"
            verbosity = "low"
            safety_identifier = "user-hash-1"
            prediction = { type = "content", content = "draft" }
            """
        )
    )
    with ModelRegistry.from_settings() as models:
        models.create("chat").run(MESSAGES)
    body = server.requests[-1].body
    assert body["store"] is True and body["metadata"] == {"team": "search"}
    assert (body["service_tier"], body["verbosity"]) == ("flex", "low")
    assert body["safety_identifier"] == "user-hash-1"
    assert body["prediction"] == {"type": "content", "content": "draft"}


def test_settings_errors_name_model_field_and_origin(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        AZURE.replace("{url}", "https://x.example.com")
        + '[models.chat.config]\nservice_tier = "sk-live-0123456789abcdef"\ninstructions = "x"\n'
    )
    with pytest.raises(ConfigError) as caught:
        ModelRegistry.from_settings().resolve("chat")
    message = str(caught.value)
    assert "model 'chat', field 'config.instructions' (" in message
    assert 'api = "responses"' in message and SECRET not in message


def test_model_config_dict_is_checked_at_construction() -> None:
    from backends.azure import AzureOpenAIModel

    with pytest.raises(ConfigError, match=r"config\.service_tier"):
        AzureOpenAIModel(
            "gpt-4o",
            {"service_tier": "bogus"},
            api_key="k",
            url="https://x.example.com",
            api_version="2024-10-21",
        )


class ApiSettings(BackendSettings):
    api: str = "chat_completions"


class ApiBackend(FakeModel):
    """A backend with an ``api`` field: resolution validates its config for that API."""

    settings_model: ClassVar[type[BaseModel]] = ApiSettings

    @classmethod
    def from_spec(cls, spec: ModelSpec, context: BuildContext) -> Self:
        return cls(spec.common.model or "fake", dict(spec.config), name=spec.name)


class ApiPlugin:
    @hookimpl
    def modelreg_register_backends(self, register: Callable[..., None]) -> None:
        register("api-test", ApiBackend)


@pytest.fixture
def api_plugin() -> Iterator[None]:
    with use_plugins(ApiPlugin()):
        yield


@pytest.mark.usefixtures("api_plugin")
def test_resolution_validates_config_for_the_models_api(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        """
        [models.a]
        backend = "api-test"
        api = "responses"
        config = { instructions = "Be brief.", max_output_tokens = 50 }

        [models.b]
        backend = "api-test"
        config = { instructions = "Be brief." }
        """
    )
    models = ModelRegistry.from_settings()
    assert dict(models.resolve("a").config) == {
        "instructions": "Be brief.",
        "max_output_tokens": 50,
    }
    with pytest.raises(ConfigError, match=r"'config\.instructions'.*api = \"responses\""):
        models.resolve("b")


# -- the SDK's source is read, not imported ----------------------------------------------------


def test_resolving_a_config_with_many_keys_does_not_import_the_sdk(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        AZURE.replace("{url}", "https://x.example.com")
        + textwrap.dedent(
            """
            [models.chat.config]
            temperature = 0.2
            tools = [{ type = "function", function = { name = "f", parameters = {} } }]
            response_format = { type = "json_object" }
            stream_options = { include_usage = true }
            web_search_options = { search_context_size = "low" }
            """
        )
    )
    code = (
        "import sys; from registry import create_model; create_model('chat');"
        "print('openai' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


FAKE_SDK = """
from typing import Dict, Optional, Union, Iterable
from typing_extensions import Literal, Required, TypedDict, TypeAlias

from ..shared import Shape


_Reserved = TypedDict("_Reserved", {"async": bool}, total=False)


class Knob(_Reserved, total=False):
    level: Required[int]
    label: str


class Looped(TypedDict, total=False):
    inner: Optional["Looped"]


class CreateParamsBase(TypedDict, total=False):
    messages: Required[Iterable[object]]
    model: Required[str]
    frobnicate: Optional[float]
    knob: Knob
    looped: Looped
    shape: Shape


class CreateParamsStreaming(CreateParamsBase):
    stream: Required[Literal[True]]


class CreateParamsNonStreaming(CreateParamsBase, total=False):
    stream: Optional[Literal[False]]
"""


@pytest.fixture
def fake_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SdkParams]:
    """An SDK with a parameter no real one has: the reader picks it up with no edit here."""
    root = tmp_path / "openai"
    (root / "types" / "chat").mkdir(parents=True)
    (root / "types" / "chat" / "create_params.py").write_text(FAKE_SDK, encoding="utf-8")
    (root / "types" / "shared.py").write_text(
        "from typing import Union\nfrom typing_extensions import Literal\n"
        'Shape = Union[Literal["round", "square"], None]\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(sdk_params, "_package_dir", lambda: root)
    sdk_params._module_tree.cache_clear()
    params = ParamSet(
        "openai.types.chat.create_params",
        ("CreateParamsBase", "CreateParamsNonStreaming", "CreateParamsStreaming"),
        CHAT_PARAMS.excluded,
    )
    yield SdkParams(params)
    sdk_params._module_tree.cache_clear()


def test_an_sdk_upgrade_needs_no_edit(fake_sdk: SdkParams) -> None:
    assert fake_sdk.keys() == {"frobnicate", "knob", "looped", "shape", "stream"}
    assert fake_sdk.adapter("frobnicate").validate_python("1.5") == 1.5
    assert fake_sdk.adapter("stream").validate_python("false") is False
    assert fake_sdk.adapter("knob").validate_python({"level": 2}) == {"level": 2}
    assert fake_sdk.adapter("knob").validate_python({"level": 2, "async": "true"})["async"] is True
    assert fake_sdk.adapter("shape").validate_python("round") == "round"
    with pytest.raises(ValueError, match="level"):
        fake_sdk.adapter("knob").validate_python({"label": "x"})  # required key missing
    with pytest.raises(ValueError, match="Extra inputs"):
        fake_sdk.adapter("knob").validate_python({"level": 1, "levle": 2})
    with pytest.raises(ValueError, match="'round' or 'square'"):
        fake_sdk.adapter("shape").validate_python("triangle")
    # a recursive type: its inner levels are left to the server
    deep = {"inner": {"inner": {"whatever": 1}}}
    assert fake_sdk.adapter("looped").validate_python(deep) == deep


def test_an_sdk_without_the_parameter_types_is_a_clear_error(fake_sdk: SdkParams) -> None:
    renamed = ParamSet("openai.types.chat.create_params", ("Gone",), frozenset())
    with pytest.raises(ConfigError, match=r"create_params has no Gone\. modelreg needs openai"):
        SdkParams(renamed).keys()
    missing = ParamSet("openai.types.chat.no_such_module", ("X",), frozenset())
    with pytest.raises(ConfigError, match="cannot read the request parameters"):
        SdkParams(missing).keys()

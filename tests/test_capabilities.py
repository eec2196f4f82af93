"""Capabilities of base models: the shipped table, overrides, plugins, and ``token_limit``."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pluggy
import pytest

from backends import builtin
from backends.azure import AzureOpenAIModel
from backends.base import BaseModelBackend
from backends.capabilities import (
    BUILTIN_ORIGIN,
    CAPABILITY_KEYS,
    CapabilityRegistry,
    ModelCapabilities,
    builtin_entries,
    builtin_registry,
    capabilities_for,
)
from backends.fake import FakeModel
from registry import ConfigError, ModelRegistry, PluginError, hookimpl, hookspecs
from tests.helpers import readme_block

ROOT = Path(__file__).resolve().parents[1]
REASONING_REJECTS = {
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
}

# -- lookups: families, snapshots, Azure spellings ------------------------------------------


@pytest.mark.parametrize(
    "model, family, context_window, max_output",
    [
        ("gpt-3.5-turbo", "gpt-3.5-turbo", 16385, 4096),
        ("gpt-35-turbo", "gpt-3.5-turbo", 16385, 4096),  # Azure's spelling
        ("gpt-35-turbo-0125", "gpt-3.5-turbo", 16385, 4096),  # Azure's version as a suffix
        ("gpt-35-turbo-0613", "gpt-3.5-turbo-0613", 4096, 4096),
        ("gpt-35-turbo-16k", "gpt-3.5-turbo-16k", 16385, 4096),
        ("gpt-4", "gpt-4", 8192, 8192),
        ("gpt-4-0613", "gpt-4", 8192, 8192),
        ("gpt-4-32k-0613", "gpt-4-32k", 32768, 8192),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo", 128000, 4096),
        ("gpt-4-1106-preview", "gpt-4-1106-preview", 128000, 4096),
        ("gpt-4o", "gpt-4o", 128000, 16384),
        ("gpt-4o-2024-08-06", "gpt-4o", 128000, 16384),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13", 128000, 4096),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini", 128000, 16384),
        ("gpt-4.1", "gpt-4.1", 1047576, 32768),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini", 1047576, 32768),
        ("gpt-4.1-nano", "gpt-4.1-nano", 1047576, 32768),
        ("gpt-4.5-preview-2025-02-27", "gpt-4.5-preview", 128000, 16384),
        ("gpt-4.5", "gpt-4.5", 128000, 16384),
        ("gpt-5", "gpt-5", 400000, 128000),
        ("gpt-5-2025-08-07", "gpt-5", 400000, 128000),
        ("gpt-5-mini", "gpt-5-mini", 400000, 128000),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano", 400000, 128000),
        ("gpt-5-chat-latest", "gpt-5-chat", 128000, 16384),
        ("o1", "o1", 200000, 100000),
        ("o1-2024-12-17", "o1", 200000, 100000),
        ("o1-mini-2024-09-12", "o1-mini", 128000, 65536),
        ("o1-preview", "o1-preview", 128000, 32768),
        ("o3", "o3", 200000, 100000),
        ("o3-mini-2025-01-31", "o3-mini", 200000, 100000),
        ("o4-mini-2025-04-16", "o4-mini", 200000, 100000),
        (" Azure/GPT-4o ", "gpt-4o", 128000, 16384),  # provider prefix, case, spaces
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-4o-mini", 128000, 16384),
        ("gpt-4o-mini-2024-07-18.ft-0123abcd", "gpt-4o-mini", 128000, 16384),  # Azure fine-tune
    ],
)
def test_lookup(model: str, family: str, context_window: int, max_output: int) -> None:
    capabilities = capabilities_for(model)
    assert capabilities.known and capabilities.family == family
    assert (capabilities.context_window, capabilities.max_output_tokens) == (
        context_window,
        max_output,
    )
    assert capabilities.model == model


@pytest.mark.parametrize(
    "model",
    ["llama3.1:8b", "gpt-4o-audio-preview", "gpt-4o-realtime", "gpt-5.1", "_reasoning", ""],
)
def test_unknown_model_gets_declared_defaults(model: str) -> None:
    """Only snapshot suffixes join a family: a different model is unknown, not gpt-4o."""
    capabilities = capabilities_for(model)
    assert capabilities.known is False and capabilities.family is None
    assert capabilities.context_window == 128000  # declared, never 999,999,999
    assert "smallest context window" in capabilities.notes["context_window"]
    assert capabilities.vision is None and capabilities.tools is None  # not known
    assert capabilities.rejected_params == frozenset()
    assert capabilities.image_tokens.exact is False
    assert capabilities.origins["context_window"] == "default for models not in the table"


def test_snapshot_of_a_longer_family_is_not_the_shorter_one() -> None:
    assert capabilities_for("gpt-4o-mini-2024-07-18").image_tokens.base_tokens == 2833
    assert capabilities_for("o1-preview-2024-09-12").family == "o1-preview"
    assert capabilities_for("gpt-4-turbo-2024-04-09").vision is True
    assert capabilities_for("gpt-4-0125-preview").vision is False


@pytest.mark.parametrize(
    "model, vision, tools, structured, responses",
    [
        ("gpt-35-turbo", False, True, False, False),
        ("gpt-4o", True, True, True, True),
        ("gpt-4o-2024-05-13", True, True, False, True),
        ("gpt-4.1-nano", True, True, True, True),
        ("gpt-5-chat", True, False, True, True),
        ("o1-mini", False, False, False, False),
        ("o3-mini", False, True, True, True),
        ("o4-mini", True, True, True, True),
    ],
)
def test_features(model: str, vision: bool, tools: bool, structured: bool, responses: bool) -> None:
    capabilities = capabilities_for(model)
    assert (
        capabilities.vision,
        capabilities.tools,
        capabilities.structured_outputs,
        capabilities.responses_api,
    ) == (vision, tools, structured, responses)


@pytest.mark.parametrize(
    "model", ["o1", "o1-mini", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano"]
)
def test_reasoning_models_rules(model: str) -> None:
    capabilities = capabilities_for(model)
    assert capabilities.reasoning is True
    assert capabilities.rejected_params >= REASONING_REJECTS
    assert capabilities.max_tokens_param == "max_completion_tokens"


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1", "gpt-5-chat-latest", "gpt-35-turbo"])
def test_non_reasoning_models_accept_sampling_parameters(model: str) -> None:
    capabilities = capabilities_for(model)
    assert capabilities.reasoning is False
    assert capabilities.rejected_params == frozenset()
    assert capabilities.max_tokens_param == "max_tokens"
    assert capabilities.config_problems({"temperature": 0.2, "top_p": 0.9}) == []


def test_config_problems_name_the_family_and_key_not_the_value() -> None:
    problems = capabilities_for("o3-mini-2025-01-31").config_problems(
        {"temperature": 0.123456, "max_tokens": 10, "logit_bias": {"50256": -100}}
    )
    assert [field for field, _ in problems] == ["config.logit_bias", "config.temperature"]
    assert "o3-mini (a reasoning model) does not accept 'temperature'" in problems[1][1]
    assert "0.123456" not in str(problems)
    assert capabilities_for("o1-mini").config_problems({"reasoning_effort": "low"})


def test_gpt5_separates_input_limit_from_context_window() -> None:
    capabilities = capabilities_for("gpt-5")
    assert (capabilities.context_window, capabilities.input_limit) == (400000, 272000)
    assert capabilities_for("gpt-4o").input_limit == 128000
    assert "272,000" in capabilities.notes["context_window"]


# -- the shipped data ----------------------------------------------------------------------


def test_table_states_source_and_licence_and_every_entry_names_known_sources() -> None:
    data = json.loads((ROOT / "backends" / "data" / "capabilities.json").read_text("utf-8"))
    about = data["about"]
    assert "MIT" in about["licence"] and "Berri AI" in about["licence"]
    assert "litellm" in about["sources"] and "azure-reasoning" in about["sources"]
    for name, entry in data["models"].items():
        assert entry["source"], name
        assert set(entry["source"]) <= set(about["sources"]), name
        assert set(entry.get("notes", {})) <= set(CAPABILITY_KEYS), name
    module_doc = sys.modules["backends.capabilities"].__doc__ or ""
    assert "MIT licence" in module_doc and "LiteLLM" in module_doc


def test_every_builtin_entry_is_valid_and_resolves() -> None:
    registry = builtin_registry()  # validates every entry; raises on a typo
    for name in registry.names():
        capabilities = registry.lookup(name)
        assert capabilities.known and capabilities.origins["context_window"] == BUILTIN_ORIGIN


def test_every_capability_can_be_overridden_and_is_on_the_result() -> None:
    """The override schema and the result list the same capabilities (add a field to both)."""
    described = {"model", "family", "known", "source", "notes", "origins"}
    assert set(CAPABILITY_KEYS) == set(ModelCapabilities.__dataclass_fields__) - described


def test_data_file_is_package_data() -> None:
    """The JSON ships in the wheel: pyproject's package-data globs cover every data file."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["backends"]
    files = [
        p.relative_to(ROOT / "backends").as_posix() for p in (ROOT / "backends" / "data").iterdir()
    ]
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files)


def test_table_is_read_on_first_lookup_never_at_import() -> None:
    code = (
        "import registry, backends.capabilities as c, backends.builtin, backends.base;"
        "before = c._builtin_data.cache_info().currsize;"
        "c.capabilities_for('gpt-4o');"
        "print(before, c._builtin_data.cache_info().currsize)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["0", "1"]


# -- overrides ------------------------------------------------------------------------------


def test_overrides_merge_field_by_field_and_record_their_origin() -> None:
    capabilities = capabilities_for(
        "gpt-4o", {"context_window": 64000, "image_tokens": {"base_tokens": 90}}
    )
    assert capabilities.context_window == 64000
    assert capabilities.max_output_tokens == 16384  # untouched fields keep the table's value
    assert (capabilities.image_tokens.kind, capabilities.image_tokens.base_tokens) == ("tile", 90)
    assert capabilities.image_tokens.tile_tokens == 170
    assert capabilities.origins["context_window"].startswith("per-model settings")
    assert capabilities.origins["max_output_tokens"] == BUILTIN_ORIGIN
    assert capabilities_for("gpt-4o").context_window == 128000  # the cached entry is unchanged


def test_overrides_make_an_unknown_model_usable() -> None:
    capabilities = capabilities_for(
        "llama3.1:8b",
        {"context_window": "8192", "max_output_tokens": 2048, "tools": "true"},  # from variables
    )
    assert (capabilities.context_window, capabilities.max_output_tokens) == (8192, 2048)
    assert capabilities.tools is True and capabilities.known is False


def test_unknown_override_key_is_config_error_with_did_you_mean() -> None:
    with pytest.raises(ConfigError) as excinfo:
        capabilities_for("gpt-4o", {"context_windw": 1000}, context="model 'chat'")
    message = str(excinfo.value)
    assert message.startswith("model 'chat': capabilities.context_windw: unknown capability")
    assert "Did you mean 'context_window'?" in message
    assert isinstance(excinfo.value, ValueError)


def test_unknown_image_rule_field_is_config_error_with_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"image_tokens\.multiplyer.*Did you mean 'multiplier'"):
        capabilities_for("gpt-4o", {"image_tokens": {"multiplyer": 2}})


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"context_window": "sk-live-0123456789abcdef"}, "capabilities.context_window"),
        ({"context_window": -5}, "capabilities.context_window"),
        ({"vision": "sk-live-0123456789abcdef"}, "capabilities.vision"),
        ({"max_tokens_param": "sk-live-0123456789abcdef"}, "capabilities.max_tokens_param"),
        ({"image_tokens": {"kind": "sk-live-0123456789abcdef"}}, "capabilities.image_tokens.kind"),
        ({"image_tokens": {"multiplier": 0}}, "capabilities.image_tokens.multiplier"),
        ({"image_tokens": {"multiplier": float("inf")}}, "capabilities.image_tokens.multiplier"),
        ({"image_tokens": {"max_patches": True}}, "capabilities.image_tokens.max_patches"),
        ({"context_window": True}, "capabilities.context_window"),  # true is not 1 token
        ({"image_tokens": "sk-live-0123456789abcdef"}, "capabilities.image_tokens"),
    ],
)
def test_bad_override_value_is_named_never_echoed(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        capabilities_for("gpt-4o", overrides, context="model 'chat'")
    message = str(excinfo.value)
    assert field in message and "model 'chat'" in message
    assert "sk-live" not in message and "sk-live" not in repr(excinfo.value.__cause__)


# -- plugins --------------------------------------------------------------------------------


def test_plugin_overrides_a_builtin_family_and_settings_override_the_plugin() -> None:
    registry = builtin_registry()
    registry.register("GPT-4o", {"context_window": 64000}, origin="plugin acme (acme 1.0)")
    capabilities = registry.lookup("gpt-4o-2024-08-06")
    assert capabilities.context_window == 64000
    assert capabilities.origins["context_window"] == "plugin acme (acme 1.0)"
    assert capabilities.max_output_tokens == 16384  # the rest stays built-in
    assert registry.lookup("gpt-4o-mini").context_window == 64000  # extends gpt-4o
    assert registry.lookup("gpt-4o", {"context_window": 32000}).context_window == 32000


def test_plugin_adds_a_new_base_model_matched_with_snapshots() -> None:
    registry = builtin_registry()
    registry.register(
        "acme-1", {"extends": "gpt-4o", "context_window": 32768, "vision": False}, origin="acme"
    )
    capabilities = registry.lookup("acme-1-2025-01-01")
    assert capabilities.known and capabilities.family == "acme-1"
    assert (capabilities.context_window, capabilities.tools) == (32768, True)
    assert "acme-1" in registry.names() and "_reasoning" not in registry.names()


def test_plugin_model_with_vision_but_no_image_rule_counts_images_as_inexact() -> None:
    registry = builtin_registry()
    registry.register("acme-vision", {"context_window": 8000, "vision": True}, origin="acme")
    registry.register("acme-text", {"context_window": 8000, "vision": False}, origin="acme")
    assert registry.lookup("acme-vision").image_tokens.exact is False
    assert registry.lookup("acme-text").image_tokens.exact is True
    assert registry.lookup("acme-text").origins["context_window"] == "acme"


def test_two_plugins_on_one_name_clash_and_neither_applies() -> None:
    registry = builtin_registry()
    registry.register("gpt-4o", {"context_window": 1000}, origin="plugin a")
    with pytest.raises(PluginError, match=r"plugin b: .*'gpt-4o'.*also registered by plugin a"):
        registry.register("gpt-4o", {"context_window": 2000}, origin="plugin b")
    with pytest.raises(PluginError, match=r"plugin c: .*neither applies"):
        registry.register("gpt-4o", {"context_window": 3000}, origin="plugin c")
    assert registry.lookup("gpt-4o").context_window == 128000  # the built-in value


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("", {"context_window": 1}, "empty model name"),
        ("acme", {"context_windows": 1}, "Did you mean 'context_window'"),
        ("acme", {"context_window": "sk-live-0123456789abcdef"}, "context_window"),
        ("acme", ["not", "a", "table"], "expected a table"),
    ],
)
def test_invalid_plugin_data_is_a_plugin_error_without_values(
    name: str, data: Any, expected: str
) -> None:
    registry = CapabilityRegistry()
    with pytest.raises(PluginError) as excinfo:
        registry.register(name, data, origin="plugin acme")
    assert expected in str(excinfo.value) and "sk-live" not in str(excinfo.value)
    assert str(excinfo.value).startswith("plugin acme: ")


class AcmeCapabilities:
    """A third-party plugin, as an entry point would load it."""

    @hookimpl
    def modelreg_register_capabilities(self, register: Callable[..., None]) -> None:
        register("acme-large", {"extends": "gpt-4.1", "max_output_tokens": 8192})
        register("o3", {"context_window": 100000})


def test_hook_spec_and_builtin_registration_through_pluggy() -> None:
    """The hook as a plugin host calls it: built-ins first, then plugins, into one registry."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name="backends.builtin")
    manager.register(AcmeCapabilities(), name="acme")
    manager.check_pending()
    registry = CapabilityRegistry()
    impls = manager.hook.modelreg_register_capabilities.get_hookimpls()
    for impl in sorted(impls, key=lambda impl: impl.plugin_name != "backends.builtin"):
        origin, is_builtin = impl.plugin_name, impl.plugin_name == "backends.builtin"
        impl.function(register=partial(registry.register, origin=origin, builtin=is_builtin))
    assert set(registry.names()) >= {n for n in builtin_entries() if not n.startswith("_")}
    assert registry.lookup("acme-large").context_window == 1047576
    assert registry.lookup("acme-large").max_output_tokens == 8192
    o3 = registry.lookup("o3-2025-04-16")
    assert o3.context_window == 100000 and o3.origins["context_window"] == "acme"
    assert o3.rejected_params >= REASONING_REJECTS  # the rest from the built-in layer


# -- token_limit on a model -----------------------------------------------------------------


def azure(model_type: str, **arguments: Any) -> AzureOpenAIModel:
    return AzureOpenAIModel(
        model_type, api_key="k", url="https://x.example.com", api_version="2024-10-21", **arguments
    )


def test_token_limit_from_base_model_not_deployment() -> None:
    model = azure("prod-east-7", base_model="gpt-4.1")
    assert model.token_limit == 1047576
    assert model.capabilities.family == "gpt-4.1"


def test_token_limit_from_model_type_when_no_base_model() -> None:
    assert azure("gpt-35-turbo").token_limit == 16385
    assert isinstance(azure("gpt-4o").token_limit, int)  # CAMEL's test, in spirit


def test_token_limit_of_unknown_model_is_the_declared_default() -> None:
    model = azure("my-deployment")
    assert model.token_limit == 128000 and model.capabilities.known is False


def test_capabilities_keyword_takes_overrides_or_a_result() -> None:
    model = FakeModel("fake", base_model="gpt-4o")
    model.use_capabilities({"context_window": 4096})
    assert model.token_limit == 4096
    assert model.capabilities.max_output_tokens == 16384
    model.use_capabilities(capabilities_for("o1"))
    assert model.token_limit == 200000
    model.use_capabilities(None)
    assert model.token_limit == 128000  # back to the base model's table entry


class Minimal(BaseModelBackend):
    """A backend that passes ``capabilities=`` to the base constructor."""

    @classmethod
    def from_spec(cls, spec: Any, context: Any) -> Minimal:
        raise NotImplementedError

    def _run(self, messages: Any, response_format: Any = None, tools: Any = None) -> Any:
        return None

    async def _arun(self, messages: Any, response_format: Any = None, tools: Any = None) -> Any:
        return None


def test_capabilities_constructor_keyword() -> None:
    model = Minimal("dep", base_model="o3", capabilities={"max_output_tokens": 5000})
    assert (model.token_limit, model.capabilities.max_output_tokens) == (200000, 5000)
    assert Minimal("dep", capabilities=capabilities_for("gpt-4.1")).token_limit == 1047576


def test_bad_capabilities_fail_at_construction_naming_the_model() -> None:
    with pytest.raises(ConfigError, match=r"model 'chat': capabilities\.contxt"):
        Minimal("dep", name="chat", capabilities={"contxt": 1})


def test_capabilities_are_frozen() -> None:
    capabilities = capabilities_for("gpt-4o")
    with pytest.raises(AttributeError):
        capabilities.context_window = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        capabilities.notes["x"] = "y"  # type: ignore[index]
    assert isinstance(capabilities, ModelCapabilities)
    assert json.loads(json.dumps(capabilities.to_dict()))["image_tokens"]["tile_tokens"] == 170


def test_model_from_settings_has_token_limit_of_its_base_model(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        """
        [models.chat]
        backend = "azure"
        deployment = "prod-east-7"
        model = "gpt-5-mini"
        endpoint = "https://x.example.com"
        api_version = "2024-10-21"
        api_key = "k"
        """
    )
    model = ModelRegistry.from_settings().create("chat")
    assert model.token_limit == 400000
    assert model.capabilities.reasoning is True


# -- the README's examples, run as written --------------------------------------------------


def test_readme_capabilities_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    exec(readme_block("**Unknown models** get declared defaults", "python"), {})
    assert "o3-mini (a reasoning model) does not accept 'temperature'" in capsys.readouterr().out


def test_readme_capabilities_plugin_hook_works() -> None:
    namespace: dict[str, Any] = {}
    exec(readme_block("A plugin adds or overrides base models with a hook", "python"), namespace)
    registry = builtin_registry()
    namespace["modelreg_register_capabilities"](partial(registry.register, origin="acme"))
    assert registry.lookup("acme-large").context_window == 1047576
    assert registry.lookup("acme-large").max_output_tokens == 8192
    assert registry.lookup("gpt-4o").context_window == 64000


def test_extends_cycle_stops_where_it_closes() -> None:
    registry = builtin_registry()
    registry.register("loop-a", {"extends": "loop-b", "context_window": 1000}, origin="acme")
    registry.register("loop-b", {"extends": "Loop-A", "max_output_tokens": 10}, origin="acme")
    capabilities = registry.lookup("loop-b")
    assert (capabilities.context_window, capabilities.max_output_tokens) == (1000, 10)


def test_plugin_none_values_mean_unset() -> None:
    registry = builtin_registry()
    registry.register(
        "gpt-4o", {"context_window": None, "image_tokens": {"note": None}}, origin="acme"
    )
    capabilities = registry.lookup("gpt-4o")
    assert capabilities.context_window == 128000 and capabilities.image_tokens.note == ""

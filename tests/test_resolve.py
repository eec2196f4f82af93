"""Names, aliases, ${VAR} references and every kind of bad input, each a clear error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from registry import ConfigError, ModelRegistry, UnknownModelError, create_model

GOOD = """
    default_model = "chat"
    [models.chat]
    backend = "azure"
    deployment = "gpt-4o"
    endpoint = "https://res.openai.azure.com"
    api_version = "2024-10-21"
    api_key = "${MY_KEY}"
    aliases = ["default", "assistant"]
    [models.other]
    backend = "fake"
"""


def registry_for(write: Callable[[str], Path], text: str, env: str | None = None) -> ModelRegistry:
    write(text)
    return ModelRegistry.from_settings(env=env)


def test_names_aliases_and_default(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "k")
    registry = registry_for(write_settings, GOOD)
    assert registry.names() == ["chat", "other"]
    assert registry.aliases() == {"default": "chat", "assistant": "chat"}
    assert registry.resolve("assistant").name == "chat"
    assert registry.resolve(None).name == "chat"


def test_unknown_model_suggests(write_settings: Callable[[str], Path]) -> None:
    registry = registry_for(write_settings, GOOD)
    with pytest.raises(UnknownModelError) as caught:
        registry.resolve("caht")
    assert isinstance(caught.value, KeyError)
    assert "Did you mean 'chat'?" in str(caught.value)
    assert "settings.toml" in str(caught.value)


def test_var_reference_resolved_with_source(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "secret-value")
    spec = registry_for(write_settings, GOOD).resolve("chat")
    assert spec.options.api_key.get_secret_value() == "secret-value"  # type: ignore[attr-defined]
    assert spec.sources["api_key"] == "settings.toml [models.chat] via ${MY_KEY} from env MY_KEY"


def test_unset_var_is_config_error_naming_model_field_variable(
    write_settings: Callable[[str], Path],
) -> None:
    with pytest.raises(ConfigError) as caught:
        registry_for(write_settings, GOOD).resolve("chat")
    message = str(caught.value)
    assert "model 'chat'" in message and "'api_key'" in message and "${MY_KEY}" in message
    assert "settings.toml [models.chat]" in message


def test_unset_var_default_syntax(write_settings: Callable[[str], Path]) -> None:
    text = GOOD.replace("${MY_KEY}", "${MY_KEY:-fallback}")
    spec = registry_for(write_settings, text).resolve("chat")
    assert spec.options.api_key.get_secret_value() == "fallback"  # type: ignore[attr-defined]


def test_show_does_not_fail_on_unset_var(write_settings: Callable[[str], Path]) -> None:
    fields = registry_for(write_settings, GOOD).explain("chat").fields
    assert fields["api_key"].value is None
    assert "${MY_KEY} is not set" in fields["api_key"].note


def test_malformed_toml_names_file_and_line(write_settings: Callable[[str], Path]) -> None:
    path = write_settings("[models.chat\nbackend = 1\n")
    with pytest.raises(ConfigError) as caught:
        ModelRegistry.from_settings(path)
    assert "settings.toml" in str(caught.value) and "line 1" in str(caught.value)


def test_missing_settings_file_named(isolated: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        ModelRegistry.from_settings("nope.toml")


def test_wrong_type_names_model_field_and_file(write_settings: Callable[[str], Path]) -> None:
    text = GOOD + '\n[models.typed]\nbackend = "fake"\ntimeout = "soon"\n'
    with pytest.raises(ConfigError) as caught:
        registry_for(write_settings, text).resolve("typed")
    message = str(caught.value)
    assert "model 'typed'" in message and "'timeout'" in message
    assert "settings.toml [models.typed]" in message
    assert "soon" not in message  # input values are never echoed (they may be secrets)


def test_unknown_field_did_you_mean(write_settings: Callable[[str], Path]) -> None:
    text = GOOD.replace('deployment = "gpt-4o"', 'deploymnt = "gpt-4o"')
    with pytest.raises(ConfigError) as caught:
        registry_for(write_settings, text).resolve("chat")
    message = str(caught.value)
    assert "unknown field 'deploymnt'" in message and "Did you mean 'deployment'" in message
    assert "settings.toml [models.chat]" in message


def test_unknown_config_key_named(write_settings: Callable[[str], Path]) -> None:
    text = GOOD + "\n[models.other.config]\ntemprature = 0.1\n"
    with pytest.raises(ConfigError) as caught:
        registry_for(write_settings, text).resolve("other")
    assert "'temprature'" in str(caught.value) and "'temperature'" in str(caught.value)
    assert "model 'other'" in str(caught.value)


def test_config_value_type_error(write_settings: Callable[[str], Path]) -> None:
    text = GOOD + '\n[models.other.config]\ntemperature = "hot"\n'
    with pytest.raises(ConfigError, match=r"model 'other', field 'config.temperature'"):
        registry_for(write_settings, text).resolve("other")


def test_unknown_top_level_key(write_settings: Callable[[str], Path]) -> None:
    write_settings(GOOD + '\n[model.x]\nbackend = "fake"\n')
    with pytest.raises(ConfigError, match=r"unknown top-level key 'model'\..*'models'"):
        ModelRegistry.from_settings()


def test_unknown_backend_suggests(write_settings: Callable[[str], Path]) -> None:
    text = GOOD + '\n[models.x]\nbackend = "azur"\n'
    with pytest.raises(
        ConfigError,
        match=r"not a registered backend \(the value is not shown\)\. Did you mean 'azure'",
    ):
        registry_for(write_settings, text).resolve("x")


@pytest.mark.parametrize(
    "extra, clash",
    [
        ('[models.x]\nbackend = "fake"\naliases = ["other"]\n', "also the name of a model"),
        ('[models.x]\nbackend = "fake"\naliases = ["assistant"]\n', "already an alias of model"),
    ],
)
def test_alias_clashes(write_settings: Callable[[str], Path], extra: str, clash: str) -> None:
    with pytest.raises(ConfigError, match=clash):
        registry_for(write_settings, GOOD + "\n" + extra).names()


def test_unknown_environment_suggests(write_settings: Callable[[str], Path]) -> None:
    write_settings(GOOD + '\n[environments.prod.models.chat]\ndeployment = "x"\n')
    with pytest.raises(ConfigError, match="Did you mean 'prod'"):
        ModelRegistry.from_settings(env="prd")


def test_no_name_and_no_default(write_settings: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigError, match="no default_model"):
        registry_for(write_settings, '[models.a]\nbackend = "fake"\n').resolve(None)


def test_env_json_list_for_aliases(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_MODELS__OTHER__ALIASES", '["o1", "o2"]')
    registry = registry_for(write_settings, GOOD)
    assert registry.aliases()["o2"] == "other"


def test_overlay_switching_backend_ignores_lower_backend_fields(
    write_settings: Callable[[str], Path],
) -> None:
    text = GOOD + '\n[environments.test.models.chat]\nbackend = "fake"\nreply = "hi"\n'
    spec = registry_for(write_settings, text, env="test").resolve("chat")
    assert spec.backend == "fake"
    assert "deployment" not in spec.sources


def test_create_model_uses_settings_argument(write_settings: Callable[[str], Path]) -> None:
    path = write_settings('[models.t]\nbackend = "fake"\nreply = "pong"\n', name="other.toml")
    model = create_model("t", settings=path)
    reply = model.run([{"role": "user", "content": "ping"}])
    assert reply.choices[0].message.content == "pong"


def test_settings_from_variable(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_settings('[models.v]\nbackend = "fake"\n', name="elsewhere.toml")
    monkeypatch.setenv("MODELREG_SETTINGS", str(path))
    assert ModelRegistry.from_settings().names() == ["v"]


def test_registry_reload_sees_new_file(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models.a]\nbackend = "fake"\n')
    registry = ModelRegistry.from_settings()
    model = registry.create("a")
    write_settings('[models.b]\nbackend = "fake"\n')
    registry.reload()
    assert registry.names() == ["b"]
    assert model.run([{"role": "user", "content": "x"}]).choices[0].message.content


def test_defaults_typo_is_an_error_but_other_backends_fields_are_fine(
    write_settings: Callable[[str], Path],
) -> None:
    ok = '[defaults]\ndeployment = "d"\n[models.f]\nbackend = "fake"\n'
    assert registry_for(write_settings, ok).resolve("f").backend == "fake"
    typo = '[defaults]\ntimout = 3\n[models.f]\nbackend = "fake"\n'
    with pytest.raises(ConfigError) as caught:
        registry_for(write_settings, typo).resolve("f")
    message = str(caught.value)
    assert "settings.toml [defaults]" in message and "'timout'" in message
    assert "Did you mean 'timeout'?" in message

"""One test per precedence level, each showing it beats the level below it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from registry import ModelRegistry

BASE = """
    [defaults]
    timeout = 30

    [models.chat]
    backend = "azure"
    deployment = "from-model-table"
    endpoint = "https://dev.example.com"
    api_version = "2024-10-21"
    api_key = "key-from-file"

    [environments.prod.models.chat]
    deployment = "from-overlay"
"""


@pytest.fixture
def registry(write_settings: Callable[[str], Path]) -> Callable[..., ModelRegistry]:
    write_settings(BASE)

    def make(env: str | None = "prod") -> ModelRegistry:
        return ModelRegistry.from_settings(env=env)

    return make


def test_1_keyword_argument_beats_modelreg_variable(
    registry: Callable[..., ModelRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_MODELS__CHAT__DEPLOYMENT", "from-env")
    spec = registry().resolve("chat", deployment="from-kwarg")
    assert spec.options.deployment == "from-kwarg"  # type: ignore[attr-defined]
    assert spec.sources["deployment"] == "keyword argument"


def test_2_modelreg_variable_beats_dotenv(
    registry: Callable[..., ModelRegistry], monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    (isolated / ".env").write_text("MODELREG_MODELS__CHAT__DEPLOYMENT=from-dotenv\n")
    monkeypatch.setenv("MODELREG_MODELS__CHAT__DEPLOYMENT", "from-env")
    spec = registry().resolve("chat")
    assert spec.options.deployment == "from-env"  # type: ignore[attr-defined]
    assert spec.sources["deployment"] == "env MODELREG_MODELS__CHAT__DEPLOYMENT"


def test_3_dotenv_beats_environment_overlay(
    registry: Callable[..., ModelRegistry], isolated: Path
) -> None:
    (isolated / ".env").write_text("MODELREG_MODELS__CHAT__DEPLOYMENT=from-dotenv\n")
    spec = registry().resolve("chat")
    assert spec.options.deployment == "from-dotenv"  # type: ignore[attr-defined]
    assert spec.sources["deployment"] == ".env (MODELREG_MODELS__CHAT__DEPLOYMENT)"
    assert "MODELREG_MODELS__CHAT__DEPLOYMENT" not in os.environ


def test_4_environment_overlay_beats_model_table(registry: Callable[..., ModelRegistry]) -> None:
    spec = registry("prod").resolve("chat")
    assert spec.options.deployment == "from-overlay"  # type: ignore[attr-defined]
    assert spec.sources["deployment"] == "settings.toml [environments.prod.models.chat]"
    assert registry(None).resolve("chat").options.deployment == "from-model-table"  # type: ignore[attr-defined]


def test_5_model_table_beats_defaults(write_settings: Callable[[str], Path]) -> None:
    write_settings(BASE.replace('api_key = "key-from-file"', 'api_key = "k"\n    timeout = 12'))
    spec = ModelRegistry.from_settings().resolve("chat")
    assert spec.common.timeout == 12
    assert spec.sources["timeout"] == "settings.toml [models.chat]"


def test_6_defaults_beat_conventional_variables(
    registry: Callable[..., ModelRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_TIMEOUT", "99")
    spec = registry().resolve("chat")
    assert spec.common.timeout == 30
    assert spec.sources["timeout"] == "settings.toml [defaults]"


def test_7_conventional_variables_beat_builtin_defaults(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(
        """
        [models.chat]
        backend = "azure"
        deployment = "d"
        """
    )
    monkeypatch.setenv("MODEL_TIMEOUT", "99")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://from-sdk-variable.example.com")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-06-01")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "key-from-variable")
    spec = ModelRegistry.from_settings().resolve("chat")
    assert spec.common.timeout == 99
    assert spec.sources["timeout"] == "env MODEL_TIMEOUT"
    assert spec.options.endpoint == "https://from-sdk-variable.example.com"  # type: ignore[attr-defined]
    assert spec.sources["endpoint"] == "env AZURE_OPENAI_ENDPOINT"
    assert spec.sources["api_version"] == "env OPENAI_API_VERSION"
    assert spec.sources["api_key"] == "env AZURE_OPENAI_API_KEY"


def test_8_builtin_defaults(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        """
        [models.chat]
        backend = "azure"
        deployment = "d"
        """
    )
    spec = ModelRegistry.from_settings().resolve("chat")
    assert spec.common.timeout == 180
    assert spec.common.max_retries == 3
    explained = ModelRegistry.from_settings().explain("chat").fields
    assert explained["timeout"].source == "built-in default"


def test_conventional_variables_also_read_from_dotenv(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    write_settings('[models.chat]\nbackend = "azure"\ndeployment = "d"\n')
    (isolated / ".env").write_text("AZURE_OPENAI_API_KEY=dotenv-key\n")
    spec = ModelRegistry.from_settings().resolve("chat")
    assert spec.options.api_key.get_secret_value() == "dotenv-key"  # type: ignore[attr-defined]
    assert spec.sources["api_key"] == ".env (AZURE_OPENAI_API_KEY)"
    assert "AZURE_OPENAI_API_KEY" not in os.environ


def test_config_tables_merge_key_by_key(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(
        """
        [models.chat]
        backend = "fake"
        [models.chat.config]
        temperature = 0.2
        max_tokens = 100
        [environments.prod.models.chat.config]
        max_tokens = 500
        """
    )
    monkeypatch.setenv("MODELREG_MODELS__CHAT__CONFIG__TEMPERATURE", "0.9")
    spec = ModelRegistry.from_settings(env="prod").resolve("chat")
    assert spec.config == {"temperature": 0.9, "max_tokens": 500}
    assert spec.sources["config.temperature"] == "env MODELREG_MODELS__CHAT__CONFIG__TEMPERATURE"
    assert (
        spec.sources["config.max_tokens"] == "settings.toml [environments.prod.models.chat.config]"
    )


@pytest.mark.parametrize("how", ["argument", "variable", "dotenv"])
def test_environment_selection(
    how: str, write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    write_settings(BASE)
    if how == "argument":
        registry = ModelRegistry.from_settings(env="prod")
    elif how == "variable":
        monkeypatch.setenv("MODELREG_ENV", "prod")
        registry = ModelRegistry.from_settings()
    else:
        (isolated / ".env").write_text("MODELREG_ENV=prod\n")
        registry = ModelRegistry.from_settings()
    assert registry.env == "prod"
    assert registry.resolve("chat").options.deployment == "from-overlay"  # type: ignore[attr-defined]


def test_env_argument_beats_variable(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(BASE + "\n[environments.staging.models.chat]\ndeployment = 'staging'\n")
    monkeypatch.setenv("MODELREG_ENV", "prod")
    assert ModelRegistry.from_settings(env="staging").env == "staging"

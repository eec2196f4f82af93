"""Deployment pools in settings: entries, origins, overlays, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from registry import ConfigError, ModelRegistry
from tests.helpers import modelreg

POOL = """
[models.chat]
backend = "azure"
model = "gpt-4o"
api_version = "2024-10-21"
api_key = "model-key"
[[models.chat.deployments]]
endpoint = "https://eastus.openai.azure.com"
deployment = "gpt-4o"
weight = 2
[[models.chat.deployments]]
endpoint = "https://swedencentral.openai.azure.com"
deployment = "gpt-4o-se"
api_key = "sk-entry-secret-1"
"""


def test_entries_inherit_the_model_and_keep_their_origins(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(POOL)
    spec = ModelRegistry.from_settings().resolve("chat")
    first, second = spec.deployments
    assert (first.weight, second.weight) == (2.0, 1.0)
    assert first.options.endpoint == "https://eastus.openai.azure.com"  # type: ignore[attr-defined]
    assert first.options.api_key.get_secret_value() == "model-key"  # type: ignore[attr-defined]
    assert second.options.api_key.get_secret_value() == "sk-entry-secret-1"  # type: ignore[attr-defined]
    assert spec.sources["deployments.2.api_key"] == "settings.toml [models.chat] deployment #2"
    fields = ModelRegistry.from_settings().explain("chat").fields
    assert fields["deployments.2.api_key"].value == "***"
    assert fields["deployments.1.api_key"].source == "settings.toml [models.chat]"
    assert fields["deployments.1.weight"].value == 2.0
    shown = modelreg("show", "chat", "--json")
    assert shown.returncode == 0 and "sk-entry-secret" not in shown.stdout
    assert json.loads(shown.stdout)["fields"]["deployments.2.deployment"]["value"] == "gpt-4o-se"
    assert "sk-entry-secret" not in repr(vars(spec)) + repr(spec.deployments)


def test_an_overlay_replaces_the_whole_list(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        POOL
        + '[[environments.prod.models.chat.deployments]]\ndeployment = "prod-only"\n'
        + 'endpoint = "https://prod.openai.azure.com"\n'
    )
    spec = ModelRegistry.from_settings(env="prod").resolve("chat")
    assert [d.options.deployment for d in spec.deployments] == ["prod-only"]  # type: ignore[attr-defined]


def test_a_variable_can_set_the_list_as_json(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(POOL)
    monkeypatch.setenv(
        "MODELREG_MODELS__CHAT__DEPLOYMENTS",
        '[{"deployment": "a", "endpoint": "https://a.openai.azure.com"}, '
        '{"deployment": "b", "endpoint": "https://b.openai.azure.com", "weight": 3}]',
    )
    spec = ModelRegistry.from_settings().resolve("chat")
    assert [d.weight for d in spec.deployments] == [1.0, 3.0]
    assert spec.sources["deployments.2.weight"] == (
        "env MODELREG_MODELS__CHAT__DEPLOYMENTS deployment #2"
    )


def test_an_entry_credential_replaces_the_model_s(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(POOL.replace('api_key = "model-key"\n', ""))
    monkeypatch.setenv("AZURE_AD_TOKEN", "token-from-env")
    spec = ModelRegistry.from_settings().resolve("chat")
    first, second = spec.deployments
    assert first.options.azure_ad_token is not None  # type: ignore[attr-defined]
    assert second.options.azure_ad_token is None  # type: ignore[attr-defined]  # its key wins


def test_variables_in_entries(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(POOL.replace('"sk-entry-secret-1"', '"${SWEDEN_KEY}"'))
    with pytest.raises(
        ConfigError, match=r"'deployments\.2\.api_key'.*\$\{SWEDEN_KEY\} is not set"
    ):
        ModelRegistry.from_settings().resolve("chat")
    monkeypatch.setenv("SWEDEN_KEY", "sk-from-var")
    second = ModelRegistry.from_settings().resolve("chat").deployments[1]
    assert second.options.api_key.get_secret_value() == "sk-from-var"  # type: ignore[attr-defined]
    assert second.sources["api_key"].endswith("via ${SWEDEN_KEY} from env SWEDEN_KEY")


@pytest.mark.parametrize(
    "change, message",
    [
        (("weight = 2", "weight = -1"), "weight must be a number from 0"),
        (("weight = 2", 'weight = "sk-w"'), "weight must be a number from 0"),
        (("weight = 2", 'deploymnt = "x"'), "Did you mean 'deployment'"),
        (("weight = 2", 'model = "gpt-4o-mini"'), "share one base model"),
        (('"gpt-4o-se"', '"bad/name"'), "deployments.2.deployment"),
        (
            ('"https://eastus.openai.azure.com"', '"https://eastus.openai.azure.com/openai"'),
            "deployments.1.endpoint",
        ),
    ],
)
def test_bad_entries_are_errors_naming_the_entry(
    change: tuple[str, str], message: str, write_settings: Callable[[str], Path]
) -> None:
    write_settings(POOL.replace(*change, 1))
    with pytest.raises(ConfigError, match=message) as caught:
        ModelRegistry.from_settings().create("chat")
    assert "sk-w" not in str(caught.value)
    result = modelreg("check")
    assert result.returncode == 1 and message.split("'")[0] in result.stdout


@pytest.mark.parametrize(
    "text, message",
    [
        ('[models.chat]\nbackend = "fake"\ndeployments = "x"\n', "non-empty list of tables"),
        ('[models.chat]\nbackend = "fake"\ndeployments = []\n', "non-empty list of tables"),
        ('[models.chat]\nbackend = "fake"\ndeployments = [1]\n', "entry #1 must be a table"),
        (
            '[defaults]\ndeployments = [{reply = "x"}]\n[models.chat]\nbackend = "fake"\n',
            "cannot be a default",
        ),
    ],
)
def test_malformed_pools(text: str, message: str, write_settings: Callable[[str], Path]) -> None:
    write_settings(text)
    with pytest.raises(ConfigError, match=message):
        ModelRegistry.from_settings().create("chat")


FALLBACKS = """
[models.a]
backend = "fake"
fallbacks = ["b"]
[models.b]
backend = "fake"
aliases = ["bee"]
context_window_fallbacks = ["c"]
[models.c]
backend = "fake"
content_policy_fallbacks = ["a"]
"""


def test_fallback_cycles_are_check_errors(write_settings: Callable[[str], Path]) -> None:
    write_settings(FALLBACKS)
    result = modelreg("check")
    assert result.returncode == 1
    assert "fallbacks form a cycle: 'a' -> 'b' -> 'c' -> 'a'" in result.stdout
    assert result.stdout.count("form a cycle") == 1
    write_settings(FALLBACKS.replace('content_policy_fallbacks = ["a"]', ""))
    assert "cycle" not in modelreg("check").stdout


@pytest.mark.parametrize(
    "change, message",
    [
        (
            ('fallbacks = ["b"]', 'fallbacks = ["bb"]'),
            "'fallbacks.0'.*names no model.*Did you mean 'b'",
        ),
        (('fallbacks = ["b"]', 'fallbacks = ["a"]'), "'fallbacks.0'.*names the model itself"),
        (
            ('fallbacks = ["b"]', 'fallbacks = ["b", "bee"]'),
            "'fallbacks.1'.*already in the list",
        ),
        (
            ('fallbacks = ["b"]', 'routing = "weigthed"'),
            "not a registered routing strategy.*'weighted'",
        ),
        (('fallbacks = ["b"]', "cooldown_time = 0"), "'cooldown_time'"),
        (('fallbacks = ["b"]', "allowed_fails = true"), "'allowed_fails'"),
        (('fallbacks = ["b"]', "max_fallback_depth = 11"), "'max_fallback_depth'"),
    ],
)
def test_pool_and_fallback_fields_are_checked(
    change: tuple[str, str], message: str, write_settings: Callable[[str], Path]
) -> None:
    write_settings(FALLBACKS.replace(*change, 1))
    with pytest.raises(ConfigError, match=message):
        ModelRegistry.from_settings().create("a")
    assert modelreg("check").returncode == 1


def test_a_fallback_may_be_an_alias(write_settings: Callable[[str], Path]) -> None:
    write_settings(FALLBACKS.replace('fallbacks = ["b"]', 'fallbacks = ["bee"]'))
    assert ModelRegistry.from_settings().resolve("a").common.fallbacks == ["bee"]

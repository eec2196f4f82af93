"""AzureOpenAIModel construction: parity with CAMEL's reference table, with its bugs fixed."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import pytest

from backends.azure import AzureOpenAIModel
from registry import ConfigError, MissingCredentialsError

URL = "https://res.openai.azure.com"


def make(**kwargs: Any) -> AzureOpenAIModel:
    arguments: dict[str, Any] = {"url": URL, "api_version": "2024-10-21", "api_key": "k"}
    arguments.update(kwargs)
    return AzureOpenAIModel("gpt-4o-dep", **arguments)


def test_defaults() -> None:
    model = make()
    assert model.model_type == "gpt-4o-dep"
    assert model.model_config_dict == {}
    assert model.timeout == 180
    assert model.max_retries == 3
    assert model.stream is False
    assert model.auth_mode == "api_key"


@pytest.mark.parametrize(
    "variable, attribute, value",
    [
        ("AZURE_OPENAI_BASE_URL", "url", "https://camel-name.example.com"),
        ("AZURE_OPENAI_ENDPOINT", "url", "https://sdk-name.example.com"),
        ("AZURE_API_VERSION", "api_version", "2024-01-01"),
        ("OPENAI_API_VERSION", "api_version", "2024-02-02"),
        ("MODEL_TIMEOUT", "timeout", 42.0),
    ],
)
def test_env_fallbacks(
    monkeypatch: pytest.MonkeyPatch, variable: str, attribute: str, value: Any
) -> None:
    monkeypatch.setenv(variable, str(value))
    arguments: dict[str, Any] = {"api_key": "k", "url": URL, "api_version": "2024-10-21"}
    arguments.pop({"url": "url", "api_version": "api_version", "timeout": "x"}[attribute], None)
    model = AzureOpenAIModel("d", **arguments)
    assert getattr(model, attribute) == value


def test_camel_name_beats_sdk_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_BASE_URL", "https://camel.example.com")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://sdk.example.com")
    monkeypatch.setenv("AZURE_API_VERSION", "2024-10-21")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-06-01")
    model = AzureOpenAIModel("d", api_key="k")
    assert (model.url, model.api_version) == ("https://camel.example.com", "2024-10-21")


@pytest.mark.parametrize(
    "variable, mode",
    [
        ("AZURE_OPENAI_API_KEY", "api_key"),
        ("AZURE_AD_TOKEN", "azure_ad_token"),
        ("AZURE_OPENAI_AD_TOKEN", "azure_ad_token"),
    ],
)
def test_credential_variables(monkeypatch: pytest.MonkeyPatch, variable: str, mode: str) -> None:
    monkeypatch.setenv(variable, "value")
    assert AzureOpenAIModel("d", url=URL, api_version="2024-10-21").auth_mode == mode


def test_explicit_key_ignores_token_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_AD_TOKEN", "stray-token")
    assert make(api_key="k").auth_mode == "api_key"


def provider() -> str:
    return "token-from-provider"


@pytest.mark.parametrize(
    "key, token, with_provider", list(itertools.product([None, "k"], [None, "t"], [False, True]))
)
def test_auth_mode_combinations_never_mutually_exclusive(
    key: str | None, token: str | None, with_provider: bool
) -> None:
    arguments: dict[str, Any] = {"api_key": key, "azure_ad_token": token}
    if with_provider:
        arguments["azure_ad_token_provider"] = provider
    if key is None and token is None and not with_provider:
        with pytest.raises(MissingCredentialsError, match="no credentials"):
            make(**arguments)
        return
    model = make(**arguments)
    expected = (
        "azure_ad_token_provider" if with_provider else "azure_ad_token" if token else "api_key"
    )
    assert model.auth_mode == expected
    client = model.client  # openai 3.x raises MutuallyExclusiveAuthError if more than one is passed
    assert client is model.client


def test_missing_endpoint_fails_fast() -> None:
    with pytest.raises(ConfigError) as caught:
        AzureOpenAIModel("d", api_key="k", api_version="2024-10-21")
    message = str(caught.value)
    assert "endpoint" in message and "AZURE_OPENAI_BASE_URL" in message
    assert "AZURE_OPENAI_ENDPOINT" in message


def test_missing_api_version_names_both_variables() -> None:
    with pytest.raises(ConfigError) as caught:
        AzureOpenAIModel("d", api_key="k", url=URL)
    assert "AZURE_API_VERSION" in str(caught.value) and "OPENAI_API_VERSION" in str(caught.value)


def test_endpoint_must_be_url() -> None:
    with pytest.raises(ConfigError, match="http"):
        make(url="contoso.openai.azure.com")


def test_deprecated_argument_warns_and_is_ignored() -> None:
    with pytest.warns(DeprecationWarning, match="azure_deployment_name"):
        model = make(azure_deployment_name="old")
    assert model.model_type == "gpt-4o-dep"


def test_deprecated_variable_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_DEPLOYMENT_NAME", "old")
    with pytest.warns(DeprecationWarning, match="AZURE_DEPLOYMENT_NAME"):
        model = make()
    assert model.model_type == "gpt-4o-dep"


def test_no_warning_without_deprecated_input() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make()


def test_kwargs_go_to_client() -> None:
    model = make(default_headers={"x-team": "search"})
    assert model.client.default_headers["x-team"] == "search"


def test_bad_client_kwarg_is_config_error_at_construction() -> None:
    with pytest.raises(ConfigError, match=r"not_a_client_option.*Accepted: .*default_headers"):
        make(not_a_client_option=1)
    with pytest.raises(ConfigError, match="use the field 'endpoint'"):
        make(azure_endpoint="https://elsewhere.example.com")


class FakeClient:
    class chat:
        class completions:
            @staticmethod
            def create(**kwargs: Any) -> Any:
                return kwargs


def test_custom_clients_used_as_is_without_endpoint_settings() -> None:
    sync, async_ = FakeClient(), FakeClient()
    model = AzureOpenAIModel("d", client=sync, async_client=async_)
    assert model.client is sync
    assert model.async_client is async_


def test_one_custom_client_other_side_fails_only_when_used() -> None:
    sync = FakeClient()
    model = AzureOpenAIModel("d", client=sync)
    assert model.client is sync
    with pytest.raises(Exception, match="cannot build the async client"):
        _ = model.async_client


def test_model_config_validated() -> None:
    with pytest.raises(ConfigError, match="'temprature'"):
        make(model_config_dict={"temprature": 1})
    assert make(model_config_dict={"stream": True}).stream is True


def test_repr_has_no_secrets() -> None:
    model = make(api_key="super-secret-key")
    assert "super-secret-key" not in repr(model)
    assert "super-secret-key" not in repr(vars(model))

"""Planted secrets, through every source, never appear in anything the product outputs."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from registry import ConfigError, ModelRegistry, RegistryError
from registry.cli import main
from tests.azure_server import AzureServer

SECRETS = {
    "file": "sk-file-7f3a9c",
    "var": "sk-var-reference-51be",
    "modelreg_env": "sk-modelreg-env-c0d4",
    "dotenv": "sk-dotenv-9e21",
    "camel_key": "sk-camel-azure-key-44aa",
    "camel_token": "token-camel-ad-77f0",
    "kwarg": "sk-kwarg-0b9e",
    "dotenv_camel": "sk-dotenv-azure-key-6d6d",
}


@pytest.fixture
def planted(
    write_settings: Callable[[str], Path],
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: AzureServer,
) -> Iterator[ModelRegistry]:
    server.api_keys = set(SECRETS.values())
    url = server.base_url
    write_settings(
        f"""
        default_model = "from_file"
        [defaults]
        backend = "azure"
        endpoint = "{url}"
        api_version = "2024-10-21"
        max_retries = 0
        [models.from_file]
        deployment = "d1"
        api_key = "{SECRETS["file"]}"
        client_kwargs = {{ default_headers = {{ "x-api-key" = "{SECRETS["file"]}" }} }}
        [models.from_var]
        deployment = "d2"
        api_key = "${{PLANTED_KEY}}"
        [models.from_env]
        deployment = "d3"
        [models.from_dotenv]
        deployment = "d4"
        [models.camel]
        deployment = "d5"
        endpoint = "{url}"
        [models.broken]
        deployment = "d6"
        api_key = "{SECRETS["file"]}"
        timeout = "{SECRETS["file"]}"
        """
    )
    (isolated / ".env").write_text(
        f"MODELREG_MODELS__FROM_DOTENV__API_KEY={SECRETS['dotenv']}\n"
        f"AZURE_OPENAI_API_KEY={SECRETS['dotenv_camel']}\n"
    )
    monkeypatch.setenv("PLANTED_KEY", SECRETS["var"])
    monkeypatch.setenv("MODELREG_MODELS__FROM_ENV__API_KEY", SECRETS["modelreg_env"])
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRETS["camel_key"])
    monkeypatch.setenv("AZURE_AD_TOKEN", SECRETS["camel_token"])
    with ModelRegistry.from_settings() as registry:
        yield registry


def assert_clean(text: str, where: str) -> None:
    for source, secret in SECRETS.items():
        assert secret not in text, f"secret from {source} leaked in {where}"


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out)
    captured = capsys.readouterr()
    return code, out.getvalue() + captured.out + captured.err


def test_every_output_is_clean(
    planted: ModelRegistry,
    server: AzureServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[tuple[str, str]] = []
    names = [n for n in planted.names() if n != "broken"]

    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        for name in names:
            explained = planted.explain(name)
            outputs.append((f"explain {name}", json.dumps(explained.to_dict())))
            spec = planted.resolve(name)
            outputs.append((f"spec repr {name}", repr(spec) + str(spec.explain())))
            model = planted.create(name)
            outputs.append((f"model repr {name}", repr(model) + str(model)))
            reply = model.run([{"role": "user", "content": "hi"}])
            outputs.append((f"reply {name}", reply.model_dump_json()))
        kwarg_model = planted.create("from_file", api_key=SECRETS["kwarg"])
        outputs.append(("kwarg model", repr(kwarg_model)))
        kwarg_model.run([{"role": "user", "content": "hi"}])
        for json_flag in ([], ["--json"]):
            for argv in (
                ["list"],
                ["check"],
                ["plugins"],
                *[["show", n] for n in planted.names()],
                ["chat", "from_env", "hi"],
                ["show", "nope"],
                ["chat", "broken", "x"],
            ):
                code, text = cli([*argv, *json_flag], capsys)
                outputs.append((f"cli {' '.join(argv + json_flag)} (exit {code})", text))

    for failing in (
        lambda: planted.create("broken"),
        lambda: planted.create("from_file", api_key=SECRETS["kwarg"], deployment=12),
        lambda: planted.create("from_file", timeout=SECRETS["kwarg"]),
        lambda: planted.create("from_file", api_key=SECRETS["kwarg"], endpoint="not a url").run([]),
        lambda: planted.create("from_file", api_key="wrong-" + SECRETS["kwarg"]).run(
            [{"role": "user", "content": "x"}]
        ),
    ):
        with pytest.raises(Exception) as caught:
            failing()
        outputs.append(
            (f"exception {type(caught.value).__name__}", str(caught.value) + repr(caught.value))
        )

    outputs.append(("logs", "\n".join(r.getMessage() + str(r.args) for r in caplog.records)))
    outputs.append(("warnings", "\n".join(str(w.message) for w in caught_warnings)))
    assert len(outputs) > 30
    for where, text in outputs:
        assert_clean(text, where)
    # the planted values really were used: each secret reached the server
    assert any(r.headers.get("x-api-key") == SECRETS["file"] for r in server.requests)


def test_each_secret_reached_the_server_through_its_source(
    planted: ModelRegistry, server: AzureServer
) -> None:
    expectations = {
        "from_file": SECRETS["file"],
        "from_var": SECRETS["var"],
        "from_env": SECRETS["modelreg_env"],
        "from_dotenv": SECRETS["dotenv"],
    }
    for name, secret in expectations.items():
        planted.create(name).run([{"role": "user", "content": "hi"}])
        assert server.requests[-1].headers["api-key"] == secret, name
    # CAMEL's variables: an AD token beats a key when nothing is set explicitly
    planted.create("camel").run([{"role": "user", "content": "hi"}])
    assert server.requests[-1].headers["authorization"] == f"Bearer {SECRETS['camel_token']}"
    planted.create("from_file", api_key=SECRETS["kwarg"]).run([{"role": "user", "content": "hi"}])
    assert server.requests[-1].headers["api-key"] == SECRETS["kwarg"]


def test_show_marks_secret_sources(planted: ModelRegistry) -> None:
    fields = planted.explain("from_var").fields
    assert fields["api_key"].value == "***"
    assert (
        fields["api_key"].source
        == "settings.toml [models.from_var] via ${PLANTED_KEY} from env PLANTED_KEY"
    )
    assert (
        planted.explain("from_dotenv").fields["api_key"].source
        == ".env (MODELREG_MODELS__FROM_DOTENV__API_KEY)"
    )
    assert planted.explain("from_file").fields["client_kwargs"].value == {
        "default_headers": {"x-api-key": "***"}
    }


def test_config_error_for_secret_field_never_echoes_value(planted: ModelRegistry) -> None:
    with pytest.raises(ConfigError) as caught:
        planted.create("broken")
    assert "timeout" in str(caught.value)
    assert isinstance(caught.value, RegistryError)
    assert_clean(str(caught.value), "broken model error")

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


# -- every source, every field, every output (issue: nothing that may be secret is echoed) ----

PLANTED = {
    "extra_header": "sk-extra-header-1a2b",
    "client_auth": "sk-client-auth-3c4d",
    "cookie": "session=sk-cookie-5e6f",
    "userinfo": "sk-userinfo-7a8b",
    "query": "sk-query-9c0d",
    "endpoint_key": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "endpoint_var": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "timeout_var": "sk-timeout-var-2468",
    "timeout_file": "sk-timeout-file-1357",
    "dotenv_key": "sk-dotenv-key-8642",
    "json_var": "sk-json-var-9753",
    "bad_ref": "sk-bad-ref-1111",
    "linebreak": "sk-line-break-2222",
}


def _chain(exc: BaseException) -> str:
    """Every exception in the chain (__cause__ and __context__), as text and repr."""
    import traceback

    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 20:
        seen.append(f"{current!s} {current!r} {vars(current)!r}")
        current = current.__cause__ or current.__context__
    seen.append("".join(traceback.format_exception(exc)))
    return "\n".join(seen)


def _everything_about(obj: object) -> str:
    text = [repr(obj), str(obj)]
    try:
        attributes = vars(obj)
    except TypeError:
        attributes = {}
    text.append(repr(attributes))
    text.extend(repr(value) for value in attributes.values())
    return "\n".join(text)


def test_planted_everywhere_never_printed(
    write_settings: Callable[[str], Path],
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: AzureServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.api_keys = {"good-key"}
    url = server.base_url
    p = PLANTED
    write_settings(
        f"""
        [defaults]
        backend = "azure"
        api_version = "2024-10-21"
        endpoint = "{url}"
        max_retries = 0
        [models.headers]
        deployment = "d1"
        api_key = "good-key"
        client_kwargs = {{ default_headers = {{ "X-Client-Auth" = "{p["client_auth"]}", Cookie = "{p["cookie"]}", "User-Agent" = "planted-test" }}, websocket_base_url = "wss://u:{p["userinfo"]}@ws.example.com/?api-key={p["query"]}" }}
        config = {{ extra_headers = {{ "X-Extra" = "{p["extra_header"]}" }} }}
        [models.endpoint_key]
        deployment = "d2"
        endpoint = "{p["endpoint_key"]}"
        [models.endpoint_var]
        deployment = "d3"
        endpoint = "${{MISSING_FOR_FALLBACK:-https://ok.example.com}}"
        [models.timeout_file]
        deployment = "d4"
        timeout = "{p["timeout_file"]}"
        [models.bad_ref]
        deployment = "${{{p["bad_ref"]}"
        [models.linebreak]
        deployment = "d5"
        api_key = "{p["linebreak"]}\\nsecond-line"
        [models.variable_only]
        deployment = "d6"
        """
    )
    (isolated / ".env").write_text(f"AZURE_OPENAI_API_KEY={p['dotenv_key']}\n")
    monkeypatch.setenv("MODELREG_MODELS", json.dumps({"json_only": {"api_key": p["json_var"]}}))
    outputs: list[tuple[str, str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = ModelRegistry.from_settings()
        outputs.append(("settings", _everything_about(registry.settings)))
        outputs.append(("registry", _everything_about(registry)))
        for name in registry.names():
            try:
                spec = registry.resolve(name)
                outputs.append((f"spec {name}", _everything_about(spec)))
                outputs.append((f"options {name}", _everything_about(spec.options)))
                outputs.append((f"common {name}", _everything_about(spec.common)))
                outputs.append((f"explain {name}", json.dumps(registry.explain(name).to_dict())))
                model = registry.create(name)
                outputs.append((f"model {name}", _everything_about(model)))
                model.run([{"role": "user", "content": "hi"}])
            except Exception as exc:
                outputs.append((f"exception {name}", _chain(exc)))
        for argv in (["list"], ["check"], *[["show", n] for n in registry.names()]):
            for flag in ([], ["--json"]):
                code, text = cli([*argv, *flag], capsys)
                outputs.append((f"cli {argv} {flag} exit {code}", text))
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", p["endpoint_var"])
        (isolated / ".env").write_text(f"MODEL_TIMEOUT={p['timeout_var']}\n")
        for argv in (["check"], ["show", "headers"], ["chat", "headers", "x"]):
            code, text = cli(argv, capsys)
            outputs.append((f"cli {argv} with bad MODEL_TIMEOUT exit {code}", text))
            assert code == 1 and "MODEL_TIMEOUT" in text
        monkeypatch.setenv("MODEL_TIMEOUT", p["timeout_var"])
        from backends.azure import AzureOpenAIModel

        for build in (
            lambda: AzureOpenAIModel("d", api_key="k", api_version="2024-10-21"),
            lambda: AzureOpenAIModel("d", api_key="k", url="https://x.example.com"),
            lambda: ModelRegistry.from_settings().create("endpoint_var", endpoint=None),
            lambda: ModelRegistry.from_settings().create("headers"),
        ):
            try:
                build()
            except Exception as exc:
                outputs.append(("endpoint variable", _chain(exc)))
    outputs.append(("warnings", "\n".join(str(w.message) for w in caught)))
    headers = registry.explain("headers").fields["client_kwargs"].value["default_headers"]
    assert headers == {"X-Client-Auth": "***", "Cookie": "***", "User-Agent": "planted-test"}
    extra = registry.explain("headers").fields["config.extra_headers"].value
    assert extra == {"X-Extra": "***"}
    sent = next(r.headers for r in server.requests if r.deployment == "d1")
    assert sent.get("x-client-auth") == p["client_auth"]  # masked in output, sent on the wire
    assert sent.get("x-extra") == p["extra_header"]
    assert len(outputs) > 40
    for where, text in outputs:
        for source, secret in PLANTED.items():
            assert secret not in text, f"planted {source} leaked in {where}"

"""Trust at the edges: origins are right, `check` rejects what `create_model` rejects (same
message), pasted endpoints are explained, names and files that do not say what they mean."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from registry import ConfigError, ModelRegistry, RegistryError, create_model
from registry.checks import check_settings
from registry.errors import RegistryWarning
from registry.precedence import LEVELS
from registry.settings import load_settings
from tests.azure_server import AzureServer
from tests.helpers import modelreg

REPO = Path(__file__).resolve().parents[1]
AZURE = """
[models.chat]
backend = "azure"
deployment = "gpt-4o"
endpoint = "https://contoso.openai.azure.com"
api_version = "2024-10-21"
api_key = "k"
"""


def create_error(name: str | None = "chat", **kwargs: object) -> str:
    with pytest.raises(RegistryError) as caught:
        create_model(name, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def check_errors() -> list[str]:
    return [
        p.message
        for p in check_settings(load_settings()).problems.values()
        if p.severity == "error"
    ]


# -- 2. every origin is right ------------------------------------------------------------------


def test_value_from_json_table_variable_names_that_variable(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(AZURE)
    monkeypatch.setenv("MODELREG_MODELS", '{"chat": {"deployment": "from-json"}}')
    spec = ModelRegistry.from_settings().resolve("chat")
    assert spec.options.deployment == "from-json"  # type: ignore[attr-defined]
    assert spec.sources["deployment"] == "env MODELREG_MODELS"
    monkeypatch.setenv("MODELREG_MODELS__CHAT__DEPLOYMENT", "more-specific")
    spec = ModelRegistry.from_settings().resolve("chat")
    assert spec.options.deployment == "more-specific"  # type: ignore[attr-defined]
    assert spec.sources["deployment"] == "env MODELREG_MODELS__CHAT__DEPLOYMENT"


def test_tiktoken_cache_dir_variable_is_named(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from backends import encodings

    monkeypatch.setattr(encodings, "_encodings", {})
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
    monkeypatch.setenv("MODELREG_TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    write_settings('[models.m]\nbackend = "fake"\nmodel = "gpt-4o"\n')
    counter = ModelRegistry.from_settings().token_counter("m")
    with pytest.raises(ConfigError, match=r"\(from env MODELREG_TIKTOKEN_CACHE_DIR\)"):
        counter.count_tokens_from_messages([{"role": "user", "content": "x"}])


def test_required_field_set_nowhere_says_where_it_could_be_set(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(AZURE.replace('deployment = "gpt-4o"\n', ""))
    message = create_error()
    assert "field 'deployment'" in message and "set nowhere" in message
    assert "MODELREG_MODELS__CHAT__DEPLOYMENT" in message and "[models.chat]" in message
    assert "built-in default" not in message and "Field required" not in message


def test_show_marks_required_field_with_unset_variable(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(AZURE.replace('"gpt-4o"', '"${DEPLOY}"'))
    fields = ModelRegistry.from_settings().explain("chat").fields
    assert fields["deployment"].value is None
    assert fields["deployment"].note == "${DEPLOY} is not set"
    assert fields["deployment"].source == "settings.toml [models.chat]"
    assert fields["api_key"].value == "***"
    result = modelreg("show", "chat")
    assert result.returncode == 0, result.stderr
    assert "${DEPLOY} is not set" in result.stdout
    assert "variable ${DEPLOY} is not set" in create_error()


# -- 3. check finds everything create_model would reject ---------------------------------------

BAD_SETTINGS = {
    "unknown token counter": (
        AZURE + 'token_counter = "aproximate"\n',
        "Did you mean 'approximate'",
    ),
    "unknown client provider": (
        AZURE + 'client_provider = "areal"\n',
        "not a registered client provider",
    ),
    "client kwarg the SDK rejects": (
        AZURE + "client_kwargs = { default_header = { x = 'y' } }\n",
        "Did you mean 'default_headers'",
    ),
    "client kwarg modelreg sets": (
        AZURE + "client_kwargs = { api_key = 'k2' }\n",
        "use the field 'api_key'",
    ),
    "temperature above 2": (AZURE + "config = { temperature = 2.5 }\n", "config.temperature"),
    "top_p above 1": (AZURE + "config = { top_p = 1.5 }\n", "config.top_p"),
    "n below 1": (AZURE + "config = { n = 0 }\n", "config.n"),
    "max_tokens below 1": (AZURE + "config = { max_tokens = 0 }\n", "config.max_tokens"),
    "max_completion_tokens below 1": (
        AZURE + "config = { max_completion_tokens = -5 }\n",
        "config.max_completion_tokens",
    ),
    "presence penalty out of range": (
        AZURE + "config = { presence_penalty = 2.1 }\n",
        "config.presence_penalty",
    ),
    "frequency penalty out of range": (
        AZURE + "config = { frequency_penalty = -2.1 }\n",
        "config.frequency_penalty",
    ),
    "logit bias out of range": (
        AZURE + "config = { logit_bias = { '50256' = -101 } }\n",
        "config.logit_bias",
    ),
    "NaN temperature": (AZURE + "config = { temperature = nan }\n", "finite"),
    "infinite timeout": (AZURE + "timeout = inf\n", "field 'timeout'"),
    "NaN deep in extra_body": (
        AZURE + "config = { extra_body = { a = [1.0, nan] } }\n",
        "config.extra_body.a.1",
    ),
    "boolean timeout": (AZURE + "timeout = true\n", "not true/false"),
    "undated api_version": (AZURE.replace("2024-10-21", "latest-and-greatest"), "API version"),
    "impossible api_version date": (AZURE.replace("2024-10-21", "2024-13-40"), "API version"),
    "empty deployment": (AZURE.replace('"gpt-4o"', '""'), "field 'deployment'"),
    "deployment with a slash": (AZURE.replace('"gpt-4o"', '"gpt-4o/x"'), "deployment name"),
    "unclosed reference": (AZURE.replace('"gpt-4o"', '"${DEPLOY"'), "no closing }"),
    "reference without a valid name": (AZURE.replace('"gpt-4o"', '"${1BAD}"'), "valid variable"),
    "shell-style default": (AZURE.replace('"gpt-4o"', '"${X-y}"'), "${NAME:-default}"),
    "endpoint with /openai": (
        AZURE.replace("azure.com", "azure.com/openai"),
        'endpoint = "https://contoso.openai.azure.com"',
    ),
    "http endpoint not on loopback": (AZURE.replace("https://", "http://"), "allow_http"),
    "key in endpoint": (AZURE.replace("https://contoso.openai.azure.com", "sk" + "a" * 30), "key"),
    "credential with a line break": (AZURE.replace('api_key = "k"', 'api_key = "k\\nx"'), "line"),
    "header with a line break": (
        AZURE + 'client_kwargs = { default_headers = { x-a = "b\\nc" } }\n',
        "line break",
    ),
    "unknown field": (AZURE + "deploymnt = 'x'\n", "Did you mean 'deployment'"),
    "aliases in defaults": (AZURE + "[defaults]\naliases = ['x']\n", "aliases cannot be a default"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_check_rejects_what_create_model_rejects(
    case: str, write_settings: Callable[[str], Path]
) -> None:
    text, expected = BAD_SETTINGS[case]
    write_settings(text)
    message = create_error()
    assert expected in message
    assert message in check_errors()
    result = modelreg("check")
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_unknown_environment_from_variable_is_an_error_in_check_and_create(
    where: str,
    write_settings: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    isolated: Path,
) -> None:
    write_settings(AZURE + "[environments.prod.models.chat]\ndeployment = 'p'\n")
    if where == "environment":
        monkeypatch.setenv("MODELREG_ENV", "prdo")
    else:
        (isolated / ".env").write_text("MODELREG_ENV=prdo\n")
    message = create_error()
    assert "environment 'prdo'" in message and "Did you mean 'prod'" in message
    assert message in check_errors()
    assert modelreg("check").returncode == 1


def test_no_settings_file_and_no_models(isolated: Path) -> None:
    message = create_error()
    assert "no models are defined" in message and "settings.toml" in message
    assert message in check_errors()
    result = modelreg("check")
    assert result.returncode == 1 and "no models are defined" in result.stdout


def test_warnings_stay_warnings_unless_strict(write_settings: Callable[[str], Path]) -> None:
    write_settings(AZURE.replace('api_key = "k"\n', ""))
    result = modelreg("check")
    assert result.returncode == 0, result.stdout
    assert "warning: [env none] model 'chat': no credentials" in result.stdout
    strict = modelreg("check", "--strict")
    assert (
        strict.returncode == 1 and "error: [env none] model 'chat': no credentials" in strict.stdout
    )


def test_problem_in_several_environments_is_reported_once(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        AZURE.replace('api_key = "k"\n', "")
        + "[environments.prod.models.chat]\nmax_retries = 5\n"
        + "[environments.test.models.chat]\nmax_retries = 1\n"
    )
    report = json.loads(modelreg("check", "--json").stdout)
    assert report["checked"] == 1
    assert len(report["warnings"]) == 1
    assert report["warnings"][0].startswith("warning: [env none, prod, test] model 'chat'")


# -- 4. endpoints as users paste them ----------------------------------------------------------


def loopback(server: AzureServer, endpoint: str, **fields: str) -> str:
    lines = [
        "[models.chat]",
        'backend = "azure"',
        'deployment = "dep"',
        f'endpoint = "{endpoint}"',
        'api_version = "2024-10-21"',
        'api_key = "test-key"',
        "max_retries = 0",
    ]
    lines += [f"{key} = {value}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def test_trailing_slash_is_accepted_and_requests_the_right_path(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(loopback(server, server.base_url + "/"))
    create_model("chat").run([{"role": "user", "content": "hi"}])
    assert server.requests[-1].path == "/openai/deployments/dep/chat/completions"


@pytest.mark.parametrize(
    "suffix, expected_lines",
    [
        ("/openai", []),
        ("/openai/", []),
        (
            "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2025-01-01-preview",
            ['deployment = "gpt-4o-prod"', 'api_version = "2025-01-01-preview"'],
        ),
        ("/openai/v1/", ['api_version = "v1"']),
        ("?foo=bar", []),
        ("#frag", []),
    ],
)
def test_pasted_portal_urls_are_refused_before_any_request_with_the_lines_to_write(
    suffix: str,
    expected_lines: list[str],
    write_settings: Callable[[str], Path],
    server: AzureServer,
) -> None:
    write_settings(loopback(server, server.base_url + suffix))
    message = create_error()
    assert f'endpoint = "{server.base_url}"' in message
    for line in expected_lines:
        assert line in message
    assert message in check_errors()
    assert server.requests == []
    # the lines it gives work as written
    advice = re.findall(r'^\s+(\w+) = "([^"]*)"$', message, re.MULTILINE)
    fixed = loopback(server, dict(advice)["endpoint"]).replace(
        'api_version = "2024-10-21"',
        f'api_version = "{dict(advice).get("api_version", "2024-10-21")}"',
    )
    if dict(advice).get("api_version") != "v1":
        write_settings(fixed)
        create_model("chat").run([{"role": "user", "content": "hi"}])
        assert server.requests[-1].path == "/openai/deployments/dep/chat/completions"


@pytest.mark.parametrize(
    "endpoint, secret",
    [
        ("https://contoso.openai.azure.com/?api-key=sk-query-1234567", "sk-query-1234567"),
        ("https://user:sk-userinfo-98765@contoso.openai.azure.com", "sk-userinfo-98765"),
        ("sk-pasted-key-0123456789abcdef", "sk-pasted-key-0123456789abcdef"),
        ("https://contoso.openai.azure.com/openai?x=sk-other-555", "sk-other-555"),
        ("ftp://sk-weird-scheme-777", "sk-weird-scheme-777"),
    ],
)
def test_rejected_endpoints_are_described_not_echoed(
    endpoint: str, secret: str, write_settings: Callable[[str], Path]
) -> None:
    write_settings(AZURE.replace("https://contoso.openai.azure.com", endpoint))
    message = create_error()
    assert "field 'endpoint'" in message
    assert secret not in message
    result = modelreg("check")
    assert result.returncode == 1 and secret not in result.stdout + result.stderr


def test_endpoint_variable_holding_a_key_is_named_not_echoed(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    write_settings(AZURE.replace('endpoint = "https://contoso.openai.azure.com"\n', ""))
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", secret)
    message = create_error()
    assert "env AZURE_OPENAI_ENDPOINT" in message and "looks like a key" in message
    assert secret not in message
    from backends.azure import AzureOpenAIModel

    with pytest.raises(ConfigError) as caught:
        AzureOpenAIModel("d", api_key="k", api_version="2024-10-21")
    assert "env AZURE_OPENAI_ENDPOINT" in str(caught.value) and secret not in str(caught.value)


def test_http_needs_loopback_or_allow_http(write_settings: Callable[[str], Path]) -> None:
    write_settings(AZURE.replace("https://contoso", "http://contoso") + "allow_http = true\n")
    assert create_model("chat").url == "http://contoso.openai.azure.com"  # type: ignore[attr-defined]
    write_settings(AZURE.replace("https://contoso.openai.azure.com", "http://localhost:8080/"))
    assert create_model("chat").url == "http://localhost:8080"  # type: ignore[attr-defined]


def test_host_without_scheme_gets_the_line_to_write(write_settings: Callable[[str], Path]) -> None:
    write_settings(AZURE.replace("https://contoso", "contoso"))
    assert 'endpoint = "https://contoso.openai.azure.com"' in create_error()


def test_openai_base_url_keeps_path_but_refuses_query(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        '[models.l]\nbackend = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:1/v1/"\n'
    )
    assert create_model("l").url == "http://127.0.0.1:1/v1"  # type: ignore[attr-defined]
    write_settings(
        '[models.l]\nbackend = "openai"\nmodel = "m"\nbase_url = "https://h.example.com/v1?key=sk-q-1"\n'
    )
    message = create_error("l")
    assert "query string" in message and "sk-q-1" not in message


# -- 6. switching backends per environment keeps working under overrides ----------------------


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_readme_variable_with_test_overlay_switching_to_fake(
    where: str, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "settings.toml").write_text((REPO / "settings.toml").read_text())
    if where == "environment":
        monkeypatch.setenv("MODELREG_MODELS__CHAT__DEPLOYMENT", "gpt-4o")
        origin = "env MODELREG_MODELS__CHAT__DEPLOYMENT"
    else:
        (isolated / ".env").write_text("MODELREG_MODELS__CHAT__DEPLOYMENT=gpt-4o\n")
        origin = ".env (MODELREG_MODELS__CHAT__DEPLOYMENT)"
    reply = create_model("chat", env="test").run([{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from the fake chat model."
    field = ModelRegistry.from_settings(env="test").explain("chat").fields["deployment"]
    assert (field.value, field.source) == ("gpt-4o", origin)
    assert field.note.startswith("ignored: backend 'fake' has no field 'deployment'")
    report = check_settings(load_settings())
    assert not report.errors
    assert [w for w in report.warnings if "'deployment'" in w and "[env test]" in w]
    # the base table's Azure fields under the test overlay are expected: no warning for them
    assert not [w for w in report.warnings if "'endpoint'" in w]


def test_field_no_backend_knows_is_still_an_error(write_settings: Callable[[str], Path]) -> None:
    write_settings(AZURE + "[environments.test.models.chat]\nbackend = 'fake'\nrepy = 'x'\n")
    message = create_error(env="test")
    assert "unknown field 'repy'" in message and "Did you mean 'reply'" in message


# -- 7. names and files that do not say what they mean -----------------------------------------


def test_variable_naming_no_model(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(AZURE)
    monkeypatch.setenv("MODELREG_MODELS__CAHT__DEPLOYMENT", "x")
    errors = check_errors()
    assert errors == [
        "env MODELREG_MODELS__CAHT__DEPLOYMENT names no model 'caht', so it has no effect (a "
        "model defined only by variables must set its backend). Did you mean 'chat'?"
    ]
    result = modelreg("check")
    assert result.returncode == 1 and "caht" in result.stdout and "'chat'" in result.stdout
    with pytest.warns(RegistryWarning, match="MODELREG_MODELS__CAHT__DEPLOYMENT names no model"):
        create_model("chat")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_model("chat")  # once per process
    assert ModelRegistry.from_settings().names() == ["chat"]


def test_variables_match_model_names_case_insensitively(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(AZURE.replace("[models.chat]", "[models.Chat]"))
    monkeypatch.setenv("MODELREG_MODELS__CHAT__DEPLOYMENT", "from-variable")
    spec = ModelRegistry.from_settings().resolve("Chat")
    assert spec.options.deployment == "from-variable"  # type: ignore[attr-defined]
    assert ModelRegistry.from_settings().names() == ["Chat"]


def test_models_differing_only_by_case_with_variables_are_an_error(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(AZURE + AZURE.replace("[models.chat]", "[models.CHAT]"))
    monkeypatch.setenv("MODELREG_MODELS__CHAT__DEPLOYMENT", "x")
    assert "differ only by case" in create_error()


def test_dotenv_not_utf8_names_file_and_line(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    write_settings(AZURE)
    (isolated / ".env").write_bytes(b"A=1\nMODELREG_ENV=pr\xffod\n")
    message = create_error()
    assert ".env" in message and "line 2" in message and "UTF-8" in message
    result = modelreg("list")
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_dotenv_with_bom_warns_and_still_works(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    write_settings(AZURE + "[environments.prod.models.chat]\ndeployment = 'p'\n")
    (isolated / ".env").write_bytes("\ufeffMODELREG_ENV=prod\n".encode())
    with pytest.warns(RegistryWarning, match=r"\.env.*byte-order mark"):
        registry = ModelRegistry.from_settings()
    assert registry.env == "prod"


def test_dotenv_line_that_cannot_be_parsed_is_named_not_shown(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    write_settings(AZURE)
    (isolated / ".env").write_text('A=1\nKEY="sk-unterminated-secret\nB=2\n')
    with pytest.warns(RegistryWarning, match=r"\.env, line 2") as caught:
        load_settings()
    assert "sk-unterminated-secret" not in str(caught[0].message)
    result = modelreg("list")
    assert result.returncode == 0
    assert "line 2" in result.stderr and "sk-unterminated" not in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_file_with_bom_warns_and_works(isolated: Path) -> None:
    (isolated / "settings.toml").write_bytes(("\ufeff" + AZURE).encode())
    with pytest.warns(RegistryWarning, match="byte-order mark"):
        assert ModelRegistry.from_settings().names() == ["chat"]


def test_tokens_messages_file_not_utf8(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    write_settings(AZURE)
    (isolated / "m.json").write_bytes(b'[{"role": "user", "content": "caf\xe9"}]')
    result = modelreg("tokens", "chat", "m.json")
    assert result.returncode == 1
    assert "m.json" in result.stderr and "UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


# -- the README's precedence table is the code's --------------------------------------------


def test_readme_precedence_table_matches_code() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Where values come from", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \| .*\|$", section, re.MULTILINE)
    assert [(int(n), title) for n, title in rows] == [(lvl.number, lvl.title) for lvl in LEVELS]


# -- 5. text output escapes control characters ------------------------------------------------


def test_control_characters_cannot_forge_lines_or_move_the_cursor(
    write_settings: Callable[[str], Path],
) -> None:
    evil_name = "evil\x1b[2J\nFAKE MODEL"
    write_settings(
        '[models."evil\\u001b[2J\\nFAKE MODEL"]\nbackend = "fake"\n'
        'reply = "gpt\\u001b[31m..\\nFAKE LINE"\n'
        '[models.az]\nbackend = "azure"\ndeployment = "gpt\\u001b[31m\\nFAKE ROW"\n'
    )
    for argv in (
        ["list"],
        ["check"],
        ["show", evil_name],
        ["show", "az"],
        ["chat", evil_name, "x"],
    ):
        result = modelreg(*argv)
        text = result.stdout + result.stderr
        assert "\x1b" not in text, argv
        if argv[0] != "chat":  # a reply keeps its own line breaks; only controls are escaped
            assert not any(line.startswith("FAKE") for line in text.splitlines()), argv
        assert "Traceback" not in text
    shown = modelreg("show", evil_name).stdout
    assert "\\x1b[31m..\\nFAKE LINE" in shown and "evil\\x1b[2J\\nFAKE MODEL" in shown


# -- found by an adversarial pass --------------------------------------------------------------


def test_request_headers_are_checked_like_client_headers(
    write_settings: Callable[[str], Path],
) -> None:
    from backends.azure import AzureOpenAIModel

    for headers in (
        '{ X-A = "sk-h1\\r\\nEvil: 1" }',
        '{ X-A = "sk-h2é" }',
        '{ X-A = "sk-h4\\u0007" }',
        '{ "X A" = "v" }',
    ):
        write_settings(AZURE + f"config = {{ extra_headers = {headers} }}\n")
        message = create_error()
        assert "config.extra_headers" in message and "sk-h" not in message
        assert message in check_errors()
    with pytest.raises(ConfigError, match="line break") as caught:
        AzureOpenAIModel(
            "d",
            {"extra_headers": {"X-A": "sk-h3\r\nx"}},
            api_key="k",
            url="https://x.openai.azure.com",
            api_version="2024-10-21",
        )
    assert "sk-h3" not in str(caught.value)


def test_ignored_fields_hold_no_raw_secret(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(
        AZURE.replace('api_key = "k"', 'api_key = "sk-ign-1"')
        + 'client_kwargs = { default_headers = { Cookie = "sk-ign-2" }, default_query = { sig = "sk-ign-3" } }\n'
        + '[environments.test.models.chat]\nbackend = "fake"\n'
    )
    registry = ModelRegistry.from_settings(env="test")
    spec = registry.resolve("chat")
    text = repr(vars(spec)) + repr(spec.ignored)
    assert not re.search(r"sk-ign-\d", text)
    shown = registry.explain("chat").fields["client_kwargs"]
    assert shown.value == {"default_headers": {"Cookie": "***"}, "default_query": {"sig": "***"}}
    assert "<Sourced>" not in modelreg("show", "chat", "--env", "test").stdout


def test_headers_written_as_a_string_are_an_error_not_shown(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(AZURE + 'client_kwargs = { default_headers = "X-A: sk-str-1" }\n')
    message = create_error()
    assert "client_kwargs.default_headers" in message and "must be a table" in message
    assert "sk-str-1" not in message and message in check_errors()


@pytest.mark.parametrize("pasted", ["sk-dot-1.secret", "ey.sk-dot-2.abc-def"])
def test_dotted_value_without_scheme_is_not_echoed(
    pasted: str, write_settings: Callable[[str], Path]
) -> None:
    write_settings(AZURE.replace("https://contoso.openai.azure.com", pasted))
    message = create_error()
    assert "sk-dot" not in message and "not a URL" in message


def test_environment_names_cannot_forge_check_lines(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        AZURE + '[environments."prod\\nOK: forged\\nerror: FORGED".models.chat]\ntimeout = -1\n'
    )
    result = modelreg("check")
    assert not any(
        line.startswith(("OK: forged", "error: FORGED")) for line in result.stdout.splitlines()
    )
    assert "prod\\nOK: forged" in result.stdout


def test_nested_variable_origin_names_the_variable(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(AZURE)
    variable = "MODELREG_MODELS__CHAT__CLIENT_KWARGS__DEFAULT_HEADERS__X_TRACE"
    monkeypatch.setenv(variable, "t")
    spec = ModelRegistry.from_settings().resolve("chat")
    assert spec.sources["client_kwargs.default_headers"] == f"env {variable}"


@pytest.mark.parametrize(
    "variable, value",
    [("MODELREG_MODELS__CHAT__ALIASES", "[sk-json-1"), ("MODELREG_MODELS__CHAT__CONFIG", "{x")],
)
def test_malformed_json_in_a_variable_is_an_error(
    variable: str,
    value: str,
    write_settings: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_settings(AZURE)
    monkeypatch.setenv(variable, value)
    message = create_error()
    assert f"env {variable}" in message and "not valid JSON" in message and value not in message
    assert modelreg("list").returncode == 1


def test_misspelt_modelreg_variables_are_reported_by_check(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(AZURE + "[environments.test.models.chat]\ntimeout = 5\n")
    monkeypatch.setenv("MODELREG_MODLES__CHAT__DEPLOYMENT", "x")
    monkeypatch.setenv("MODELREG_ENVIRONMENTS__TSET__MODELS__CHAT__TIMEOUT", "1")
    report = json.loads(modelreg("check", "--json").stdout)
    warnings_text = "\n".join(report["warnings"])
    assert (
        "MODELREG_MODLES__CHAT__DEPLOYMENT" in warnings_text and "MODELREG_MODELS" in warnings_text
    )
    errors_text = "\n".join(report["errors"])
    assert "environment 'tset'" in errors_text and "Did you mean 'test'" in errors_text
    monkeypatch.setenv("MODELREG_ENV", "tset")
    with pytest.warns(RegistryWarning):
        assert "environment 'tset'" in create_error()


def test_unknown_names_are_not_echoed(write_settings: Callable[[str], Path]) -> None:
    for field, value in (
        ("azure_ad_token_provider", "sk-name-1"),
        ("backend", "sk-name-2"),
        ("token_counter", "sk-name-3"),
        ("client_provider", "sk-name-4"),
    ):
        text = AZURE.replace('backend = "azure"', "") if field == "backend" else AZURE
        write_settings(text + f'{field} = "{value}"\n')
        message = create_error()
        assert f"field '{field}'" in message and value not in message
        assert message in check_errors()


def test_impossible_dates_are_not_api_versions(write_settings: Callable[[str], Path]) -> None:
    write_settings(AZURE.replace("2024-10-21", "2024-02-31"))
    assert "API version" in create_error()


def test_base_url_with_an_operation_path_gets_the_root(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        '[models.l]\nbackend = "openai"\nmodel = "m"\n'
        'base_url = "http://127.0.0.1:8000/v1/chat/completions"\n'
    )
    assert 'base_url = "http://127.0.0.1:8000/v1"' in create_error("l")


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"timeout": "sk-c-1"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"api_key": 12345}, "api_key"),
        ({"url": 5}, "endpoint"),
        ({"model_config_dict": "x"}, "model_config_dict"),
        ({"model_type": None}, "model_type"),
        ({"model_type": "sk-c-2/=="}, "model_type"),
    ],
)
def test_camel_constructor_checks_like_settings(
    arguments: dict[str, object], expected: str
) -> None:
    from backends.azure import AzureOpenAIModel

    full: dict[str, object] = {
        "model_type": "d",
        "api_key": "k",
        "url": "https://x.openai.azure.com",
        "api_version": "2024-10-21",
        **arguments,
    }
    with pytest.raises(ConfigError) as caught:
        AzureOpenAIModel(**full)  # type: ignore[arg-type]
    assert expected in str(caught.value) and "sk-c-" not in str(caught.value)


def test_tokens_tools_file_must_be_a_list(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    write_settings(AZURE)
    (isolated / "m.json").write_text('[{"role": "user", "content": "x"}]')
    (isolated / "t.json").write_text('"not a list"')
    result = modelreg("tokens", "chat", "m.json", "--tools", "t.json")
    assert (
        result.returncode == 1
        and "tools" in result.stderr
        and "internal error" not in result.stderr
    )


def test_bidi_and_invisible_characters_are_escaped(write_settings: Callable[[str], Path]) -> None:
    write_settings(AZURE + 'model = "gpt\\u202eevil\\u200b\\u2066x"\n')
    shown = modelreg("show", "chat").stdout
    assert "\u202e" not in shown and "\\u202e" in shown and "\u200b" not in shown


def test_deep_nesting_is_a_clear_error(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / "settings.toml").write_text(
        AZURE + "config = { extra_body = " + "{ a = " * 3000 + "1" + " }" * 3001 + "\n"
    )
    result = modelreg("list")
    assert result.returncode == 1 and "nested too deeply" in result.stderr
    (isolated / "settings.toml").write_text(AZURE)
    monkeypatch.setenv(
        "MODELREG_MODELS__CHAT__CONFIG__EXTRA_BODY", '{"a": ' * 150 + "1" + "}" * 150
    )
    assert "nested at most 100 levels" in create_error()


def test_credential_variable_not_used_says_why(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(AZURE.replace('api_key = "k"\n', ""))
    monkeypatch.setenv("AZURE_AD_TOKEN", "token-x")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "key-x")
    field = ModelRegistry.from_settings().explain("chat").fields["api_key"]
    assert field.value is None
    assert field.note.startswith("AZURE_OPENAI_API_KEY is set but not used: azure_ad_token")


PASTED_KEYS = ("sk-PLANTEDkey1234567890abcdef", "a3f9c2d4e5b6a7f8091a2b3c4d5e6f70")


@pytest.mark.parametrize("pasted", PASTED_KEYS)
@pytest.mark.parametrize(
    "where",
    [
        '[models.m]\nbackend = "fake"\n"{k}" = "x"\n',
        '[models.m]\nbackend = "fake"\n[models.m.config]\n"{k}" = 1\n',
        '[models.m]\nbackend = "fake"\n[[models.m.deployments]]\n"{k}" = "x"\n',
        '"{k}" = "x"\n[models.m]\nbackend = "fake"\n',
        '[models.m]\nbackend = "fake"\n[models.m.capabilities]\n"{k}" = 1\n',
    ],
)
def test_a_key_pasted_as_a_field_name_is_never_echoed(
    where: str, pasted: str, write_settings: Callable[[str], Path]
) -> None:
    """A secret on the wrong side of ``=`` is still a secret: "unknown field" hides it."""
    write_settings(where.replace("{k}", pasted))
    outputs = [modelreg("check"), modelreg("show", "m"), modelreg("--json", "show", "m")]
    assert outputs[0].returncode == 1
    for result in outputs:
        assert "Traceback" not in result.stderr
        assert pasted not in result.stdout + result.stderr
    assert "not shown" in outputs[0].stdout + outputs[0].stderr
    with pytest.raises(ConfigError) as caught:
        ModelRegistry.from_settings().create("m")
    assert pasted not in str(caught.value)

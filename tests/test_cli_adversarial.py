"""The CLI used the way a hurried or hostile user would, through the ``modelreg`` console script.

A reader that goes away, standard input closed, abbreviated options, ``--env`` in another case,
settings that leave a credential empty, a ``default_model`` that names nothing, pools with no
valid deployments: each has a plain answer and the right exit code, never a traceback, a secret
or a success that is not one.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.azure_server import AzureServer
from tests.test_cli_platform import SCRIPT, console

BROKEN = """
[models.a]
backend = "fake"
[environments.dev.models.a]
tiemout = 3
"""


@pytest.mark.parametrize("args", [("check",), ("list",), ("--version",)])
def test_a_reader_that_goes_away_is_not_success_and_no_traceback(
    write_settings: Callable[[str], Path], args: tuple[str, ...]
) -> None:
    write_settings(BROKEN)
    assert console("check").returncode == 1  # the check itself fails...
    # ... and piped into a reader that quit, it must not report success (`set -o pipefail`).
    shell = subprocess.run(
        [
            "/bin/bash",
            "-c",
            'set -o pipefail; "$0" "$@" | (exec 0<&-; sleep 2)',
            str(SCRIPT),
            *args,
        ],
        capture_output=True,
        timeout=60,
    )
    assert shell.returncode == 141, shell.stderr
    assert b"Traceback" not in shell.stderr and b"Exception ignored" not in shell.stderr


def test_check_env_matches_environments_as_other_commands_do(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(BROKEN)
    # `show --env DEV` means dev; `check --env DEV` used to check nothing and pass.
    result = console("check", "--env", "DEV")
    assert result.returncode == 1, result.stdout
    assert "[env dev] model 'a'" in result.stdout and "1 model(s) checked" in result.stdout
    unknown = console("check", "--env", "nope", "--json")
    assert unknown.returncode == 1
    assert "(from command line)" in json.loads(unknown.stderr)["error"]


@pytest.mark.parametrize("command", [["chat", "a", "-"], ["tokens", "a", "-"]])
def test_standard_input_closed_is_a_usage_error(
    write_settings: Callable[[str], Path], command: list[str]
) -> None:
    write_settings('[models.a]\nbackend = "fake"\nmodel = "gpt-4o"\n')
    result = subprocess.run(
        ["/bin/sh", "-c", '"$0" "$@" <&-', str(SCRIPT), *command, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stderr)
    assert error["kind"] == "UsageError" and "standard input is closed" in error["error"]


def test_abbreviated_options_are_usage_errors(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models.a]\nbackend = "fake"\n')
    # `--jso` used to mean --json for the output but not for the errors.
    for args in (["--jso", "list"], ["list", "--jso"], ["check", "--stric"]):
        result = console(*args)
        assert result.returncode == 2, args
        assert "unrecognized arguments" in result.stderr and result.stdout == ""


def test_show_names_the_variable_an_empty_setting_left_the_key_to(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(
        f'[models.a]\nbackend = "azure"\ndeployment = "d"\nendpoint = "{server.base_url}"\n'
        'api_version = "2024-10-21"\napi_key = "${UNSET_KEY:-}"\nmax_retries = 0\n'
    )
    env = {"AZURE_OPENAI_API_KEY": "test-key"}
    shown = json.loads(console("show", "a", "--json", env=env).stdout)["credentials"]
    assert console("chat", "a", "hi", env=env).returncode == 0
    assert server.requests[0].headers.get("api-key") == "test-key"  # what the request carried
    assert shown == [
        {"deployment": None, "kind": "API key (api_key)", "origin": "env AZURE_OPENAI_API_KEY"}
    ]


def test_list_says_when_default_model_names_nothing(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        '[models.a]\nbackend = "fake"\n[environments.prod]\n'
        'default_model = "0123456789abcdef0123456789abcdef"\n'
    )
    result = console("list", "--env", "prod")
    assert result.returncode == 0
    assert "warning: default_model (settings.toml [environments.prod]) is no model" in (
        result.stderr
    )
    assert "*" not in result.stdout and "0123456789abcdef" not in result.stdout + result.stderr
    data = console("list", "--env", "prod", "--json")
    assert json.loads(data.stdout)["default_model"] is None
    assert json.loads(data.stderr)["kind"] == "RegistryWarning"


def test_list_does_not_count_deployments_that_are_not_a_pool(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        '[models.empty]\nbackend = "fake"\ndeployments = []\n'
        '[models.text]\nbackend = "fake"\ndeployments = ["a", "b"]\n'
        '[models.one]\nbackend = "fake"\n'
    )
    models = {m["name"]: m for m in json.loads(console("list", "--json").stdout)["models"]}
    assert models["empty"]["deployments"] is None and models["text"]["deployments"] is None
    assert models["one"]["deployments"] == 1
    rows = console("list").stdout
    assert rows.count("(invalid: see modelreg check)") == 2


def test_positionals_may_follow_a_commands_options(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models.a]\nbackend = "fake"\nmodel = "gpt-4o"\n')
    # argparse alone filled PROMPT (and FILE) at NAME, leaving the word after --system over.
    result = console("chat", "a", "--system", "Be brief", "Hello there")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fake reply to: Hello there"
    Path("m.json").write_text('[{"role": "user", "content": "hi"}]')
    Path("t.json").write_text("[]")
    counted = console("tokens", "a", "--tools", "t.json", "m.json", "--json")
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["tokens"] > 0
    # After `--` every word is a positional, also one that looks like an option.
    dashed = console("chat", "a", "--", "--json")
    assert dashed.returncode == 0 and dashed.stdout.strip() == "fake reply to: --json"
    named = console("show", "--", "--json")
    assert named.returncode == 1 and "unknown model '--json'" in named.stderr


def test_log_warnings_are_json_objects_with_json(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        'routing_state = "redis://:planted-pw@127.0.0.1:1/0"\n[models.p]\nbackend = "fake"\n'
        '[[models.p.deployments]]\nreply = "a"\n[[models.p.deployments]]\nreply = "b"\n'
    )
    result = console("routes", "p", "--json")
    assert result.returncode == 1  # the shared state is unreachable
    lines = result.stderr.splitlines()
    assert lines, "the unreachable state is reported"
    for line in lines:  # Python's last-resort handler printed this one as bare text
        assert json.loads(line)["kind"] == "modelreg.routing", line
    assert "planted-pw" not in result.stderr
    text = console("routes", "p").stderr
    assert text.startswith("modelreg: warning: routing state: Redis at redis://***@")


KEYS = (
    "sk-proj-AAAAbbbbCCCC1111dddd2222",
    "0123456789abcdef0123456789abcde1",
    "sk-proj-ZZZZyyyyXXXX9999wwww8888",
    "fedcba9876543210fedcba9876543210",
)
PASTED = f"""
default_model = "{KEYS[0]}"
[models.chat]
backend = "azure"
deployment = "{KEYS[1]}"
model = "{KEYS[2]}"
endpoint = "https://contoso.openai.azure.com"
api_version = "2024-10-21"
aliases = ["{KEYS[3]}"]
"""


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("list", "--json"),
        ("show", "chat"),
        ("show", "chat", "--json"),
        ("check",),
        ("check", "--json"),
        ("show",),
        ("show", KEYS[0][:-1] + "1"),  # a near copy: no did-you-mean may complete it
        ("show", KEYS[3][:-1] + "1", "--json"),
    ],
)
def test_keys_pasted_into_name_fields_are_never_shown(
    write_settings: Callable[[str], Path], args: tuple[str, ...]
) -> None:
    write_settings(PASTED)
    result = console(*args)
    assert "Traceback" not in result.stderr
    for key in KEYS:
        assert key[4:20] not in result.stdout + result.stderr, (key, args)


def test_names_in_known_lists_cannot_forge_lines(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models."a\\nmodelreg: error: forged"]\nbackend = "fake"\n')
    result = console("show", "b")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "a\\nmodelreg: error: forged" in result.stderr


def test_a_server_quoting_the_rejected_key_never_shows_it(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    from tests.azure_server import Fault

    key = "planted-rejected-key-4242"
    write_settings(
        f'[models.chat]\nbackend = "azure"\ndeployment = "dep"\nendpoint = "{server.base_url}"\n'
        f'api_version = "2024-10-21"\napi_key = "{key}"\nmax_retries = 0\n'
    )
    error = {
        "error": {
            "message": f"Incorrect API key provided: {key}.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    for args in (("chat", "chat", "hi"), ("chat", "chat", "hi", "--json")):
        server.add_faults(Fault(status=401, body=error))
        result = console(*args)
        assert result.returncode == 1
        assert key not in result.stdout + result.stderr
        assert "Incorrect API key provided: ***" in result.stderr
    # ... and for Python callers: the exception's message and parsed body.
    from openai import AuthenticationError

    from registry import create_model

    server.add_faults(Fault(status=401, body=error))
    with pytest.raises(AuthenticationError) as caught:
        create_model("chat").run([{"role": "user", "content": "hi"}])
    assert key not in str(caught.value) and key not in json.dumps(caught.value.body)

"""The CLI as platform teams use it, run through the ``modelreg`` console script.

Help, version, usage errors and JSON errors, colour on terminals only (a pseudo-terminal stands
in for one), ``list``'s default and pool sizes, ``show``'s credential, ``config``'s origins,
``chat`` and ``tokens`` reading standard input, and a reply printed as it streams in.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.cli.parser import COMMANDS, GLOBAL_OPTIONS, UsageError, build_parser
from tests.azure_server import AzureServer, Fault
from tests.cli_script import MODELREG_SCRIPT as SCRIPT
from tests.cli_script import run_script

ANSI = "\x1b["


def console(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed ``modelreg`` script, piped: stdin is empty unless given, never a terminal."""
    return run_script(*args, env=env, stdin=stdin if stdin is not None else "")


def in_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The script with a pseudo-terminal as stdin, stdout and stderr; its exit code and output."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(SCRIPT), *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, **(env or {})},
        close_fds=True,
    )
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            process.kill()
            raise AssertionError(f"no output for 30 s (so far: {output!r})")
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not data:
            break
        output += data
    os.close(leader)
    return process.wait(timeout=30), output.decode()


# -- help, version, usage ----------------------------------------------------------------------


def test_version_is_the_installed_distribution() -> None:
    from importlib.metadata import version

    result = console("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"modelreg {version('modelreg')} (Python ")


def test_no_command_prints_help(isolated: Path) -> None:
    result = console()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: modelreg")
    for command in COMMANDS:
        assert f"    {command.name} " in result.stdout


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_each_command_help_has_examples_variables_exit_codes(command: str) -> None:
    result = console(command, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for heading in ("examples:", "environment variables:", "exit codes:"):
        assert f"\n{heading}\n" in text
    assert "  0  success" in text and "  2  usage error" in text and "  1  " in text
    assert f"  modelreg {command}" in text.split("examples:")[1]
    assert "NO_COLOR" in text


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_help_points_only_to_readme_sections_that_exist(command: str) -> None:
    from tests.helpers import README

    headings = {
        line.lstrip("#").strip()
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    text = " ".join(console(command, "--help").stdout.split())
    for section in re.findall(r"README: ([^)]+)\)", text):
        assert section in headings, f"{command} --help names README section {section!r}"


def test_global_options_a_command_ignores_are_not_offered() -> None:
    text = console("plugins", "--help").stdout
    assert "--json" in text
    for option in ("--settings", "--env", "--dotenv"):
        assert option not in text
    assert "--settings PATH" in console("show", "--help").stdout
    # ... and given before the command, they are a usage error, not silently dropped.
    result = console("--settings", "other.toml", "plugins")
    assert result.returncode == 2
    assert "plugins does not use --settings" in result.stderr


def _example_words(example: str) -> list[str]:
    """An example's arguments: without leading VAR=value, a pipe's left side, a redirection."""
    command = example.split("|")[-1]
    words = shlex.split(command)
    while words and "=" in words[0] and not words[0].startswith("-"):
        words.pop(0)
    if "<" in words:
        words = words[: words.index("<")]
    assert words[0] == "modelreg", example
    return words[1:]


@pytest.mark.parametrize(
    "example", [e for c in COMMANDS for e in c.examples], ids=lambda e: e.split("modelreg")[-1]
)
def test_every_help_example_is_a_valid_command_line(example: str) -> None:
    args = build_parser().parse_args(_example_words(example))
    command = next(c for c in COMMANDS if c.name == args.command)
    for option in set(GLOBAL_OPTIONS) - set(command.global_options):
        assert option not in example


def test_usage_errors_exit_2_as_text_or_json(isolated: Path) -> None:
    result = console("lsit")
    assert result.returncode == 2
    assert result.stderr.startswith("modelreg: error: argument COMMAND: invalid choice: 'lsit'")
    assert "Traceback" not in result.stderr
    result = console("--json", "lsit")
    assert result.returncode == 2
    error = json.loads(result.stderr)
    assert error["kind"] == "UsageError" and "invalid choice: 'lsit'" in error["error"]
    result = console("check", "--strikt", "--json")
    assert result.returncode == 2 and json.loads(result.stderr)["kind"] == "UsageError"
    assert result.stdout == ""


def test_a_usage_error_is_not_a_problem_to_fix() -> None:
    assert issubclass(UsageError, Exception)
    from registry.errors import RegistryError

    assert not issubclass(UsageError, RegistryError)  # exit 2, never 1


def test_errors_are_json_on_stderr_with_json(write_settings: Callable[[str], Path]) -> None:
    write_settings('default_model = "chat"\n[models.chat]\nbackend = "fake"\n')
    result = console("show", "caht", "--json")
    assert result.returncode == 1 and result.stdout == ""
    error = json.loads(result.stderr)
    assert error["kind"] == "UnknownModelError"
    assert "'caht'" in error["error"] and "Did you mean 'chat'" in error["error"]
    write_settings("[models.chat\n")
    result = console("--json", "list")
    assert result.returncode == 1
    error = json.loads(result.stderr)
    assert error["kind"] == "ConfigError" and "settings.toml" in error["error"]
    assert len(result.stderr.splitlines()) == 1


def test_warnings_are_json_objects_with_json(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models.chat]\nbackend = "fake"\n')
    result = console("show", "chat", "--json", env={"MODELREG_SETINGS": "x.toml"})
    assert result.returncode == 0, result.stderr
    warning = json.loads(result.stderr.splitlines()[0])
    assert warning["kind"] == "RegistryWarning" and "MODELREG_SETINGS" in warning["warning"]
    json.loads(result.stdout)  # stdout stays one JSON document


# -- colour ------------------------------------------------------------------------------------


def test_errors_are_coloured_on_a_terminal_only(isolated: Path) -> None:
    env = {"TERM": "xterm", "NO_COLOR": "", "FORCE_COLOR": ""}
    code, output = in_terminal("show", "nothing", env=env)
    assert code == 1
    assert f"{ANSI}1;31merror:{ANSI}0m" in output
    code, output = in_terminal("show", "nothing", env={**env, "NO_COLOR": "1"})
    assert code == 1 and ANSI not in output and "modelreg: error:" in output
    piped = console("show", "nothing", env=env)
    assert piped.returncode == 1 and ANSI not in piped.stderr


def test_check_colours_its_verdicts_on_a_terminal(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models.a]\nbackend = "fake"\ntiemout = 3\n')
    env = {"TERM": "xterm", "NO_COLOR": "", "FORCE_COLOR": ""}
    code, output = in_terminal("check", env=env)
    assert code == 1
    assert f"{ANSI}1;31merror:{ANSI}0m [env none] model 'a'" in output
    assert ANSI not in console("check", env=env).stdout


# -- list, show, config ------------------------------------------------------------------------

POOL = """
default_model = "main"
[models.chat]
backend = "fake"
aliases = ["main"]
[[models.chat.deployments]]
reply = "a"
[[models.chat.deployments]]
reply = "b"
[[models.chat.deployments]]
reply = "c"
[models.other]
backend = "fake"
"""


def test_list_marks_the_default_and_shows_pool_sizes(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(POOL)
    result = console("list")
    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[1] if line.startswith("  *") else line.split()[0]: line
        for line in result.stdout.splitlines()[2:]
        if line.strip() and "default_model" not in line
    }
    assert rows["chat"].startswith("  *") and " 3 " in rows["chat"]
    assert not rows["other"].startswith("  *") and " 1 " in rows["other"]
    data = json.loads(console("list", "--json").stdout)
    assert data["default_model"] == "chat"  # the alias, resolved
    models = {m["name"]: m for m in data["models"]}
    assert models["chat"]["default"] and models["chat"]["deployments"] == 3
    assert not models["other"]["default"] and models["other"]["deployments"] == 1


def test_list_without_default_model(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models.a]\nbackend = "fake"\n')
    data = json.loads(console("list", "--json").stdout)
    assert data["default_model"] is None and not data["models"][0]["default"]
    assert "*" not in console("list").stdout


AZURE = """
[models.chat]
backend = "azure"
deployment = "d"
endpoint = "https://contoso.openai.azure.com"
api_version = "2024-10-21"
"""


@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        (
            "",
            {"AZURE_OPENAI_API_KEY": "planted-key-1"},
            "API key (api_key) from env AZURE_OPENAI_API_KEY",
        ),
        (
            'api_key = "${MY_KEY}"\n',
            {"MY_KEY": "planted-key-2"},
            "API key (api_key) from settings.toml [models.chat] via ${MY_KEY} from env MY_KEY",
        ),
        (
            'azure_ad_token = "${TOKEN}"\n',
            {"TOKEN": "planted-token-3", "AZURE_OPENAI_API_KEY": "planted-key-3"},
            "Entra ID token (azure_ad_token) from settings.toml [models.chat]",
        ),
        (
            'azure_ad_token_provider = "azure-identity"\n',
            {"AZURE_OPENAI_API_KEY": "planted-key-4"},
            "Entra ID token provider (azure_ad_token_provider) from settings.toml [models.chat]",
        ),
        ("", {}, "none (model 'chat': no credentials: set api_key"),
    ],
    ids=["key-env", "key-setting", "token-beats-key", "provider", "none"],
)
def test_show_names_the_credential_and_its_origin(
    write_settings: Callable[[str], Path], extra: str, env: dict[str, str], expected: str
) -> None:
    write_settings(AZURE + extra)
    result = console("show", "chat", env=env)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("credential: "))
    assert line.startswith("credential: " + expected), line
    data = json.loads(console("show", "chat", "--json", env=env).stdout)
    assert data["credentials"][0]["kind"] in line
    for value in env.values():
        assert value not in result.stdout + result.stderr


def test_show_names_each_pool_deployments_credential(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        AZURE
        + """
        [[models.chat.deployments]]
        endpoint = "https://east.openai.azure.com"
        [[models.chat.deployments]]
        endpoint = "https://west.openai.azure.com"
        api_key = "${WEST_KEY}"
        """.replace("        ", "")
    )
    env = {"AZURE_OPENAI_API_KEY": "planted-east", "WEST_KEY": "planted-west"}
    result = console("show", "chat", "--json", env=env)
    assert result.returncode == 0, result.stderr
    credentials = json.loads(result.stdout)["credentials"]
    assert [c["deployment"] for c in credentials] == [
        "east.openai.azure.com/d",
        "west.openai.azure.com/d",
    ]
    assert credentials[0]["origin"] == "env AZURE_OPENAI_API_KEY"
    assert "WEST_KEY" in credentials[1]["origin"]
    assert "planted" not in result.stdout + result.stderr


def test_show_says_an_openai_compatible_local_server_gets_no_key(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        '[models.local]\nbackend = "openai"\nmodel = "m"\nbase_url = "http://localhost:1/v1"\n'
    )
    result = console("show", "local")
    assert result.returncode == 0, result.stderr
    assert "credential: none: no api_key, so requests to base_url" in result.stdout


def test_config_reports_each_setting_with_its_origin(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    write_settings(
        'routing_state = "redis://:planted-pw@127.0.0.1:1/0"\n'
        '[models.a]\nbackend = "fake"\n[environments.prod.models.a]\nreply = "p"\n',
        name="custom.toml",
    )
    (isolated / "secrets").mkdir()
    (isolated / ".env").write_text("MODELREG_ENV=prod\nMODELREG_DISABLE_PLUGINS=example\n")
    env = {"MODELREG_SETTINGS": "custom.toml", "MODELREG_SECRETS_DIR": str(isolated / "secrets")}
    result = console("config", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["settings_file"]["value"] == "custom.toml"
    assert data["settings_file"]["source"] == "env MODELREG_SETTINGS"
    assert data["dotenv_file"]["value"] == ".env"
    assert data["env"] == {
        "value": "prod",
        "source": ".env (MODELREG_ENV)",
        "variable": "MODELREG_ENV",
    }
    assert data["environments"]["value"] == ["prod"]
    assert data["disable_plugins"]["value"] == ["example"]
    assert data["disable_plugins"]["source"] == ".env (MODELREG_DISABLE_PLUGINS)"
    assert data["plugins"]["value"] is None and data["plugins"]["note"].startswith("unset")
    assert data["secrets_dir"]["source"] == "env MODELREG_SECRETS_DIR"
    assert data["secret_sources"]["value"] == ["environment", ".env", "secrets-dir"]
    assert data["routing_state"]["value"] == "redis://***@127.0.0.1:1/0"
    assert data["routing_state"]["source"] == "custom.toml (routing_state)"
    assert data["tiktoken_cache_dir"]["source"] == "env TIKTOKEN_CACHE_DIR"
    text = console("config", env=env).stdout
    assert "planted-pw" not in text + result.stdout
    assert "env MODELREG_SETTINGS" in text and ".env (MODELREG_ENV)" in text


# -- chat and tokens ---------------------------------------------------------------------------

FAKE = 'default_model = "helper"\n[models.helper]\nbackend = "fake"\n'


def loopback(write_settings: Callable[[str], Path], url: str) -> None:
    write_settings(
        f'default_model = "chat"\n[models.chat]\nbackend = "azure"\ndeployment = "dep"\n'
        f'endpoint = "{url}"\napi_version = "2024-10-21"\napi_key = "test-key"\n'
    )


def test_chat_reads_the_prompt_from_stdin_and_sends_the_system_message(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    loopback(write_settings, server.base_url)
    piped = console("chat", "--system", "Be brief", stdin="What is 2+2?\n")
    assert piped.returncode == 0, piped.stderr
    dashed = console("chat", "chat", "-", stdin="Second question")
    assert dashed.returncode == 0, dashed.stderr
    first, second = (r.body for r in server.requests)
    assert first["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "What is 2+2?\n"},
    ]
    assert first["stream"] is True  # the reply is printed as it arrives
    assert second["messages"] == [{"role": "user", "content": "Second question"}]
    assert "What is 2+2?" in piped.stdout


def test_chat_prints_the_reply_as_it_streams_in(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    loopback(write_settings, server.base_url)
    server.add_faults(Fault(chunk_interval=1.0))
    with subprocess.Popen(
        [str(SCRIPT), "chat", "chat", "tell me a long enough story please"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    ) as process:
        assert process.stdout is not None
        started = time.monotonic()
        first = os.read(process.stdout.fileno(), 100)  # the first piece, before the rest is sent
        assert first.strip(), first
        assert process.poll() is None, "the whole reply came at once"
        rest = process.stdout.read()
        assert process.wait(timeout=60) == 0
    assert time.monotonic() - started >= 2  # several chunks a second apart came after the first
    assert b"long enough story" in first + rest


def test_chat_at_a_terminal_without_a_prompt_is_a_usage_error(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(FAKE)
    code, output = in_terminal("chat", env={"NO_COLOR": "1"})
    assert code == 2
    assert "give a PROMPT, or - to read it from standard input" in output
    code, output = in_terminal("chat", "Say hello", env={"NO_COLOR": "1"})
    assert code == 2 and "'Say hello' is the model NAME; the PROMPT comes after it" in output
    result = console("chat", stdin="   \n")
    assert result.returncode == 2 and "the prompt is empty" in result.stderr


def test_chat_uses_default_model_when_no_name(write_settings: Callable[[str], Path]) -> None:
    write_settings(FAKE)
    result = console("chat", stdin="hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_tokens_reads_stdin_when_piped_and_refuses_to_wait_at_a_terminal(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(FAKE.replace('backend = "fake"', 'backend = "fake"\nmodel = "gpt-4o"'))
    messages = json.dumps([{"role": "user", "content": "hello there"}])
    result = console("tokens", "--json", stdin=messages)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "helper"
    assert json.loads(result.stdout)["tokens"] > 0
    code, output = in_terminal("tokens", "helper", env={"NO_COLOR": "1"})
    assert code == 2
    assert "give a messages FILE, or - to read it from standard input" in output
    code, output = in_terminal("tokens", "messages.json", env={"NO_COLOR": "1"})
    assert code == 2 and "'messages.json' is the model NAME; the FILE comes after it" in output
    empty = console("tokens", "--json", stdin=" \n")  # a script's stdin: not a terminal, empty
    assert empty.returncode == 1
    assert json.loads(empty.stderr)["error"].startswith("standard input is empty: give the")
    Path("empty.json").write_text("")
    empty_file = console("tokens", "helper", "empty.json")
    assert empty_file.returncode == 1
    assert "messages file 'empty.json' is empty" in empty_file.stderr


def test_readme_command_table_lists_every_command() -> None:
    from tests.helpers import README

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Command line") :]
    section = section[: section.index("\n## ", 3)]
    listed = set(re.findall(r"^\| `modelreg (\w+)", section, re.M))
    assert listed == {command.name for command in COMMANDS}


def test_readme_json_error_example_is_what_the_cli_prints(isolated: Path) -> None:
    import shutil

    from tests.helpers import README, readme_block

    shutil.copy(README.parent / "settings.toml", isolated / "settings.toml")
    command, shown = readme_block("errors and warnings are JSON objects", "text").splitlines()[:2]
    assert command.startswith("$ modelreg ")
    result = console(*shlex.split(command)[2:])
    assert result.returncode == 1 and result.stdout == ""
    printed, expected = json.loads(result.stderr), json.loads(shown)
    assert printed["kind"] == expected["kind"]
    assert printed["error"].startswith(expected["error"].removesuffix("..."))


def test_check_prints_each_problem_once_then_a_summary(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(
        '[models.b]\nbackend = "azure"\ndeployment = "d"\napi_key = "k"\n'
        '[models.c]\nbackend = "fake"\nmodel = "gpt-4o"\n'
        '[environments.prod.models.c]\nreply = "p"\n'
        '[environments.dev.models.c]\nreply = "d"\n'
    )
    lines = console("check").stdout.splitlines()
    endpoint = [line for line in lines if "no Azure endpoint" in line]
    assert endpoint == [
        "error: [env none, dev, prod] model 'b': no Azure endpoint: set endpoint in its "
        "settings table (url= in code), or AZURE_OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT"
    ]
    assert lines[-1] == (
        "FAILED: settings.toml: 2 model(s) checked in 3 environment(s) (none, dev, prod); "
        "1 error(s), 0 warning(s)"
    )


def test_usage_errors_suggest_the_command_or_option_and_point_at_its_help(
    isolated: Path,
) -> None:
    result = console("shwo")
    assert result.returncode == 2 and "Did you mean 'show'?" in result.stderr
    result = console("show", "--evn", "prod")
    assert result.returncode == 2
    assert "unrecognized arguments: --evn. Did you mean '--env'" in result.stderr
    assert result.stderr.rstrip().endswith("(see: modelreg show --help)")
    result = console("--json", "list", "--strict")
    assert result.returncode == 2
    assert json.loads(result.stderr)["error"].endswith("(see: modelreg list --help)")

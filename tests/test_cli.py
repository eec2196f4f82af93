"""The modelreg CLI: commands, JSON output, exit codes, and no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.azure_server import AzureServer, Fault
from tests.helpers import modelreg

REPO = Path(__file__).resolve().parents[1]


run = modelreg


@pytest.fixture
def repo_settings(isolated: Path) -> Path:
    target = isolated / "settings.toml"
    shutil.copy(REPO / "settings.toml", target)
    return target


def test_show_prod_prints_prod_deployment_with_sources(repo_settings: Path) -> None:
    result = run("show", "chat", "--env", "prod")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert "gpt-4o " in lines["deployment"]
    assert "settings.toml [environments.prod.models.chat]" in lines["deployment"]
    assert "settings.toml [models.chat]" in lines["api_version"]


def test_show_json_names_variable_source(repo_settings: Path) -> None:
    result = run("show", "chat", "--json", env={"MODELREG_MODELS__CHAT__DEPLOYMENT": "x"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["name"] == "chat"
    assert data["fields"]["deployment"] == {
        "value": "x",
        "source": "env MODELREG_MODELS__CHAT__DEPLOYMENT",
    }


def test_show_masks_secret_and_names_source(repo_settings: Path) -> None:
    result = run("show", "chat", "--json", env={"AZURE_OPENAI_API_KEY": "planted-secret-123"})
    assert "planted-secret-123" not in result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["fields"]["api_key"] == {"value": "***", "source": "env AZURE_OPENAI_API_KEY"}


def test_list(repo_settings: Path) -> None:
    result = run("--json", "list")
    assert result.returncode == 0, result.stderr
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert models["chat"]["aliases"] == ["assistant", "default"]
    text = run("list", "--env", "test").stdout
    assert "chat" in text and "fake" in text


def test_check_repository_settings_passes(repo_settings: Path) -> None:
    result = run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK:" in result.stdout and "3 environment(s)" in result.stdout


def test_check_lists_every_problem(write_settings: Callable[[str], Path]) -> None:
    write_settings(
        """
        [models.a]
        backend = "fake"
        tiemout = 3
        [models.b]
        backend = "azure"
        deployment = "d"
        api_key = "k"
        [environments.prod.models.a]
        backend = "nope"
        """
    )
    result = run("check", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    joined = "\n".join(report["errors"])
    assert "'tiemout'" in joined and "Did you mean 'timeout'" in joined
    assert "no Azure endpoint" in joined
    assert "field 'backend'" in joined and "not a registered backend" in joined
    # b fails the same way in both environments: reported once, naming both
    problems = {p["message"]: p["environments"] for p in report["problems"]}
    assert [envs for msg, envs in problems.items() if "'tiemout'" in msg] == [["none"]]
    assert [envs for msg, envs in problems.items() if "no Azure endpoint" in msg] == [
        ["none", "prod"]
    ]
    assert report["checked"] == 2  # models, not models x environments


def test_user_error_exit_1_without_traceback(write_settings: Callable[[str], Path]) -> None:
    write_settings("[models.x\n")
    result = run("list")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "settings.toml" in result.stderr and "TOML" in result.stderr


def test_unknown_model_exit_1(repo_settings: Path) -> None:
    result = run("show", "caht")
    assert result.returncode == 1
    assert "Did you mean 'chat'" in result.stderr and "Traceback" not in result.stderr


def test_usage_error_exit_2() -> None:
    assert run("frobnicate").returncode == 2
    assert run("show", "--no-such-flag").returncode == 2


def test_global_options_before_or_after_command(repo_settings: Path) -> None:
    before = run("--env", "prod", "--json", "show", "chat")
    after = run("show", "chat", "--env", "prod", "--json")
    assert before.returncode == after.returncode == 0
    assert json.loads(before.stdout) == json.loads(after.stdout)


def test_chat_with_fake_backend(repo_settings: Path) -> None:
    result = run("chat", "chat", "Hi", "--env", "test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello from the fake chat model."


def test_chat_over_http_streams_and_prints_json(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(
        f"""
        [defaults]
        backend = "azure"
        deployment = "dep"
        endpoint = "{server.base_url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        [models.chat]
        [models.streamer]
        config = {{ stream = true }}
        """
    )
    plain = run("chat", "chat", "Hi")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "Hello from the loopback server. You said: Hi"
    streamed = run("chat", "streamer", "Hi")
    assert streamed.stdout.strip() == "Hello from the loopback server. You said: Hi"
    assert server.requests[-1].body["stream"] is True
    as_json = json.loads(run("chat", "chat", "Hi", "--json").stdout)
    assert as_json["choices"][0]["message"]["content"].endswith("You said: Hi")


def test_chat_request_error_exit_1(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "dep"
        endpoint = "{server.base_url}"
        api_version = "2024-10-21"
        api_key = "wrong-key-value"
        max_retries = 0
        """
    )
    result = run("chat", "chat", "Hi")
    assert result.returncode == 1
    assert "AuthenticationError" in result.stderr and "model 'chat'" in result.stderr
    assert "Traceback" not in result.stderr and "wrong-key-value" not in result.stderr


def test_closed_pipe_is_not_a_traceback(repo_settings: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "registry", "show", "chat"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.stdout.close()  # like `| head -1`
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read()
    # 141, as for any program stopped by SIGPIPE: a cut-off `check` must not read as a pass.
    assert process.wait(timeout=60) in (0, 141)  # 0: it had written everything before the close
    assert "Traceback" not in stderr


def loopback_chat_model(write_settings: Callable[[str], Path], url: str, streaming: bool) -> None:
    write_settings(
        f"""
        [models.chat]
        backend = "azure"
        deployment = "dep"
        endpoint = "{url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        config = {{ stream = {str(streaming).lower()} }}
        """
    )


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "stream"])
def test_chat_with_a_body_that_is_not_a_completion_exit_1(
    write_settings: Callable[[str], Path], server: AzureServer, streaming: bool
) -> None:
    # An HTML page with status 200 (a proxy or login page): `run()` used to return it as a str
    # (then a traceback here), and on a streaming model an empty stream and exit 0.
    # `chat` streams; with --json it sends the model's own request (here: not streaming).
    loopback_chat_model(write_settings, server.base_url, streaming)
    server.add_faults(Fault(body="<html>Sign in</html>", headers={"Content-Type": "text/html"}))
    result = run("chat", "chat", "Hi", *(() if streaming else ("--json",)))
    assert result.returncode == 1, result.stdout
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    if streaming:
        assert result.stderr.startswith("modelreg: error: [model 'chat', deployment 'dep'] ")
        assert "'text/html'" in result.stderr
    else:
        error = json.loads(result.stderr)
        assert error["kind"] == "BackendError"
        assert error["error"].startswith("[model 'chat', deployment 'dep'] ")
        assert "'<html>Sign in</html>'" in error["error"]


def test_chat_with_a_stream_cut_short_exit_1(
    write_settings: Callable[[str], Path], server: AzureServer
) -> None:
    loopback_chat_model(write_settings, server.base_url, streaming=True)
    server.add_faults(Fault(end_stream_after=3))
    result = run("chat", "chat", "Hi")
    assert result.returncode == 1
    assert "without a finish_reason" in result.stderr and "Traceback" not in result.stderr

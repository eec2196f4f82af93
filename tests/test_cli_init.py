"""``modelreg init``: through the console script, then the other commands on what it wrote."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from registry.cli.init_command import KEY_VARIABLES, starter_text
from registry.cli.parser import COMMANDS, build_parser
from tests.cli_script import run_script
from tests.helpers import readme_block

BACKENDS = sorted(KEY_VARIABLES)


@pytest.mark.parametrize("backend", BACKENDS)
def test_init_then_every_command_works_on_the_file(backend: str, isolated: Path) -> None:
    result = run_script("init", "--backend", backend)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote settings.toml ({backend} backend). Next:")
    written = isolated / "settings.toml"
    assert written.read_text() == starter_text(backend)
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~_umask()
    assert listing(isolated) == ["settings.toml"]  # no temporary file, no .env

    key = KEY_VARIABLES[backend]
    without_key = run_script("check", "--strict")
    assert without_key.returncode == 1
    assert "no credentials" in without_key.stdout or "no api_key" in without_key.stdout
    assert key in without_key.stdout  # it says what to set
    assert run_script("check").returncode == 0  # a missing key is a warning, not an error
    with_key = run_script("check", "--strict", env={key: "sk-not-a-real-key-123456"})
    assert with_key.returncode == 0, with_key.stdout
    assert "0 error(s), 0 warning(s)" in with_key.stdout

    listed = json.loads(run_script("list", "--json").stdout)
    assert [(m["name"], m["backend"], m["aliases"]) for m in listed["models"]] == [
        ("chat", backend, ["default"])
    ]
    shown = run_script("show", "default", env={key: "sk-not-a-real-key-123456"})
    assert shown.returncode == 0 and "sk-not-a-real-key" not in shown.stdout
    assert "credential: " in shown.stdout and key in shown.stdout
    # the test environment: the fake backend, no key, no network (no proxy reachable either)
    offline = {"MODELREG_ENV": "test", "HTTPS_PROXY": "http://127.0.0.1:1"}
    chat = run_script("chat", "chat", "Hello", env=offline)
    assert (chat.returncode, chat.stdout) == (0, "Hello from the fake chat model.\n")


def test_the_next_steps_it_prints_work_as_written(isolated: Path) -> None:
    (isolated / "conf").mkdir()
    result = run_script("init", "--settings", "conf/my settings.toml")
    steps = [line.split(". ", 1)[1] for line in result.stdout.splitlines()[1:]]
    assert steps[0] == "edit endpoint and deployment in conf/my settings.toml"
    assert steps[1].startswith("set AZURE_OPENAI_API_KEY ")
    assert steps[2] == "modelreg check --settings 'conf/my settings.toml'"
    for step, env in ((steps[2], {"AZURE_OPENAI_API_KEY": "k-123"}), (steps[3], {})):
        command = step.split("   (")[0]
        ran = _shell(command, env)
        assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
    assert _shell(steps[3].split("   (")[0], {}).stdout == "Hello from the fake chat model.\n"


def _shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` run by sh, as a user pastes it (the venv's scripts on PATH)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PATH": path},
        timeout=60,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_comments_do_not_lie(backend: str) -> None:
    text = starter_text(backend)
    data = tomllib.loads(text)
    comments = "\n".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
    # every command a comment shows is a command line the parser takes
    shown = re.findall(r"`(modelreg [^`]*)`", comments)
    assert {"modelreg check", "modelreg chat", f"modelreg init --backend {backend}"} <= set(shown)
    assert "modelreg" not in re.sub(r"`modelreg [^`]*`", "", comments).replace(
        "modelreg settings", ""
    )
    for command in shown:
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.command in {c.name for c in COMMANDS}
    # the variables named are the ones the backend reads (checked for real in the test above)
    assert KEY_VARIABLES[backend] in comments
    assert "api_key" not in data["models"]["chat"]  # and no secret in the file
    # commented-out tables are valid settings once uncommented
    uncommented = re.sub(r"^# (\[environments\.prod|\w+ = )", r"\1", text, flags=re.M)
    assert tomllib.loads(uncommented)["environments"]["prod"]["models"]["chat"]
    assert data["environments"]["test"]["models"]["chat"]["backend"] == "fake"
    assert data["default_model"] in data["models"]
    for line in re.findall(r"^\[([^\]]+)\]", text, flags=re.M):
        node: object = data
        for part in line.split("."):
            assert isinstance(node, dict) and part in node, line
            node = node[part]


@pytest.mark.parametrize("backend", BACKENDS)
def test_uncommented_examples_pass_check(backend: str, isolated: Path) -> None:
    text = starter_text(backend)
    uncommented = re.sub(r"^# (\[environments\.prod|\w+ = )", r"\1", text, flags=re.M)
    (isolated / "settings.toml").write_text(uncommented)
    key = KEY_VARIABLES[backend]
    result = run_script("check", "--strict", env={key: "k-1234567"})
    assert result.returncode == 0, result.stdout
    assert "3 environment(s)" in result.stdout


def test_refuses_to_overwrite(isolated: Path) -> None:
    existing = isolated / "settings.toml"
    existing.write_text("# mine\n")
    result = run_script("init")
    assert result.returncode == 1
    assert result.stderr == (
        "modelreg: error: 'settings.toml' (from the default) already exists: not overwritten. "
        "Edit it, remove it, or give another file with --settings PATH.\n"
    )
    assert existing.read_text() == "# mine\n"
    # a dangling symlink is not followed either
    (isolated / "link.toml").symlink_to(isolated / "elsewhere.toml")
    assert run_script("init", "--settings", "link.toml").returncode == 1
    assert not (isolated / "elsewhere.toml").exists()
    assert listing(isolated) == ["link.toml", "settings.toml"]


def test_where_it_writes_follows_the_settings_option(isolated: Path) -> None:
    (isolated / "conf").mkdir()
    by_variable = run_script("init", env={"MODELREG_SETTINGS": "conf/a.toml"})
    assert by_variable.returncode == 0 and (isolated / "conf/a.toml").is_file()
    assert "modelreg check\n" in by_variable.stdout  # the variable already points there
    (isolated / ".env").write_text("MODELREG_SETTINGS=conf/b.toml\n")
    assert run_script("init").returncode == 0 and (isolated / "conf/b.toml").is_file()
    assert run_script("check", env={"AZURE_OPENAI_API_KEY": "k-1"}).stdout.startswith("OK: conf/b")
    again = run_script("init")
    assert again.returncode == 1 and "'conf/b.toml' (from .env (MODELREG_SETTINGS))" in again.stderr
    missing_dotenv = run_script("init", "--dotenv", "nope.env")
    assert missing_dotenv.returncode == 1 and "nope.env" in missing_dotenv.stderr


def test_unwritable_places_fail_cleanly(isolated: Path) -> None:
    (isolated / "a-file").write_text("")
    for target, problem in (
        ("a-file/settings.toml", "its directory does not exist (or is not a directory)"),
        ("no-such-dir/settings.toml", "its directory does not exist"),
        ("/proc/settings.toml", "cannot write '/proc/settings.toml'"),
    ):
        result = run_script("init", "--settings", target)
        assert result.returncode == 1, target
        assert result.stderr.startswith("modelreg: error: ") and problem in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert listing(isolated) == ["a-file"]


def test_odd_file_names(isolated: Path) -> None:
    name = os.fsdecode(b"new\nline \xff.toml")
    result = run_script("init", "--settings", name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote new\\nline \\xff.toml (azure backend)")
    assert os.listdir(os.fsencode(isolated)) == [b"new\nline \xff.toml"]
    again = run_script("init", "--json", "--settings", name)
    assert again.returncode == 1
    assert "already exists" in json.loads(again.stderr)["error"]


def test_json(isolated: Path) -> None:
    result = run_script("init", "--json", "--backend", "openai")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["written"] == "settings.toml" and data["backend"] == "openai"
    assert data["next_steps"][2] == "modelreg check"
    usage = run_script("--json", "init", "--backend", "bedrock")
    assert usage.returncode == 2 and json.loads(usage.stderr)["kind"] == "UsageError"
    env_option = run_script("init", "--env", "prod")  # init writes every environment
    assert env_option.returncode == 2 and listing(isolated) == ["settings.toml"]


def test_help_has_examples_variables_and_exit_codes() -> None:
    text = run_script("init", "--help").stdout
    assert "modelreg init --backend openai --settings openai.toml" in text
    assert "MODELREG_SETTINGS" in text and "1  the file exists" in text
    assert "{azure,openai}" in text


@pytest.mark.parametrize(
    "example", next(c for c in COMMANDS if c.name == "init").examples, ids=lambda e: e
)
def test_every_help_example_runs_in_an_empty_directory(example: str, isolated: Path) -> None:
    result = run_script(*shlex.split(example)[1:])
    assert result.returncode == 0, result.stderr
    assert len(listing(isolated)) == 1


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_readme_block_runs_as_written(isolated: Path) -> None:
    block = readme_block("**Starting a project.**", "bash")
    script = "set -e\n" + block
    result = _shell(script, {})
    assert result.returncode == 0, result.stderr
    assert "Hello from the fake chat model." in result.stdout
    assert "OK: starter.toml" in result.stdout and "0 error(s), 0 warning(s)" in result.stdout

"""The README's commands and code blocks, run as written; and every block is run by some test.

Blocks elsewhere in the suite are run where their subject is tested (the plugin section in
test_readme_plugin.py, capabilities in test_capabilities.py, pools in test_routing.py); the last
test here fails when a block is added that no test runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import README, modelreg, readme_block

REPO = README.parent
_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    import os

    full = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=full, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def repo_settings(isolated: Path) -> Path:
    shutil.copy(REPO / "settings.toml", isolated / "settings.toml")
    return isolated


def test_first_command_shows_chat_for_prod(repo_settings: Path) -> None:
    command = readme_block("# modelreg", "bash").splitlines()[0].split("#")[0]
    shown = command.split("&&", 1)[1].split()  # the install part is what CI does
    assert shown[0] == "modelreg"
    result = modelreg(*shown[1:])
    assert result.returncode == 0, result.stderr
    assert "settings.toml [environments.prod.models.chat]" in result.stdout


def test_quickstart_code_with_its_settings(isolated: Path) -> None:
    (isolated / "settings.toml").write_text(readme_block("## Quickstart", "toml"))
    code = readme_block("## Quickstart", "python")
    # the settings' own test environment: the fake backend answers, no network
    out = run_python(code, isolated, {"MODELREG_ENV": "test"})
    assert out.strip() == "Hello from the fake chat model."
    check = modelreg("check", env={"AZURE_OPENAI_API_KEY": "k"})
    assert check.returncode == 0, check.stdout + check.stderr


def test_registry_example_on_the_repository_settings(repo_settings: Path) -> None:
    code = readme_block("For many models, hold a registry", "python")
    out = run_python(code, repo_settings, {"AZURE_OPENAI_API_KEY": "k-not-printed"})
    assert "'deployment': {'value': 'gpt-4o'" in out and "k-not-printed" not in out


def test_key_vault_extra_exists() -> None:
    command = readme_block("**Azure Key Vault.**", "bash").strip()
    extra = re.fullmatch(r"pip install 'modelreg\[([\w-]+)\]'", command)
    assert extra is not None
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert extra.group(1) in pyproject["project"]["optional-dependencies"]


def test_prefetch_command_is_the_cli_s(isolated: Path) -> None:
    command = readme_block("**Air-gapped machines.**", "bash").split("#")[0].split()
    assert command[:3] == ["modelreg", "tokens", "--prefetch"]
    # no internet here: the download fails with one clear line, no traceback
    result = modelreg(*command[1:])
    assert result.returncode == 1, result.stdout
    assert "could not download" in result.stderr and "Traceback" not in result.stderr


def _tested_anchors() -> set[tuple[str, str]]:
    """(anchor, language) of every readme_block() call in the test suite."""
    calls = re.compile(r"readme_block\(\s*\"([^\"]+)\",\s*\"(\w+)\"")
    found: set[tuple[str, str]] = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        found.update(calls.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_block_is_run_by_a_test() -> None:
    text = README.read_text(encoding="utf-8")
    covered = set()
    for anchor, language in _tested_anchors():
        start = text.index(f"```{language}\n", text.index(anchor))
        covered.add(start)
    untested = [
        f"line {text[: m.start()].count(chr(10)) + 1}: {m.group(2).strip().splitlines()[0]}"
        for m in _BLOCK.finditer(text)
        if m.start() not in covered and m.group(1) != "text"
    ]
    assert not untested, "README blocks no test runs: " + "; ".join(untested)

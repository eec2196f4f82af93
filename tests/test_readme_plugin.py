"""The README's "Writing a plugin" section, run as written.

Its ``pyproject.toml`` and module are built into a real package and installed by pip into a
directory of their own (offline: ``--no-build-isolation --no-index``; the dependency on modelreg
is the one this venv already has), and its test snippet runs under pytest in a fresh
interpreter where the installed copy of the plugin has already been loaded.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from registry import ModelRegistry, create_model
from registry.plugins import get_plugin_host
from tests.azure_server import AzureServer
from tests.helpers import readme_block
from tests.test_plugins import MESSAGES, RecordingClient, text

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def acme_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's package, built and pip-installed into a directory (returned)."""
    project = tmp_path_factory.mktemp("modelreg-acme")
    (project / "pyproject.toml").write_text(readme_block("The `pyproject.toml`", "toml"))
    (project / "modelreg_acme").mkdir()
    (project / "modelreg_acme" / "__init__.py").write_text(
        readme_block("One example of each hook", "python")
    )
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation"]
    command += ["--no-index", "--no-deps", "--target", str(target), str(project)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"},
    )
    assert result.returncode == 0, result.stderr
    return target


def test_readme_package_metadata(acme_site: Path) -> None:
    (dist,) = importlib.metadata.distributions(name="modelreg-acme", path=[str(acme_site)])
    assert dist.version == "0.1.0"
    assert dist.requires == ["modelreg"]
    (entry_point,) = dist.entry_points.select(group="modelreg")
    assert (entry_point.name, entry_point.value) == ("acme", "modelreg_acme")


def test_readme_plugin_installed(
    acme_site: Path,
    write_settings: Callable[[str], Path],
    server: AzureServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(acme_site))
    write_settings(
        f"""
        [models.a]
        backend = "acme"
        greeting = "${{ACME_GREETING}}"
        token_counter = "acme-words"
        [models.streamed]
        backend = "acme"
        config = {{ stream = true }}
        [models.rl]
        backend = "azure"
        deployment = "policy"
        endpoint = "{server.base_url}"
        api_version = "2024-10-21"
        api_key = "test-key"
        client_provider = "acme-rl"
        """
    )
    import modelreg_acme  # type: ignore[import-not-found]

    modelreg_acme.VAULT["ACME_GREETING"] = "hi"  # served by the plugin's secret store
    model = create_model("a")
    assert (
        "acme vault (ACME_GREETING)"
        in ModelRegistry.from_settings().explain("a").fields["greeting"].source
    )
    assert text(model.run([{"role": "user", "content": "there"}])) == "hi, there"
    assert text(asyncio.run(model.arun([{"role": "user", "content": "you"}]))) == "hi, you"
    assert model.token_counter.count_tokens_from_messages([{"content": "a b c"}]) == 3
    streamed = create_model("streamed")
    chunks = list(streamed.run(MESSAGES))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "hello, Hello"
    assert chunks[-1].choices[0].finish_reason == "stop"

    async def collect() -> str:
        stream = await streamed.arun(MESSAGES)
        return "".join([c.choices[0].delta.content or "" async for c in stream])

    assert asyncio.run(collect()) == "hello, Hello"

    rollout_client = RecordingClient("from the RL framework")
    modelreg_acme.PROVIDER.client = rollout_client
    try:
        assert text(create_model("rl").run(MESSAGES)) == "from the RL framework"
        assert rollout_client.calls[0]["model"] == "policy"
    finally:
        modelreg_acme.PROVIDER.client = None
    assert text(create_model("rl").run(MESSAGES)).startswith("Hello")
    acme = {p.name: p for p in get_plugin_host().plugins()}["acme"]
    assert (acme.distribution, acme.version, acme.errors) == ("modelreg-acme", "0.1.0", [])
    assert acme.registered == {
        "backends": ["acme"],
        "token_counters": ["acme-words"],
        "client_providers": ["acme-rl"],
        "settings_sources": ["acme-vault"],
        "capabilities": [],
    }


def test_readme_plugin_test_passes_as_written(acme_site: Path, tmp_path: Path) -> None:
    """The README's test, after the installed plugins (this one included) were loaded."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_acme.py").write_text(readme_block("**Testing a plugin.**", "python"))
    (suite / "conftest.py").write_text(
        textwrap.dedent(
            """
            from registry.plugins import get_plugin_host

            loaded = {p.name: p for p in get_plugin_host().plugins()}
            assert loaded["acme"].distribution == "modelreg-acme", loaded
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(acme_site), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=suite,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout

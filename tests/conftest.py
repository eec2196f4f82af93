"""Test isolation and the loopback Azure server.

Every test runs in an empty temporary directory with every variable modelreg or the openai SDK
reads removed, so no test sees the developer's own environment, settings.toml or .env.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from registry import factory
from registry.gateways import gateway_pool
from registry.plugins import reset_plugin_host
from registry.routing.stores import close_shared_state_stores
from tests.azure_server import AzureServer

_PREFIXES = ("MODELREG_", "AZURE_", "OPENAI_")
_NAMES = ("MODEL_TIMEOUT", "AZURE_DEPLOYMENT_NAME", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")
SHARED_TIKTOKEN_CACHE = Path(__file__).resolve().parents[2] / "shared" / "tiktoken-cache"
_INHERITED_TIKTOKEN_CACHE = os.environ.get("TIKTOKEN_CACHE_DIR")


def tiktoken_cache() -> str | None:
    """The directory with the official encodings (CI sets TIKTOKEN_CACHE_DIR; else ../shared)."""
    if _INHERITED_TIKTOKEN_CACHE:
        return _INHERITED_TIKTOKEN_CACHE
    return str(SHARED_TIKTOKEN_CACHE) if SHARED_TIKTOKEN_CACHE.is_dir() else None


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty working directory and an environment without our variables."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES) or name in _NAMES:
            monkeypatch.delenv(name)
    cache = tiktoken_cache()
    if cache:
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", cache)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    reset_plugin_host()
    factory._warned_orphans.clear()
    yield work
    reset_plugin_host()
    # Process-wide connection pools (create_model's, gateway scopes'): a test's keep-alive
    # connections must not stay open into the next test, which may count them.
    factory._shared_pool.close()
    gateway_pool().close()
    close_shared_state_stores()  # a pool's cooldowns must not outlive the test that set them


@pytest.fixture(scope="session")
def azure_server() -> Iterator[AzureServer]:
    server = AzureServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(azure_server: AzureServer) -> AzureServer:
    """The shared loopback server, reset for this test."""
    azure_server.reset()
    return azure_server


@pytest.fixture
def write_settings(isolated: Path) -> Callable[[str], Path]:
    """Write ./settings.toml (dedented) and return its path."""

    def write(text: str, name: str = "settings.toml") -> Path:
        path = isolated / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write

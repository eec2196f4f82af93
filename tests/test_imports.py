"""Importing the packages has no side effects, and the public API is complete."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import registry
from tests.azure_server import AzureServer


def test_import_registry_loads_no_sdk_tokenizer_or_plugins() -> None:
    code = (
        "import sys, registry, backends;"
        "heavy = [m for m in ('openai', 'httpx2', 'tiktoken', 'backends.builtin', 'backends.azure')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_create_model_does_not_import_openai(tmp_path: Path) -> None:
    code = (
        "import sys, pathlib;"
        "pathlib.Path('settings.toml').write_text('[models.m]\\nbackend = \"azure\"\\n"
        'deployment = "d"\\nendpoint = "https://x.example.com"\\napi_version = "2024-10-21"\\n'
        'api_key = "k"\\n\');'
        "from registry import create_model;"
        "m = create_model('m');"
        "print('openai' in sys.modules, 'tiktoken' in sys.modules, 'asyncio' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(tmp_path)
    )
    assert result.stdout.strip() == "False False False"


def test_all_is_sorted_and_complete() -> None:
    assert registry.__all__ == sorted(registry.__all__)
    for name in registry.__all__:
        assert getattr(registry, name) is not None
    helpers = {"annotations", "importlib", "TYPE_CHECKING", "Any", "lazy_attributes"}
    public = {
        name
        for name in dir(registry)
        if not name.startswith("_") and not isinstance(getattr(registry, name), types.ModuleType)
    }
    assert public - helpers == set(registry.__all__)


def test_list_command_imports_no_plugins_sdk_or_tokenizer(tmp_path: Path) -> None:
    """`modelreg list` must start fast: no plugins, SDK, tokenizer or backend validation.

    (pydantic-settings reads the registry's options, so pydantic itself is imported.)
    """
    (tmp_path / "settings.toml").write_text('[models.m]\nbackend = "azure"\ndeployment = "d"\n')
    heavy = "('openai', 'httpx2', 'tiktoken', 'pluggy', 'backends.azure', 'registry.resolve')"
    code = (
        "import sys, io; from registry.cli import main;"
        "rc = main(['list'], io.StringIO());"
        f"print(rc, [m for m in {heavy} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(tmp_path)
    )
    assert result.stdout.strip() == "0 []"


def test_options_are_read_by_pydantic_settings_only_when_some_are_set(tmp_path: Path) -> None:
    """No option anywhere: defaults, and pydantic-settings is not imported (cold start)."""
    (tmp_path / "settings.toml").write_text('[models.m]\nbackend = "fake"\n')
    code = (
        "import sys; from registry import create_model; m = create_model('m');"
        "from registry.options import registry_options; o = registry_options();"
        "print('pydantic_settings' in sys.modules, o.get('env'), o.origin('env'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    quiet = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path), env=env
    )
    assert quiet.stdout.split() == ["False", "None", "built-in", "default"], quiet.stderr
    (tmp_path / "settings.toml").write_text(
        '[models.m]\nbackend = "fake"\n[environments.prod.models.m]\nreply = "p"\n'
    )
    env["MODELREG_ENV"] = "prod"
    set_ = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path), env=env
    )
    assert set_.stdout.split() == ["True", "prod", "env", "MODELREG_ENV"], set_.stderr


#: Modules a first request on a model without fallbacks, faults or request settings needs none of.
_NOT_NEEDED = (
    "registry.routing.plan",  # fallbacks and pools
    "backends.fake_faults",  # the fake backend's fault scripts
    "backends.sdk_params",  # reading the SDK's parameter types: only to check a config
    "backends.capabilities",  # the capability table: only for request settings or check_context
)
#: Built-ins registered by import path that an azure model's first request does not use, and
#: the plugin selection (a request with settings loads the installed plugins, and with them these).
_OTHER_BUILTINS = (
    "backends.openai_compatible",  # the other built-in backends
    "backends.fake",
    "backends.token_counting",  # the token counters: only when the model counts
    "registry.plugin_selection",  # MODELREG_PLUGINS: read when installed plugins load
)


def _first_request_modules(
    server: AzureServer, tmp_path: Path, extra: str = "", watched: tuple[str, ...] = _NOT_NEEDED
) -> list[str]:
    """The modules of ``watched`` a fresh process imported for its first request."""
    (tmp_path / "settings.toml").write_text(
        f'[models.m]\nbackend = "azure"\ndeployment = "d"\nendpoint = "{server.base_url}"\n'
        f'api_version = "2024-10-21"\napi_key = "test-key"\nmax_retries = 0\n{extra}'
    )
    code = (
        "import sys; from registry import create_model;"
        "reply = create_model('m').run([{'role': 'user', 'content': 'Hello'}]);"
        "assert 'Hello' in reply.choices[0].message.content, reply;"
        f"print(','.join(m for m in {watched!r} if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "AZURE_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(tmp_path),
        env=env,
    )
    return [name for name in result.stdout.strip().split(",") if name]


def test_first_request_without_settings_does_only_what_it_needs(
    server: AzureServer, tmp_path: Path
) -> None:
    """A serverless cold start pays for the SDK, not for features the model does not use."""
    assert _first_request_modules(server, tmp_path, watched=_NOT_NEEDED + _OTHER_BUILTINS) == []
    assert len(server.requests) == 1


def test_first_request_with_settings_checks_them(server: AzureServer, tmp_path: Path) -> None:
    """The same request with a setting: the config is checked and the capability rules run."""
    found = _first_request_modules(server, tmp_path, "config = { temperature = 0.2 }\n")
    assert found == ["backends.sdk_params", "backends.capabilities"]
    assert server.requests[-1].body["temperature"] == 0.2

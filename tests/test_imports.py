"""Importing the packages has no side effects, and the public API is complete."""

from __future__ import annotations

import subprocess
import sys

import registry


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


def test_create_model_does_not_import_openai(tmp_path: object) -> None:
    code = (
        "import sys, pathlib;"
        "pathlib.Path('settings.toml').write_text('[models.m]\\nbackend = \"azure\"\\n"
        'deployment = "d"\\nendpoint = "https://x.example.com"\\napi_version = "v"\\n'
        'api_key = "k"\\n\');'
        "from registry import create_model;"
        "m = create_model('m');"
        "print('openai' in sys.modules, 'tiktoken' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(tmp_path)
    )
    assert result.stdout.strip() == "False False"


def test_all_is_sorted_and_complete() -> None:
    assert registry.__all__ == sorted(registry.__all__)
    public = {name for name in vars(registry) if not name.startswith("_")}
    modules = {
        "errors",
        "factory",
        "hookspecs",
        "overrides",
        "settings",
        "spec",
        "sources",
        "resolve",
        "plugins",
        "pools",
        "cli",
        "checks",
    }
    assert public - modules == set(registry.__all__)

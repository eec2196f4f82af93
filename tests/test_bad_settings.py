"""Property-based: whatever the settings file and MODELREG_* variables hold, the only error that
escapes is a ConfigError naming a file, model, field or variable — and nothing is imported or
executed because a settings value names it.
"""

from __future__ import annotations

import os
import string
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import ConfigError, ModelRegistry, RegistryError
from registry.checks import check_settings
from registry.errors import RegistryWarning
from registry.layers import default_model_name
from registry.settings import load_settings

KNOWN_KEYS = [
    "default_model",
    "defaults",
    "models",
    "environments",
    "backend",
    "deployment",
    "model",
    "endpoint",
    "api_version",
    "api_key",
    "aliases",
    "config",
    "timeout",
    "max_retries",
    "temperature",
    "stream",
    "tools",
    "token_counter",
    "client_provider",
    "reply",
    "base_url",
    "client_kwargs",
    "azure_ad_token",
    "prod",
    "test",
    "chat",
    "fake",
    "azure",
    "openai",
]
NAMES = ["chat", "fake", "azure", "openai", "prod", "test", "défaut", "模型", "a b", ""]

text = st.one_of(
    st.sampled_from(
        [*NAMES, "${UNSET_VAR}", "${UNSET:-x}", "https://ok.example.com", "antigravity"]
    ),
    st.text(alphabet=string.printable + "éü模型\u200b", max_size=12),
)
scalars = st.one_of(
    text,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=25,
)
model_tables = st.dictionaries(
    st.sampled_from(
        [
            "backend",
            "deployment",
            "model",
            "endpoint",
            "api_version",
            "api_key",
            "aliases",
            "config",
            "timeout",
            "max_retries",
            "reply",
            "base_url",
            "token_counter",
            "client_provider",
            "tool_call",
            "bogus",
        ]
    ),
    st.one_of(
        st.sampled_from(["fake", "azure", "openai", "antigravity", "this"]),
        st.lists(st.sampled_from(NAMES), max_size=3),
        values,
    ),
    max_size=8,
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "default_model": st.one_of(st.sampled_from(NAMES), scalars),
        "defaults": st.one_of(model_tables, scalars),
        "models": st.one_of(
            st.dictionaries(st.sampled_from(NAMES), model_tables, max_size=4), scalars
        ),
        "environments": st.dictionaries(
            st.sampled_from(["prod", "test", "é"]),
            st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "models": st.dictionaries(st.sampled_from(NAMES), model_tables, max_size=3),
                        "defaults": model_tables,
                        "default_model": st.sampled_from(NAMES),
                    },
                ),
                values,
            ),
            max_size=2,
        ),
        "unknown_top": values,
    },
)
env_values = st.dictionaries(
    st.sampled_from(
        [
            "MODELREG_MODELS",
            "MODELREG_DEFAULTS",
            "MODELREG_DEFAULT_MODEL",
            "MODELREG_MODELS__CHAT",
            "MODELREG_MODELS__CHAT__DEPLOYMENT",
            "MODELREG_MODELS__CHAT__TIMEOUT",
            "MODELREG_MODELS__CHAT__ALIASES",
            "MODELREG_MODELS__CHAT__CONFIG__TEMPERATURE",
            "MODELREG_MODELS__CHAT__BACKEND",
            "MODELREG_ENVIRONMENTS__PROD__MODELS__CHAT__BACKEND",
            "MODELREG_MODELS__NEW__BACKEND",
            "MODELREG_MODELS____X",
            "MODELREG_ENV",
        ]
    ),
    st.one_of(
        st.sampled_from(["fake", "azure", "[1,2]", '{"a": 1}', "{oops", "prod", "1e400", ""]), text
    ),
    max_size=4,
)

plausible_models = st.dictionaries(
    st.sampled_from(NAMES),
    st.fixed_dictionaries(
        {"backend": st.sampled_from(["fake", "fake", "azure", "openai", "nope"])},
        optional={
            "deployment": st.one_of(st.sampled_from(["d", "${UNSET}", "${X:-d}"]), scalars),
            "endpoint": st.one_of(st.just("https://r.example.com"), text),
            "api_version": st.one_of(st.just("2024-10-21"), scalars),
            "api_key": st.one_of(st.just("k"), scalars),
            "model": st.one_of(st.sampled_from(["gpt-4o", "gpt-35-turbo", "llama"]), scalars),
            "aliases": st.one_of(st.lists(st.sampled_from(NAMES), max_size=3), values),
            "config": st.one_of(
                st.dictionaries(
                    st.sampled_from(
                        ["temperature", "stream", "tools", "stop", "seed", "temprature"]
                    ),
                    values,
                    max_size=3,
                ),
                values,
            ),
            "timeout": scalars,
            "max_retries": scalars,
            "reply": scalars,
            "base_url": text,
        },
    ),
    min_size=1,
    max_size=4,
)
plausible_documents = st.fixed_dictionaries(
    {"models": plausible_models},
    optional={
        "default_model": st.sampled_from(NAMES),
        "defaults": st.dictionaries(
            st.sampled_from(["timeout", "max_retries", "config", "backend"]), values, max_size=2
        ),
        "environments": st.dictionaries(
            st.sampled_from(["prod", "test"]),
            st.fixed_dictionaries({"models": plausible_models}),
            max_size=2,
        ),
    },
)
leaf_env_values = st.dictionaries(
    st.sampled_from(
        [
            "MODELREG_MODELS__CHAT__DEPLOYMENT",
            "MODELREG_MODELS__CHAT__TIMEOUT",
            "MODELREG_MODELS__FAKE__ALIASES",
            "MODELREG_MODELS__CHAT__CONFIG__TEMPERATURE",
            "MODELREG_MODELS__CHAT__BACKEND",
            "MODELREG_DEFAULTS__TIMEOUT",
            "MODELREG_ENVIRONMENTS__PROD__MODELS__CHAT__BACKEND",
            "MODELREG_ENV",
            "MODELREG_DEFAULT_MODEL",
        ]
    ),
    st.one_of(
        st.sampled_from(["fake", "azure", "[1,2]", '["x"]', "{oops", "prod", "1e400", "", "3"]),
        text,
    ),
    max_size=3,
)

NAMED_SOMETHING = (
    "settings.toml",
    "model '",
    "field",
    "env ",
    "MODELREG_",
    ".env",
    "environment",
    "default_model",
)


def exercise(path: Path) -> None:
    """Load, then resolve, build and explain every model in every environment, and check."""
    loaded = load_settings(path)
    check_settings(loaded)
    for env in [None, *loaded.environment_names()]:
        registry = ModelRegistry(loaded, env=env)
        for name in registry.names():
            registry.explain(name)
            try:
                registry.create(name)
            except ConfigError as exc:
                if "credentials" not in str(exc):
                    raise
        if default_model_name(loaded, env) is not None:
            registry.resolve(None)


def check_only_config_errors(path: Path, document: dict[str, Any], environ: dict[str, str]) -> None:
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    before = set(sys.modules)
    saved = {k: v for k, v in os.environ.items() if k.startswith("MODELREG_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(environ)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RegistryWarning)  # a misspelt variable only warns
            exercise(path)
    except RegistryError as exc:
        assert isinstance(exc, ConfigError), f"{type(exc).__name__}: {exc}"
        assert any(word in str(exc) for word in NAMED_SOMETHING), str(exc)
    finally:
        for key in environ:
            os.environ.pop(key, None)
        os.environ.update(saved)
    imported = set(sys.modules) - before
    assert not {"antigravity", "this"} & imported


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=documents, environ=env_values)
def test_any_document_only_config_errors(
    isolated: Path, document: dict[str, Any], environ: dict[str, str]
) -> None:
    check_only_config_errors(isolated / "settings.toml", document, environ)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=plausible_documents, environ=leaf_env_values)
def test_plausible_document_only_config_errors(
    isolated: Path, document: dict[str, Any], environ: dict[str, str]
) -> None:
    check_only_config_errors(isolated / "settings.toml", document, environ)


@pytest.mark.parametrize(
    "text",
    [
        "[models.a\n",
        "models = 1\n",
        "[models.a]\nbackend = \n",
        "\x00",
        "[[models]]\nx=1\n",
        "a = 'b' = c\n",
    ],
)
def test_malformed_files(isolated: Path, text: str) -> None:
    path = isolated / "settings.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings\.toml"):
        exercise(path)


def test_not_utf8(isolated: Path) -> None:
    path = isolated / "settings.toml"
    path.write_bytes(b'[models.a]\nreply = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match=r"settings\.toml"):
        load_settings(path)


def test_alias_cycle_is_config_error(isolated: Path) -> None:
    path = isolated / "settings.toml"
    path.write_text(
        '[models.a]\nbackend = "fake"\naliases = ["b"]\n[models.b]\nbackend = "fake"\naliases = ["a"]\n'
    )
    with pytest.raises(ConfigError, match="also the name of a model"):
        exercise(path)


def test_deep_nesting_and_huge_values(isolated: Path) -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(60):
        deep = {"k": deep}
    document = {
        "models": {"m": {"backend": "fake", "config": {"extra_body": deep}, "max_retries": 10**18}}
    }
    path = isolated / "settings.toml"
    path.write_text(tomli_w.dumps(document))
    with pytest.raises(ConfigError, match=r"model 'm', field 'max_retries'"):
        exercise(path)
    document["models"]["m"]["max_retries"] = 2
    path.write_text(tomli_w.dumps(document))
    exercise(path)


def test_names_in_settings_are_never_imported(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = isolated / "settings.toml"
    path.write_text(
        '[models.a]\nbackend = "this"\n[models.b]\nbackend = "fake"\ntoken_counter = "antigravity"\n'
        'client_provider = "os.system"\n'
    )
    before = set(sys.modules)
    for name in ("a", "b"):
        with pytest.raises(ConfigError):
            registry = ModelRegistry.from_settings(path)
            registry.create(name).token_counter  # noqa: B018
    assert not {"this", "antigravity"} & (set(sys.modules) - before)
    assert "Zen of Python" not in capsys.readouterr().out

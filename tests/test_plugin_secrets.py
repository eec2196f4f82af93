"""Secrets in a plugin's settings (issue 15, point 8): masked even when typed ``str``.

A plugin's settings class names a field like a secret (``token``, ``password``) but types it
``str``: ``show``, ``--json`` and the repr of ``spec.options`` mask it without the plugin changing
its class, the plugin's ``isinstance`` checks still hold, and ``modelreg check`` warns to type it
``SecretStr``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from backends.base import BackendSettings
from registry import ModelRegistry, create_model, hookimpl
from registry.cli import main
from registry.testing import use_plugins
from tests.test_client_overrides import EchoModel

TOKEN, PASSWORD, KEY = "tok-3e9a51", "pw-77c0d2", "sk-1f0b6e"


class VaultSettings(BackendSettings):
    greeting: str = "hi"
    token: str
    db_password: str | None = None
    api_key: SecretStr | None = None
    token_counter_name: str = "words"  # not a secret: the name ends in "name"


class VaultModel(EchoModel):
    settings_model = VaultSettings

    @classmethod
    def from_spec(cls, spec: Any, context: Any) -> VaultModel:
        assert isinstance(spec.options, VaultSettings)  # the plugin's own check keeps holding
        model = cls(model_config_dict=spec.config, name=spec.name)
        model.options = spec.options  # type: ignore[attr-defined]
        return model


class VaultPlugin:
    @hookimpl
    def modelreg_register_backends(self, register: Callable[[str, Any], None]) -> None:
        register("vault", VaultModel)


@pytest.fixture
def vault(write_settings: Callable[[str], Path]) -> Iterator[None]:
    write_settings(
        f"""
        [models.v]
        backend = "vault"
        token = "{TOKEN}"
        db_password = "{PASSWORD}"
        api_key = "{KEY}"
        [models.pool]
        backend = "vault"
        token = "{TOKEN}"
        [[models.pool.deployments]]
        db_password = "{PASSWORD}"
        [[models.pool.deployments]]
        greeting = "hello"
        """
    )
    with use_plugins(VaultPlugin()):
        yield


def _no_secret(text: str) -> None:
    for secret in (TOKEN, PASSWORD, KEY):
        assert secret not in text


@pytest.mark.usefixtures("vault")
def test_repr_of_plugin_settings_masks_secret_named_fields() -> None:
    spec = ModelRegistry.from_settings().resolve("v")
    options = spec.options
    assert isinstance(options, VaultSettings) and type(options).__name__ == "VaultSettings"
    assert options.token == TOKEN and options.db_password == PASSWORD  # the values are intact
    for shown in (repr(options), str(options), repr(spec.values())):
        _no_secret(shown)
    assert "token='***'" in repr(options) and "greeting='hi'" in repr(options)
    assert "token_counter_name='words'" in repr(options)
    model = create_model("v")
    _no_secret(repr(model.options))  # type: ignore[attr-defined]
    pool = ModelRegistry.from_settings().resolve("pool")
    for member in pool.deployments:
        _no_secret(repr(member.options))
    assert pool.deployments[0].options.db_password == PASSWORD  # type: ignore[attr-defined]


@pytest.mark.usefixtures("vault")
@pytest.mark.parametrize("as_json", [False, True])
def test_show_masks_secret_named_fields(as_json: bool) -> None:
    out = io.StringIO()
    assert main([*(["--json"] if as_json else []), "show", "v"], out) == 0
    _no_secret(out.getvalue())
    if as_json:
        fields = json.loads(out.getvalue())["fields"]
        assert fields["token"]["value"] == fields["db_password"]["value"] == "***"
        assert fields["greeting"]["value"] == "hi"


@pytest.mark.usefixtures("vault")
def test_check_warns_to_type_secret_named_fields_secretstr() -> None:
    out = io.StringIO()
    assert main(["check"], out) == 0
    report = out.getvalue()
    _no_secret(report)
    for name in ("token", "db_password"):
        line = next(line for line in report.splitlines() if f"field {name!r}" in line)
        assert line.startswith("warning: ") and "Type it pydantic.SecretStr" in line
        assert "backend 'vault' (tests.test_plugin_secrets.VaultSettings)" in line
    assert "field 'api_key'" not in report and "token_counter_name" not in report
    assert report.count("field 'token' holds a secret") == 1  # once, whatever the models
    assert main(["check", "--strict"], io.StringIO()) == 1

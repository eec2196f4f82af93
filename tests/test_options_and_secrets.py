"""Registry options from every origin, secrets directories, Azure Key Vault over loopback HTTPS,
and secret stores from plugins."""

from __future__ import annotations

import json
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import ConfigError, ModelRegistry, create_model
from registry.errors import RegistryWarning
from registry.options import registry_options
from tests.azure_server import AzureServer
from tests.helpers import modelreg
from tests.keyvault_server import IdentityServer, KeyVaultServer, self_signed_certificate

SECRET = "sk-from-the-store-4d2e"


def azure_model(server: AzureServer, **fields: str) -> str:
    lines = [
        "[models.chat]",
        'backend = "azure"',
        'deployment = "dep"',
        f'endpoint = "{server.base_url}"',
        'api_version = "2024-10-21"',
        "max_retries = 0",
        *(f"{k} = {v}" for k, v in fields.items()),
    ]
    return "\n".join(lines) + "\n"


# -- 1. options: one class, read the same way ------------------------------------------------


def test_each_option_from_each_origin_in_order(
    write_settings: Callable[[str], Path], isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(
        'secrets_dir = "from-file"\ntiktoken_cache_dir = "file-cache"\n'
        '[models.m]\nbackend = "fake"\n[environments.prod.models.m]\nreply = "p"\n'
        "[environments.staging.models.m]\nreply = 's'\n"
    )
    for name in ("from-file", "from-dotenv", "from-env"):
        (isolated / name).mkdir()
    (isolated / ".env").write_text(
        "MODELREG_SECRETS_DIR=from-dotenv\nMODELREG_ENV=staging\nMODELREG_PLUGINS=a, b\n"
    )
    monkeypatch.setenv("MODELREG_SECRETS_DIR", "from-env")
    options = registry_options()
    assert str(options.get("secrets_dir")) == "from-env"
    assert options.origin("secrets_dir") == "env MODELREG_SECRETS_DIR"
    assert options.get("env") == "staging"
    assert options.origin("env") == ".env (MODELREG_ENV)"
    assert options.get("plugins") == ["a", "b"]
    assert options.origin("plugins") == ".env (MODELREG_PLUGINS)"
    assert str(options.get("tiktoken_cache_dir")) == "file-cache"
    assert options.origin("tiktoken_cache_dir") == "settings.toml (tiktoken_cache_dir)"
    assert options.origin("routing_state") == "built-in default"
    assert registry_options(env="prod").origin("env") == "keyword argument"
    assert ModelRegistry.from_settings().env == "staging"
    monkeypatch.delenv("MODELREG_SECRETS_DIR")
    assert registry_options().origin("secrets_dir") == ".env (MODELREG_SECRETS_DIR)"
    result = modelreg("config", "--json", "--env", "prod")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["env"] == {"variable": "MODELREG_ENV", "value": "prod", "source": "command line"}
    assert shown["secrets_dir"]["source"] == ".env (MODELREG_SECRETS_DIR)"
    text = modelreg("config").stdout
    assert "MODELREG_PLUGINS" in text and '["a", "b"]' in text


def test_plugins_option_in_dotenv_is_honoured(
    write_settings: Callable[[str], Path], isolated: Path
) -> None:
    from registry.plugins import get_plugin_host

    write_settings('[models.m]\nbackend = "fake"\n')
    (isolated / ".env").write_text("MODELREG_PLUGINS=\n")  # empty: only the built-ins
    plugins = get_plugin_host().plugins()
    assert {p.name for p in plugins if not p.disabled_by} == {
        "backends.builtin",
        "registry.secret_stores",
    }
    # installed plugins are listed as disabled, with where the option was set
    assert all(p.disabled_by == ".env (MODELREG_PLUGINS)" for p in plugins if not p.builtin)


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("MODELREG_ROUTING_STATE", "sk-not-a-url-9911", "redis://"),
        ("MODELREG_AZURE_KEY_VAULT_URL", "https://kv.example.com?k=sk-9912", "query string"),
        ("MODELREG_AZURE_KEY_VAULT_URL", "http://kv.example.com/sk-9914", "https://"),
        ("MODELREG_AZURE_KEY_VAULT_URL", "sk-9913", "not a URL"),
    ],
)
def test_invalid_option_names_variable_and_origin_not_value(
    variable: str,
    value: str,
    expected: str,
    write_settings: Callable[[str], Path],
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_settings('[models.m]\nbackend = "fake"\n')
    for where in ("environment", "dotenv"):
        if where == "environment":
            monkeypatch.setenv(variable, value)
            origin = f"env {variable}"
        else:
            monkeypatch.delenv(variable)
            (isolated / ".env").write_text(f"{variable}={value}\n")
            origin = f".env ({variable})"
        with pytest.raises(ConfigError) as caught:
            create_model("m")
        message = str(caught.value)
        assert origin in message and expected in message and value not in message
        result = modelreg("check")
        assert result.returncode == 1 and value not in result.stdout + result.stderr


def test_unknown_modelreg_variable_warns_with_did_you_mean(
    write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    write_settings('[models.m]\nbackend = "fake"\n')
    monkeypatch.setenv("MODELREG_PLUGIN", "acme")
    (isolated / ".env").write_text("MODELREG_MODEL__M__REPLY=x\n")
    with pytest.warns(RegistryWarning) as caught:
        ModelRegistry.from_settings()
    messages = sorted(str(w.message) for w in caught)
    assert "MODELREG_MODEL__M__REPLY" in messages[0] and "MODELREG_MODELS" in messages[0]
    assert "MODELREG_PLUGIN is neither" in messages[1] and "'MODELREG_PLUGINS'" in messages[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ModelRegistry.from_settings()  # once per process


# -- 2. secrets directories ------------------------------------------------------------------


def test_secrets_dir_value_reaches_the_request_masked_with_its_origin(
    write_settings: Callable[[str], Path],
    isolated: Path,
    server: AzureServer,
) -> None:
    secrets = isolated / "run-secrets"
    secrets.mkdir()
    (secrets / "AZURE_OPENAI_API_KEY").write_text(SECRET + "\n")
    (secrets / "DEPLOYMENT_NAME").write_text("dep\n")
    server.api_keys = {SECRET}
    write_settings(
        f'secrets_dir = "{secrets}"\n'
        + azure_model(server).replace('"dep"', '"${DEPLOYMENT_NAME}"')
    )
    create_model("chat").run([{"role": "user", "content": "hi"}])
    assert server.requests[-1].headers["api-key"] == SECRET
    fields = ModelRegistry.from_settings().explain("chat").fields
    assert fields["api_key"].value == "***"
    assert fields["api_key"].source == f"secrets dir {secrets} (AZURE_OPENAI_API_KEY)"
    assert fields["deployment"].value == "***"  # a secret from the moment it is read
    assert fields["deployment"].source.endswith(
        f"via ${{DEPLOYMENT_NAME}} from secrets dir {secrets} (DEPLOYMENT_NAME)"
    )
    shown = modelreg("show", "chat")
    assert shown.returncode == 0 and SECRET not in shown.stdout
    assert f"secrets dir {secrets} (AZURE_OPENAI_API_KEY)" in shown.stdout


def test_environment_and_dotenv_beat_the_secrets_dir(
    write_settings: Callable[[str], Path],
    isolated: Path,
    server: AzureServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = isolated / "s"
    secrets.mkdir()
    (secrets / "AZURE_OPENAI_API_KEY").write_text("from-dir")
    write_settings(f'secrets_dir = "{secrets}"\n' + azure_model(server))
    (isolated / ".env").write_text("AZURE_OPENAI_API_KEY=from-dotenv\n")
    spec = ModelRegistry.from_settings().resolve("chat")
    assert spec.sources["api_key"] == ".env (AZURE_OPENAI_API_KEY)"
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "from-env")
    assert (
        ModelRegistry.from_settings().resolve("chat").sources["api_key"]
        == "env AZURE_OPENAI_API_KEY"
    )


@pytest.mark.parametrize("problem", ["missing", "a file"])
def test_unusable_secrets_dir_is_a_config_error_naming_it(
    problem: str, write_settings: Callable[[str], Path], isolated: Path, server: AzureServer
) -> None:
    target = isolated / "secrets"
    if problem == "a file":
        target.write_text("x")
    write_settings(f'secrets_dir = "{target}"\n' + azure_model(server))
    with pytest.raises(
        ConfigError, match=rf"secrets_dir '{target}' \(from settings\.toml \(secrets_dir\)\)"
    ):
        create_model("chat")
    result = modelreg("check")
    assert result.returncode == 1 and str(target) in result.stdout


# -- 3. Azure Key Vault, over real HTTPS on loopback ------------------------------------------


@pytest.fixture
def vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[KeyVaultServer, IdentityServer]]:
    """A Key Vault and a managed identity endpoint; the SDKs run unchanged against them.

    Two things cannot run here and are replaced: DNS (``kv.localhost`` resolves to 127.0.0.1:
    Key Vault's challenge check needs the vault's host to be a subdomain of the challenge's
    resource) and the certificate authority (the test's self-signed certificate is trusted via
    ``REQUESTS_CA_BUNDLE``).
    """
    cert, key = self_signed_certificate(tmp_path)
    server = KeyVaultServer(cert, key, {"AZURE-OPENAI-API-KEY": SECRET, "OTHER": "o"}).start()
    identity = IdentityServer().start()
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity.endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "identity-header-secret")
    from registry import secret_stores

    monkeypatch.setattr(secret_stores, "_vaults", {})
    yield server, identity
    server.stop()
    identity.stop()


def test_key_vault_secret_reaches_the_request(
    vault: tuple[KeyVaultServer, IdentityServer],
    write_settings: Callable[[str], Path],
    server: AzureServer,
) -> None:
    kv, identity = vault
    server.api_keys = {SECRET}
    write_settings(
        f'azure_key_vault_url = "{kv.url()}"\n'
        + azure_model(server)
        + '[models.keyed]\nbackend = "azure"\ndeployment = "d"\napi_key = "k"\n'
        f'endpoint = "{server.base_url}"\napi_version = "2024-10-21"\n'
        '[models.fake]\nbackend = "fake"\n'
    )
    registry = ModelRegistry.from_settings()
    registry.create("keyed")
    registry.create("fake")
    assert kv.requests == []  # models that need no secret never touch the vault
    registry.create("chat").run([{"role": "user", "content": "hi"}])
    assert server.requests[-1].headers["api-key"] == SECRET
    field = registry.explain("chat").fields["api_key"]
    assert (field.value, field.source) == (
        "***",
        f"Azure Key Vault {kv.url()} (AZURE_OPENAI_API_KEY)",
    )
    ModelRegistry.from_settings().create("chat")
    assert kv.gets("AZURE-OPENAI-API-KEY") == 1  # each secret at most once per process
    assert identity.requests  # the credential really came from DefaultAzureCredential


def test_key_vault_names_map_underscores_to_dashes(
    vault: tuple[KeyVaultServer, IdentityServer], write_settings: Callable[[str], Path]
) -> None:
    kv, _ = vault
    kv.secrets["MY-DEPLOYMENT"] = "from-vault"
    write_settings(
        f'azure_key_vault_url = "{kv.url()}"\n[models.f]\nbackend = "fake"\nreply = "${{MY_DEPLOYMENT}}"\n'
    )
    model = create_model("f")
    assert model.reply == "from-vault"  # type: ignore[attr-defined]


def test_unreachable_vault_is_a_config_error_naming_url_and_secret(
    write_settings: Callable[[str], Path], server: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry import secret_stores

    monkeypatch.setattr(secret_stores, "_vaults", {})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there
    url = f"https://127.0.0.1:{port}"
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{port}/msi")
    monkeypatch.setenv("IDENTITY_HEADER", "h")
    write_settings(f'azure_key_vault_url = "{url}"\n' + azure_model(server))
    with pytest.raises(ConfigError) as caught:
        create_model("chat")
    message = str(caught.value)
    assert url in message and "'AZURE-AD-TOKEN'" in message and "Traceback" not in message
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    result = modelreg("check")
    assert result.returncode == 1 and url in result.stdout and "Traceback" not in result.stderr


def test_key_vault_without_the_extra_says_what_to_install(
    write_settings: Callable[[str], Path], server: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry import secret_stores

    monkeypatch.setattr(secret_stores, "_vaults", {})
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as if not installed
    write_settings('azure_key_vault_url = "https://kv.example.com"\n' + azure_model(server))
    with pytest.raises(ConfigError, match=r"pip install 'modelreg\[azure-keyvault\]'"):
        create_model("chat")


# -- 4. any secret store as a plugin ---------------------------------------------------------


class _StorePlugin:
    def __init__(self, values: dict[str, str], order: int) -> None:
        self.values = values
        self.order = order
        self.asked: list[str] = []

    def lookup(self, name: str) -> str | None:
        self.asked.append(name)
        return self.values.get(name)

    def modelreg_register_settings_sources(self, register: Callable[[str, Any], None]) -> None:
        from registry.secret_stores import SettingsSource

        register(
            "test-store",
            SettingsSource(
                lambda options: self.lookup, order=self.order, label="test store ({name})"
            ),
        )


def test_plugin_secret_store_serves_variables_in_its_order(
    write_settings: Callable[[str], Path], isolated: Path, server: AzureServer
) -> None:
    from registry.hookspecs import hookimpl
    from registry.plugins import get_plugin_host

    secrets = isolated / "s"
    secrets.mkdir()
    (secrets / "AZURE_OPENAI_API_KEY").write_text("from-dir")
    plugin = _StorePlugin({"AZURE_OPENAI_API_KEY": SECRET}, order=25)
    hookimpl(plugin.modelreg_register_settings_sources.__func__)  # type: ignore[attr-defined]
    get_plugin_host().pm.register(plugin, name="test-store-plugin")
    server.api_keys = {SECRET}
    write_settings(f'secrets_dir = "{secrets}"\n' + azure_model(server))
    create_model("chat").run([{"role": "user", "content": "hi"}])
    assert server.requests[-1].headers["api-key"] == SECRET  # order 25: before the secrets dir
    fields = ModelRegistry.from_settings().explain("chat").fields
    assert (fields["api_key"].value, fields["api_key"].source) == (
        "***",
        "test store (AZURE_OPENAI_API_KEY)",
    )
    plugin.order = 35
    get_plugin_host().pm.unregister(name="test-store-plugin")
    get_plugin_host().pm.register(plugin, name="test-store-plugin")
    assert (
        ModelRegistry.from_settings().resolve("chat").sources["api_key"].startswith("secrets dir")
    )


def test_readme_variable_order_matches_code() -> None:
    import re

    from registry.plugins import get_plugin_host
    from registry.secret_stores import SettingsSource

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Where variables come from", 1)[1].split("\n**", 1)[0]
    rows = {int(n): source for n, source in re.findall(r"^\| (\d+) \| (.+?) \|", section, re.M)}
    stores = get_plugin_host().objects("settings_sources")
    assert rows[stores["secrets-dir"].order].startswith("the secrets directory")
    assert rows[stores["azure-key-vault"].order].startswith("Azure Key Vault")
    assert rows[SettingsSource.__dataclass_fields__["order"].default].startswith("secret stores")
    assert sorted(rows) == [10, 20, 30, 40, 50]


def test_options_as_keyword_arguments_come_first(
    write_settings: Callable[[str], Path], isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "from-arg").mkdir()
    (isolated / "from-env").mkdir()
    write_settings('[models.m]\nbackend = "fake"\n')
    monkeypatch.setenv("MODELREG_SECRETS_DIR", "from-env")
    options = ModelRegistry.from_settings(options={"secrets_dir": "from-arg"}).settings.options
    assert (str(options.get("secrets_dir")), options.origin("secrets_dir")) == (
        "from-arg",
        "keyword argument",
    )

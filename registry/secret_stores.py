"""Secret stores: where variables come from besides the environment and ``.env``.

Registered through the ``modelreg_register_settings_sources`` hook — the built-in secrets
directory and Azure Key Vault (this module is one of :data:`registry.plugins.DEFAULT_PLUGINS`)
exactly as a plugin registers AWS Secrets Manager or HashiCorp Vault::

    register("aws-secrets", SettingsSource(build, order=50, label="AWS Secrets Manager ({name})"))

``build(options)`` receives the :class:`~registry.options.LoadedOptions` and returns a
pydantic-settings source (``SecretsSettingsSource``, ``AzureKeyVaultSettingsSource``...), a callable
``lookup(name) -> str | None``, or None when the store is not configured. Stores are asked in
``order`` (the environment is 10 and ``.env`` 20, always first; the secrets directory 30, Key Vault
40), each variable at most once per process, and only for ``${VAR}`` references and credentials.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import ConfigError
from registry.hookspecs import RegisterSettingsSource, hookimpl
from registry.masking import escape_control
from registry.variables import VariableSource

if TYPE_CHECKING:
    from registry.options import LoadedOptions

__all__ = [
    "KEY_VAULT_INSTALL",
    "SettingsSource",
    "as_lookup",
    "azure_key_vault",
    "key_vault_secret_name",
    "modelreg_register_settings_sources",
    "secret_stores",
    "secrets_directory",
]

KEY_VAULT_INSTALL = "pip install 'modelreg[azure-keyvault]'"


@dataclass(frozen=True)
class SettingsSource:
    """A variable source a plugin registers: how to build it, where it goes, how to name values.

    Attributes:
        build: ``build(options)`` → a pydantic-settings source, a callable ``lookup(name)``, or
            None when the store is not configured here.
        order: its place among the stores (environment 10, ``.env`` 20, secrets dir 30, Key
            Vault 40; plugins default to 50).
        label: the origin shown for a value; ``{name}`` is the variable, and options may be
            named too (``{secrets_dir}``, ``{azure_key_vault_url}``).
    """

    build: Callable[[LoadedOptions], Any]
    order: int = 50
    label: str = "{name}"


def as_lookup(source: Any) -> Callable[[str], str | None]:
    """A ``lookup(name)`` for a pydantic-settings source (its ``get_field_value``) or a callable."""
    get_field_value = getattr(source, "get_field_value", None)
    if get_field_value is None:
        if not callable(source):
            raise TypeError(f"{type(source).__name__} is neither a settings source nor callable")
        return source  # type: ignore[no-any-return]
    from pydantic.fields import FieldInfo

    field = FieldInfo(annotation=str)

    def lookup(name: str) -> str | None:
        value = get_field_value(field, name)[0]
        return None if value is None else str(value)

    return lookup


def _cached(lookup: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """Each variable asked of a store at most once (a vault is a network call)."""
    found: dict[str, str | None] = {}
    lock = threading.Lock()

    def cached(name: str) -> str | None:
        with lock:
            if name not in found:
                found[name] = lookup(name)
            return found[name]

    return cached


def secret_stores(options: LoadedOptions) -> list[VariableSource]:
    """Every registered store that is configured here, in order (plugins loaded on demand)."""
    from registry.plugins import get_plugin_host

    registered: dict[str, SettingsSource] = get_plugin_host().objects("settings_sources")
    built: list[tuple[int, VariableSource]] = []
    context = collections.defaultdict(str, options.parsed)  # an unset option formats as ""
    for name, spec in registered.items():
        source = spec.build(options)
        if source is None:
            continue
        label = spec.label

        def origin(variable: str, label: str = label) -> str:
            return escape_control(
                label.format_map(collections.ChainMap({"name": variable}, context))
            )

        built.append((spec.order, VariableSource(name, _cached(as_lookup(source)), origin, True)))
    return [source for _, source in sorted(built, key=lambda item: item[0])]


# -- the secrets directory ---------------------------------------------------------------------


def secrets_directory(options: LoadedOptions) -> Any:
    """pydantic-settings' ``SecretsSettingsSource`` over ``secrets_dir`` (one file per variable).

    The trailing newline of each file is stripped (the convention of Docker and Kubernetes).
    """
    directory: Path | None = options.get("secrets_dir")
    if directory is None:
        return None
    origin = options.origin("secrets_dir")
    problem = _unusable_directory(directory)
    if problem:
        raise ConfigError(
            f"secrets_dir {escape_control(str(directory))!r} (from {origin}) {problem}. Create "
            "it (one file per variable, named like the variable), or unset the option."
        )
    from pydantic_settings import BaseSettings, SecretsSettingsSource

    class _Variables(BaseSettings):
        pass

    source = SecretsSettingsSource(_Variables, secrets_dir=directory, case_sensitive=True)
    source()  # resolves the directory
    return source


def _unusable_directory(directory: Path) -> str:
    if not directory.exists():
        return "does not exist"
    if not directory.is_dir():
        return "is not a directory"
    if not os.access(directory, os.R_OK | os.X_OK):
        return "cannot be read"
    return ""


# -- Azure Key Vault ---------------------------------------------------------------------------


def key_vault_secret_name(variable: str) -> str:
    """Key Vault names cannot hold ``_``: ``AZURE_OPENAI_API_KEY`` → ``AZURE-OPENAI-API-KEY``."""
    return variable.replace("_", "-")


class _KeyVault:
    """Variables from Azure Key Vault through pydantic-settings' ``AzureKeyVaultSettingsSource``.

    The vault is contacted on the first lookup, not before: it lists the secret names once, then
    fetches a secret only when a variable asks for it.
    """

    def __init__(self, url: str, origin: str) -> None:
        self.url = url
        self.origin = origin
        self._lookup: Callable[[str], str | None] | None = None
        self._lock = threading.Lock()

    def _connect(self, variable: str) -> Callable[[str], str | None]:
        try:
            from azure.identity import DefaultAzureCredential
            from pydantic_settings import AzureKeyVaultSettingsSource, BaseSettings
        except ImportError:
            missing = True
        else:
            missing = False
        if missing:
            raise ConfigError(
                f"azure_key_vault_url (from {self.origin}) needs the Azure Key Vault packages. "
                f"Install them with: {KEY_VAULT_INSTALL}"
            )

        class _Variables(BaseSettings):
            pass

        source = self._guarded(
            variable,
            lambda: AzureKeyVaultSettingsSource(
                _Variables, self.url, DefaultAzureCredential(), dash_to_underscore=True
            ),
        )
        return as_lookup(source)

    def _guarded(self, variable: str, call: Callable[[], Any]) -> Any:
        """Run ``call``; an Azure error becomes a ConfigError naming the vault and the secret."""
        try:
            return call()
        except Exception as exc:  # azure-core and azure-identity raise many types
            reason = _vault_failure(exc)
        raise ConfigError(
            f"Azure Key Vault {self.url} (from {self.origin}) could not be read for secret "
            f"{key_vault_secret_name(variable)!r} (variable {variable}): {reason}"
        )

    def __call__(self, variable: str) -> str | None:
        with self._lock:
            if self._lookup is None:
                self._lookup = self._connect(variable)
        lookup = self._lookup
        value: str | None = self._guarded(variable, lambda: lookup(variable))
        return value


def _vault_failure(exc: Exception) -> str:
    """What went wrong, in words a user can act on (never the SDK's message or traceback)."""
    kind = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if kind in ("ClientAuthenticationError", "CredentialUnavailableError"):
        return (
            f"{kind}: no Azure credential worked. Sign in (az login), use a managed identity, or "
            "set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET."
        )
    if status == 403:
        return "access denied (403): give the identity the 'Key Vault Secrets User' role."
    if status is not None:
        return f"the vault answered HTTP {status} ({kind})."
    if kind in ("ServiceRequestError", "ServiceRequestTimeoutError", "ServiceResponseError"):
        return f"{kind}: the vault could not be reached (DNS, connection or TLS). Check the URL."
    return f"{kind}."


_vaults: dict[str, _KeyVault] = {}
_vaults_lock = threading.Lock()


def azure_key_vault(options: LoadedOptions) -> Any:
    """The vault of ``azure_key_vault_url`` (one per URL per process), or None."""
    url: str | None = options.get("azure_key_vault_url")
    if url is None:
        return None
    with _vaults_lock:
        if url not in _vaults:
            _vaults[url] = _KeyVault(url, options.origin("azure_key_vault_url"))
        return _vaults[url]


@hookimpl
def modelreg_register_settings_sources(register: RegisterSettingsSource) -> None:
    """The secrets directory (order 30) and Azure Key Vault (order 40)."""
    register(
        "secrets-dir",
        SettingsSource(secrets_directory, order=30, label="secrets dir {secrets_dir} ({name})"),
    )
    register(
        "azure-key-vault",
        SettingsSource(
            azure_key_vault, order=40, label="Azure Key Vault {azure_key_vault_url} ({name})"
        ),
    )

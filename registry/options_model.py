"""The registry's options as one pydantic-settings class (imported only when options are set).

:class:`RegistryOptions` defines every ``MODELREG_*`` option that is not a settings value, with
its type, default, description and validation; :func:`parse` reads the environment and ``.env``
with pydantic-settings' ``EnvSettingsSource`` and validates what :mod:`registry.options` merged.
Importing pydantic-settings costs about as much as the rest of ``create_model``, so
:mod:`registry.options` imports this module only when some option is given somewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from registry.endpoints import check_base_url
from registry.masking import mask_url
from registry.sources import ENV_PREFIX
from registry.validation import Problem, validate

__all__ = ["RegistryOptions", "environment_values", "option_names", "parse"]


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class RegistryOptions(BaseSettings):
    """Every ``MODELREG_*`` option that is not a settings value."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False, extra="forbid")

    settings: Path | None = Field(None, description="settings file (default ./settings.toml)")
    dotenv: Path | None = Field(None, description=".env file (default ./.env)")
    env: str | None = Field(None, description="active environment overlay")
    plugins: Annotated[list[str] | None, NoDecode] = Field(
        None, description="comma list of plugins to load (empty: none but the built-ins)"
    )
    disable_plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma list of plugins not to load"
    )
    tiktoken_cache_dir: Path | None = Field(
        None, description="directory of tokenizer files for offline use"
    )
    secrets_dir: Path | None = Field(
        None, description="directory with one file per variable (Docker/Kubernetes secrets)"
    )
    azure_key_vault_url: str | None = Field(
        None, description="Azure Key Vault for variables (extra modelreg[azure-keyvault])"
    )
    routing_state: str | None = Field(
        None, description="redis:// URL where pools share cooldowns across processes"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Validate what :func:`load_options` merged; it reads the sources itself, in order."""
        return (init_settings,)

    @field_validator("plugins", "disable_plugins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("env", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("azure_key_vault_url")
    @classmethod
    def _vault_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = check_base_url(value, field="azure_key_vault_url", allow_http=True)
        if not url.startswith("https://"):
            raise ValueError("must be an https:// URL such as https://NAME.vault.azure.net")
        return url

    @field_validator("routing_state")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    def __repr__(self) -> str:
        shown = {k: mask_url(v) if isinstance(v, str) else v for k, v in self.__dict__.items()}
        return f"RegistryOptions({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment reading, over a given mapping (the environment or .env)."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]) -> None:
        self._variables = variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._variables.items()}


def option_names() -> frozenset[str]:
    """Every option's name (``env``, ``plugins``...)."""
    return frozenset(RegistryOptions.model_fields)


def environment_values(variables: Mapping[str, str]) -> dict[str, Any]:
    """The options set in ``variables`` (the environment or ``.env``), read by pydantic-settings."""
    found: dict[str, Any] = _MappingEnvSource(RegistryOptions, variables)()
    return found


def parse(merged: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The options in ``merged`` validated (only those set), or the problems."""
    options, problems = validate(RegistryOptions, merged)
    if not isinstance(options, BaseModel):
        return {}, problems
    return {name: getattr(options, name) for name in merged}, problems

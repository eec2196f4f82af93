"""Named Entra ID token providers for ``azure_ad_token_provider = "<name>"`` in settings.

``azure-identity`` uses :class:`azure.identity.DefaultAzureCredential` with the Cognitive Services
scope; it needs the optional extra: ``pip install 'modelreg[azure-identity]'``.
"""

from __future__ import annotations

from collections.abc import Callable

from registry.errors import ConfigError, did_you_mean

__all__ = ["COGNITIVE_SERVICES_SCOPE", "PROVIDER_NAMES", "named_token_provider"]

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
PROVIDER_NAMES = ("azure-identity",)


def named_token_provider(name: str, model: str) -> Callable[[], str]:
    """Return the token provider called ``name`` for ``model``; ConfigError if unknown/missing."""
    if name not in PROVIDER_NAMES:
        raise ConfigError(
            f"model {model!r}, field 'azure_ad_token_provider': unknown provider {name!r}."
            f"{did_you_mean(name, PROVIDER_NAMES)} Known: {', '.join(PROVIDER_NAMES)}; in code, "
            "pass a callable as azure_ad_token_provider=."
        )
    try:
        from azure.identity import (  # type: ignore[import-not-found, unused-ignore]
            DefaultAzureCredential,
            get_bearer_token_provider,
        )
    except ImportError:
        raise ConfigError(
            f"model {model!r}, field 'azure_ad_token_provider': 'azure-identity' needs the "
            "azure-identity package. Install it with: pip install 'modelreg[azure-identity]'"
        ) from None
    provider: Callable[[], str] = get_bearer_token_provider(
        DefaultAzureCredential(), COGNITIVE_SERVICES_SCOPE
    )
    return provider

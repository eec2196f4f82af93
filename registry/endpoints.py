"""Endpoint URLs as users paste them: accepted when they are what the backend needs, else explained.

Azure's ``endpoint`` is the resource URL only, ``https://NAME.openai.azure.com[:port]``: the
SDK appends ``/openai/deployments/...`` itself, so a pasted path is doubled and a query string
ends up inside the path. The portal shows longer URLs (``.../openai``, the target URI with
``/openai/deployments/NAME/chat/completions?api-version=...``); :func:`check_endpoint` turns
those into the exact settings lines to write instead.

A rejected value is described, never echoed: it may be a key pasted into the wrong field. Only
parts that were checked to be a host name, a deployment name or an API version are repeated.
``http://`` is accepted for loopback hosts (local simulators and servers) only, unless the model
sets ``allow_http = true``. The checks are pure functions of their arguments, so their results are
cached: building many models on one endpoint checks it once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import SplitResult, parse_qsl, urlsplit

__all__ = [
    "API_VERSION_KEYWORDS",
    "EndpointError",
    "check_api_version",
    "check_base_url",
    "check_deployment_name",
    "check_endpoint",
    "is_loopback",
]

#: ``api_version`` values that are not dates: ``v1`` selects Azure's v1 GA surface.
API_VERSION_KEYWORDS = ("v1",)
_DATED_VERSION = re.compile(r"(\d{4})-(\d{2})-(\d{2})(-preview)?")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEY_LIKE = re.compile(r"[A-Za-z0-9_\-]{20,}")
#: Host names that are repeated in advice when pasted without a scheme; anything else may be a
#: dotted token (a JWT) pasted into the wrong field, so it is described instead.
_KNOWN_HOSTS = (".azure.com", ".azure.us", ".azure.cn", ".azure-api.net", ".openai.com")
#: Paths of API operations: a base URL that ends in one is an operation, not the API root.
_OPERATIONS = ("/chat/completions", "/completions", "/responses", "/embeddings")
_EXAMPLES = {
    "endpoint": "https://NAME.openai.azure.com",
    "base_url": "https://api.example.com/v1",
    "azure_key_vault_url": "https://NAME.vault.azure.net",
}
F = TypeVar("F", bound=Callable[..., str])


def _strings_only(check: F) -> F:
    """Cache ``check``; reject non-strings first (a list would not even be hashable)."""
    cached = functools.lru_cache(maxsize=1024)(check)

    @functools.wraps(check)
    def guarded(value: Any, *args: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise EndpointError(f"must be a string, not {type(value).__name__}")
        result: str = cached(value, *args, **kwargs)
        return result

    return guarded  # type: ignore[return-value]


class EndpointError(ValueError):
    """An endpoint or base URL that cannot be used; the message describes it without echoing."""


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@_strings_only
def check_api_version(value: str) -> str:
    """A dated version (``2024-10-21``, ``2025-04-01-preview``) or a keyword (``v1``)."""
    text = value.strip()
    if text in API_VERSION_KEYWORDS:
        return text
    match = _DATED_VERSION.fullmatch(text)
    if match is not None and _is_date(*(int(part) for part in match.group(1, 2, 3))):
        return text
    raise EndpointError(
        'is not an API version: use a dated version such as "2024-10-21" or '
        f'"2025-04-01-preview", or {" or ".join(repr(k) for k in API_VERSION_KEYWORDS)} for '
        "Azure's v1 API (the value is not shown)"
    )


def _is_date(year: int, month: int, day: int) -> bool:
    import datetime

    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


@_strings_only
def check_deployment_name(value: str) -> str:
    """An Azure deployment name: letters, digits, ``.``, ``_`` and ``-``, 1-64 characters.

    It becomes part of the request path, so a ``/`` or a space would send the request elsewhere.
    """
    if not value.strip():
        raise EndpointError("is empty: write the name of the deployment in your Azure resource")
    if not _DEPLOYMENT_NAME.fullmatch(value):
        raise EndpointError(
            "is not a deployment name: use letters, digits, '.', '_' and '-' (at most 64, "
            "starting with a letter or digit; the value is not shown)"
        )
    return value


def _is_api_version(value: str) -> bool:
    try:
        check_api_version(value)
    except EndpointError:
        return False
    return True


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        import ipaddress

        try:
            ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            return False
        return True
    labels = host.rstrip(".").split(".")
    return bool(host) and all(_HOST_LABEL.fullmatch(label) for label in labels)


def _split(value: str, field: str) -> tuple[SplitResult, str]:
    """Parse ``value`` as an absolute http(s) URL; return its parts and ``scheme://host[:port]``."""
    text = value.strip()
    example = _EXAMPLES.get(field, _EXAMPLES["base_url"])
    if not text:
        raise EndpointError(f"is empty: write the URL, e.g. {example}")
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise EndpointError("contains spaces or line breaks (the value is not shown)")
    if "://" not in text:
        if _valid_host(text) and text.lower().rstrip(".").endswith(_KNOWN_HOSTS):
            raise EndpointError(f'has no scheme: write {field} = "https://{text}"')
        hint = " It looks like a key: keys belong in api_key." if _KEY_LIKE.fullmatch(text) else ""
        raise EndpointError(
            f"is not a URL (no https:// scheme; the value is not shown).{hint} "
            f"Write the URL, e.g. {example}"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None:
        raise EndpointError("is not a valid URL (bad host or port; the value is not shown)")
    if parts.scheme.lower() not in ("http", "https"):
        raise EndpointError("must start with https:// (it uses another scheme; not shown)")
    if "@" in parts.netloc:
        raise EndpointError(
            "contains user-info (user:password@ before the host; not shown): a URL "
            "never carries credentials here. Put the key in api_key and remove it from the URL."
        )
    host = parts.hostname or ""
    netloc_host = f"[{host}]" if ":" in host else host
    if not _valid_host(netloc_host) or not parts.netloc:
        raise EndpointError("has no valid host name (the value is not shown)")
    origin = f"{parts.scheme.lower()}://{netloc_host.lower()}" + (f":{port}" if port else "")
    return parts, origin


def _check_scheme(parts: SplitResult, allow_http: bool) -> None:
    if parts.scheme.lower() == "http" and not allow_http and not is_loopback(parts.hostname or ""):
        raise EndpointError(
            "uses http://, which sends the key unencrypted: use https://. Plain http is "
            "accepted for loopback hosts (localhost, 127.0.0.1, ::1) only, unless the model sets "
            "allow_http = true."
        )


def _advice(parts: SplitResult, field: str, origin: str) -> list[str]:
    """The settings lines that say what a pasted Azure URL meant."""
    lines = [f'{field} = "{origin}"']
    segments = [s for s in parts.path.split("/") if s]
    if segments[:2] == ["openai", "deployments"] and _DEPLOYMENT_NAME.fullmatch(
        segments[2] if len(segments) > 2 else ""
    ):
        lines.append(f'deployment = "{segments[2]}"')
    if segments[:2] == ["openai", "v1"]:
        lines.append('api_version = "v1"')
    versions = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "api-version"]
    if versions and _is_api_version(versions[0]):
        lines.append(f'api_version = "{versions[0].strip()}"')
    return lines


def _what_is_extra(parts: SplitResult) -> str:
    extra = []
    if parts.path.strip("/"):
        extra.append("a path")
    if parts.query:
        other = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True) if k != "api-version"]
        extra.append("a query string" + (" (not shown: it may hold a key)" if other else ""))
    if parts.fragment:
        extra.append("a fragment")
    return " and ".join(extra)


@_strings_only
def check_endpoint(value: str, *, field: str = "endpoint", allow_http: bool = False) -> str:
    """An Azure resource endpoint, ``https://host[:port]`` (a trailing slash is dropped).

    Raises:
        EndpointError: anything else, with the lines to write instead when they can be derived.
    """
    parts, origin = _split(value, field)
    _check_scheme(parts, allow_http)
    extra = _what_is_extra(parts)
    if extra:
        advice = "\n".join(f"  {line}" for line in _advice(parts, field, origin))
        raise EndpointError(
            "must be the resource URL only (https://NAME.openai.azure.com), but it has "
            f"{extra}; the SDK adds /openai/deployments/... itself. Write instead:\n{advice}"
        )
    return origin


@_strings_only
def check_base_url(value: str, *, field: str = "base_url", allow_http: bool = False) -> str:
    """An OpenAI-compatible server's base URL: a path is kept (``/v1``); no query or fragment."""
    parts, origin = _split(value, field)
    _check_scheme(parts, allow_http)
    if parts.query or parts.fragment:
        raise EndpointError(
            "must not have a query string or fragment (not shown: it may hold a key). "
            "Put API keys in api_key and extra query parameters in client_kwargs.default_query."
        )
    path = parts.path.rstrip("/")
    operation = next((op for op in _OPERATIONS if path.endswith(op)), None)
    if operation is not None:
        root = origin + path[: -len(operation)]
        raise EndpointError(
            f"ends in the API operation {operation}, which the SDK adds itself: write "
            f'{field} = "{root}"'
        )
    return origin + path

"""What may be secret, and how it is shown: the one place the masking rule lives.

A value is masked (``***``) wherever it is shown — ``modelreg show``, ``--json``,
``explain()``, reprs — when:

* it is a :class:`pydantic.SecretStr`, or a settings field whose name ends in a secret word
  (``api_key``, ``azure_ad_token``, ``client_secret``, ``password``...: :func:`is_secret_name`);
* it is the value of an HTTP header (in any ``*headers`` table) whose name is not on the short
  allowlist of headers known to carry no secret (:data:`PUBLIC_HEADERS`); masking by "the name
  contains key/token" would let ``Cookie`` or ``X-Client-Auth`` through;
* it is the value of a mapping key named like a secret (``default_query = {"api-key" = ...}``);
* it is the user-info of a URL (``https://user:pass@host``) or the value of a query parameter
  named like a secret (``?api-key=...``, ``?sig=...``).

:class:`Redacted` is a ``dict`` whose ``repr`` applies this rule, so request settings and client
keyword arguments can be stored as given (the SDK receives them unchanged) and still print safely.
Text for terminals goes through :func:`escape_control`, so a name or value cannot forge a line or
move the cursor.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "MASK",
    "PUBLIC_HEADERS",
    "Redacted",
    "escape_control",
    "is_secret_name",
    "looks_like_secret",
    "mask_url",
    "mask_values",
    "masked",
    "quoted_name",
    "redact",
    "shown_name",
    "shown_names",
    "shown_path",
]

MASK = "***"
#: Header names (lower case) whose values are shown; every other header value is masked.
PUBLIC_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "content-type",
        "openai-beta",
        "openai-organization",
        "openai-project",
        "traceparent",
        "tracestate",
        "user-agent",
        "x-client-request-id",
        "x-ms-client-request-id",
        "x-ms-useragent",
        "x-request-id",
    }
)
#: The last word of a name that holds a secret (``api_key``, ``x-api-key``, ``clientSecret``).
_SECRET_WORDS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "key",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "sig",
        "signature",
        "token",
    }
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")
#: Control and format characters: C0/C1 controls, line and paragraph separators, and the
#: invisible and bidirectional formatting characters that can disguise text in a terminal.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb]"
)


def is_secret_name(name: str) -> bool:
    """Whether a field, key or header called ``name`` holds a secret (by its last word).

    ``api_key``, ``azure_ad_token``, ``X-Api-Key``, ``set-cookie`` and ``clientSecret`` do;
    ``token_counter``, ``max_tokens`` and ``azure_ad_token_provider`` do not.
    """
    words = _WORD.findall(name)
    return bool(words) and words[-1].lower() in _SECRET_WORDS


def mask_url(url: str) -> str:
    """``url`` with its user-info and secret-named query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return MASK
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{k}={MASK if is_secret_name(k) else v}" for k, v in pairs)
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


def _looks_like_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "ws://", "wss://")) and (
        "@" in value or "?" in value
    )


def masked(value: Any, *, key: str = "", headers: bool = False) -> Any:
    """A copy of ``value`` safe to show: secrets (by the module's rule) become ``***``.

    Args:
        value: any settings value (mappings and lists are walked).
        key: the name ``value`` is stored under (a field, a mapping key, a header name).
        headers: ``value`` is a header value (masked unless ``key`` is a public header).
    """
    if type(value).__name__ == "SecretStr":
        return MASK
    if headers and not isinstance(value, Mapping):
        return value if key.lower() in PUBLIC_HEADERS or value is None else MASK
    if key.lower().endswith("headers") and not isinstance(value, Mapping) and value is not None:
        return MASK  # headers written as one string ("X-Key: ...")
    if key and is_secret_name(key) and value is not None and not isinstance(value, Mapping):
        return MASK
    if isinstance(value, Mapping):
        inner_headers = key.lower().endswith("headers")
        return {str(k): masked(v, key=str(k), headers=inner_headers) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item, key=key) for item in value]
    if isinstance(value, str) and _looks_like_url(value):
        return mask_url(value)
    return value


class Redacted(dict[str, Any]):
    """A ``dict`` that prints with its secrets masked (:func:`masked`), passed on unchanged."""

    __slots__ = ("_key",)

    def __init__(self, data: Mapping[str, Any] | None = None, /, *, key: str = "") -> None:
        super().__init__(data or {})
        self._key = key

    def __repr__(self) -> str:
        return repr(masked(dict(self), key=self._key))

    __str__ = __repr__


def redact(value: Mapping[str, Any], *, key: str = "") -> Redacted:
    """``value`` as a :class:`Redacted` (its repr masks what it holds, nested tables included)."""
    return value if isinstance(value, Redacted) else Redacted(value, key=key)


_KEY_RUN = re.compile(r"[A-Za-z0-9]{20,}")
HIDDEN_VALUE = "(hidden: looks like a key)"


def looks_like_secret(text: str) -> bool:
    """Whether ``text`` may be a key pasted where a name belongs.

    ``sk-...`` keys, and any run of 20 or more letters and digits mixing both (Azure's 32 hex
    digits and 84-character keys, bearer tokens); names such as ``gpt-4o-mini-2024-07-18`` have
    separators between their short runs.
    """
    if text.lower().startswith(("sk-", "sk_")):
        return True
    return any(
        any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
        for run in _KEY_RUN.findall(text)
    )


def shown_name(value: object) -> str:
    """``value`` if it looks like a name (a deployment, model or backend), else a placeholder.

    For listings of values nobody validated yet: a key pasted into ``deployment`` must not print.
    """
    if isinstance(value, str) and _NAME.fullmatch(value):
        return HIDDEN_VALUE if looks_like_secret(value) else value
    return "(invalid: see modelreg check)"


def shown_names(names: Iterable[str]) -> str:
    """Names for a message's list (``Known models and aliases: ...``): escaped, keys hidden."""
    return ", ".join(
        HIDDEN_VALUE if looks_like_secret(name) else escape_control(name) for name in names
    )


def quoted_name(name: str) -> str:
    """``name`` quoted for a message, escaped; a placeholder when it looks like a key."""
    return HIDDEN_VALUE if looks_like_secret(name) else escape_control(repr(name))


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret (a model's key, a token) as ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
HIDDEN_KEY = "(a key that looks like a pasted value, not shown)"


def shown_key(key: object, *, quoted: bool = True) -> str:
    """An unknown settings key as a message may show it: quoted, or a placeholder.

    A key is shown only if it looks like a field name: a secret pasted on the wrong side of
    ``=`` (``sk-...`` or 32 hex digits as a key) must not print in "unknown field" messages.
    """
    if (
        isinstance(key, str)
        and _FIELD_NAME.fullmatch(key)
        and sum(c.isdigit() for c in key) < 6
        and not looks_like_secret(key)
    ):
        return repr(key) if quoted else key
    return HIDDEN_KEY if quoted else "(hidden)"


def escape_control(text: str, *, keep: str = "") -> str:
    r"""``text`` with control characters and line breaks written as escapes (``\\n``, ``\\x1b``).

    For terminal output: a name or value must not forge a table row or clear the screen.
    ``keep`` lists characters left as they are (``"\n\t"`` for the text of a model's reply).
    """
    if not _CONTROL.search(text):
        return text

    def escaped(match: re.Match[str]) -> str:
        char = match.group()
        return char if char in keep else char.encode("unicode_escape").decode("ascii")

    return _CONTROL.sub(escaped, text)


def shown_path(path: str | os.PathLike[str]) -> str:
    r"""A path for messages: undecodable bytes as ``\xff``, control characters escaped."""
    return escape_control(os.fsencode(path).decode("utf-8", "backslashreplace"))

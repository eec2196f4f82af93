"""What a failed call means for its deployment: cool it, count it, retry elsewhere, or neither.

The rules (written once, here; :func:`classify` applies them):

==========================================  =========================================  ========
failure                                     effect on the deployment                   retried
==========================================  =========================================  ========
429                                         out for what ``retry-after-ms`` (or         yes
                                            ``x-ms-retry-after-ms``), ``retry-after``
                                            (seconds or an HTTP date)
                                            or ``x-ratelimit-reset-requests`` /
                                            ``-tokens`` (``1s``, ``6m0s``, ``250ms``)
                                            say, else ``cooldown_time``
429 ``insufficient_quota``, 401, 403, 404   misconfigured: out for                     yes
                                            ``misconfigured_cooldown``, logged once
5xx, 408, 409, timeout, connection error    counted; out for ``cooldown_time`` once     yes
                                            more than ``allowed_fails`` happen within
                                            ``failure_window`` (at once for as long as
                                            a ``retry-after`` says, when one is sent)
400 (content filter, context length, ...)   nothing: the request is at fault            no
and every other 4xx; content-filter
refusals; anything not from the server
==========================================  =========================================  ========

Misconfigured deployments are out for 60 s by default, twelve times ``cooldown_time``: a wrong
key, a missing role assignment or a deleted deployment does not fix itself within seconds, so
trying it every 5 s would spend an attempt of every call on it; but a fix (a key rotated in the
vault, a deployment created in the portal, a role assigned) should be picked up within a
minute without a restart, and a cooldown shared on Redis must not keep a fixed deployment out
of every replica for long.

:class:`Failure` is the input: a status code, the rate-limit headers and the error code of a
response, or a timeout or connection error. :func:`failure_from_exception` builds it from the
openai SDK's exceptions (without importing the SDK), httpx2's and the builtin timeout and
connection errors.

A backend that raises exceptions of its own (a plugin's, or the fake backend's scripted
``faults``) says what they mean with a ``routing_failure`` attribute holding a
:class:`Failure`: ``failure_from_exception`` returns it as it is, before any other rule. Build
it with ``Failure.from_response(status, headers, code)`` for an answer, ``Failure(
ErrorKind.TIMEOUT)`` or ``Failure(ErrorKind.CONNECTION)`` for none. An exception without one
(or whose attribute is not a Failure) is classified by its type as before.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from registry.errors import ConfigError
from registry.routing.state import CooldownKind, format_seconds

__all__ = [
    "RATE_LIMIT_HEADERS",
    "CooldownRules",
    "ErrorKind",
    "Failure",
    "Verdict",
    "classify",
    "failure_from_exception",
    "parse_duration",
    "server_cooldown",
]

#: The response headers :class:`Failure` keeps (lower case); every other header is dropped.
RATE_LIMIT_HEADERS = (
    "retry-after-ms",
    "x-ms-retry-after-ms",
    "retry-after",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
)
#: Error codes (the body's ``error.code``) of a content-filter refusal.
CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
#: Error codes of a 429 that waiting seconds will not fix (billing, not rate).
QUOTA_CODES = frozenset({"insufficient_quota"})
_MISCONFIGURED_STATUSES = frozenset({401, 403, 404})
_TRANSIENT_STATUSES = frozenset({408, 409})


class ErrorKind(StrEnum):
    """What kind of failure a call ended in."""

    #: The server answered with an error status (``Failure.status``).
    STATUS = "status"
    #: No answer within the timeout.
    TIMEOUT = "timeout"
    #: No connection, or it broke (DNS, refused, reset, TLS).
    CONNECTION = "connection"
    #: The answer was a content-filter refusal (``finish_reason == "content_filter"``).
    CONTENT_FILTER = "content-filter"
    #: Anything else (a bug, a bad argument): not the deployment's fault.
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    """A failed call, as the cooldown rules need it.

    Build it with :meth:`from_response` (which keeps only :data:`RATE_LIMIT_HEADERS`) or
    :func:`failure_from_exception`.
    """

    kind: ErrorKind
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The error body's ``code`` (``content_filter``, ``insufficient_quota``...), if any.
    code: str | None = None

    @classmethod
    def from_response(
        cls, status: int, headers: Mapping[str, str] | None = None, code: str | None = None
    ) -> Failure:
        """A failure answered with ``status``; ``headers`` in any case (an httpx ``Headers``)."""
        kept = {}
        for name, value in (headers or {}).items():
            lowered = name.lower()
            if lowered in RATE_LIMIT_HEADERS:
                kept[lowered] = str(value)
        return cls(ErrorKind.STATUS, status, kept, code)


def failure_from_exception(exc: BaseException) -> Failure:
    """The :class:`Failure` an exception stands for: the openai SDK's, httpx's, or builtins.

    An exception's own ``routing_failure`` (a :class:`Failure`) comes first: the hook for
    backends with exceptions of their own (see the module docstring). The SDK is not imported:
    if it is not loaded, ``exc`` cannot be one of its exceptions.
    """
    declared = getattr(exc, "routing_failure", None)
    if isinstance(declared, Failure):
        return declared
    openai = sys.modules.get("openai")
    if openai is not None:
        if isinstance(exc, openai.APITimeoutError):
            return Failure(ErrorKind.TIMEOUT)
        if isinstance(exc, openai.APIConnectionError):
            return Failure(ErrorKind.CONNECTION)
        if isinstance(exc, openai.APIStatusError):
            return Failure.from_response(exc.status_code, exc.response.headers, exc.code)
        if isinstance(exc, openai.ContentFilterFinishReasonError):
            return Failure(ErrorKind.CONTENT_FILTER)
    httpx = sys.modules.get("httpx2")
    if httpx is not None:
        if isinstance(exc, httpx.TimeoutException):
            return Failure(ErrorKind.TIMEOUT)
        if isinstance(exc, httpx.TransportError):
            return Failure(ErrorKind.CONNECTION)
    if isinstance(exc, TimeoutError):
        return Failure(ErrorKind.TIMEOUT)
    if isinstance(exc, ConnectionError):
        return Failure(ErrorKind.CONNECTION)
    return Failure(ErrorKind.OTHER)


@dataclass(frozen=True)
class CooldownRules:
    """The numbers the rules use (a pool's ``cooldown_time``, ``allowed_fails``...).

    Attributes:
        cooldown_time: seconds out after a 429 that says nothing, or after too many failures.
        allowed_fails: failures tolerated within ``failure_window``; one more cools it.
        failure_window: seconds over which failures are counted (a minute).
        misconfigured_cooldown: seconds out after a 401/403/404 (see the module docstring).
        max_cooldown: the longest cooldown a server's header can set (a day).
    """

    cooldown_time: float = 5.0
    allowed_fails: int = 3
    failure_window: float = 60.0
    misconfigured_cooldown: float = 60.0
    max_cooldown: float = 86400.0

    def __post_init__(self) -> None:
        for name in ("cooldown_time", "failure_window", "misconfigured_cooldown", "max_cooldown"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number of seconds")
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a number of seconds > 0")
        fails = self.allowed_fails
        if isinstance(fails, bool) or not isinstance(fails, int) or fails < 0:
            raise ConfigError("allowed_fails must be a whole number >= 0")


@dataclass(frozen=True)
class Verdict:
    """What a failure means: retry elsewhere, cool now (how long, why), count it."""

    retry: bool
    cooldown: float | None = None
    kind: CooldownKind | None = None
    #: Counted towards ``allowed_fails`` (the pool cools the deployment when it is exceeded).
    counts: bool = False
    #: Why, for logs and messages: a status, a header, never a response body.
    reason: str = ""


def classify(failure: Failure, rules: CooldownRules) -> Verdict:
    """Apply the module's rules to one failure."""
    status = failure.status
    if failure.kind is ErrorKind.TIMEOUT:
        return Verdict(retry=True, counts=True, reason="timeout")
    if failure.kind is ErrorKind.CONNECTION:
        return Verdict(retry=True, counts=True, reason="connection error")
    if failure.kind is ErrorKind.CONTENT_FILTER:
        return Verdict(retry=False, reason="content filter")
    if failure.kind is not ErrorKind.STATUS or status is None:
        return Verdict(retry=False, reason="not a server failure")
    if status == 429 and failure.code not in QUOTA_CODES:
        told = server_cooldown(failure.headers)
        if told is None:
            seconds, said = rules.cooldown_time, "no retry header: cooldown_time"
        else:
            seconds, said = min(told[0], rules.max_cooldown), told[1]
        reason = f"429, {said} {format_seconds(seconds)}" if told else f"429, {said}"
        return Verdict(True, seconds, CooldownKind.RATE_LIMITED, reason=reason)
    if status in _MISCONFIGURED_STATUSES or status == 429:
        what = f"{status} {failure.code}" if status == 429 else str(status)
        return Verdict(True, rules.misconfigured_cooldown, CooldownKind.MISCONFIGURED, reason=what)
    if status >= 500 or status in _TRANSIENT_STATUSES:
        told = server_cooldown(failure.headers)
        if told is None:
            return Verdict(retry=True, counts=True, reason=str(status))
        seconds = min(told[0], rules.max_cooldown)
        reason = f"{status}, {told[1]} {format_seconds(seconds)}"
        return Verdict(True, seconds, CooldownKind.UNAVAILABLE, counts=True, reason=reason)
    if 400 <= status < 500:
        what = "content filter" if failure.code in CONTENT_FILTER_CODES else "the request's fault"
        return Verdict(retry=False, reason=f"{status}, {what}")
    return Verdict(retry=False, reason=f"unexpected status {status}")


# -- the servers' headers ----------------------------------------------------------------------

_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:h|ms|m|s|us|µs|ns))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _seconds(value: str | None) -> float | None:
    """A plain non-negative, finite number, or None."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def parse_duration(value: str | None) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value; None if it is not a duration.

    OpenAI and Azure send Go-style durations: ``1s``, ``6m0s``, ``250ms``, ``1h2m3.5s``; a
    plain number is taken as seconds.
    """
    if value is None:
        return None
    text = value.strip().lower()
    plain = _seconds(text)
    if plain is not None:
        return plain
    if not _DURATION.fullmatch(text):
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _http_date_from_now(value: str, now: float) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


def server_cooldown(
    headers: Mapping[str, str], now: float | None = None
) -> tuple[float, str] | None:
    """How long the server asked to stay away, and which header said so; None if none did.

    In order: ``retry-after-ms`` (Azure OpenAI's; Azure's older services send
    ``x-ms-retry-after-ms``); ``retry-after`` (seconds, or an HTTP date: ``now`` is the
    wall clock, default ``time.time()``); then the ``x-ratelimit-reset-requests`` /
    ``-tokens`` of the limit that is exhausted (its ``x-ratelimit-remaining-*`` is 0), or the
    longer of the two when neither says. Values that are not positive are ignored.
    """
    for header in ("retry-after-ms", "x-ms-retry-after-ms"):
        milliseconds = _seconds(headers.get(header))
        if milliseconds:
            return milliseconds / 1000, header
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        seconds = _seconds(retry_after)
        if seconds is None:
            seconds = _http_date_from_now(retry_after, time.time() if now is None else now)
        if seconds and seconds > 0:
            return seconds, "retry-after"
    resets = []
    for limit in ("requests", "tokens"):
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{limit}"))
        if reset:
            exhausted = _seconds(headers.get(f"x-ratelimit-remaining-{limit}")) == 0
            resets.append((exhausted, reset, f"x-ratelimit-reset-{limit}"))
    binding = [r for r in resets if r[0]] or resets
    if not binding:
        return None
    _, seconds, header = max(binding, key=lambda r: r[1])
    return seconds, header

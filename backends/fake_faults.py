"""Scripted faults for the fake backend, so an application's tests exercise failover offline.

``faults = ["429 retry-after=2", "ok"]`` on a ``backend = "fake"`` model: each call (``run`` or
``arun``; plain, streamed, parsed or both) takes the script's next entry, in order, across
threads; once the script is used up, calls answer normally. An entry (case-insensitive, words
separated by spaces) is one of:

==========================  ====================================================================
``ok``                      answer normally
``timeout``                 no answer in time (raised at once: nothing waits)
``connection``              no connection, or it broke before the answer
``cut``                     a stream breaks after its first chunk; any other call: ``connection``
``STATUS [QUALIFIER ...]``  the server answers ``STATUS``, 400 to 599 (``429``, ``503``...)
==========================  ====================================================================

A status's qualifiers, in any order: ``HEADER=VALUE`` for a rate-limit header the cooldown rules
read (:data:`~registry.routing.cooldowns.RATE_LIMIT_HEADERS`: ``retry-after`` and
``x-ratelimit-remaining-*`` in seconds or a count, ``retry-after-ms`` and ``x-ms-retry-after-ms``
in milliseconds, ``x-ratelimit-reset-*`` a duration such as ``1s`` or ``6m0s``), and at most one
error code (``content_filter``, ``context_length_exceeded``, ``insufficient_quota``...):
``"429 retry-after=2"``, ``"429 retry-after-ms=1500"``, ``"400 content_filter"``.

A fault raises :class:`FakeFault`, a :class:`~registry.errors.BackendError` that carries the
:class:`~registry.routing.cooldowns.Failure` it stands for as ``routing_failure``, so a pool cools,
counts and fails over exactly as it would on the real server's answer.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from registry.errors import BackendError, ConfigError
from registry.routing.cooldowns import RATE_LIMIT_HEADERS, ErrorKind, Failure, parse_duration
from registry.validation import describe_problems

__all__ = ["FORMS", "FakeFault", "Fault", "FaultScript", "check_fault", "parse_fault"]

#: The accepted forms, for messages.
FORMS = (
    '"ok", "timeout", "connection", "cut", or an HTTP status 400-599 with optional '
    'qualifiers: a rate-limit header ("429 retry-after=2", "429 retry-after-ms=1500") '
    'and an error code ("400 content_filter")'
)
_WORDS = {"timeout": ErrorKind.TIMEOUT, "connection": ErrorKind.CONNECTION}
_STATUS = re.compile(r"[1-9]\d\d")
_CODE = re.compile(r"[a-z][a-z0-9_.-]*")
_DURATION_HEADERS = frozenset({"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"})


@dataclass(frozen=True)
class Fault:
    """One parsed entry of a fault script (never ``ok``: that is no fault)."""

    #: The entry, normalised: lower case, single spaces.
    text: str
    kind: ErrorKind
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    code: str | None = None
    #: ``cut``: a stream breaks after its first chunk.
    cut: bool = False

    def failure(self) -> Failure:
        """What the cooldown rules see: the server's answer, or a timeout or broken connection."""
        if self.status is not None:
            return Failure.from_response(self.status, self.headers, self.code)
        return Failure(self.kind)

    def error(self, model: str, position: int, total: int) -> FakeFault:
        """The exception this fault raises on ``model``'s call (entry ``position`` of ``total``)."""
        if self.status is not None:
            what = f"answered {self.status}"
        elif self.cut:
            what = "broke the connection (cut)"
        else:
            what = "timed out" if self.kind is ErrorKind.TIMEOUT else "broke the connection"
        message = (
            f"model {model!r}: scripted fault {position + 1} of {total} "
            f"(faults[{position}] = {self.text!r}): the fake {what}"
        )
        return FakeFault(message, model=model, fault=self)


class FakeFault(BackendError):
    """A fault scripted with the fake backend's ``faults``.

    Attributes:
        model: the model's name.
        fault: the script's entry, normalised (``"429 retry-after=2"``).
        status_code: the scripted HTTP status; None for ``timeout``, ``connection``, ``cut``.
        code: the scripted error code (``content_filter``...), if any.
        headers: the scripted rate-limit headers (lower-case names).
        cut: the entry is ``cut`` (a stream raises it after its first chunk).
        routing_failure: the :class:`~registry.routing.cooldowns.Failure` it stands for, which
            :func:`~registry.routing.cooldowns.failure_from_exception` returns for it.
    """

    def __init__(self, message: str, *, model: str, fault: Fault) -> None:
        super().__init__(message)
        self.model = model
        self.fault = fault.text
        self.status_code = fault.status
        self.code = fault.code
        self.headers = dict(fault.headers)
        self.cut = fault.cut
        self.routing_failure = fault.failure()


def _status_fault(text: str, status: int, qualifiers: Sequence[str]) -> Fault:
    headers: dict[str, str] = {}
    code = None
    for word in qualifiers:
        name, equals, value = word.partition("=")
        if equals:
            _check_header(name, value)
            if name in headers:
                raise ValueError(f"the header {name} is given twice")
            headers[name] = value
        elif _CODE.fullmatch(word) and code is None:
            code = word
        else:
            raise ValueError(
                "a status takes at most one error code (letters, digits, _ . -, starting with "
                f"a letter) and header=value qualifiers; accepted: {FORMS}"
            )
    return Fault(text, ErrorKind.STATUS, status, headers, code)


def _check_header(name: str, value: str) -> None:
    if name not in RATE_LIMIT_HEADERS:
        raise ValueError(
            f"a status qualifier's header is one of {', '.join(RATE_LIMIT_HEADERS)} "
            "(the headers the cooldown rules read)"
        )
    if name in _DURATION_HEADERS:
        if parse_duration(value) is None:
            raise ValueError(f"{name} must be a duration such as 1s, 250ms or 6m0s")
        return
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        unit = "milliseconds" if name.endswith("-ms") else "seconds"
        what = "a count" if "remaining" in name else f"a number of {unit}"
        raise ValueError(f"{name} must be {what} >= 0")


def parse_fault(entry: object) -> Fault | None:
    """The fault an entry scripts; None for ``ok``.

    Raises:
        ValueError: the entry is not one of :data:`FORMS` (the message never repeats it).
    """
    if not isinstance(entry, str):
        raise ValueError(f'must be a string such as "429" or "ok", not {type(entry).__name__}')
    words = entry.lower().split()
    text = " ".join(words)
    if not words:
        raise ValueError(f"is empty; accepted: {FORMS}")
    head, qualifiers = words[0], words[1:]
    if head.isascii() and head.isdigit():
        if not _STATUS.fullmatch(head) or not 400 <= int(head) <= 599:
            raise ValueError(f"a status must be 400-599 (an error); accepted: {FORMS}")
        return _status_fault(text, int(head), qualifiers)
    if head in ("ok", "cut", *_WORDS) and qualifiers:
        raise ValueError(f"{head} takes no qualifiers; accepted: {FORMS}")
    if head == "ok":
        return None
    if head == "cut":
        return Fault(text, ErrorKind.CONNECTION, cut=True)
    if head in _WORDS:
        return Fault(text, _WORDS[head])
    raise ValueError(f"is not a fault; accepted: {FORMS}")


def check_fault(entry: object) -> str:
    """A pydantic ``before`` validator for one entry of ``faults``: the entry, normalised."""
    fault = parse_fault(entry)
    return "ok" if fault is None else fault.text


class FaultScript:
    """A fault script consumed one entry per call, in order, safely across threads."""

    def __init__(self, model: str, entries: Sequence[object]) -> None:
        self._model = model
        problems = []
        faults: list[Fault | None] = []
        for index, entry in enumerate(entries):
            try:
                faults.append(parse_fault(entry))
            except ValueError as error:
                problems.append((f"faults.{index}", str(error)))
        if problems:
            raise ConfigError(describe_problems(model, problems, {}))
        self._faults = faults
        self._next = 0
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        """Entries not consumed yet."""
        with self._lock:
            return len(self._faults) - self._next

    def take(self) -> FakeFault | None:
        """The next entry's exception (None for ``ok`` or once the script is used up)."""
        with self._lock:
            position = self._next
            if position >= len(self._faults):
                return None
            self._next += 1
        fault = self._faults[position]
        if fault is None:
            return None
        return fault.error(self._model, position, len(self._faults))

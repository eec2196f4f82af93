"""A pool's deployments and what is known about each one; the in-process state store.

Two kinds of state, kept apart on purpose:

* **Shared state** — cooldowns and failures within the failure window — lives in a
  :class:`StateStore`: :class:`MemoryStateStore` here (one process), or
  :class:`registry.routing.redis_state.RedisStateStore` (every process and replica using the same
  Redis). A cooldown is an expiry: a deployment is cooling exactly while its entry exists.
* **Local statistics** — calls in flight, moving-average latency, whether this process has
  seen the deployment misconfigured — are this process's own view (:class:`LocalStats`): they
  measure this process's calls and its network path, and need no round trip.

Every method is safe to call from several threads and asyncio tasks at once: each takes one
lock for a few dictionary operations and never awaits or blocks while holding it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from registry.errors import ConfigError

__all__ = [
    "Clock",
    "Cooldown",
    "CooldownKind",
    "Deployment",
    "DeploymentState",
    "LocalStats",
    "MemoryStateStore",
    "StateStore",
    "deployment_label",
    "format_seconds",
]

#: A monotonic clock in seconds (``time.monotonic``; tests pass a fake one).
Clock = Callable[[], float]


@dataclass(frozen=True)
class Deployment:
    """One member of a pool, as routing sees it (no credentials: nothing here is secret).

    Attributes:
        id: unique within the pool and stable across the processes sharing state: it names the
            deployment's keys in Redis (``"chat#0"``: the pool name and the entry's position).
        label: what messages and ``modelreg routes`` show: the endpoint's host and the
            deployment name (:func:`deployment_label`).
        weight: share of calls under the ``weighted`` strategy. 0 takes calls only when every
            deployment with a positive weight is cooling (a standby).
    """

    id: str
    label: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError(f"a pool deployment needs a non-empty id (got {type(self.id)})")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ConfigError(f"deployment {self.id}: weight must be a number")
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"deployment {self.id}: weight must be a finite number >= 0")

    def describe(self) -> str:
        """``chat#0 (contoso-eastus.openai.azure.com/gpt-4o)`` for messages."""
        return f"{self.id} ({self.label})" if self.label and self.label != self.id else self.id


def deployment_label(endpoint: str | None, deployment: str | None = None) -> str:
    """``host[:port]/deployment`` from an endpoint URL: never its user-info, path or query.

    Without a usable endpoint, the deployment's name alone (``?`` when there is none either).
    """
    host = ""
    if endpoint:
        try:
            parts = urlsplit(endpoint)
            host = parts.hostname or ""
            if host and parts.port is not None:
                host = f"{host}:{parts.port}"
        except ValueError:
            host = ""
    if not host:
        return deployment or "?"
    return f"{host}/{deployment}" if deployment else host


class CooldownKind(StrEnum):
    """Why a deployment is out, which decides whether a call waits for it."""

    #: 429: out for as long as the server said (or ``cooldown_time``). Worth waiting for.
    RATE_LIMITED = "rate-limited"
    #: A 5xx or 408/409 that said when to come back (``retry-after``). Worth waiting for.
    UNAVAILABLE = "unavailable"
    #: More than ``allowed_fails`` failures within the failure window. Worth waiting for.
    FAILING = "failing"
    #: 401/403/404 or an exhausted quota: needs a person. Not worth waiting for.
    MISCONFIGURED = "misconfigured"


def format_seconds(seconds: float) -> str:
    """``0.25 s``, ``1.5 s``, ``7 s``, ``42 s``, ``3 min 5 s`` for messages."""
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 10:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


@dataclass(frozen=True)
class Cooldown:
    """A deployment is out for ``remaining`` more seconds, for ``kind``: ``reason``."""

    remaining: float
    kind: CooldownKind
    reason: str

    @property
    def waitable(self) -> bool:
        """Whether a call may wait for this cooldown to end (not a misconfiguration)."""
        return self.kind is not CooldownKind.MISCONFIGURED


@dataclass(frozen=True)
class DeploymentState:
    """What is known about one deployment at one moment (a pick, ``modelreg routes``).

    Attributes:
        cooldown: set while the deployment is out (from the shared state when configured).
        in_flight: this process's calls to it that have not finished.
        latency: moving average of this process's successful calls, in seconds; None when
            none was measured recently (the ``latency`` strategy tries those first).
        misconfigured: it answered 401/403/404 (here, and no success since) or is cooling
            for that reason (seen by any process).
        failures: failures within the current failure window; None when not read (picks do
            not need it).
    """

    deployment: Deployment
    cooldown: Cooldown | None = None
    in_flight: int = 0
    latency: float | None = None
    misconfigured: bool = False
    failures: int | None = None

    @property
    def available(self) -> bool:
        """Not cooling down."""
        return self.cooldown is None

    def describe(self) -> str:
        """One line for messages: label, weight, cooldown and its reason, calls in flight."""
        parts = [f"weight {self.deployment.weight:g}"]
        if self.cooldown is not None:
            parts.append(
                f"{self.cooldown.kind.value}, {format_seconds(self.cooldown.remaining)} of "
                f"cooldown left ({self.cooldown.reason})"
            )
        elif self.misconfigured:
            parts.append("misconfigured, cooldown over")
        else:
            parts.append("available")
        if self.in_flight:
            parts.append(f"{self.in_flight} in flight")
        if self.failures:
            parts.append(f"{self.failures} recent failures")
        return f"{self.deployment.describe()}: {', '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``modelreg routes --json``)."""
        cooldown = self.cooldown
        return {
            "id": self.deployment.id,
            "label": self.deployment.label,
            "weight": self.deployment.weight,
            "available": self.available,
            "cooldown_remaining": cooldown.remaining if cooldown else 0.0,
            "cooldown_kind": cooldown.kind.value if cooldown else None,
            "cooldown_reason": cooldown.reason if cooldown else None,
            "misconfigured": self.misconfigured,
            "in_flight": self.in_flight,
            "latency": self.latency,
            "failures": self.failures,
        }


class StateStore:
    """Where cooldowns and failure counters live; keyed by pool name and deployment id.

    Subclasses implement the four synchronous methods; the ``a``-prefixed ones default to them
    (right for a store that never blocks) and a store doing I/O overrides them.
    """

    #: Where the state is, for messages (``in-process``, a masked ``redis://`` URL).
    where = "in-process"

    @property
    def reachable(self) -> bool:
        """Whether the last read reached the store (a shared one may be down)."""
        return True

    def cooldowns(self, pool: str, ids: Sequence[str]) -> list[Cooldown | None]:
        """The current cooldown of each deployment (None: available), read now."""
        raise NotImplementedError

    def cool(self, pool: str, id: str, seconds: float, kind: CooldownKind, reason: str) -> None:
        """Put a deployment out for ``seconds`` (a longer cooldown already there is kept)."""
        raise NotImplementedError

    def record_failure(self, pool: str, id: str, window: float) -> int:
        """Count one failure; return the failures in the current window.

        A window ends ``window`` seconds after the first failure counted in it.
        """
        raise NotImplementedError

    def failures(self, pool: str, ids: Sequence[str]) -> list[int]:
        """Failures in the current window of each deployment."""
        raise NotImplementedError

    async def acooldowns(self, pool: str, ids: Sequence[str]) -> list[Cooldown | None]:
        """:meth:`cooldowns` for async code."""
        return self.cooldowns(pool, ids)

    async def acool(
        self, pool: str, id: str, seconds: float, kind: CooldownKind, reason: str
    ) -> None:
        """:meth:`cool` for async code."""
        self.cool(pool, id, seconds, kind, reason)

    async def arecord_failure(self, pool: str, id: str, window: float) -> int:
        """:meth:`record_failure` for async code."""
        return self.record_failure(pool, id, window)

    async def afailures(self, pool: str, ids: Sequence[str]) -> list[int]:
        """:meth:`failures` for async code."""
        return self.failures(pool, ids)

    def close(self) -> None:
        """Release connections (nothing to do in memory)."""


class MemoryStateStore(StateStore):
    """Cooldowns and failure counters in this process, under one lock."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: (pool, id) -> (until, kind, reason)
        self._cooldowns: dict[tuple[str, str], tuple[float, CooldownKind, str]] = {}
        #: (pool, id) -> (count, window end)
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}

    def cooldowns(self, pool: str, ids: Sequence[str]) -> list[Cooldown | None]:
        """See :meth:`StateStore.cooldowns`."""
        found: list[Cooldown | None] = []
        with self._lock:
            if not self._cooldowns:  # the common case: nothing is cooling anywhere
                return [None] * len(ids)
            now = self._clock()
            for id in ids:
                entry = self._cooldowns.get((pool, id))
                if entry is None:
                    found.append(None)
                elif entry[0] <= now:
                    del self._cooldowns[(pool, id)]
                    found.append(None)
                else:
                    found.append(Cooldown(entry[0] - now, entry[1], entry[2]))
        return found

    def cool(self, pool: str, id: str, seconds: float, kind: CooldownKind, reason: str) -> None:
        """See :meth:`StateStore.cool`."""
        with self._lock:
            until = self._clock() + seconds
            entry = self._cooldowns.get((pool, id))
            if entry is None or entry[0] < until:
                self._cooldowns[(pool, id)] = (until, kind, reason)

    def record_failure(self, pool: str, id: str, window: float) -> int:
        """See :meth:`StateStore.record_failure`."""
        with self._lock:
            now = self._clock()
            count, end = self._failures.get((pool, id), (0, now))
            if end <= now:
                count, end = 0, now + window
            self._failures[(pool, id)] = (count + 1, end)
            return count + 1

    def failures(self, pool: str, ids: Sequence[str]) -> list[int]:
        """See :meth:`StateStore.failures`."""
        with self._lock:
            now = self._clock()
            counts = []
            for id in ids:
                count, end = self._failures.get((pool, id), (0, now))
                counts.append(count if end > now else 0)
            return counts


class LocalStats:
    """Per deployment, in this process: calls in flight, latency average, misconfigured flag.

    Args:
        alpha: weight of the newest measurement in the moving average.
        stale_after: a latency measured longer ago than this counts as unmeasured, so the
            ``latency`` strategy tries that deployment again (a slow region that recovered
            is noticed instead of being avoided forever).
    """

    def __init__(
        self, clock: Clock = time.monotonic, *, alpha: float = 0.3, stale_after: float = 60.0
    ) -> None:
        self._clock = clock
        self._alpha = alpha
        self._stale_after = stale_after
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._latency: dict[str, tuple[float, float]] = {}  # id -> (average, measured at)
        self._misconfigured: set[str] = set()

    def started(self, id: str) -> None:
        """A call to ``id`` started."""
        with self._lock:
            self._in_flight[id] = self._in_flight.get(id, 0) + 1

    def finished(self, id: str) -> None:
        """A call to ``id`` ended (however it ended)."""
        with self._lock:
            self._in_flight[id] = max(0, self._in_flight.get(id, 0) - 1)

    def succeeded(self, id: str, latency: float | None) -> bool:
        """A call to ``id`` succeeded in ``latency`` seconds; True if it was misconfigured."""
        with self._lock:
            if latency is not None and latency >= 0:
                previous = self._latency.get(id)
                average = latency
                if previous is not None and self._clock() - previous[1] <= self._stale_after:
                    average = self._alpha * latency + (1 - self._alpha) * previous[0]
                self._latency[id] = (average, self._clock())
            if id in self._misconfigured:
                self._misconfigured.discard(id)
                return True
            return False

    def mark_misconfigured(self, id: str) -> bool:
        """Flag ``id`` as misconfigured; True the first time since its last success."""
        with self._lock:
            if id in self._misconfigured:
                return False
            self._misconfigured.add(id)
            return True

    def views(self, ids: Sequence[str]) -> list[tuple[int, float | None, bool]]:
        """For each id: calls in flight, latency average (None if unmeasured or stale), flag."""
        with self._lock:
            if not self._latency and not self._misconfigured:  # no measurement yet
                return [(self._in_flight.get(id, 0), None, False) for id in ids]
            now = self._clock()
            found = []
            for id in ids:
                measured = self._latency.get(id)
                latency = None
                if measured is not None and now - measured[1] <= self._stale_after:
                    latency = measured[0]
                found.append((self._in_flight.get(id, 0), latency, id in self._misconfigured))
            return found

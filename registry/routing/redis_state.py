"""Cooldowns and failure counters on Redis, shared by every process and replica that uses it.

Set ``routing_state = "redis://host:6379/0"`` (or ``MODELREG_ROUTING_STATE``); needs the
``redis`` package (``pip install 'modelreg[redis]'``).

Keys (``{pool}`` is the model's name, ``{id}`` the deployment's id, such as ``chat#0``):

==================================  ==================================  =========================
key                                 value                               expiry
==================================  ==================================  =========================
``modelreg:{pool}:{id}:cooldown``   ``kind|end|reason``: e.g.           the cooldown itself, set
                                    ``rate-limited|1767225600000|429,   with the value (SET PX);
                                    retry-after 5 s`` (end: wall-clock  a longer one is kept
                                    ms)
``modelreg:{pool}:{id}:failures``   failures counted in the window      ``failure_window`` (60 s)
                                                                        from the window's first
==================================  ==================================  =========================

Every key has an expiry, so nothing outlives its meaning (a deployment removed from the
settings leaves nothing behind for longer than a minute, or its last cooldown).

* **Atomic.** A cooldown is set by a Lua script that keeps a longer one already there and
  otherwise sets the value and its expiry in one ``SET ... PX``; a failure is counted by a
  script doing ``INCR`` and, for the window's first failure, ``PEXPIRE``.
* **Never lagging.** Every pick reads the cooldowns of the whole pool in one round trip (one
  ``MGET``): there is no local cache to go stale, so a cooldown set by another replica is seen
  by the very next pick anywhere. The time left is read from the value's end; should this
  host's clock run ahead of the writer's, so that the end seems past while the key still
  exists, the keys' ``PTTL`` are read instead: a deployment is never tried before its key
  expires.
* **What stays local.** Calls in flight (``least-busy``) and latency (``latency``) are each
  process's own: shared counters of calls in flight would be left too high by every process
  that dies mid-call, and cost two more round trips per call; each replica balancing its own
  calls balances the sum. A process also keeps its own copy of the cooldowns and counts it
  records, and a pick takes the longer of the two cooldowns.
* **Redis down.** A failing Redis command (refused, timed out after ``timeout``: 0.25 s by
  default, for connecting and for each read) makes the store use this process's own state;
  it logs one WARNING (logger ``modelreg.routing``), and does not try Redis again for
  ``reconnect_after`` seconds (1 s), so a dead Redis costs at most one timeout per second.
  When a command succeeds again it logs at INFO and sharing resumes. No call fails because
  Redis is down. (A log record, not a warning: a warning turned into an error by
  ``-W error`` would fail the very calls this must not fail.)
* The URL is shown with its password masked (:func:`registry.masking.mask_url`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from registry.errors import ConfigError
from registry.masking import mask_url
from registry.routing.state import (
    Clock,
    Cooldown,
    CooldownKind,
    MemoryStateStore,
    StateStore,
)

__all__ = ["REDIS_INSTALL", "RedisStateStore", "import_redis"]

REDIS_INSTALL = "pip install 'modelreg[redis]'"
logger = logging.getLogger("modelreg.routing")
T = TypeVar("T")

#: KEYS: cooldown keys. Returns PTTL and value of each (0 and "" when it is not cooling).
#: Used only when a cooldown's end cannot be read from its value (clocks set apart).
_READ_COOLDOWNS = """
local found = {}
for i, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then
    found[2 * i - 1] = ttl
    found[2 * i] = redis.call('GET', key)
  else
    found[2 * i - 1] = 0
    found[2 * i] = ''
  end
end
return found
"""
#: KEYS[1]: a cooldown key; ARGV: milliseconds, value. Keeps a longer cooldown already set.
_COOL = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  return 1
end
return 0
"""
#: KEYS[1]: a failures key; ARGV[1]: the window in milliseconds. Returns the count.
_COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""


def import_redis(origin: str = "routing_state") -> Any:
    """The ``redis`` module, or a ConfigError saying how to install it."""
    try:
        import redis
    except ImportError:
        raise ConfigError(
            f"{origin} is a Redis URL, which needs the redis package. Install it with: "
            f"{REDIS_INSTALL}"
        ) from None
    return redis


class _Scripts:
    """A client and its three scripts (sync or asyncio)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.read = client.register_script(_READ_COOLDOWNS)
        self.cool = client.register_script(_COOL)
        self.count = client.register_script(_COUNT_FAILURE)


class RedisStateStore(StateStore):
    """Pool state on Redis, falling back to this process's state while Redis is unreachable.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` (redis-py's URL forms).
        prefix: of every key.
        timeout: seconds to connect and for each reply.
        reconnect_after: seconds between attempts to reach a Redis that failed.
        origin: where the URL came from, for messages (``env MODELREG_ROUTING_STATE``).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "modelreg:",
        timeout: float = 0.25,
        reconnect_after: float = 1.0,
        clock: Clock = time.monotonic,
        origin: str = "routing_state",
    ) -> None:
        redis = import_redis(origin)
        self.where = mask_url(url)
        self.prefix = prefix
        self._url = url
        self._timeout = timeout
        self._reconnect_after = reconnect_after
        self._clock = clock
        self._local = MemoryStateStore(clock)
        self._errors = (redis.exceptions.RedisError, OSError)
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0
        self._async: dict[int, tuple[weakref.ref[Any], _Scripts]] = {}
        self._key_cache: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        try:
            client = redis.Redis.from_url(url, **self._client_options(redis.retry.Retry))
        except ValueError:
            raise ConfigError(
                f"{origin} ({self.where}) is not a Redis URL (redis://host:6379/0)"
            ) from None
        self._sync = _Scripts(client)

    def __repr__(self) -> str:
        return f"RedisStateStore({self.where!r})"

    @property
    def reachable(self) -> bool:
        """False while Redis is not answering (the process's own state stands in)."""
        return not self._down

    def _client_options(self, retry_class: Any) -> dict[str, Any]:
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        return {
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
            "decode_responses": True,
            # one immediate reconnect for a connection that went stale (Redis restarted);
            # none for a timeout, so a stalled Redis costs one timeout, not several
            "retry": retry_class(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        }

    def key(self, pool: str, id: str, what: str) -> str:
        """``modelreg:{pool}:{id}:{what}`` (``what``: ``cooldown`` or ``failures``)."""
        return f"{self.prefix}{pool}:{id}:{what}"

    def _keys(self, pool: str, ids: Sequence[str]) -> list[str]:
        """The cooldown keys of a pool's deployments (built once: every pick needs them)."""
        cache_key = (pool, tuple(ids))
        keys = self._key_cache.get(cache_key)
        if keys is None:
            keys = self._key_cache[cache_key] = [self.key(pool, id, "cooldown") for id in ids]
        return keys

    # -- reachability ---------------------------------------------------------------------

    def _should_try(self) -> bool:
        if not self._down:
            return True
        with self._lock:
            now = self._clock()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._reconnect_after  # one caller probes at a time
            return True

    def _lost(self, exc: BaseException) -> None:
        with self._lock:
            first = not self._down
            self._down = True
            self._retry_at = self._clock() + self._reconnect_after
        if first:
            logger.warning(
                "routing state: Redis at %s is unreachable (%s); pools use this process's own "
                "state until it answers again (tried every %s s)",
                self.where,
                type(exc).__name__,
                f"{self._reconnect_after:g}",
            )

    def _found(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                logger.info("routing state: Redis at %s answers again: state is shared", self.where)

    def _shared(self, command: Callable[[_Scripts], T]) -> T | None:
        """``command(scripts)`` on Redis, or None when Redis is down or fails."""
        if not self._should_try():
            return None
        try:
            result = command(self._sync)
        except self._errors as exc:
            self._lost(exc)
            return None
        self._found()
        return result

    async def _ashared(self, command: Callable[[_Scripts], Any]) -> Any:
        """``await command(scripts)`` on this event loop's Redis client, or None."""
        if not self._should_try():
            return None
        try:
            result = await command(self._async_scripts())
        except self._errors as exc:
            self._lost(exc)
            return None
        self._found()
        return result

    def _async_scripts(self) -> _Scripts:
        """The asyncio client of the running loop (a connection cannot outlive its loop)."""
        import asyncio

        import redis.asyncio
        import redis.asyncio.retry

        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async.get(id(loop))
            if entry is not None and entry[0]() is loop:
                return entry[1]
            for key, (ref, _) in list(self._async.items()):
                if ref() is None or ref().is_closed():  # type: ignore[union-attr]
                    del self._async[key]
            options = self._client_options(redis.asyncio.retry.Retry)
            scripts = _Scripts(redis.asyncio.Redis.from_url(self._url, **options))
            self._async[id(loop)] = (weakref.ref(loop), scripts)
            return scripts

    # -- the store --------------------------------------------------------------------------

    def cooldowns(self, pool: str, ids: Sequence[str]) -> list[Cooldown | None]:
        """See :meth:`StateStore.cooldowns`: Redis's and this process's, the longer of each.

        One ``MGET``; a second round trip (each key's ``PTTL``) only if a cooldown's end,
        read from its value, is already past while the key still exists (this host's clock
        runs ahead of the writer's): the key's expiry on the server is what counts.
        """
        keys = self._keys(pool, ids)
        shared, skewed = _from_values(
            self._shared(lambda s: s.client.execute_command("MGET", *keys))
        )
        if skewed:
            shared = _from_ttls(self._shared(lambda s: s.read(keys=keys)))
        return _merge(shared, self._local.cooldowns(pool, ids))

    async def acooldowns(self, pool: str, ids: Sequence[str]) -> list[Cooldown | None]:
        """See :meth:`cooldowns`."""
        keys = self._keys(pool, ids)
        shared, skewed = _from_values(
            await self._ashared(lambda s: s.client.execute_command("MGET", *keys))
        )
        if skewed:
            shared = _from_ttls(await self._ashared(lambda s: s.read(keys=keys)))
        return _merge(shared, self._local.cooldowns(pool, ids))

    def cool(self, pool: str, id: str, seconds: float, kind: CooldownKind, reason: str) -> None:
        """See :meth:`StateStore.cool`."""
        self._local.cool(pool, id, seconds, kind, reason)
        key, args = self.key(pool, id, "cooldown"), _cool_args(seconds, kind, reason)
        self._shared(lambda s: s.cool(keys=[key], args=args))

    async def acool(
        self, pool: str, id: str, seconds: float, kind: CooldownKind, reason: str
    ) -> None:
        """See :meth:`cool`."""
        self._local.cool(pool, id, seconds, kind, reason)
        key, args = self.key(pool, id, "cooldown"), _cool_args(seconds, kind, reason)
        await self._ashared(lambda s: s.cool(keys=[key], args=args))

    def record_failure(self, pool: str, id: str, window: float) -> int:
        """See :meth:`StateStore.record_failure`: the shared count while Redis answers."""
        local = self._local.record_failure(pool, id, window)
        key, args = self.key(pool, id, "failures"), [_milliseconds(window)]
        shared = self._shared(lambda s: s.count(keys=[key], args=args))
        return local if shared is None else int(shared)

    async def arecord_failure(self, pool: str, id: str, window: float) -> int:
        """See :meth:`record_failure`."""
        local = self._local.record_failure(pool, id, window)
        key, args = self.key(pool, id, "failures"), [_milliseconds(window)]
        shared = await self._ashared(lambda s: s.count(keys=[key], args=args))
        return local if shared is None else int(shared)

    def failures(self, pool: str, ids: Sequence[str]) -> list[int]:
        """See :meth:`StateStore.failures`."""
        keys = [self.key(pool, id, "failures") for id in ids]
        shared = self._shared(lambda s: s.client.execute_command("MGET", *keys))
        if shared is None:
            return self._local.failures(pool, ids)
        return [int(value or 0) for value in shared]

    async def afailures(self, pool: str, ids: Sequence[str]) -> list[int]:
        """See :meth:`failures`."""
        keys = [self.key(pool, id, "failures") for id in ids]
        shared = await self._ashared(lambda s: s.client.execute_command("MGET", *keys))
        if shared is None:
            return self._local.failures(pool, ids)
        return [int(value or 0) for value in shared]

    def close(self) -> None:
        """Close the sync client's connections (async ones: :meth:`aclose` on their loop)."""
        self._sync.client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client, and the sync one."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async.pop(id(loop), None)
        if entry is not None and entry[0]() is loop:
            await entry[1].client.aclose()
        self.close()


def _milliseconds(seconds: float) -> int:
    """Rounded up, so an expiry is never shorter than asked; at least 1 ms."""
    return max(1, math.ceil(seconds * 1000))


def _cool_args(seconds: float, kind: CooldownKind, reason: str) -> list[Any]:
    """The script's arguments: the expiry, and the value ``kind|end|reason``.

    ``end`` is the wall-clock millisecond the cooldown ends at, so that a pick can tell the
    time left from one ``MGET``.
    """
    milliseconds = _milliseconds(seconds)
    end = math.ceil(time.time() * 1000) + milliseconds
    return [milliseconds, f"{kind.value}|{end}|{reason}"]


def _decode(value: str) -> tuple[CooldownKind, float, str]:
    """``kind|end|reason`` -> kind, end (wall-clock seconds), reason."""
    kind_text, _, rest = value.partition("|")
    end_text, _, reason = rest.partition("|")
    try:
        kind = CooldownKind(kind_text)
    except ValueError:  # written by a newer version: a cooldown all the same
        kind = CooldownKind.FAILING
    try:
        end = int(end_text) / 1000
    except ValueError:
        end = 0.0
    return kind, end, reason


def _from_values(values: Any) -> tuple[list[Cooldown | None] | None, bool]:
    """Cooldowns from ``MGET`` (None: Redis did not answer), and whether to read PTTLs.

    PTTLs are needed when a key's end, by this host's clock, has passed while it still exists.
    """
    if values is None:
        return None, False
    if not any(values):  # the common case: nothing is cooling
        return [None] * len(values), False
    now = time.time()
    found: list[Cooldown | None] = []
    for value in values:
        if value is None:
            found.append(None)
            continue
        kind, end, reason = _decode(value)
        if end <= now:
            return None, True
        found.append(Cooldown(end - now, kind, reason))
    return found, False


def _from_ttls(raw: Any) -> list[Cooldown | None] | None:
    """Cooldowns from the script's (PTTL, value) pairs (None: Redis did not answer)."""
    if raw is None:
        return None
    found: list[Cooldown | None] = []
    for index in range(0, len(raw), 2):
        ttl, value = int(raw[index]), raw[index + 1]
        if ttl <= 0 or not value:
            found.append(None)
        else:
            kind, _, reason = _decode(value)
            found.append(Cooldown(ttl / 1000, kind, reason))
    return found


def _merge(
    shared: list[Cooldown | None] | None, local: list[Cooldown | None]
) -> list[Cooldown | None]:
    """Redis's cooldowns (None: not read) and this process's: the longer of each."""
    if shared is None or not any(local):
        return local if shared is None else shared
    merged: list[Cooldown | None] = []
    for mine, theirs in zip(local, shared, strict=True):
        if theirs is None or (mine is not None and mine.remaining >= theirs.remaining):
            merged.append(mine)
        else:
            merged.append(theirs)
    return merged

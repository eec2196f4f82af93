"""One retry loop for a call through a pool, as a policy: it decides, the caller acts.

:class:`Attempts` is told the state of the pool before each attempt and how each attempt
failed; it answers with the deployment to try, how long to wait first, or
:class:`~registry.errors.NoDeploymentAvailableError`. It performs no I/O and never sleeps, so
the same object drives sync and async code (:meth:`registry.routing.pool.Pool.call` and
``acall`` are the loops written out).

The rules:

* ``max_retries`` is the pool's budget: at most ``max_retries + 1`` attempts, across
  deployments (inside a pool the SDK's own retries are 0).
* After a failure that is worth retrying, the next attempt goes at once to another available
  deployment, one not yet tried in this call, chosen by the routing strategy.
* When every available deployment has failed in this call, one is tried again after a
  backoff (0.5 s, doubling, at most 8 s, less up to 25% jitter: the SDK's own schedule), so
  a one-deployment pool is no harsher on its server than the SDK alone. A deployment whose
  failure cooled it needs no backoff once its cooldown is over: the cooldown was one.
* When every deployment is cooling, the call waits until the earliest cooldown ends — if that
  is within the call's time budget; cooldowns of misconfigured deployments are not waited
  for. Otherwise it raises :class:`~registry.errors.NoDeploymentAvailableError`. After such a
  wait no backoff is added: the deployments count as not yet tried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from registry.errors import NoDeploymentAvailableError, PluginError
from registry.routing.cooldowns import Verdict
from registry.routing.state import Clock, Deployment, DeploymentState, format_seconds
from registry.routing.strategies import Candidate, RoutingStrategy

__all__ = ["Attempts", "Step", "choose_deployment"]

#: Added to a cooldown's remaining time when waiting for it, so the wait ends after the
#: cooldown's expiry (a Redis key's expiry has millisecond precision) rather than just before.
WAIT_MARGIN = 0.002
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0


@dataclass(frozen=True)
class Step:
    """What to do next: wait ``wait`` seconds, then try ``deployment`` (None: ask again)."""

    deployment: Deployment | None
    wait: float = 0.0


def choose_deployment(
    strategy: RoutingStrategy, rng: random.Random, candidates: Sequence[Candidate]
) -> Deployment:
    """Ask ``strategy`` to choose one of ``candidates`` (not empty; alone, it is chosen)."""
    if len(candidates) == 1:
        return candidates[0].deployment
    try:
        chosen = strategy.choose(candidates, rng)
    except Exception as exc:
        raise PluginError(
            f"routing strategy {type(strategy).__name__} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not any(chosen is c for c in candidates):
        raise PluginError(
            f"routing strategy {type(strategy).__name__} returned {chosen!r}, which is not one "
            "of the candidates it was given"
        )
    return chosen.deployment


class Attempts:
    """The retry loop of one call (see the module docstring).

    Args:
        pool: the pool's name, for messages.
        strategy: the pool's routing strategy; ``rng`` its random generator.
        max_retries: attempts after the first (>= 0).
        start: when the call started (the clock's reading); default: now.
        budget: seconds this call may take in all, waits included; None: no limit (then at
            most ``max_retries + 1`` waits).
    """

    def __init__(
        self,
        pool: str,
        strategy: RoutingStrategy,
        rng: random.Random,
        *,
        max_retries: int,
        budget: float | None,
        clock: Clock = time.monotonic,
        start: float | None = None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be a whole number >= 0")
        self.pool = pool
        self.max_retries = max_retries
        self._strategy = strategy
        self._rng = rng
        self._clock = clock
        self._deadline = None if budget is None else (clock() if start is None else start) + budget
        self._tried: set[str] = set()
        self._rounds = 0  # times a deployment already tried in this call was chosen again
        self._waits = 0
        #: Attempts started so far.
        self.attempts = 0
        #: Why the last attempt failed (for messages), or "".
        self.last_reason = ""

    def time_left(self) -> float | None:
        """Seconds left of the call's budget (None: no budget), to cap an attempt's timeout."""
        return None if self._deadline is None else max(0.0, self._deadline - self._clock())

    def next(self, states: Sequence[DeploymentState]) -> Step:
        """The next step, given the pool's current state (every deployment, in pool order).

        Call it for the first attempt and again only while :meth:`failed` returns True.

        Raises:
            NoDeploymentAvailableError: nothing can be tried within the time budget.
        """
        left = None if self._deadline is None else self._deadline - self._clock()
        if left is not None and left <= 0:
            raise self._unavailable(states, "the call's time budget is spent")
        available = [i for i, s in enumerate(states) if s.cooldown is None]
        if available:
            fresh = [i for i in available if states[i].deployment.id not in self._tried]
            wait = 0.0 if fresh else self._backoff()
            if left is not None and wait >= left:
                raise self._unavailable(
                    states,
                    f"every available deployment already failed in this call, and the backoff "
                    f"before trying one again ({format_seconds(wait)}) outlasts the call's time "
                    f"budget ({format_seconds(left)} left)",
                )
            indexes = fresh or available
            if len(indexes) == 1:  # alone, it is chosen (the strategy is not asked)
                chosen = states[indexes[0]].deployment
            else:
                candidates = [
                    Candidate(states[i].deployment, i, states[i].in_flight, states[i].latency)
                    for i in indexes
                ]
                chosen = choose_deployment(self._strategy, self._rng, candidates)
            self.attempts += 1
            return Step(chosen, wait)
        return self._wait_for_cooldown(states, left)

    def _wait_for_cooldown(self, states: Sequence[DeploymentState], left: float | None) -> Step:
        cooldowns = [s.cooldown for s in states if s.cooldown is not None]
        waitable = [c.remaining for c in cooldowns if c.waitable]
        if not waitable:
            raise self._unavailable(states, "every deployment is out for misconfiguration")
        wait = min(waitable) + WAIT_MARGIN
        if left is not None and wait > left:
            raise self._unavailable(
                states,
                f"every deployment is cooling down; the first is back in {format_seconds(wait)}, "
                f"after the call's time budget ({format_seconds(left)} left)",
            )
        if left is None and self._waits > self.max_retries:
            raise self._unavailable(states, "every deployment is cooling down, again")
        self._waits += 1
        self._tried.clear()  # the cooldown stands for the backoff: no second wait after it
        return Step(None, wait)

    def started(self, deployment: Deployment) -> None:
        """Count a first attempt the pool made on its own, as :meth:`next` would have chosen it.

        (:meth:`registry.routing.pool.Pool.call` picks the first deployment itself — among the
        available ones, by the strategy, exactly as :meth:`next` does before anything has
        failed — and builds this policy only when that attempt fails.)
        """
        self.attempts += 1

    def failed(self, deployment: Deployment, verdict: Verdict) -> bool:
        """Record a failed attempt; True: try again (call :meth:`next`), False: give up.

        On False the caller re-raises that attempt's error.
        """
        if verdict.cooldown is None:  # a cooled one is out until its cooldown ends; then
            self._tried.add(deployment.id)  # the cooldown has been its backoff
        self.last_reason = verdict.reason
        return verdict.retry and self.attempts <= self.max_retries

    def _backoff(self) -> float:
        self._rounds += 1
        delay = min(BACKOFF_FIRST * 2.0 ** min(self._rounds - 1, 10), BACKOFF_MAX)
        return delay * (1 - 0.25 * self._rng.random())

    def _unavailable(
        self, states: Sequence[DeploymentState], why: str
    ) -> NoDeploymentAvailableError:
        tried = f" after {self.attempts} attempt(s)" if self.attempts else ""
        last = f", the last one failing with {self.last_reason}" if self.last_reason else ""
        lines = "\n".join(f"  - {state.describe()}" for state in states)
        return NoDeploymentAvailableError(
            f"model pool {self.pool!r}: no deployment available{tried}{last}: {why}.\n{lines}",
            pool=self.pool,
            deployments=states,
        )

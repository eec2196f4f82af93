"""A pool: several deployments behind one name, a routing strategy, cooldowns, one retry loop.

::

    pool = Pool("chat", [Deployment("chat#0", "eastus/gpt-4o", 2), Deployment("chat#1", ...)])
    reply = pool.call(lambda d: send(d), max_retries=3, budget=60.0)
    reply = await pool.acall(lambda d: asend(d), max_retries=3, budget=60.0)

``send(deployment)`` makes one attempt (the SDK's own retries off) and raises the SDK's
exception on failure; the pool classifies it (:mod:`registry.routing.cooldowns`), cools the
deployment when the rules say so, and the policy (:mod:`registry.routing.policy`) decides what
comes next. The pieces are public too, for loops the helpers do not fit (a stream that fails
over only before its first chunk): :meth:`Pool.attempts`, :meth:`Pool.snapshot`,
:meth:`Pool.track`, :meth:`Pool.record_failure`.

Logging (logger ``modelreg.routing``): each cooldown at INFO, a misconfigured deployment at
WARNING once (again only after a success), each failover at INFO: pool, from and to
deployment, and why. Labels name the endpoint's host and deployment, never a credential.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TypeVar

from registry.errors import ConfigError, NoDeploymentAvailableError, PluginError, did_you_mean
from registry.routing.cooldowns import CooldownRules, Failure, Verdict, classify
from registry.routing.cooldowns import failure_from_exception as _failure_from_exception
from registry.routing.policy import Attempts, choose_deployment
from registry.routing.state import (
    Clock,
    Cooldown,
    CooldownKind,
    Deployment,
    DeploymentState,
    LocalStats,
    MemoryStateStore,
    StateStore,
    format_seconds,
)
from registry.routing.strategies import Candidate, RoutingStrategy

__all__ = ["Pool", "resolve_strategy"]

logger = logging.getLogger("modelreg.routing")
T = TypeVar("T")


def resolve_strategy(name: str) -> RoutingStrategy:
    """A new instance of the strategy registered as ``name`` (built-in or a plugin's).

    Raises:
        ConfigError: no strategy has that name (with a did-you-mean).
        PluginError: a plugin's strategy is unavailable or does not build a strategy.
    """
    from registry.plugins import get_plugin_host

    host = get_plugin_host()
    try:
        factory = host.lookup("routing_strategies", name)
    except KeyError:
        known = host.names("routing_strategies")
        raise ConfigError(
            f"routing strategy {name!r} is not registered.{did_you_mean(name, known)} "
            f"Strategies: {', '.join(known)}."
        ) from None
    strategy = factory()
    if not callable(getattr(strategy, "choose", None)):
        raise PluginError(
            f"routing strategy {name!r} built {type(strategy).__name__}, which has no "
            "choose(candidates, rng) method"
        )
    return strategy  # type: ignore[no-any-return]


class Pool:
    """Deployments of one model, routed and cooled as the module docstring says.

    Args:
        name: the pool's (model's) name: in messages, logs and the shared state's keys.
        deployments: at least one; ids unique.
        strategy: a registered strategy's name, or a strategy object.
        rules: cooldown rules (``cooldown_time``, ``allowed_fails``...).
        store: where cooldowns and failure counts live; default: this pool's own memory.
        seed: seeds the pool's random generator (weighted picks, backoff jitter).
        clock: monotonic seconds (tests pass a fake clock).
    """

    def __init__(
        self,
        name: str,
        deployments: Iterable[Deployment],
        *,
        strategy: str | RoutingStrategy = "weighted",
        rules: CooldownRules | None = None,
        store: StateStore | None = None,
        seed: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.deployments = tuple(deployments)
        if not self.deployments:
            raise ConfigError(f"model pool {name!r} has no deployments")
        ids = [d.id for d in self.deployments]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigError(f"model pool {name!r}: deployment ids repeat: {duplicates}")
        self.strategy_name = strategy if isinstance(strategy, str) else type(strategy).__name__
        self.strategy = resolve_strategy(strategy) if isinstance(strategy, str) else strategy
        self.rules = rules or CooldownRules()
        self.store = store if store is not None else MemoryStateStore(clock)
        self._ids = ids
        self._rng = random.Random(seed)
        self._clock = clock
        self._stats = LocalStats(clock)

    def __repr__(self) -> str:
        labels = ", ".join(d.describe() for d in self.deployments)
        return f"Pool({self.name!r}, [{labels}], strategy={self.strategy_name!r})"

    # -- state ------------------------------------------------------------------------------

    def snapshot(self, *, failures: bool = False) -> list[DeploymentState]:
        """Every deployment's state now, in pool order.

        One read of the store; two with ``failures`` (which picks do not need).
        """
        cooldowns = self.store.cooldowns(self.name, self._ids)
        counts = self.store.failures(self.name, self._ids) if failures else None
        return self._states(cooldowns, counts)

    async def asnapshot(self, *, failures: bool = False) -> list[DeploymentState]:
        """:meth:`snapshot` for async code."""
        cooldowns = await self.store.acooldowns(self.name, self._ids)
        counts = await self.store.afailures(self.name, self._ids) if failures else None
        return self._states(cooldowns, counts)

    def _states(
        self, cooldowns: Sequence[Cooldown | None], counts: Sequence[int] | None
    ) -> list[DeploymentState]:
        states = []
        views = self._stats.views(self._ids)
        for index, deployment in enumerate(self.deployments):
            cooldown = cooldowns[index]
            in_flight, latency, flagged = views[index]
            misconfigured = flagged or (
                cooldown is not None and cooldown.kind is CooldownKind.MISCONFIGURED
            )
            failures = None if counts is None else counts[index]
            states.append(
                DeploymentState(deployment, cooldown, in_flight, latency, misconfigured, failures)
            )
        return states

    def pick(self) -> Deployment | None:
        """The deployment the strategy chooses among those available now; None if all cool."""
        return self._pick(self.store.cooldowns(self.name, self._ids))

    async def apick(self) -> Deployment | None:
        """:meth:`pick` for async code."""
        return self._pick(await self.store.acooldowns(self.name, self._ids))

    def _pick(self, cooldowns: Sequence[Cooldown | None]) -> Deployment | None:
        available = [i for i, cooldown in enumerate(cooldowns) if cooldown is None]
        if not available:
            return None
        if len(available) == 1:
            return self.deployments[available[0]]
        views = self._stats.views(self._ids)
        candidates = [
            Candidate(self.deployments[i], i, views[i][0], views[i][1]) for i in available
        ]
        return choose_deployment(self.strategy, self._rng, candidates)

    # -- outcomes ---------------------------------------------------------------------------

    def track(self, deployment: Deployment) -> AbstractContextManager[None]:
        """Count a call in flight while the block runs.

        A block that ends without an exception is a success: its duration feeds the latency
        average.
        """
        return _Tracked(self, deployment)

    def record_success(self, deployment: Deployment, latency: float | None = None) -> None:
        """A call to ``deployment`` succeeded (in ``latency`` seconds)."""
        if self._stats.succeeded(deployment.id, latency):
            logger.info("model pool %r: %s answers again", self.name, deployment.describe())

    def record_failure(self, deployment: Deployment, failure: Failure) -> Verdict:
        """Apply the cooldown rules to a failed call; the verdict says whether to retry."""
        verdict = classify(failure, self.rules)
        if verdict.counts:
            count = self.store.record_failure(self.name, deployment.id, self.rules.failure_window)
            verdict = self._counted(verdict, count)
        if verdict.cooldown is not None and verdict.kind is not None:
            self.store.cool(
                self.name, deployment.id, verdict.cooldown, verdict.kind, verdict.reason
            )
            self._log_cooldown(deployment, verdict)
        return verdict

    async def arecord_failure(self, deployment: Deployment, failure: Failure) -> Verdict:
        """:meth:`record_failure` for async code."""
        verdict = classify(failure, self.rules)
        if verdict.counts:
            count = await self.store.arecord_failure(
                self.name, deployment.id, self.rules.failure_window
            )
            verdict = self._counted(verdict, count)
        if verdict.cooldown is not None and verdict.kind is not None:
            await self.store.acool(
                self.name, deployment.id, verdict.cooldown, verdict.kind, verdict.reason
            )
            self._log_cooldown(deployment, verdict)
        return verdict

    def _counted(self, verdict: Verdict, count: int) -> Verdict:
        """A counted failure beyond ``allowed_fails`` cools the deployment for cooldown_time."""
        if count <= self.rules.allowed_fails or verdict.cooldown is not None:
            return verdict
        window = format_seconds(self.rules.failure_window)
        return replace(
            verdict,
            cooldown=self.rules.cooldown_time,
            kind=CooldownKind.FAILING,
            reason=f"{count} failures within {window}, the last {verdict.reason}",
        )

    def _log_cooldown(self, deployment: Deployment, verdict: Verdict) -> None:
        assert verdict.cooldown is not None
        if verdict.kind is CooldownKind.MISCONFIGURED:
            if self._stats.mark_misconfigured(deployment.id):
                logger.warning(
                    "model pool %r: %s answered %s: it looks misconfigured (check its "
                    "deployment name, endpoint, key or role assignment); out of rotation for %s "
                    "at a time until it answers",
                    self.name,
                    deployment.describe(),
                    verdict.reason,
                    format_seconds(verdict.cooldown),
                )
            return
        logger.info(
            "model pool %r: %s cooling down for %s (%s)",
            self.name,
            deployment.describe(),
            format_seconds(verdict.cooldown),
            verdict.reason,
        )

    # -- the retry loop ---------------------------------------------------------------------

    def attempts(
        self, *, max_retries: int, budget: float | None, start: float | None = None
    ) -> Attempts:
        """A retry policy for one call (see :mod:`registry.routing.policy`)."""
        return Attempts(
            self.name,
            self.strategy,
            self._rng,
            max_retries=max_retries,
            budget=budget,
            clock=self._clock,
            start=start,
        )

    def call(
        self,
        send: Callable[[Deployment], T],
        *,
        max_retries: int,
        budget: float | None,
        classify_error: Callable[[BaseException], Failure] = _failure_from_exception,
    ) -> T:
        """Call ``send(deployment)`` until one succeeds, as the policy directs.

        Returns what ``send`` returned. Raises the last attempt's exception when it is not
        worth retrying or the retries are spent, and NoDeploymentAvailableError (chained to
        the last attempt's exception, if any) when nothing can be tried in time.
        """
        start = self._clock()
        last: Exception | None = None
        previous = self.pick()  # the first attempt needs no policy until it fails
        if previous is not None:
            try:
                with self.track(previous):
                    return send(previous)
            except Exception as exc:
                verdict = self.record_failure(previous, classify_error(exc))
                attempts = self.attempts(max_retries=max_retries, budget=budget, start=start)
                attempts.started(previous)
                if not attempts.failed(previous, verdict):
                    raise
                last = exc
        else:
            attempts = self.attempts(max_retries=max_retries, budget=budget, start=start)
        while True:
            try:
                step = attempts.next(self.snapshot())
            except NoDeploymentAvailableError as error:
                raise error from last
            if step.wait > 0:
                time.sleep(step.wait)
            if step.deployment is None:
                continue
            self._log_failover(previous, step.deployment, attempts)
            try:
                with self.track(step.deployment):
                    result = send(step.deployment)
            except Exception as exc:
                verdict = self.record_failure(step.deployment, classify_error(exc))
                if not attempts.failed(step.deployment, verdict):
                    raise
                last, previous = exc, step.deployment
                continue
            return result

    async def acall(
        self,
        send: Callable[[Deployment], Awaitable[T]],
        *,
        max_retries: int,
        budget: float | None,
        classify_error: Callable[[BaseException], Failure] = _failure_from_exception,
    ) -> T:
        """:meth:`call` for async code: ``send(deployment)`` returns an awaitable."""
        import asyncio

        start = self._clock()
        last: Exception | None = None
        previous = await self.apick()
        if previous is not None:
            try:
                with self.track(previous):
                    return await send(previous)
            except Exception as exc:
                verdict = await self.arecord_failure(previous, classify_error(exc))
                attempts = self.attempts(max_retries=max_retries, budget=budget, start=start)
                attempts.started(previous)
                if not attempts.failed(previous, verdict):
                    raise
                last = exc
        else:
            attempts = self.attempts(max_retries=max_retries, budget=budget, start=start)
        while True:
            try:
                step = attempts.next(await self.asnapshot())
            except NoDeploymentAvailableError as error:
                raise error from last
            if step.wait > 0:
                await asyncio.sleep(step.wait)
            if step.deployment is None:
                continue
            self._log_failover(previous, step.deployment, attempts)
            try:
                with self.track(step.deployment):
                    result = await send(step.deployment)
            except Exception as exc:
                verdict = await self.arecord_failure(step.deployment, classify_error(exc))
                if not attempts.failed(step.deployment, verdict):
                    raise
                last, previous = exc, step.deployment
                continue
            return result

    def _log_failover(
        self, previous: Deployment | None, chosen: Deployment, attempts: Attempts
    ) -> None:
        if previous is not None:
            logger.info(
                "model pool %r: %s failed (%s); attempt %d goes to %s",
                self.name,
                previous.describe(),
                attempts.last_reason,
                attempts.attempts,
                chosen.describe(),
            )


class _Tracked:
    """:meth:`Pool.track`'s block: a class, cheaper than a generator around every attempt."""

    __slots__ = ("_deployment", "_pool", "_start")

    def __init__(self, pool: Pool, deployment: Deployment) -> None:
        self._pool = pool
        self._deployment = deployment
        self._start = 0.0

    def __enter__(self) -> None:
        self._pool._stats.started(self._deployment.id)
        self._start = self._pool._clock()

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        pool = self._pool
        pool._stats.finished(self._deployment.id)
        if exc_type is None:
            pool.record_success(self._deployment, pool._clock() - self._start)

"""Routing strategies: which of the available deployments takes the next attempt.

A strategy is an object with ``choose(candidates, rng) -> Candidate``. It is given only the
deployments that may be tried now (not cooling; not yet tried in this call, while any such
remains), never an empty list, in pool order, and must return one of them. ``rng`` is the
pool's ``random.Random`` (seeded when the pool is: picks are then reproducible). One instance
is made per pool, so a strategy may keep state (a round-robin position), but it may be called
from several threads at once.

Plugins register strategies through ``modelreg_register_routing_strategies``; the built-ins
below come in the same way (:mod:`registry.routing.builtin` registers them by name:
``weighted``, ``ordered``, ``least-busy``, ``latency``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from registry.routing.state import Deployment

__all__ = [
    "Candidate",
    "LatencyStrategy",
    "LeastBusyStrategy",
    "OrderedStrategy",
    "RoutingStrategy",
    "RoutingStrategyFactory",
    "WeightedStrategy",
    "weighted_choice",
]


@dataclass(slots=True)
class Candidate:
    """A deployment that may take the attempt, with what this process knows about it.

    Read-only for strategies (not frozen only because frozen objects are slower to build,
    and one is built per deployment before every attempt).

    Attributes:
        index: its position in the pool (0 is the first ``deployments`` entry).
        in_flight: this process's calls to it that have not finished.
        latency: moving average of its recent successful calls in seconds; None when not
            measured recently.
    """

    deployment: Deployment
    index: int
    in_flight: int = 0
    latency: float | None = None


class RoutingStrategy(Protocol):
    """What a routing strategy does (see the module docstring for the rules)."""

    def choose(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        """One of ``candidates`` (never empty) for the next attempt."""
        ...


#: What plugins register: called with no arguments once per pool (a class is one).
RoutingStrategyFactory: TypeAlias = Callable[[], RoutingStrategy]


def weighted_choice(candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
    """Weighted random by ``weight``; zero-weight deployments only when no other is given."""
    weights = [c.deployment.weight for c in candidates]
    total = sum(weights)
    if total <= 0:
        return candidates[int(rng.random() * len(candidates))]
    point = rng.random() * total
    for candidate, weight in zip(candidates, weights, strict=True):
        point -= weight
        if point < 0:  # never at a zero weight: point was >= 0 before it
            return candidate
    return next(c for c in reversed(candidates) if c.deployment.weight > 0)  # rounding


class WeightedStrategy:
    """``weighted`` (the default): a deployment's share of calls is its share of the weights."""

    def choose(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        """See :class:`RoutingStrategy`."""
        return weighted_choice(candidates, rng)


class OrderedStrategy:
    """``ordered``: the first available deployment in settings order.

    The others are backups, used while the ones before them are cooling (or failed in this
    call).
    """

    def choose(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        """See :class:`RoutingStrategy`."""
        return min(candidates, key=lambda c: c.index)


class LeastBusyStrategy:
    """``least-busy``: the fewest calls in flight from this process; ties broken by weight."""

    def choose(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        """See :class:`RoutingStrategy`."""
        fewest = min(c.in_flight for c in candidates)
        return weighted_choice([c for c in candidates if c.in_flight == fewest], rng)


class LatencyStrategy:
    """``latency``: the lowest moving-average latency, unmeasured deployments first.

    A deployment not measured recently (never, or not within a minute) is tried before the
    measured ones (chosen among by weight), so every one gets measured and a slow one that
    recovered is noticed.
    """

    def choose(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        """See :class:`RoutingStrategy`."""
        unmeasured = [c for c in candidates if c.latency is None]
        if unmeasured:
            return weighted_choice(unmeasured, rng)
        return min(candidates, key=lambda c: (c.latency, c.index))

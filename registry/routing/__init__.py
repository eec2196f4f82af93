"""Pools: one model name over several deployments, with routing, cooldowns and one retry loop.

::

    from registry.routing import Deployment, Pool

    pool = Pool("chat", [Deployment("chat#0", "eastus/gpt-4o", weight=2),
                         Deployment("chat#1", "swedencentral/gpt-4o")])
    reply = pool.call(send, max_retries=3, budget=60.0)   # send(deployment) makes one attempt

Modules, one job each:

* :mod:`~registry.routing.state` — deployments, their state, the in-process state store;
* :mod:`~registry.routing.cooldowns` — what a failure means (the cooldown rules);
* :mod:`~registry.routing.strategies` — ``weighted``, ``ordered``, ``least-busy``, ``latency``;
* :mod:`~registry.routing.policy` — the retry loop, as a policy that neither sleeps nor does I/O;
* :mod:`~registry.routing.pool` — the pool tying them together, with ``call``/``acall``;
* :mod:`~registry.routing.redis_state` — the state shared on Redis (``routing_state``);
* :mod:`~registry.routing.stores` — one store per process and URL;
* :mod:`~registry.routing.plan` — a model's pool and fallbacks, and which error leads where;
* :mod:`~registry.routing.served` — ``served_calls()``: which deployment answered.

Importing this package imports none of them (names load on first use) and never ``redis``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry.lazy import lazy_attributes

if TYPE_CHECKING:
    from registry.errors import NoDeploymentAvailableError
    from registry.routing.cooldowns import (
        CooldownRules,
        ErrorKind,
        Failure,
        Verdict,
        classify,
        failure_from_exception,
        parse_duration,
        server_cooldown,
    )
    from registry.routing.policy import Attempts, Step
    from registry.routing.pool import Pool, resolve_strategy
    from registry.routing.redis_state import RedisStateStore
    from registry.routing.served import Served, served_calls
    from registry.routing.state import (
        Cooldown,
        CooldownKind,
        Deployment,
        DeploymentState,
        MemoryStateStore,
        StateStore,
        deployment_label,
    )
    from registry.routing.stores import shared_state_store
    from registry.routing.strategies import (
        Candidate,
        LatencyStrategy,
        LeastBusyStrategy,
        OrderedStrategy,
        RoutingStrategy,
        WeightedStrategy,
    )

__all__ = [
    "Attempts",
    "Candidate",
    "Cooldown",
    "CooldownKind",
    "CooldownRules",
    "Deployment",
    "DeploymentState",
    "ErrorKind",
    "Failure",
    "LatencyStrategy",
    "LeastBusyStrategy",
    "MemoryStateStore",
    "NoDeploymentAvailableError",
    "OrderedStrategy",
    "Pool",
    "RedisStateStore",
    "RoutingStrategy",
    "Served",
    "StateStore",
    "Step",
    "Verdict",
    "WeightedStrategy",
    "classify",
    "deployment_label",
    "failure_from_exception",
    "parse_duration",
    "resolve_strategy",
    "served_calls",
    "server_cooldown",
    "shared_state_store",
]

_MODULES = {
    "registry.errors": ["NoDeploymentAvailableError"],
    "registry.routing.cooldowns": [
        "CooldownRules",
        "ErrorKind",
        "Failure",
        "Verdict",
        "classify",
        "failure_from_exception",
        "parse_duration",
        "server_cooldown",
    ],
    "registry.routing.policy": ["Attempts", "Step"],
    "registry.routing.pool": ["Pool", "resolve_strategy"],
    "registry.routing.redis_state": ["RedisStateStore"],
    "registry.routing.served": ["Served", "served_calls"],
    "registry.routing.state": [
        "Cooldown",
        "CooldownKind",
        "Deployment",
        "DeploymentState",
        "MemoryStateStore",
        "StateStore",
        "deployment_label",
    ],
    "registry.routing.stores": ["shared_state_store"],
    "registry.routing.strategies": [
        "Candidate",
        "LatencyStrategy",
        "LeastBusyStrategy",
        "OrderedStrategy",
        "RoutingStrategy",
        "WeightedStrategy",
    ],
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


__getattr__, __dir__ = lazy_attributes("registry.routing", globals(), _LAZY, __all__)

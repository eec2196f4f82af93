"""The built-in routing strategies, registered through the hook a plugin uses.

One of :data:`registry.plugins.DEFAULT_PLUGINS`, so it is imported whenever plugins are
(every ``create_model``): it imports nothing but the hook marker. What it registers are
factories that import :mod:`registry.routing.strategies` when a pool is first built, so a
process without pools never loads the routing code (and nothing here imports ``redis``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry.hookspecs import RegisterRoutingStrategy, hookimpl

if TYPE_CHECKING:
    from registry.routing.strategies import RoutingStrategy, RoutingStrategyFactory

__all__ = ["BUILTIN_STRATEGIES", "modelreg_register_routing_strategies"]

#: Name -> class in :mod:`registry.routing.strategies`.
BUILTIN_STRATEGIES = {
    "weighted": "WeightedStrategy",
    "ordered": "OrderedStrategy",
    "least-busy": "LeastBusyStrategy",
    "latency": "LatencyStrategy",
}


def _factory(class_name: str) -> RoutingStrategyFactory:
    def build() -> RoutingStrategy:
        from registry.routing import strategies

        strategy: RoutingStrategy = getattr(strategies, class_name)()
        return strategy

    build.__qualname__ = build.__name__ = class_name
    return build


_FACTORIES = {name: _factory(class_name) for name, class_name in BUILTIN_STRATEGIES.items()}


@hookimpl
def modelreg_register_routing_strategies(register: RegisterRoutingStrategy) -> None:
    """Register ``weighted``, ``ordered``, ``least-busy`` and ``latency``."""
    for name, factory in _FACTORIES.items():
        register(name, factory)

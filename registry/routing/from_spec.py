"""A model's pool, built from its resolved spec (``[[models.NAME.deployments]]``).

A deployment's id is its label — the endpoint's host and the deployment name — so the state it
shares on Redis follows the deployment, not its position in the list: reordering the entries in
a rolling deploy moves no cooldown onto the wrong deployment. Two entries with the same label
get ``#2``, ``#3``... after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry.routing.cooldowns import CooldownRules
from registry.routing.pool import Pool
from registry.routing.state import Deployment, deployment_label
from registry.routing.stores import shared_state_store

if TYPE_CHECKING:
    from registry.options import LoadedOptions
    from registry.spec import ModelSpec

__all__ = ["member_label", "pool_for"]


def member_label(options: Any, model: str | None) -> str:
    """``host/deployment`` of a member (``endpoint``/``base_url``, ``deployment``/model)."""
    endpoint = getattr(options, "endpoint", None) or getattr(options, "base_url", None)
    return deployment_label(endpoint, getattr(options, "deployment", None) or model)


def pool_for(spec: ModelSpec, options: LoadedOptions) -> Pool:
    """The pool of ``spec``'s deployments, its state in the ``routing_state`` store."""
    seen: dict[str, int] = {}
    deployments = []
    for member in spec.deployments:
        label = member_label(member.options, spec.common.model)
        if label == "?":  # nothing names it (a fake deployment without a name): its position
            label = f"deployment #{member.index}"
        seen[label] = seen.get(label, 0) + 1
        ident = label if seen[label] == 1 else f"{label}#{seen[label]}"
        deployments.append(Deployment(ident, label, member.weight))
    rules = CooldownRules(
        cooldown_time=spec.common.cooldown_time, allowed_fails=spec.common.allowed_fails
    )
    store = shared_state_store(options.get("routing_state"), origin=options.origin("routing_state"))
    return Pool(spec.name, deployments, strategy=spec.common.routing, rules=rules, store=store)

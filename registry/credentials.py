"""Which credential a model's requests will carry, and where it came from (``modelreg show``).

The backend itself answers (:meth:`backends.base.BaseModelBackend.credential`), so what ``show``
says is what the model will do: for Azure a token provider beats an AD token, which beats a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.errors import MissingCredentialsError, RegistryError

if TYPE_CHECKING:
    from registry.factory import Explanation, ModelRegistry

__all__ = ["CredentialUse", "describe_credentials"]


@dataclass(frozen=True)
class CredentialUse:
    """One deployment's credential: its kind, its origin, or the problem that leaves it none."""

    deployment: str | None
    kind: str
    origin: str
    problem: str = ""

    def line(self) -> str:
        """``API key from env AZURE_OPENAI_API_KEY`` (prefixed by the deployment in a pool)."""
        where = f"{self.deployment}: " if self.deployment else ""
        if self.problem:
            return f"{where}{self.kind} ({self.problem})"
        return f"{where}{self.kind}" + (f" from {self.origin}" if self.origin else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the problem only when there is one."""
        data: dict[str, Any] = {"deployment": self.deployment, "kind": self.kind}
        data["origin"] = self.origin or None
        if self.problem:
            data["problem"] = self.problem
        return data


def _of(model: Any, deployment: str | None) -> CredentialUse:
    found = model.credential()
    if found is None:
        return CredentialUse(deployment, "not reported", "", "this backend does not say")
    return CredentialUse(deployment, found[0], found[1])


def describe_credentials(registry: ModelRegistry, explained: Explanation) -> list[CredentialUse]:
    """The credential of the model ``explained`` describes (one per deployment of a pool).

    Builds the model as ``create_model`` would (no request is sent); a model that cannot be
    built says why instead of failing ``show``.
    """
    provider = explained.fields.get("client_provider")
    if provider is not None and provider.value:
        origin = f"client_provider {provider.value!r} ({provider.source})"
        return [CredentialUse(None, "the client provider's own", origin)]
    try:
        model = registry.create(explained.name)
    except MissingCredentialsError as exc:
        return [CredentialUse(None, "none", "", str(exc))]
    except RegistryError as exc:
        return [CredentialUse(None, "unknown", "", f"the model cannot be built: {exc}")]
    except Exception as exc:  # a plugin's backend: its message may quote a value, so not shown
        problem = f"the model cannot be built: {type(exc).__name__} in its backend"
        return [CredentialUse(None, "unknown", "", problem)]
    plan = model.routing_plan
    if plan is None or plan.pool is None:
        return [_of(model, None)]
    labels = {d.id: d.label for d in plan.pool.deployments}
    return [_of(member, labels.get(key, key)) for key, member in plan.members.items()]

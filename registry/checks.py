"""``modelreg check``: build every model in every environment and collect every problem.

Building a model does not touch the network or import the SDK, so this is cheap. Problems are
errors (the settings are wrong) or warnings (they work, but not fully here: missing credentials,
an approximate token count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry.errors import MissingCredentialsError, RegistryError
from registry.factory import ModelRegistry
from registry.resolve import default_model_name
from registry.settings import Settings

__all__ = ["CheckReport", "check_settings"]


@dataclass
class CheckReport:
    """What ``check`` found."""

    settings_file: str
    environments: list[str]
    checked: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable report."""
        lines = [f"error: {e}" for e in self.errors] + [f"warning: {w}" for w in self.warnings]
        status = "FAILED" if self.errors else "OK"
        lines.append(
            f"{status}: {self.settings_file}: {self.checked} model(s) checked in "
            f"{len(self.environments)} environment(s) ({', '.join(self.environments)}); "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "settings_file": self.settings_file,
            "environments": self.environments,
            "checked": self.checked,
            "ok": not self.errors,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def _check_environment(settings: Settings, env: str | None, report: CheckReport) -> None:
    label = f"[env {env}] " if env else "[no env] "
    try:
        registry = ModelRegistry(settings, env=env, env_from_variables=False)
        names = registry.names()
    except RegistryError as exc:
        report.errors.append(f"{label}{exc}")
        return
    default = default_model_name(settings, env)
    if default is not None and registry.aliases().get(default[0], default[0]) not in names:
        report.errors.append(
            f"{label}default_model {default[0]!r} ({default[1]}) is not a model or alias."
        )
    for name in names:
        report.checked += 1
        try:
            model = registry.create(name)
        except MissingCredentialsError as exc:
            report.warnings.append(f"{label}{exc} (needed before the first request)")
            continue
        except RegistryError as exc:
            report.errors.append(f"{label}{exc}")
            continue
        spec = registry.resolve(name)
        if spec.common.token_counter is None:
            from backends.token_counting import rules_for_model

            rules = rules_for_model(model.base_model or model.model_type)
            if not rules.exact:
                report.warnings.append(f"{label}model {name!r}: {rules.note}")


def check_settings(settings: Settings, *, only_env: str | None = None) -> CheckReport:
    """Check the base settings and every environment overlay (or just ``only_env``)."""
    environments: list[str | None] = (
        [only_env] if only_env is not None else [None, *settings.environment_names()]
    )
    report = CheckReport(settings.label, [e or "none" for e in environments])
    for env in environments:
        _check_environment(settings, env, report)
    return report

"""``modelreg check``: build every model in every environment and collect every problem.

It runs the same resolution and construction as ``create_model`` (without the network or the SDK
import), so it rejects what ``create_model`` would, with the same message. Problems are errors
(the settings are wrong) or warnings (they work, but not fully here: missing credentials that may
come at run time, an approximate token count, a field another backend would use); ``strict``
makes warnings errors. A problem found in several environments is reported once, naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry.errors import MissingCredentialsError, RegistryError
from registry.factory import ModelRegistry
from registry.layers import default_model_name, model_names, orphan_message
from registry.resolve import canonical_name
from registry.settings import Settings, choose_env

__all__ = ["CheckReport", "Problem", "check_settings"]

_NO_ENV = "none"


@dataclass
class Problem:
    """One problem and the environments it was found in."""

    severity: str  # "error" | "warning"
    message: str
    environments: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``error: [env prod, test] message``."""
        return f"{self.severity}: [env {', '.join(self.environments)}] {self.message}"


@dataclass
class CheckReport:
    """What ``check`` found."""

    settings_file: str
    environments: list[str]
    models: set[str] = field(default_factory=set)
    problems: dict[tuple[str, str], Problem] = field(default_factory=dict)
    strict: bool = False

    def add(self, severity: str, message: str, env: str | None) -> None:
        """Record a problem (once per message, listing every environment it appears in)."""
        if self.strict and severity == "warning":
            severity = "error"
        problem = self.problems.setdefault((severity, message), Problem(severity, message))
        label = env or _NO_ENV
        if label not in problem.environments:
            problem.environments.append(label)

    def _of(self, severity: str) -> list[Problem]:
        return [p for p in self.problems.values() if p.severity == severity]

    @property
    def errors(self) -> list[str]:
        """Error lines."""
        return [p.line() for p in self._of("error")]

    @property
    def warnings(self) -> list[str]:
        """Warning lines."""
        return [p.line() for p in self._of("warning")]

    @property
    def checked(self) -> int:
        """How many distinct models were checked (not models x environments)."""
        return len(self.models)

    def lines(self) -> list[str]:
        """Human-readable report."""
        lines = self.errors + self.warnings
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
            "problems": [
                {"severity": p.severity, "message": p.message, "environments": p.environments}
                for p in self.problems.values()
            ],
        }


def _check_names(settings: Settings, env: str | None, report: CheckReport) -> list[str]:
    """The environment's model names; name-level problems (orphans, default_model) recorded."""
    registry = ModelRegistry(
        settings, env=env, env_from_variables=False, warn_unused_variables=False
    )
    names = model_names(settings, env)
    if not names.names:
        canonical_name(settings, None, env)  # raises the "no models" error create_model gives
    for variable in sorted(names.orphans):
        report.add("error", orphan_message(names, variable), env)
    default = default_model_name(settings, env)
    if default is not None and names.canonical(default[0]) is None:
        try:
            canonical_name(settings, None, env)
        except RegistryError as exc:  # create_model's message for a bad default_model
            report.add("error", str(exc), env)
    return registry.names()


def _check_model(registry: ModelRegistry, name: str, report: CheckReport) -> None:
    env = registry.env
    try:
        registry.create(name)
    except MissingCredentialsError as exc:
        report.add("warning", f"{exc} (needed before the first request)", env)
        return
    except RegistryError as exc:
        report.add("error", str(exc), env)
        return
    spec = registry.resolve(name)
    for key, ignored in spec.ignored.items():
        if ignored.suspicious:
            report.add(
                "warning",
                f"model {name!r}, field {key!r} ({ignored.source}) is ignored: {ignored.reason}.",
                env,
            )
    counter = registry.token_counter(name)
    if not counter.exact and spec.common.token_counter is None:
        report.add("warning", f"model {name!r}: {getattr(counter, 'note', '')}", env)


def _check_environment(settings: Settings, env: str | None, report: CheckReport) -> None:
    try:
        names = _check_names(settings, env, report)
    except RegistryError as exc:
        report.add("error", str(exc), env)
        return
    registry = ModelRegistry(
        settings, env=env, env_from_variables=False, warn_unused_variables=False
    )
    for name in names:
        report.models.add(name)
        _check_model(registry, name, report)


def check_settings(
    settings: Settings, *, only_env: str | None = None, strict: bool = False
) -> CheckReport:
    """Check the base settings and every environment overlay (or just ``only_env``).

    ``MODELREG_ENV`` (environment or ``.env``) must name a defined environment, as it must for
    ``create_model``.
    """
    environments: list[str | None] = (
        [only_env] if only_env is not None else [None, *settings.environment_names()]
    )
    report = CheckReport(settings.label, [e or _NO_ENV for e in environments], strict=strict)
    try:
        choose_env(settings, only_env)
    except RegistryError as exc:
        report.add("error", str(exc), only_env)
        return report
    for env in environments:
        _check_environment(settings, env, report)
    return report

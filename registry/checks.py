"""``modelreg check``: build every model in every environment and collect every problem.

It runs the same resolution and construction as ``create_model`` (without the network or the SDK
import), so it rejects what ``create_model`` would, with the same message. Problems are errors
(the settings are wrong) or warnings (they work, but not fully here: missing credentials that may
come at run time, an approximate token count, a field another backend would use, an unknown
``MODELREG_*`` variable); ``strict`` makes warnings errors. A problem found in several
environments is reported once, naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry.errors import MissingCredentialsError, RegistryError
from registry.factory import ModelRegistry
from registry.layers import default_model_name, model_names, orphan_message
from registry.masking import escape_control, quoted_name
from registry.options import unknown_variable_message
from registry.resolve import canonical_name
from registry.secret_settings import plain_secret_fields
from registry.settings import Settings, choose_env, orphan_environment_message
from registry.spec import ModelSpec
from registry.spec_validation import FALLBACK_FIELDS
from registry.validation import describe_problems

__all__ = ["CheckReport", "Problem", "check_settings"]

_NO_ENV = "none"


@dataclass
class Problem:
    """One problem and the environments it was found in (none: it concerns every one)."""

    severity: str  # "error" | "warning"
    message: str
    environments: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``error: [env prod, test] message``."""
        where = f"[env {', '.join(self.environments)}] " if self.environments else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass
class CheckReport:
    """What ``check`` found."""

    settings_file: str
    environments: list[str]
    models: set[str] = field(default_factory=set)
    problems: dict[tuple[str, str], Problem] = field(default_factory=dict)
    strict: bool = False

    def add(self, severity: str, message: str, env: str | None, *, every_env: bool = False) -> None:
        """Record a problem (once per message, listing every environment it appears in)."""
        if self.strict and severity == "warning":
            severity = "error"
        problem = self.problems.setdefault((severity, message), Problem(severity, message))
        label = escape_control(env or _NO_ENV)
        if not every_env and label not in problem.environments:
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


def _registry(settings: Settings, env: str | None) -> ModelRegistry:
    return ModelRegistry(settings, env=env, env_from_variables=False, warn_unused_variables=False)


def _check_names(settings: Settings, env: str | None, report: CheckReport) -> list[str]:
    """The environment's model names; name-level problems (orphans, default_model) recorded."""
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
    return sorted(names.names)


def _check_capabilities(registry: ModelRegistry, spec: ModelSpec, report: CheckReport) -> None:
    """The base model's rules on the config (errors), and an unknown base model (a warning).

    Without building the model, so missing credentials do not hide these.
    """
    env = spec.env
    try:
        capabilities = registry.capabilities(spec.name)
    except RegistryError as exc:
        report.add("error", str(exc), env)
        return
    problems = capabilities.config_problems(spec.config)
    if problems:  # every request would be refused with this message
        report.add("error", describe_problems(spec.name, problems, spec.sources), env)
    if capabilities.known or "context_window" in spec.common.capabilities:
        return
    if spec.common.model is None:
        what = f"its base model is not known (deployment {capabilities.model!r} is no model"
        fix = 'set model = "..." to its base model (gpt-4o, o3-mini...), or set'
    else:
        what = f"base model {quoted_name(capabilities.model)} is not in the capability table"
        fix = "check its spelling, or set"
    report.add(
        "warning",
        f"model {spec.name!r}: {what}{')' if spec.common.model is None else ''}, so its "
        f"token_limit is the declared default of {capabilities.context_window:,} tokens and no "
        f"parameter rules apply: {fix} capabilities.context_window (a [models.NAME.capabilities] "
        "table) for it.",
        env,
    )


def _check_model(registry: ModelRegistry, name: str, report: CheckReport) -> None:
    env = registry.env
    try:
        registry.create(name)
    except MissingCredentialsError as exc:
        report.add("warning", f"{exc} (needed before the first request)", env)
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
    _check_capabilities(registry, spec, report)
    _check_secret_types(registry, spec.backend, report, env)


def _check_secret_types(
    registry: ModelRegistry, backend: str, report: CheckReport, env: str | None
) -> None:
    """A backend's settings field named like a secret should be typed SecretStr."""
    cls = registry.plugins.backend(backend)
    model = cls.settings_model
    for name in plain_secret_fields(model):
        annotation = model.model_fields[name].annotation
        typed = getattr(annotation, "__name__", None) or str(annotation)
        report.add(
            "warning",
            f"backend {backend!r} ({cls.__module__}.{model.__qualname__}): field {name!r} "
            f"holds a secret by its name but is typed {typed}: modelreg masks it in show, "
            "--json and reprs, but the backend's own code can still print it. Type it "
            "pydantic.SecretStr (backends.base.Credential also checks it fits in a header).",
            env,
        )


def _check_environment(settings: Settings, env: str | None, report: CheckReport) -> None:
    try:
        names = _check_names(settings, env, report)
    except RegistryError as exc:
        report.add("error", str(exc), env)
        return
    registry = _registry(settings, env)
    for name in names:
        report.models.add(name)
        _check_model(registry, name, report)
    _check_fallback_cycles(registry, names, report)


def _fallback_graph(registry: ModelRegistry, names: list[str]) -> dict[str, list[str]]:
    """Each model's fallbacks (every kind), by canonical name; models that fail are left out."""
    aliases = registry.aliases()
    graph: dict[str, list[str]] = {}
    for name in names:
        try:
            spec = registry.resolve(name)
        except RegistryError:
            continue  # reported already
        targets = [n for f in FALLBACK_FIELDS for n in getattr(spec.common, f)]
        graph[name] = [aliases.get(t, t) for t in targets]
    return graph


def _check_fallback_cycles(registry: ModelRegistry, names: list[str], report: CheckReport) -> None:
    """A chain of fallbacks that comes back to where it started is an error (once per cycle)."""
    graph = _fallback_graph(registry, names)
    seen: set[frozenset[str]] = set()

    def visit(path: list[str]) -> None:
        for target in graph.get(path[-1], []):
            if target in path:
                cycle = path[path.index(target) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    chain = " -> ".join(repr(n) for n in [*cycle, target])
                    report.add("error", f"fallbacks form a cycle: {chain}. Break it.", registry.env)
            elif len(path) < len(graph):
                visit([*path, target])

    for name in sorted(graph):
        visit([name])


def _check_variables(settings: Settings, only_env: str | None, report: CheckReport) -> None:
    """Problems that concern every environment: MODELREG_ENV, unknown and orphan variables."""
    try:
        choose_env(settings, only_env)
    except RegistryError as exc:
        report.add("error", str(exc), None, every_env=True)
    for origin, name in settings.orphan_environments().items():
        message = orphan_environment_message(settings, origin, name)
        report.add("error", message, None, every_env=True)
    for variable, hint in settings.unknown_variables.items():
        message = unknown_variable_message(variable, hint)
        report.add("warning", message, None, every_env=True)


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
    labels = [escape_control(e or _NO_ENV) for e in environments]
    report = CheckReport(settings.label, labels, strict=strict)
    _check_variables(settings, only_env, report)
    if only_env is not None and only_env not in settings.environment_names():
        return report  # the error above says so; there is no such overlay to check
    for env in environments:
        _check_environment(settings, env, report)
    return report

"""The resolved, frozen description of one model, and the fields every model table shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from registry.masking import HIDDEN_VALUE, MASK, Redacted, looks_like_secret, masked, redact

if TYPE_CHECKING:
    from registry.deployments import DeploymentSpec
from registry.precedence import BUILTIN_SOURCE, KWARG_SOURCE
from registry.validation import check_api, not_a_bool

__all__ = [
    "BUILTIN_SOURCE",
    "COMMON_ENV_FALLBACKS",
    "COMMON_FIELD_NAMES",
    "KWARG_SOURCE",
    "CommonFields",
    "ExplainedField",
    "IgnoredField",
    "ModelSpec",
    "display",
    "explained",
]


class CommonFields(BaseModel):
    """Fields every ``[models.<name>]`` table may set, whatever its backend."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backend: str = Field(min_length=1)
    model: str | None = Field(None, min_length=1, description="base model: picks the tokenizer")
    api: Literal["chat_completions", "responses"] = Field(
        "chat_completions", description="the API requests use: chat completions or Responses"
    )
    aliases: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    capabilities: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the base model's capabilities"
    )
    check_context: bool = Field(
        False, description="count the prompt before each call; too long: nothing is sent"
    )
    timeout: float = Field(180.0, gt=0, description="seconds per request")
    max_retries: int = Field(3, ge=0, le=100)
    token_counter: str | None = Field(None, min_length=1)
    client_provider: str | None = Field(None, min_length=1)
    # A pool's routing (with [[models.NAME.deployments]]) and fallbacks by model name.
    routing: str = Field("weighted", min_length=1, description="how a pool picks a deployment")
    cooldown_time: float = Field(5.0, gt=0, le=86400, description="seconds a deployment is out")
    allowed_fails: int = Field(3, ge=0, le=1000, description="failures a minute before cooling")
    fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: list[str] = Field(default_factory=list)
    content_policy_fallbacks: list[str] = Field(default_factory=list)
    max_fallback_depth: int = Field(2, ge=0, le=10)

    @field_validator("config")
    @classmethod
    def _redacted(cls, value: dict[str, Any]) -> dict[str, Any]:
        return redact(value)

    @field_validator("api", mode="before")
    @classmethod
    def _known_api(cls, value: Any) -> str:
        return check_api(value)

    @field_validator(
        "timeout",
        "max_retries",
        "cooldown_time",
        "allowed_fails",
        "max_fallback_depth",
        mode="before",
    )
    @classmethod
    def _number(cls, value: Any) -> Any:
        return not_a_bool(value)

    @field_validator(
        "aliases",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``MODELREG_MODELS__CHAT__ALIASES=a,b`` (as well as a JSON list)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


COMMON_FIELD_NAMES = frozenset(CommonFields.model_fields)
#: The conventional variables every backend honours (level 7 of the precedence).
COMMON_ENV_FALLBACKS: Mapping[str, tuple[str, ...]] = {"timeout": ("MODEL_TIMEOUT",)}


@dataclass(frozen=True)
class ExplainedField:
    """One resolved value as shown to users: secrets are ``***``."""

    value: Any
    source: str
    secret: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"value": ..., "source": ...}`` (plus ``note`` when set)."""
        data: dict[str, Any] = {"value": self.value, "source": self.source}
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class IgnoredField:
    """A field the model's backend does not have, set where another backend's would be."""

    value: Any
    source: str
    reason: str
    #: Set in the table that chose the backend or above it: probably meant for this model.
    suspicious: bool


def display(key: str, value: Any) -> Any:
    """``value`` of field or config key ``key`` as shown: JSON-friendly, secrets ``***``."""
    shown = masked(value, key=key)
    return _jsonable(shown)


#: Fields that hold names: a value there that looks like a key is not shown (a pasted key).
_NAME_FIELDS = frozenset({"backend", "deployment", "model", "api_version", "aliases"})


def explained(value: Any, source: str, *, name: str, secret: bool) -> ExplainedField:
    """One value as shown: ``***`` for a secret (by field or by where it came from).

    A name field whose value looks like a key (:func:`looks_like_secret`) is shown as hidden.
    """
    secret = secret and value is not None
    if not secret and name in _NAME_FIELDS:
        texts = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(text, str) and looks_like_secret(text) for text in texts):
            return ExplainedField(HIDDEN_VALUE, source, True)
    return ExplainedField(MASK if secret else display(name, value), source, secret)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return f"<{type(value).__name__}>"
    if isinstance(value, type):
        return f"<class {value.__module__}.{value.__qualname__}>"
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return f"<{type(value).__name__}>"


@dataclass(frozen=True)
class ModelSpec:
    """A model after resolution: aliases, environment overlay, defaults and ``${VAR}`` applied.

    Attributes:
        name: the canonical model name (aliases are resolved to it).
        env: the active environment, or None.
        common: the fields every backend shares.
        options: the backend's own fields, validated by the model the backend registered.
        config: the validated request configuration (unset keys dropped).
        sources: where each field came from, keyed by field name (``config.<key>`` for config).
        ignored: fields of another backend that this model's backend does not have.
        secret_fields: fields that hold secrets by their type or name.
        secret_values: fields (dotted paths) whose value came from a secret store.
        deployments: a pool's members (``[[models.NAME.deployments]]``), or empty; ``options``
            is then the first member's.
    """

    name: str
    env: str | None
    common: CommonFields
    options: BaseModel
    config: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    secret_fields: frozenset[str] = frozenset()
    ignored: Mapping[str, IgnoredField] = field(default_factory=dict)
    secret_values: frozenset[str] = frozenset()
    deployments: tuple[DeploymentSpec, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.config, Redacted):
            object.__setattr__(self, "config", redact(dict(self.config)))

    @property
    def backend(self) -> str:
        """The name the backend is registered under."""
        return self.common.backend

    def values(self) -> dict[str, Any]:
        """Every field's value (secrets stay :class:`~pydantic.SecretStr`; the repr masks them)."""
        data = {key: getattr(self.common, key) for key in COMMON_FIELD_NAMES}
        data["config"] = dict(self.config)
        data.update({key: getattr(self.options, key) for key in type(self.options).model_fields})
        return redact(data)

    def explain(self) -> dict[str, ExplainedField]:
        """Every field with its source; secrets masked, config keys listed one by one."""
        shown: dict[str, ExplainedField] = {}
        pooled = set(type(self.options).model_fields) if self.deployments else set()
        for key, value in sorted(self.values().items()):
            if key in pooled:
                continue  # a pool's backend fields are shown per deployment
            if key == "config":
                for config_key, config_value in sorted(self.config.items()):
                    path = f"config.{config_key}"
                    name = config_key if isinstance(config_value, Mapping) else ""
                    shown[path] = self._field(path, name, config_value)
                continue
            shown[key] = self._field(key, key, value)
        for member in self.deployments:
            shown.update(self._member(member))
        for key, ignored in sorted(self.ignored.items()):
            shown[key] = ExplainedField(
                display(key, ignored.value), ignored.source, note=f"ignored: {ignored.reason}"
            )
        return shown

    def _member(self, member: DeploymentSpec) -> dict[str, ExplainedField]:
        """A pool member's fields: its own (entry origin), else the model's, else built in."""
        prefix = f"deployments.{member.index}."
        shown = {
            prefix + "weight": explained(
                member.weight,
                member.sources.get("weight", BUILTIN_SOURCE),
                name="weight",
                secret=False,
            )
        }
        for key in type(member.options).model_fields:
            source = member.sources.get(key) or self.sources.get(key, BUILTIN_SOURCE)
            secret = (
                key in self.secret_fields
                or key in member.secret_values
                or (key not in member.sources and key in self.secret_values)
            )
            value = getattr(member.options, key)
            shown[prefix + key] = explained(value, source, name=key, secret=secret)
        return shown

    def _field(self, path: str, name: str, value: Any) -> ExplainedField:
        secret = path in self.secret_fields or path in self.secret_values
        return explained(value, self.sources.get(path, BUILTIN_SOURCE), name=name, secret=secret)

    def __repr__(self) -> str:
        return (
            f"ModelSpec(name={self.name!r}, env={self.env!r}, backend={self.backend!r}, "
            f"model={self.common.model!r})"
        )

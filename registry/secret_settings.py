"""A backend's settings fields named like secrets: masked in reprs even when typed ``str``.

``modelreg show`` and ``--json`` mask a field named like a secret (``token``, ``api_key``,
``password``: :func:`registry.masking.is_secret_name`) whatever its type. A plugin's settings
class is the plugin's own, though, and pydantic's repr of ``spec.options`` would show a
``token: str`` in full — in a log line, a traceback's locals, a debugger. Resolution validates
a backend's settings with :func:`masked_settings_model`: a subclass (cached, one per class) with
the same name, fields and validators whose repr masks those fields, so ``isinstance`` checks in
the plugin keep working and nothing in the plugin changes. ``modelreg check`` still warns to
type them :class:`~pydantic.SecretStr` (:func:`plain_secret_fields`), which the plugin's own
code cannot print by accident either.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

from registry.masking import MASK, is_secret_name

__all__ = ["masked_settings_model", "plain_secret_fields"]


def _is_secret_str(annotation: Any) -> bool:
    return SecretStr in {annotation, *typing.get_args(annotation)}


@functools.cache
def plain_secret_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """Fields of ``model`` named like a secret but not typed ``SecretStr``, in order."""
    return tuple(
        name
        for name, info in model.model_fields.items()
        if is_secret_name(name) and not _is_secret_str(info.annotation)
    )


@functools.cache
def masked_settings_model(model: type[BaseModel]) -> type[BaseModel]:
    """``model``, or a subclass of it whose repr shows its secret-named fields as ``***``."""
    names = frozenset(plain_secret_fields(model))
    if not names:
        return model

    def __repr_args__(self: BaseModel) -> Iterator[tuple[str | None, Any]]:
        for name, value in model.__repr_args__(self):
            yield name, MASK if name in names and value is not None else value

    namespace = {
        "__module__": model.__module__,
        "__qualname__": model.__qualname__,
        "__doc__": model.__doc__,
        "__repr_args__": __repr_args__,
    }
    metaclass: Any = type(model)  # pydantic's: the subclass is a validated model too
    masked: type[BaseModel] = metaclass(model.__name__, (model,), namespace)
    return masked

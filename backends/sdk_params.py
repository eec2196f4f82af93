"""The request parameters of the installed openai SDK, read from its source, never imported.

``config`` accepts what the SDK's ``chat.completions.create`` (or ``responses.create``) accepts,
typed as the SDK types it: the keys and types come from the SDK's own parameter TypedDicts
(``openai/types/chat/completion_create_params.py`` ``CompletionCreateParams*``,
``openai/types/responses/response_create_params.py`` ``ResponseCreateParams*``), so an SDK
upgrade needs no edit here.

Importing :mod:`openai` costs about half a second, which resolving a model must not pay (a
model is built without the SDK; it is imported on the first request). So the SDK's type modules
are *read*, not imported: each file is parsed with :mod:`ast` (about a millisecond for the chat
parameters), and the annotation of a key is turned into a type pydantic validates — following
the SDK's own imports to the TypedDicts, aliases and literals it names — only when a config uses
that key, once per process.

How SDK annotations become validation types:

* ``TypedDict`` classes become TypedDicts that forbid unknown keys (a typo in
  ``stream_options`` is an error, as it is at the top level); ``Required``/``NotRequired`` and
  ``total=`` are kept; a union of TypedDicts told apart by a literal ``type`` is discriminated
  by it, so an error names the member's fields, not every member's.
* ``Iterable``, ``Sequence``, ``List`` and the SDK's ``SequenceNotStr`` become lists (settings
  give lists); ``Dict``/``Mapping`` dicts; ``object`` anything; ``Annotated`` its first argument.
* ``int`` and ``float`` refuse ``true``/``false`` (``max_tokens = true`` is a mistake, not 1).
* A name the reader cannot follow (a type outside ``openai.types``) accepts anything: the
  server is the judge there, as it is for values inside ``extra_body``.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, Required, Union

from pydantic import BeforeValidator, ConfigDict, Discriminator, Tag, TypeAdapter, with_config
from typing_extensions import TypedDict

from registry.errors import ConfigError
from registry.validation import not_a_bool

__all__ = [
    "CHAT_PARAMS",
    "RESPONSES_PARAMS",
    "TAG_PREFIX",
    "ParamSet",
    "SdkParams",
    "chat_params",
    "responses_params",
]

#: Union members in error locations (TypedDict names, ``type`` tags) start with this; messages
#: drop those parts of a path (``config.tools.0.~function.function.name``).
TAG_PREFIX = "~"
_NUMBER = {
    "int": Annotated[int, BeforeValidator(not_a_bool)],
    "float": Annotated[float, BeforeValidator(not_a_bool)],
}
_PLAIN: dict[str, Any] = {
    "str": str,
    "bool": bool,
    "bytes": bytes,
    "object": Any,
    "Any": Any,
    "None": type(None),
    **_NUMBER,
}
_LISTS = {"List", "list", "Iterable", "Sequence", "SequenceNotStr", "Set", "set", "Tuple", "tuple"}
_DICTS = {"Dict", "dict", "Mapping"}
_FORBID = ConfigDict(extra="forbid")
_TYPING_MODULES = {"typing", "typing_extensions", "__future__"}


class _Marker:
    """``Required[...]`` / ``NotRequired[...]`` on a TypedDict field, until the dict is built."""

    def __init__(self, required: bool, inner: Any) -> None:
        self.required, self.inner = required, inner


@dataclass(frozen=True)
class ParamSet:
    """Where one API's parameters are: a module of ``openai.types`` and its TypedDict classes.

    Attributes:
        module: the dotted module (``openai.types.chat.completion_create_params``).
        classes: the TypedDicts whose fields are the parameters (the base and the streaming
            variants, which add ``stream``).
        excluded: fields that are not settings (``messages``, ``model``, ``input``).
    """

    module: str
    classes: tuple[str, ...]
    excluded: frozenset[str]


CHAT_PARAMS = ParamSet(
    "openai.types.chat.completion_create_params",
    (
        "CompletionCreateParamsBase",
        "CompletionCreateParamsNonStreaming",
        "CompletionCreateParamsStreaming",
    ),
    frozenset({"messages", "model"}),
)
RESPONSES_PARAMS = ParamSet(
    "openai.types.responses.response_create_params",
    (
        "ResponseCreateParamsBase",
        "ResponseCreateParamsNonStreaming",
        "ResponseCreateParamsStreaming",
    ),
    frozenset({"input", "model"}),
)


@functools.cache
def _package_dir() -> Path:
    """The installed ``openai`` package's directory (found without importing it)."""
    spec = importlib.util.find_spec("openai")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the openai package is not installed: request settings are checked against its "
            "parameters (pip install 'openai>=3.50,<4')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _module_tree(module: str) -> ast.Module | None:
    """The parsed source of ``openai.x.y`` (None when there is no such file)."""
    parts = module.split(".")[1:]
    path = _package_dir().joinpath(*parts)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return ast.parse(candidate.read_text("utf-8"), str(candidate))
    return None


class _Module:
    """One SDK module's top-level classes, aliases and imports, by name."""

    def __init__(self, name: str, tree: ast.Module) -> None:
        self.name = name
        self.classes: dict[str, ast.ClassDef] = {}
        self.aliases: dict[str, ast.expr] = {}
        self.imports: dict[str, tuple[str, str]] = {}
        package = name.rsplit(".", 1)[0]
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if node.value is not None:
                    self.aliases[node.target.id] = node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    self.aliases[target.id] = node.value
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(package, node.module, node.level)
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (source, alias.name)


def _absolute(package: str, module: str | None, level: int) -> str:
    """``from ..x import y`` in ``package`` → the module it names."""
    if level == 0:
        return module or ""
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


class SdkParams:
    """The parameters of one API, read from the SDK's source (see the module docstring).

    Thread-safe; :meth:`adapter` builds each key's validator once.
    """

    def __init__(self, params: ParamSet) -> None:
        self.params = params
        self._lock = threading.RLock()
        self._modules: dict[str, _Module | None] = {}
        self._building: set[tuple[str, str]] = set()
        self._built: dict[tuple[str, str], Any] = {}
        self._fields: dict[str, list[tuple[str, ast.expr]]] | None = None
        self._adapters: dict[str, TypeAdapter[Any]] = {}

    def _module(self, name: str) -> _Module | None:
        if name not in self._modules:
            tree = _module_tree(name) if name.startswith("openai.") else None
            self._modules[name] = None if tree is None else _Module(name, tree)
        return self._modules[name]

    def _declared(self) -> dict[str, list[tuple[str, ast.expr]]]:
        """Each parameter with the (module, annotation) of every class that declares it."""
        with self._lock:
            if self._fields is None:
                module = self._module(self.params.module)
                if module is None or self.params.classes[0] not in module.classes:
                    raise ConfigError(
                        f"cannot read the request parameters of the installed openai SDK: "
                        f"{self.params.module} has no {self.params.classes[0]}. modelreg "
                        "needs openai>=3.50,<4 (pip install 'openai>=3.50,<4')."
                    )
                fields: dict[str, list[tuple[str, ast.expr]]] = {}
                for class_name in self.params.classes:
                    node = module.classes.get(class_name)
                    for field, annotation in _class_fields(node):
                        if field not in self.params.excluded:
                            fields.setdefault(field, []).append((module.name, annotation))
                self._fields = fields
            return self._fields

    def keys(self) -> frozenset[str]:
        """Every parameter name the SDK's create method takes as a request setting."""
        return frozenset(self._declared())

    def type_of(self, key: str) -> Any:
        """The validation type of ``key`` (KeyError for a name that is not a parameter)."""
        declared = self._declared()[key]
        with self._lock:
            found = [_unmarked(self._eval(module, node)) for module, node in declared]
        return _union(found)

    def adapter(self, key: str) -> TypeAdapter[Any]:
        """A validator for ``key``'s values, built on first use."""
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = TypeAdapter(self.type_of(key))
            self._adapters[key] = adapter
        return adapter

    # -- evaluating annotations ------------------------------------------------------------

    def _eval(self, module: str, node: ast.expr) -> Any:
        """The type an annotation expression in ``module`` stands for."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):  # a forward reference
                return self._eval(module, ast.parse(node.value, mode="eval").body)
            return type(None) if node.value is None else Any
        if isinstance(node, ast.Name):
            return self._name(module, node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            imported = self._import_of(module, node.value.id)
            return self._name(imported, node.attr) if imported else Any
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return _union([self._eval(module, node.left), self._eval(module, node.right)])
        if isinstance(node, ast.Subscript):
            return self._subscript(module, node)
        if isinstance(node, ast.Call) and _is_name(node.func, "TypedDict"):
            return self._functional_typed_dict(module, node)
        return Any

    def _import_of(self, module: str, name: str) -> str | None:
        """The module ``import``-ed as ``name`` in ``module`` (``from . import x``)."""
        found = self._module(module)
        if found is None or name not in found.imports:
            return None
        source, original = found.imports[name]
        return f"{source}.{original}"

    def _subscript(self, module: str, node: ast.Subscript) -> Any:
        head = node.value.id if isinstance(node.value, ast.Name) else ""
        if isinstance(node.value, ast.Attribute):
            head = node.value.attr
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Literal":
            return Literal[tuple(_literal(item) for item in items)]
        if head == "Annotated":
            return self._eval(module, items[0])
        args = [self._eval(module, item) for item in items]
        if head in ("Required", "NotRequired"):
            return _Marker(head == "Required", args[0])
        if head == "Optional":
            return _union([args[0], type(None)])
        if head == "Union":
            return _union(args)
        if head in _LISTS:
            return list[args[0]]  # type: ignore[valid-type]
        if head in _DICTS and len(args) == 2:
            return dict[args[0], args[1]]  # type: ignore[valid-type]
        return Any

    def _name(self, module: str, name: str) -> Any:
        """A name used in ``module``: a builtin, or a class, alias or import of the module."""
        found = self._module(module)
        local = found is not None and (name in found.classes or name in found.aliases)
        if not local and name in _PLAIN:
            return _PLAIN[name]
        if found is None:
            return Any
        if name in found.imports and not local:
            source, original = found.imports[name]
            if source in _TYPING_MODULES:
                return _PLAIN.get(original, Any)
            if original == "SequenceNotStr":
                return Any  # only used subscripted, handled there
            return self._name(source, original) if source.startswith("openai.") else Any
        key = (module, name)
        if key in self._built:
            return self._built[key]
        if key in self._building:
            return Any  # a recursive type: its inner levels are the server's to check
        self._building.add(key)
        try:
            if name in found.classes:
                built = self._typed_dict(module, found.classes[name])
            else:
                built = self._eval(module, found.aliases[name]) if name in found.aliases else Any
        finally:
            self._building.discard(key)
        self._built[key] = built
        return built

    def _functional_typed_dict(self, module: str, node: ast.Call) -> Any:
        """``TypedDict("Name", {"async": bool}, total=False)`` (keys that are not identifiers)."""
        if len(node.args) != 2:
            return Any
        name, table = node.args
        if not (isinstance(name, ast.Constant) and isinstance(table, ast.Dict)):
            return Any
        fields = [
            (key.value, value)
            for key, value in zip(table.keys, table.values, strict=True)
            if isinstance(key, ast.Constant) and isinstance(key.value, str)
        ]
        return self._build(module, str(name.value), fields, _total(node.keywords), [])

    def _typed_dict(self, module: str, node: ast.ClassDef) -> Any:
        """A TypedDict like the SDK's ``node`` (unknown keys forbidden), or Any if it is not one."""
        bases = [base for base in node.bases if not _is_name(base, "TypedDict")]
        inherited = [self._eval(module, base) for base in bases]
        if not node.bases or not all(_is_typed_dict(base) for base in inherited):
            return Any  # not a TypedDict (nor a subclass of one)
        fields = list(_class_fields(node))
        return self._build(module, node.name, fields, _total(node.keywords), inherited)

    def _build(
        self,
        module: str,
        name: str,
        fields: list[tuple[str, ast.expr]],
        total: bool,
        bases: list[Any],
    ) -> Any:
        """A TypedDict of ``bases``' fields and ``fields`` that forbids unknown keys."""
        built: dict[str, Any] = {}
        for base in bases:
            built.update(_marked_fields(base))
        for field, annotation in fields:
            value = self._eval(module, annotation)
            if not isinstance(value, _Marker):
                value = _Marker(total, value)
            built[field] = Required[value.inner] if value.required else NotRequired[value.inner]
        tagged = TAG_PREFIX + name  # how pydantic names it in a union's error locations
        return with_config(_FORBID)(TypedDict(tagged, built))  # type: ignore[operator]


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _total(keywords: list[ast.keyword]) -> bool:
    """The ``total=`` of a TypedDict (True unless it says False)."""
    for keyword in keywords:
        if keyword.arg == "total" and isinstance(keyword.value, ast.Constant):
            return bool(keyword.value.value)
    return True


def _class_fields(node: ast.ClassDef | None) -> Iterator[tuple[str, ast.expr]]:
    """``name: annotation`` lines of a class body."""
    if node is None:
        return
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            yield statement.target.id, statement.annotation


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    raise ValueError("not a literal")  # pragma: no cover - the SDK's literals are constants


def _unmarked(value: Any) -> Any:
    return value.inner if isinstance(value, _Marker) else value


def _is_typed_dict(value: Any) -> bool:
    return isinstance(value, type) and hasattr(value, "__required_keys__")


def _marked_fields(typed_dict: Any) -> dict[str, Any]:
    hints = typed_dict.__annotations__
    required = typed_dict.__required_keys__
    return {
        key: Required[_strip(hint)] if key in required else NotRequired[_strip(hint)]
        for key, hint in hints.items()
    }


def _strip(hint: Any) -> Any:
    """``Required[X]`` / ``NotRequired[X]`` → ``X``."""
    if typing.get_origin(hint) in (Required, NotRequired):
        return typing.get_args(hint)[0]
    return hint


def _union(members: list[Any]) -> Any:
    """A union of ``members`` (flattened, deduplicated; ``Literal[True] | Literal[False]`` is bool).

    TypedDict members told apart by a required literal ``type`` are discriminated by it.
    """
    flat: list[Any] = []
    for member in members:
        inner = (
            typing.get_args(member)
            if typing.get_origin(member) in (Union, types.UnionType)
            else (member,)
        )
        for item in inner:
            if item not in flat:
                flat.append(item)
    if Any in flat:
        return Any
    literals = [m for m in flat if typing.get_origin(m) is Literal]
    values = {v for m in literals for v in typing.get_args(m)}
    if literals and values <= {True, False} and len(values) == 2:
        flat = [m for m in flat if m not in literals] + [bool]
    if len(flat) == 1:
        return flat[0]
    tagged = _discriminated(flat)
    if tagged is not None:
        return tagged
    return Union[tuple(flat)]  # noqa: UP007 - built from a list


def _discriminated(members: list[Any]) -> Any:
    """A union discriminated by ``type``, when every dict member has a distinct literal one."""
    dicts = [m for m in members if _is_typed_dict(m)]
    others = [m for m in members if not _is_typed_dict(m)]
    tags: dict[str, Any] = {}
    for member in dicts:
        hint = member.__annotations__.get("type")
        if hint is None or "type" not in member.__required_keys__:
            return None
        hint = _strip(hint)
        if typing.get_origin(hint) is not Literal:
            return None
        for value in typing.get_args(hint):
            if not isinstance(value, str) or value in tags:
                return None
            tags[value] = member
    if len(dicts) < 2:
        return None
    expected = ", ".join(repr(tag) for tag in tags)
    choose = _tag_chooser(set(tags))
    tagged: Any = Union[  # noqa: UP007 - built from a list
        tuple(Annotated[m, Tag(TAG_PREFIX + t)] for t, m in tags.items())
    ]
    union: Any = Annotated[
        tagged,
        Discriminator(
            choose,
            custom_error_type="type_tag",
            custom_error_message=f"'type' must be one of {expected}",
        ),
    ]
    if others:  # e.g. Literal["auto", "none"] beside the dicts
        return Union[tuple([*others, union])]  # noqa: UP007 - built from a list
    return union


def _tag_chooser(tags: set[str]) -> Callable[[Any], str | None]:
    def choose(value: Any) -> str | None:
        kind = value.get("type") if isinstance(value, Mapping) else None
        return TAG_PREFIX + kind if isinstance(kind, str) and kind in tags else None

    return choose


@functools.cache
def chat_params() -> SdkParams:
    """``chat.completions.create``'s parameters (shared by every model, read once)."""
    return SdkParams(CHAT_PARAMS)


@functools.cache
def responses_params() -> SdkParams:
    """``responses.create``'s parameters (shared by every model, read once)."""
    return SdkParams(RESPONSES_PARAMS)

"""Token counters: what a request will be billed, per the OpenAI cookbook.

:class:`OpenAITokenCounter` follows "How to count tokens with tiktoken": per message
``tokens_per_message`` (3; 4 for gpt-3.5-turbo-0301) plus the tokens of every value, plus
``tokens_per_name`` (1; -1 for 0301) for a ``name``, plus 3 for reply priming. Tool definitions
use the cookbook's function-counting constants. Beyond the cookbook (declared, not published):
nested object and array parameters are counted recursively with the same constants; tool calls
in the history count every string they hold; image parts follow the base model's vision rule
(tile or patch, constants per model from :mod:`backends.capabilities`; see
:mod:`backends.image_tokens`). A model whose image rule sources disagree on (gpt-5-mini,
gpt-5-nano, gpt-4.1-mini, o1) or is not in the table has ``exact`` False, and ``note`` says why.

The encoding comes from the *base model* (``model`` in settings), not the Azure deployment name:
o200k_base for gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the o-series; cl100k_base for gpt-4,
gpt-3.5 and Azure's ``gpt-35-turbo`` spellings. An unknown model is counted with o200k_base and
``exact`` is False — never a silent fallback.
"""

from __future__ import annotations

import operator
import os
import struct
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain, compress, repeat
from typing import Any

from backends.count_cache import StringCounts, conversation_cache, string_counts
from backends.encodings import get_encoding, prefetch
from backends.image_tokens import ImageTokenRule, image_tokens
from backends.model_names import normalise_model_name
from registry.masking import quoted_name

__all__ = [
    "ApproximateTokenCounter",
    "BaseTokenCounter",
    "ModelTokenRules",
    "OpenAITokenCounter",
    "rules_for_model",
    "split_counts",
]

_O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada-002")
_REPLY_PRIMING = 3
_SHORT = 24  # strings up to this length are kept even from a conversation seen once
_SEPARATOR = "<|endoftext|>"  # a special token in both encodings
_ALLOWED = frozenset({_SEPARATOR})
_is_none = partial(operator.is_, None)
_values = operator.methodcaller("values")
_EXACT_STR = frozenset({str})


def _exact(value: Any) -> Any:
    """A ``str`` subclass's text as a plain ``str`` (anything else unchanged).

    What is sent is the text (JSON encodes a ``str`` subclass, a ``(str, Enum)`` member
    included, by its content), so that is what is counted, whatever ``__str__`` says; and
    a subclass with its own ``__eq__``/``__hash__`` must never be a key of the process-wide
    string counts, nor find another string's count there.
    """
    return str.__str__(value) if isinstance(value, str) else value


class BaseTokenCounter(ABC):
    """Counts the prompt tokens of a request.

    Attributes:
        exact: whether this is the tokenizer the server bills with.
        encoding_name: the tokenizer's name, for display.
    """

    exact: bool = True
    encoding_name: str = ""

    @abstractmethod
    def count_tokens_from_messages(
        self,
        messages: Iterable[Mapping[str, Any]],
        tools: Iterable[Mapping[str, Any]] | None = None,
    ) -> int:
        """Prompt tokens of ``messages`` (and ``tools`` definitions, when given)."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""

    @abstractmethod
    def decode(self, tokens: list[int]) -> str:
        """Text of token ids."""


@dataclass(frozen=True)
class ModelTokenRules:
    """The constants and encoding that apply to one base model."""

    model: str
    encoding_name: str
    exact: bool
    tokens_per_message: int = 3
    tokens_per_name: int = 1
    func_init: int = 7
    func_end: int = 12
    prop_init: int = 3
    prop_key: int = 3
    enum_init: int = -3
    enum_item: int = 3
    note: str = ""


def rules_for_model(model: str) -> ModelTokenRules:
    """Pick encoding and constants for a base model name (Azure spellings included)."""
    name = normalise_model_name(model)
    if name.startswith(_O200K_PREFIXES):
        return ModelTokenRules(model, "o200k_base", exact=True)
    if name.startswith(_CL100K_PREFIXES):
        if name.startswith("gpt-3.5-turbo-0301"):
            return ModelTokenRules(
                model, "cl100k_base", True, tokens_per_message=4, tokens_per_name=-1, func_init=10
            )
        return ModelTokenRules(model, "cl100k_base", exact=True, func_init=10)
    return ModelTokenRules(
        model,
        "o200k_base",
        exact=False,
        note=f"unknown model {quoted_name(model)}: counted with o200k_base as an approximation; "
        'set the model\'s base model (model = "gpt-4o", ...) for an exact count',
    )


class OpenAITokenCounter(BaseTokenCounter):
    """The OpenAI cookbook's counting for chat messages, tools and images.

    Args:
        model: the base model (``gpt-4o``, ``gpt-35-turbo``...), not a deployment name.
        cache_dir: a directory with the encoding files (see :mod:`backends.encodings`).
        cache_dir_origin: where ``cache_dir`` was set, for messages.
        image_rule: how the model bills images; by default the capability table's rule for
            ``model`` (the registry passes the rule with plugins and settings applied).
    """

    #: ``modelreg tokens --prefetch DIR``: download the encoding files for air-gapped machines.
    prefetch = staticmethod(prefetch)
    #: Keep counts in the process's bounded caches (:mod:`backends.count_cache`), keyed by the
    #: class, encoding, :class:`ModelTokenRules` constants and image rule. A subclass whose
    #: counts depend on anything else sets this to False.
    cache_counts: bool = True
    _slot: tuple[Any, ...] | None = None

    def __init__(
        self,
        model: str,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_dir_origin: str | None = None,
        image_rule: ImageTokenRule | None = None,
    ) -> None:
        self.model = model
        self.rules = rules_for_model(model)
        self.encoding_name = self.rules.encoding_name
        if image_rule is None:
            from backends.capabilities import capabilities_for

            image_rule = capabilities_for(model).image_tokens
        self.image_rule = image_rule
        self.exact = self.rules.exact and image_rule.exact
        self._cache_dir = cache_dir
        self._cache_dir_origin = cache_dir_origin
        self._encode: Any = None

    @property
    def note(self) -> str:
        """Why the count is approximate, or ``""``."""
        image_note = "" if self.image_rule.exact else f"image parts: {self.image_rule.note}"
        return "; ".join(note for note in (self.rules.note, image_note) if note)

    def _encoding(self) -> Any:
        if self._encode is None:
            self._encode = get_encoding(self.encoding_name, self._cache_dir, self._cache_dir_origin)
        return self._encode

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token text is counted as plain text, never rejected."""
        tokens: list[int] = self._encoding().encode_ordinary(text)
        return tokens

    def decode(self, tokens: list[int]) -> str:
        """Text of token ids."""
        encoding = get_encoding(self.encoding_name, self._cache_dir, self._cache_dir_origin)
        text: str = encoding.decode(tokens)
        return text

    def _count_each(self, strings: list[str]) -> list[int]:
        """The token count of each string, in one tokenizer call (TypeError for a non-string).

        The strings are joined with ``<|endoftext|>`` allowed as a special token: tiktoken
        encodes the text between special tokens independently, so the tokens between two
        separators are exactly that string's own encoding — without a call (and a GIL round
        trip) per string. Text that itself contains the separator is counted one by one.
        """
        joined = _SEPARATOR.join(strings)
        encoding = self._encoding()
        if len(strings) == 1:
            return [len(encoding.encode_ordinary(joined))]
        if joined.count(_SEPARATOR) != len(strings) - 1:
            return [len(encoding.encode_ordinary(text)) for text in strings]
        return split_counts(encoding, joined, len(strings))

    def _cache_slot(self) -> tuple[Any, ...]:
        """The caches of this counter's rule, looked up again only when its attributes change."""
        parts = (self.encoding_name, self.rules, self.image_rule)
        slot: tuple[Any, ...] | None = getattr(self, "_slot", None)
        if slot is not None and slot[0] == parts:
            return slot
        if not self.cache_counts:
            slot = (parts, None, None, None)
        else:
            rules = replace(self.rules, model="", note="")  # the name does not change a count
            conversations, rule = conversation_cache(
                (type(self), self.encoding_name, rules, self.image_rule)
            )
            slot = (parts, string_counts((type(self), self.encoding_name)), conversations, rule)
        self._slot = slot
        return slot

    def count_tokens_from_messages(
        self,
        messages: Iterable[Mapping[str, Any]],
        tools: Iterable[Mapping[str, Any]] | None = None,
    ) -> int:
        """Prompt tokens per the cookbook formula (see the module docstring).

        A conversation that starts like one counted before costs only what follows, and a
        string counted before costs a lookup (:mod:`backends.count_cache`).
        """
        messages = messages if isinstance(messages, list) else list(messages)
        _, _, conversations, rule = self._cache_slot()
        if conversations is None or not messages:
            total = self._messages_tokens(messages)
        else:
            total = conversations.count(rule, messages, self._messages_tokens)
        if tools:
            total += self.count_tools(tools)
        return total + _REPLY_PRIMING

    def _messages_tokens(self, messages: list[Mapping[str, Any]], keep: bool = True) -> int:
        """Tokens of ``messages`` without reply priming, from string counts.

        ``keep`` False: new strings are counted without being kept (a conversation seen for
        the first time: its strings are kept when it comes back, so a one-off count neither
        pays for the keeping nor pushes out what recurs).

        The common case runs at C speed (map/chain/compress): on this kind of machine each
        Python-level step per message costs about as much as tokenizing its text. Content
        parts, tool calls or None among the values raise TypeError there, and those
        conversations take the general path.
        """
        rules = self.rules
        total = rules.tokens_per_message * len(messages)
        total += rules.tokens_per_name * sum(map(operator.contains, messages, repeat("name")))
        table = self._cache_slot()[1]
        try:
            values = list(chain.from_iterable(map(_values, messages)))
            return total + self._strings_tokens(values, table, keep)
        except TypeError:
            strings, images = self._general_strings(messages)
            return total + images + self._strings_tokens(strings, table, keep)

    def _strings_tokens(
        self, strings: list[str], table: StringCounts | None, keep: bool = True
    ) -> int:
        """Sum of the strings' counts: known ones from ``table``, the rest in one call."""
        if not set(map(type, strings)) <= _EXACT_STR:  # see _exact
            strings = list(map(_exact, strings))
        if table is None:
            return self._count_all(strings) if strings else 0
        known = list(map(table.table.get, strings))
        misses = list(compress(strings, map(_is_none, known)))
        total: int = sum(filter(None, known))
        if misses and not keep and min(map(len, misses)) <= _SHORT:
            # roles, names, ids recur in every conversation: kept even on a first sight
            total += self._keep([text for text in misses if len(text) <= _SHORT], table)
            misses = [text for text in misses if len(text) > _SHORT]
        if misses and keep:
            total += self._keep(misses, table)
        elif misses:
            total += self._count_all(misses)
        return total

    def _keep(self, strings: list[str], table: StringCounts) -> int:
        """Count ``strings``, keep their counts in ``table``, return their sum."""
        counts = self._count_each(strings)
        table.remember(strings, counts)
        return sum(counts)

    def _count_all(self, strings: list[str]) -> int:
        """The sum of the strings' counts (TypeError for a non-string); see :meth:`_count_each`."""
        joined = _SEPARATOR.join(strings)
        if joined.count(_SEPARATOR) != len(strings) - 1:
            return sum(self._count_each(strings))
        encoding = self._encoding()
        tokens = encoding.encode(joined, allowed_special=_ALLOWED, disallowed_special=())
        return len(tokens) - (len(strings) - 1)

    def _general_strings(self, messages: list[Mapping[str, Any]]) -> tuple[list[str], int]:
        """Every string the formula counts in ``messages``, and the tokens of their images."""
        strings: list[str] = []
        images = 0
        for message in messages:
            for key, value in message.items():
                if type(value) is str:
                    strings.append(value)
                elif value is None:
                    continue
                elif key == "content" and isinstance(value, list):
                    images += self._collect_parts(value, strings)
                else:
                    strings.extend(_strings(value))
        return strings, images

    def _collect_parts(self, parts: list[Any], strings: list[str]) -> int:
        """Add the text of content parts to ``strings``; return the image tokens."""
        images = 0
        for part in parts:
            if isinstance(part, str):
                strings.append(part)
            elif not isinstance(part, Mapping):
                continue
            elif part.get("type") == "text":
                text = part.get("text", "")
                strings.append(text if isinstance(text, str) else str(text))
            elif part.get("type") == "image_url":
                image = part.get("image_url") or {}
                rule = self.image_rule
                if isinstance(image, str):
                    images += image_tokens(image, None, rule)
                else:
                    images += image_tokens(str(image.get("url", "")), image.get("detail"), rule)
            else:
                strings.extend(s for key, v in part.items() if key != "type" for s in _strings(v))
        return images

    def count_tools(self, tools: Iterable[Mapping[str, Any]]) -> int:
        """Tokens of tool definitions by the cookbook's function-counting constants."""
        strings: list[str] = []
        total = self._collect_tools(tools, strings)
        return total + self._strings_tokens(strings, self._cache_slot()[1])

    def _collect_tools(self, tools: Iterable[Mapping[str, Any]], strings: list[str]) -> int:
        rules = self.rules
        total = 0
        any_tool = False
        for tool in tools:
            any_tool = True
            function = tool.get("function", tool)
            total += rules.func_init
            description = str(function.get("description", "")).removesuffix(".")
            strings.append(f"{function.get('name', '')}:{description}")
            properties = (function.get("parameters") or {}).get("properties") or {}
            total += self._collect_properties(properties, strings)
        if any_tool:
            total += rules.func_end
        return total

    def _collect_properties(self, properties: Mapping[str, Any], strings: list[str]) -> int:
        if not properties:
            return 0
        rules = self.rules
        total = rules.prop_init
        for name, schema in properties.items():
            total += rules.prop_key
            schema = schema if isinstance(schema, Mapping) else {}
            kind = schema.get("type", "")
            if isinstance(kind, list):
                kind = "|".join(map(str, kind))
            if "enum" in schema:
                total += rules.enum_init
                for item in schema["enum"]:
                    total += rules.enum_item
                    strings.append(str(item))
            description = str(schema.get("description", "")).removesuffix(".")
            strings.append(f"{name}:{kind}:{description}")
            if kind == "object":
                total += self._collect_properties(schema.get("properties") or {}, strings)
            elif kind == "array" and isinstance(schema.get("items"), Mapping):
                items = schema["items"]
                total += self._collect_properties(items.get("properties") or {}, strings)
                for item in items.get("enum", []):
                    total += rules.enum_item
                    strings.append(str(item))
        return total


def split_counts(encoding: Any, joined: str, pieces: int) -> list[int]:
    """Token counts of the ``pieces`` strings ``joined`` with ``<|endoftext|>``, one call.

    The tokens come back as a buffer of 32-bit ids (tiktoken's ``encode_to_numpy`` path) and
    are split on the separator's 4 bytes at C speed. Every token id is below 2**24, so its
    last byte (little-endian) is 0; no byte of the separator's first three is, so the pattern
    cannot match across two ids. Elsewhere (or on an older tiktoken) the token list is
    scanned for the separator instead.
    """
    core = getattr(encoding, "_core_bpe", None)
    separator = encoding.eot_token
    if (
        sys.byteorder == "little"
        and encoding.n_vocab < 2**24
        and hasattr(core, "encode_to_tiktoken_buffer")
    ):
        pattern = struct.pack("<I", separator)
        if all(pattern[:3]):
            buffer = bytes(core.encode_to_tiktoken_buffer(joined, _ALLOWED))  # type: ignore[union-attr]
            chunks = buffer.split(pattern)
            if len(chunks) == pieces:
                return [len(chunk) >> 2 for chunk in chunks]
    tokens = encoding.encode(joined, allowed_special=_ALLOWED, disallowed_special=())
    counts = []
    previous = -1
    for _ in range(pieces - 1):
        position = tokens.index(separator, previous + 1)
        counts.append(position - previous - 1)
        previous = position
    counts.append(len(tokens) - previous - 1)
    return counts


def _strings(value: Any) -> Iterable[str]:
    """Every string inside nested dicts and lists (tool calls, function_call, ...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


class ApproximateTokenCounter(OpenAITokenCounter):
    """No download needed: about 4 characters per token (``exact = False``).

    Uses the same formula as :class:`OpenAITokenCounter`, with text lengths estimated as
    ``ceil(len(text) / 4)`` instead of a tokenizer — for air-gapped machines and non-OpenAI
    models where a rough budget is enough.
    """

    CHARS_PER_TOKEN = 4

    def __init__(
        self, model: str = "unknown", *, image_rule: ImageTokenRule | None = None, **_: Any
    ) -> None:
        super().__init__(model, image_rule=image_rule)
        self.encoding_name = "approximate (4 chars/token)"
        self.exact = False

    @property
    def note(self) -> str:
        """Always approximate."""
        return "approximate counter: about 4 characters per token, no tokenizer"

    def _count_all(self, strings: list[str]) -> int:
        return sum(self._count_each(strings))

    def _count_each(self, strings: list[str]) -> list[int]:
        per_token = self.CHARS_PER_TOKEN
        return [-(-size // per_token) for size in map(str.__len__, strings)]

    def encode(self, text: str) -> list[int]:
        """Pseudo-tokens: one id per 4 characters (the ids carry no meaning)."""
        return list(range(-(-len(text) // self.CHARS_PER_TOKEN)))

    def decode(self, tokens: list[int]) -> str:
        """Not possible without a tokenizer."""
        raise NotImplementedError("ApproximateTokenCounter cannot decode: it has no vocabulary")

"""Bounded per-process caches that make recounting a growing conversation cost its new messages.

Agents recount their whole history at every step. Two caches make that cheap; both are exact
(a cached count always equals an uncached one) and safe under in-place edits:

* **String counts**, one table per counting rule for text (counter class and encoding): the
  token count of every string counted, keyed by the string itself. A string is immutable and
  keeps its hash, so a lookup costs a dictionary probe instead of BPE, and a message edited in
  place simply brings new strings. At most :data:`MAX_STRINGS` strings and
  :data:`MAX_STRING_CHARS` characters per table; a longer string is not kept.
* **Conversation prefixes**, per counting rule for messages (counter class, encoding,
  per-message and per-name constants, image rule): a private deep copy of a conversation
  counted under the same *anchor* (a hash of its first two messages) before, with its token
  total at each call. The first call under an anchor only notes it, so counting a conversation
  once copies nothing. A call whose messages start with the copy (an agent's next step, a
  rewind) costs one comparison of the prefix at C speed plus counting what follows; the
  conversation a rule stored last is tried first, without computing the anchor. Editing a
  message (or a part inside it) in place makes the comparison fail there, and the rest is
  counted again from string counts. Only messages made of exact strings, ``None``, dicts,
  lists and tuples are copied: numbers compare equal across types (``1 == 1.0 == True``) while
  their text differs, and a ``str`` subclass may redefine equality, so a conversation holding
  one is counted from string counts every time. At most :data:`MAX_CONVERSATIONS`
  conversations and :data:`MAX_CONVERSATION_CHARS` characters in all; a conversation over an
  eighth of that is not kept.

Both evict their oldest entries first, in batches of an eighth. Memory is bounded by the
characters held (1 to 4 bytes each, by script, plus about 100 bytes per string or message
kept); much of it is shared with the caller's own messages while they live. Reads take no
lock; inserts and evictions take one lock, and every stored value is immutable once published.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from itertools import chain, compress, islice
from typing import Any, NamedTuple

__all__ = [
    "MAX_CONVERSATIONS",
    "MAX_CONVERSATION_CHARS",
    "MAX_STRINGS",
    "MAX_STRING_CHARS",
    "ConversationCache",
    "StringCounts",
    "clear_count_caches",
    "conversation_cache",
    "string_counts",
]

MAX_STRINGS = 65_536
MAX_STRING_CHARS = 16 * 2**20
MAX_CONVERSATIONS = 256
MAX_CONVERSATION_CHARS = 16 * 2**20
#: One entry may take at most this share of a cache's characters.
_LARGEST_SHARE = 8
#: Rewinds are served from the most recent call boundaries of a conversation.
_CHECKPOINTS = 32
_ABSENT: Any = object()
_DICT = frozenset({dict})
_STR = frozenset({str})


def _evict(
    store: dict[Any, Any], size: Callable[[Any, Any], int], chars: int, bounds: tuple[int, int]
) -> int:
    """Drop the oldest entries of ``store`` once it breaks ``bounds`` (entries, characters).

    ``chars`` is what the store holds now and ``size(key, value)`` one entry's share. The
    store is cut to 7/8 of both bounds, so eviction runs once per many inserts. Returns the
    characters left.
    """
    max_entries, max_chars = bounds
    if len(store) <= max_entries and chars <= max_chars:
        return chars
    entries = len(store)
    victims = []
    for key, value in store.items():  # oldest first
        if entries <= max_entries * 7 // 8 and chars <= max_chars * 7 // 8:
            break
        victims.append(key)
        entries -= 1
        chars -= size(key, value)
    for key in victims:
        del store[key]
    return chars


class StringCounts:
    """Token counts of strings under one rule, bounded in entries and characters."""

    def __init__(self, max_strings: int = MAX_STRINGS, max_chars: int = MAX_STRING_CHARS):
        self.max_strings = max_strings
        self.max_chars = max_chars
        #: Read without a lock: ``dict.get`` is atomic.
        self.table: dict[str, int] = {}
        self.chars = 0
        self._lock = threading.Lock()

    def remember(self, strings: list[str], counts: list[int]) -> None:
        """Keep ``counts[i]`` as the count of ``strings[i]``, within the bounds."""
        largest = self.max_chars // _LARGEST_SHARE
        sizes = list(map(len, strings))
        if max(sizes) > largest:
            keep = [size <= largest for size in sizes]
            strings, counts = list(compress(strings, keep)), list(compress(counts, keep))
            sizes = list(compress(sizes, keep))
        with self._lock:
            table = self.table
            before = len(table)
            table.update(zip(strings, counts, strict=True))
            if len(table) - before == len(strings):  # the common case: all new and distinct
                self.chars += sum(sizes)
            else:  # repeats, or known ones: the new keys are the last ones (dict order)
                self.chars += sum(map(len, islice(table, before, None)))
            if len(table) > self.max_strings or self.chars > self.max_chars:
                self.chars = _evict(
                    table, _text_size, self.chars, (self.max_strings, self.max_chars)
                )

    def clear(self) -> None:
        """Forget every count."""
        with self._lock:
            self.table.clear()
            self.chars = 0


def _text_size(text: str, _count: int) -> int:
    return len(text)


class _Uncopyable(Exception):
    """A value whose equality does not imply an equal count (numbers, other objects)."""


def _copy(value: Any) -> tuple[Any, int]:
    """A private deep copy of a JSON-like message value and the characters it holds."""
    kind = type(value)
    if kind is str:
        return value, len(value)
    if value is None:
        return None, 0
    if kind is list or kind is tuple:
        items = [_copy(item) for item in value]
        copied = [item for item, _ in items]
        return (copied if kind is list else tuple(copied)), sum(chars for _, chars in items)
    if isinstance(value, Mapping):
        pairs = [(key, _copy(item)) for key, item in value.items()]
        return {key: item for key, (item, _) in pairs}, sum(chars for _, (_, chars) in pairs)
    raise _Uncopyable


def copy_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], int] | None:
    """Deep copies of ``messages`` and their characters, or None if one cannot be copied.

    Messages of strings only (most of a conversation) are copied and checked at C speed; the
    check looks at the copies, so what is kept is what was checked.
    """
    if set(map(type, messages)) <= _DICT:
        copies = list(map(dict, messages))
        values = list(chain.from_iterable(map(dict.values, copies)))
        if set(map(type, values)) <= _STR:
            return copies, sum(map(len, values))
    copies = []
    chars = 0
    try:
        for message in messages:
            if not isinstance(message, Mapping):
                return None
            copy, size = _copy(message)
            copies.append(copy)
            chars += size
    except (_Uncopyable, RecursionError):
        return None
    return copies, chars


def _extends(messages: list[Any], prefix: list[dict[str, Any]]) -> bool:
    """Whether ``messages`` are ``prefix`` (two messages at least) and more after it."""
    size = len(prefix)
    return len(messages) > size >= 2 and messages[:size] == prefix


def _common_prefix(left: list[Any], right: list[Any]) -> int:
    """Length of the longest common prefix, by bisection on slice equality (C speed)."""
    low, high = 0, min(len(left), len(right))
    while low < high:
        middle = (low + high + 1) // 2
        if left[:middle] == right[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class _Prefix(NamedTuple):
    """A conversation as last counted: copies never mutated, tokens at each call boundary."""

    anchor: Hashable
    messages: list[dict[str, Any]]
    checkpoints: tuple[tuple[int, int], ...]
    chars: int

    def match(self, messages: list[Any]) -> tuple[int, int]:
        """The longest call boundary ``messages`` share with this prefix, and its tokens."""
        size = len(self.messages)
        if len(messages) >= size and messages[:size] == self.messages:
            return self.checkpoints[-1]
        common = _common_prefix(messages, self.messages)
        for length, tokens in reversed(self.checkpoints):
            if length <= common:
                return length, tokens
        return 0, 0


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for ``value``; only picks a candidate, equality decides."""
    if isinstance(value, Mapping):
        return tuple((key, _freeze(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return (type(value), tuple(_freeze(item) for item in value))
    frozen: Hashable = value  # TypeError at hashing when it is not
    return frozen


class ConversationCache:
    """Conversations as last counted, per rule and anchor (see the module docstring)."""

    def __init__(
        self, max_conversations: int = MAX_CONVERSATIONS, max_chars: int = MAX_CONVERSATION_CHARS
    ):
        self.max_conversations = max_conversations
        self.max_chars = max_chars
        self.prefixes: dict[Hashable, _Prefix | None] = {}
        #: The conversation each rule stored last (one of ``prefixes``): tried before the anchor.
        self.latest: dict[object, _Prefix] = {}
        self.chars = 0
        self._lock = threading.Lock()

    def count(
        self, rule: object, messages: list[Any], count_messages: Callable[[list[Any], bool], int]
    ) -> int:
        """Tokens of ``messages`` (without reply priming), counting only what is new.

        The first call under an anchor only notes it: a conversation counted once costs no
        copy. From the second on, the conversation is copied and later calls that extend it
        (or a prefix of it) count only the rest.
        """
        prefix = self.latest.get(rule)
        if prefix is not None and _extends(messages, prefix.messages):  # an agent's next step
            anchor = prefix.anchor
            start, tokens = prefix.checkpoints[-1]
        else:
            anchor = _anchor(rule, messages)
            if anchor is None:
                return count_messages(messages, True)
            prefix = self.prefixes.get(anchor, _ABSENT)
            if prefix is _ABSENT:  # first sight: note it, keep nothing yet
                self._store(anchor, None)
                return count_messages(messages, False)
            start, tokens = prefix.match(messages) if prefix is not None else (0, 0)
        new = messages[start:] if start else messages
        copied = copy_messages(new)
        if copied is None:
            return tokens + count_messages(new, True)
        copies, chars = copied
        tokens += count_messages(copies, True)  # what is kept is exactly what was counted
        if new or prefix is None:
            self._remember(rule, anchor, prefix, start, copies, chars, tokens)
        return tokens

    def _remember(
        self,
        rule: object,
        anchor: Hashable,
        prefix: _Prefix | None,
        start: int,
        copies: list[dict[str, Any]],
        chars: int,
        tokens: int,
    ) -> None:
        if prefix is not None and start == len(prefix.messages):  # the conversation grew
            messages = prefix.messages + copies
            checkpoints = prefix.checkpoints
            chars += prefix.chars
        elif prefix is not None and start:  # rewound, or changed after ``start``
            messages = prefix.messages[:start] + copies
            checkpoints = tuple(point for point in prefix.checkpoints if point[0] <= start)
            chars += _chars(prefix.messages[:start])
        else:
            messages, checkpoints = copies, ()
        checkpoints = (*checkpoints[1 - _CHECKPOINTS :], (len(messages), tokens))
        if chars > self.max_chars // _LARGEST_SHARE:
            return
        self._store(anchor, _Prefix(anchor, messages, checkpoints, chars), rule)

    def _store(self, anchor: Hashable, prefix: _Prefix | None, rule: object = None) -> None:
        """Put ``prefix`` (None: a conversation seen once) under ``anchor``, within bounds."""
        with self._lock:
            if prefix is not None:
                self.latest[rule] = prefix
            old = self.prefixes.pop(anchor, None)
            self.chars += _prefix_size(anchor, prefix) - _prefix_size(anchor, old)
            self.prefixes[anchor] = prefix
            if len(self.prefixes) > self.max_conversations or self.chars > self.max_chars:
                self.chars = _evict(
                    self.prefixes,
                    _prefix_size,
                    self.chars,
                    (self.max_conversations, self.max_chars),
                )
                for key, latest in list(self.latest.items()):  # hold nothing evicted
                    if self.prefixes.get(latest.anchor) is not latest:
                        del self.latest[key]

    def clear(self) -> None:
        """Forget every conversation."""
        with self._lock:
            self.prefixes.clear()
            self.latest.clear()
            self.chars = 0


def _prefix_size(_anchor: Hashable, prefix: _Prefix | None) -> int:
    return prefix.chars if prefix is not None else 0


def _chars(messages: list[dict[str, Any]]) -> int:
    copied = copy_messages(messages)
    return copied[1] if copied is not None else 0


def _anchor(rule: object, messages: list[Any]) -> Hashable | None:
    """The rule and a hash of the first two messages: conversations that start alike share a slot.

    A hash collision only picks a wrong candidate, which the comparison rejects; the
    rule is compared exactly (by identity), never through a hash.
    """
    head = messages[:2]
    try:
        return rule, hash(tuple(map(tuple, map(dict.items, head))))
    except TypeError:  # a value is a list or dict, or a message is not a dict
        try:
            return rule, hash(tuple(map(_freeze, head)))
        except (TypeError, RecursionError):
            return None


_TABLES: dict[Hashable, StringCounts] = {}
_CONVERSATIONS = ConversationCache()
_RULES: dict[Hashable, object] = {}
_MAX_RULES = 1024
_lock = threading.Lock()


def string_counts(rule: Hashable) -> StringCounts:
    """The process's string-count table for ``rule`` (counter class and encoding)."""
    table = _TABLES.get(rule)
    if table is None:
        with _lock:
            table = _TABLES.setdefault(rule, StringCounts())
    return table


def conversation_cache(rule: Hashable) -> tuple[ConversationCache, object]:
    """The process's conversation cache and a small token standing for ``rule``.

    The token (hashed by identity) goes into every anchor, so the rule is not rehashed per call.
    """
    token = _RULES.get(rule)
    if token is None:
        with _lock:
            if len(_RULES) >= _MAX_RULES:
                _RULES.clear()  # entries under the old tokens age out of the cache
            token = _RULES.setdefault(rule, object())
    return _CONVERSATIONS, token


def clear_count_caches() -> None:
    """Forget every cached count (tests, benchmarks, or to hand the memory back)."""
    for table in list(_TABLES.values()):
        table.clear()
    _CONVERSATIONS.clear()

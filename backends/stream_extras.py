"""Fields a serving engine adds to each streamed choice, joined for the stream-parse final reply.

vLLM (``return_token_ids``) puts the token ids of each chunk's text on its choice
(``choices[i].token_ids``) and the prompt's on the first chunk (``prompt_token_ids``). The
SDK's objects keep such fields (``model_extra``), so they reach the caller on every completion
and chunk as they are. The one place they would be wrong is the completion the stream-parse
helper assembles from the chunks (``get_final_completion()``): the SDK accumulates the message
and ``logprobs`` but copies other choice fields from the first chunk only. :class:`ChoiceExtras`
watches the chunks and sets each list-valued extra field of a choice to the concatenation of
its chunks' values — the token ids of the whole reply, as a non-streamed call returns them.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

__all__ = ["ChoiceExtras"]


class ChoiceExtras:
    """List-valued extra fields of streamed choices, per choice index, in arrival order."""

    def __init__(self) -> None:
        self._lists: dict[int, dict[str, list[Any]]] = {}

    @classmethod
    def watch(cls, stream: Any) -> ChoiceExtras:
        """Watch the chunks of the raw stream under a stream-parse helper as they are read.

        The SDK's ``Stream``/``AsyncStream`` reads them from ``_iterator``; the stand-in for a
        custom client's chunks (:mod:`backends.custom_clients`) from ``_chunks``.
        """
        extras = cls()
        for attribute in ("_iterator", "_chunks"):
            source = getattr(stream, attribute, None)
            if source is not None:
                wrapped = extras._async(source) if hasattr(source, "__aiter__") else None
                setattr(stream, attribute, wrapped or extras._sync(source))
                break
        return extras

    def see(self, chunk: Any) -> None:
        """Record the list-valued extra fields of each choice of ``chunk``."""
        for choice in getattr(chunk, "choices", None) or ():
            extra = getattr(choice, "model_extra", None)
            if not extra:
                continue
            fields = self._lists.setdefault(choice.index, {})
            for name, value in extra.items():
                if isinstance(value, list):
                    fields.setdefault(name, []).extend(value)

    def apply(self, completion: Any) -> Any:
        """``completion`` with each choice's extra lists set to what every chunk carried."""
        for choice in getattr(completion, "choices", None) or ():
            for name, values in self._lists.get(getattr(choice, "index", -1), {}).items():
                setattr(choice, name, list(values))
        return completion

    def _sync(self, chunks: Iterable[Any]) -> Iterator[Any]:
        try:
            for chunk in chunks:
                self.see(chunk)
                yield chunk
        finally:  # closing this closes what it reads, as closing the original would
            close = getattr(chunks, "close", None)
            if callable(close):
                close()

    async def _async(self, chunks: AsyncIterable[Any]) -> AsyncIterator[Any]:
        try:
            async for chunk in chunks:
                self.see(chunk)
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)
            if callable(close):
                await close()

"""Commands that use a model: ``tokens`` counts a prompt, ``chat`` sends one."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from registry.cli import common
from registry.cli.output import print_json
from registry.cli.parser import UsageError
from registry.errors import BackendError, RegistryError
from registry.masking import escape_control, quoted_name

__all__ = ["cmd_chat", "cmd_tokens"]


def _input_path(given: str | None, what: str, hint: str) -> str:
    """``given``, else ``-`` when something is piped in.

    At a terminal that is a usage error: nothing would come, and the command would wait in
    silence.
    """
    if given is not None:
        return given
    if common.stdin_is_terminal():
        raise UsageError(f"give {what}, or - to read it from standard input; {hint}")
    return "-"


def _messages_and_tools(args: argparse.Namespace, path: str) -> tuple[list[Any], Any]:
    """The messages (and tools) of a messages file, checked for shape."""
    data = common.read_json(path, "messages file")
    tools = data.get("tools") if isinstance(data, dict) else None
    messages = data.get("messages") if isinstance(data, dict) else data
    if args.tools:
        tools = common.read_json(args.tools, "tools file")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise RegistryError(
            f"messages file {escape_control(repr(path))}: expected a JSON list of messages "
            '([{"role": "user", "content": "..."}]) or {"messages": [...], "tools": [...]}.'
        )
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)
    ):
        raise RegistryError(
            "tools: expected a JSON list of tool definitions "
            '([{"type": "function", "function": {"name": "...", "parameters": {...}}}]).'
        )
    return messages, tools


def cmd_tokens(args: argparse.Namespace, out: TextIO) -> int:
    """Count a messages file for a model, or prefetch encodings for air-gapped machines."""
    if args.prefetch is not None or args.prefetch_from is not None:
        from registry.cli.prefetching import cmd_prefetch

        return cmd_prefetch(args, out)
    hint = "e.g. modelreg tokens chat messages.json (see --help)"
    if args.name is not None:  # `modelreg tokens messages.json` took the file as the NAME
        hint = f"{quoted_name(args.name)} is the model NAME; the FILE comes after it, {hint}"
    path = _input_path(args.file, "a messages FILE", hint)
    messages, tools = _messages_and_tools(args, path)
    registry = common.registry(args)
    name = registry.resolve(args.name).name
    counter = registry.token_counter(name)
    count = counter.count_tokens_from_messages(messages, tools=tools)
    note = getattr(counter, "note", "")
    result = {
        "model": name,
        "tokens": count,
        "encoding": counter.encoding_name,
        "exact": counter.exact,
    }
    if note:
        result["note"] = note
    if args.json:
        print_json(result, out)
        return 0
    exact = "exact" if counter.exact else "approximate"
    out.write(f"{count} tokens ({counter.encoding_name}, {exact})\n")
    if note:
        out.write(f"note: {note}\n")
    return 0


def _prompt(args: argparse.Namespace) -> str:
    """The prompt: the argument, or standard input (``-``, or no prompt and a pipe)."""
    if args.prompt is not None and args.prompt != "-":
        text = str(args.prompt)
    else:
        hint = 'e.g. modelreg chat chat "Say hello"'
        if args.name is not None:  # `modelreg chat "Say hello"` took the words as the NAME
            hint = f"{quoted_name(args.name)} is the model NAME; the PROMPT comes after it, {hint}"
        path = _input_path(args.prompt, "a PROMPT", hint)
        text = common.read_input(path, "prompt")
    if not text.strip():
        raise UsageError("the prompt is empty: give the message to send")
    return text


def _reply_text(model: Any, result: Any) -> str:
    """The reply's text; a BackendError if a custom client returned something else."""
    choices = getattr(result, "choices", None)
    if choices == []:
        raise BackendError(f"model {model.name!r} replied with no choices.")
    message = getattr(choices[0], "message", None) if choices else None
    if message is None:
        raise BackendError(
            f"model {model.name!r} returned {type(result).__name__}, not a chat completion"
        )
    return str(getattr(message, "content", None) or "")


def _write_stream(result: Any, out: TextIO) -> None:
    """Each chunk's text as it arrives (control characters escaped, lines kept)."""
    for chunk in result:
        choices = getattr(chunk, "choices", None)
        delta = getattr(choices[0], "delta", None) if choices else None
        text = getattr(delta, "content", None)
        if text:
            out.write(escape_control(text, keep="\n\t"))
            out.flush()
    out.write("\n")


def cmd_chat(args: argparse.Namespace, out: TextIO) -> int:
    """One real call; the reply is printed as it streams in (``--json``: the whole result)."""
    prompt = _prompt(args)
    messages = [{"role": "user", "content": prompt}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    registry = common.registry(args)
    try:
        model = registry.create(args.name)
        if args.json:
            result = model.run(messages)
            if model.stream:
                print_json([chunk.model_dump(mode="json") for chunk in result], out)
            else:
                print_json(result.model_dump(mode="json"), out)
            return 0
        result = model.run(messages, stream=True)
        if getattr(result, "choices", None) is not None:  # a backend that does not stream
            out.write(escape_control(_reply_text(model, result), keep="\n\t") + "\n")
        else:
            _write_stream(result, out)
    finally:
        registry.close()
    return 0

r"""``modelreg completion bash|zsh``: shell completion generated from the argument parser.

The script knows the commands, each command's options, which options take a value and what
kind (a file, a directory, a model name, an environment, one of some choices), and what each
positional argument is — all read from :func:`registry.cli.parser.build_parser`, so it cannot
drift from the parser. Model names, aliases and environment names are read at completion time
by ``modelreg completion --query models|envs`` (hidden), which honours ``--settings``, ``--env``
and ``--dotenv`` typed on the line, reads the settings without validating them (no pydantic, no
SDK, no plugins), prints nothing on errors, and leaves out names a shell could not take as one
word (control characters, line breaks).

Names from the settings are data, never code: the scripts never pass them through ``eval``,
``compgen -W`` (which expands ``$(...)``) or unquoted expansion; bash quotes each candidate with
``printf %q``, zsh's ``compadd`` quotes them itself.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator
from typing import TextIO

from registry.cli.parser import UsageError, command_parsers

__all__ = ["SHELLS", "add_arguments", "cmd_completion", "completion_script"]

SHELLS = ("bash", "zsh")
#: The options whose values a query for model names reads, as typed on the command line.
_WHERE_OPTIONS = ("--settings", "--env", "--dotenv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``completion``'s own arguments; the query options are hidden from help and completion."""
    parser.add_argument(
        "shell",
        nargs="?",
        choices=SHELLS,
        help='the shell. Load the script with eval "$(modelreg completion bash)" in ~/.bashrc, '
        'or eval "$(modelreg completion zsh)" in ~/.zshrc after compinit (or save the zsh '
        "script as _modelreg in a directory on $fpath)",
    )
    hidden = argparse.SUPPRESS
    parser.add_argument("--query", choices=("models", "envs"), help=hidden)
    for option in _WHERE_OPTIONS:
        parser.add_argument(option, dest=f"query_{option[2:]}", help=hidden)


def cmd_completion(args: argparse.Namespace, out: TextIO) -> int:
    """Print the script for ``args.shell``, or (``--query``) the names the script completes."""
    if args.query:
        if args.shell:
            raise UsageError("give a shell or --query, not both")
        return _print_names(args, out)
    if args.shell is None:
        raise UsageError("give the shell: modelreg completion bash, or modelreg completion zsh")
    out.write(completion_script(args.shell))
    return 0


def _print_names(args: argparse.Namespace, out: TextIO) -> int:
    """Names for the shell, one a line; on any problem nothing at all (exit 1, no message)."""
    import warnings

    from registry.masking import escape_control

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            names = _names(args)
    except Exception:
        return 1
    out.writelines(f"{name}\n" for name in names if name and escape_control(name) == name)
    return 0


def _names(args: argparse.Namespace) -> list[str]:
    """Model names and aliases of the active environment, or the environments."""
    from registry.cli.common import COMMAND_LINE
    from registry.layers import model_names
    from registry.settings import choose_env, load_settings

    settings = load_settings(
        args.query_settings,
        dotenv_path=args.query_dotenv,
        env=args.query_env,
        given_origin=COMMAND_LINE,
    )
    if args.query == "envs":
        return settings.environment_names()
    return model_names(settings, choose_env(settings, None)).all()


# -- what the parser says ------------------------------------------------------------------


def _value_kind(action: argparse.Action) -> str:
    """What a value of ``action`` is: files, dirs, models, envs, choices:A B, or none."""
    if "--env" in action.option_strings:
        return "envs"
    if action.dest == "name":
        return "models"
    if action.choices:
        return "choices:" + " ".join(str(choice) for choice in action.choices)
    if action.metavar == "DIR":
        return "dirs"
    if action.metavar in ("PATH", "FILE") or action.dest == "file":
        return "files"
    return "none"


def _shown(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    return (action for action in parser._actions if action.help != argparse.SUPPRESS)


def _case_arms(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """The ``case`` arms of the generated functions (every word quoted for the shell)."""
    arms: dict[str, list[str]] = {"options": [], "value": [], "positional": []}
    for name, command in command_parsers(parser).items():
        options: list[str] = []
        positional = 0
        for action in _shown(command):
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.option_strings:
                key = shlex.quote(f"{name} {positional}")
                arms["positional"].append(f"{key}) REPLY={shlex.quote(_value_kind(action))} ;;")
                positional += 1
                continue
            options += action.option_strings
            if action.nargs != 0:
                kind = shlex.quote(_value_kind(action))
                for option in action.option_strings:
                    arms["value"].append(f"{shlex.quote(f'{name} {option}')}) REPLY={kind} ;;")
        words = " ".join(shlex.quote(option) for option in options)
        arms["options"].append(f"{shlex.quote(name)}) reply=({words}) ;;")
    return arms


def completion_script(shell: str) -> str:
    """The completion script for ``shell`` (``bash`` or ``zsh``)."""
    from registry.cli.parser import COMMANDS, build_parser

    arms = _case_arms(build_parser())
    commands = " ".join(shlex.quote(command.name) for command in COMMANDS)
    core = _CORE.format(
        commands=commands,
        options="\n        ".join(arms["options"]),
        value="\n        ".join(arms["value"]),
        positional="\n        ".join(arms["positional"]),
    )
    return (_BASH if shell == "bash" else _ZSH).replace("@CORE@", core)


# -- the scripts -----------------------------------------------------------------------------

# Shared by bash and zsh: the parser's tables, and a walk over the words before the cursor.
_CORE = r"""
_modelreg_commands=({commands})

# The options of command $1 ('' before a command) in the array reply.
_modelreg_options() {{
    case $1 in
        {options}
        *) reply=() ;;
    esac
}}

# Whether option $2 of command $1 takes a value, and what kind (REPLY).
_modelreg_value() {{
    case "$1 $2" in
        {value}
        *) return 1 ;;
    esac
}}

# What the positional argument number $2 of command $1 is (REPLY; empty: nothing to offer).
_modelreg_positional() {{
    REPLY=''
    case "$1 $2" in
        {positional}
    esac
}}

# Read the words before the cursor: the command, how many positional arguments it has, an
# option still waiting for its value, and --settings/--env/--dotenv for the name query.
_modelreg_parse() {{
    _modelreg_cmd='' _modelreg_expect='' _modelreg_npos=0 _modelreg_where=()
    local word first=1 rest=''
    for word in "$@"; do
        if [[ -n $first ]]; then first=''; continue; fi
        if [[ -n $_modelreg_expect ]]; then
            [[ $word == "=" ]] && continue  # bash splits --option=value at the "="
            _modelreg_keep "$_modelreg_expect" "$word"
            _modelreg_expect=''
            continue
        fi
        if [[ -z $rest ]]; then
            case $word in
                --) rest=1; continue ;;
                --*=*) _modelreg_keep "${{word%%=*}}" "${{word#*=}}"; continue ;;
                -*) _modelreg_value "$_modelreg_cmd" "$word" && _modelreg_expect=$word
                    continue ;;
            esac
        fi
        if [[ -z $_modelreg_cmd ]]; then
            _modelreg_cmd=$word
        else
            _modelreg_npos=$((_modelreg_npos + 1))
        fi
    done
}}

_modelreg_keep() {{
    case $1 in
        --settings|--env|--dotenv)
            _modelreg_unquote "$2"
            _modelreg_where+=("$1=$REPLY") ;;
    esac
}}
"""

_BASH = r"""# modelreg completion for bash. Load it with: eval "$(modelreg completion bash)"
@CORE@
# A word as typed, unquoted as far as completion needs: ~/, one pair of quotes, backslashes.
_modelreg_unquote() {
    REPLY=$1
    case $REPLY in
        \'*\') REPLY=${REPLY:1:${#REPLY}-2} ;;
        \"*\") REPLY=${REPLY:1:${#REPLY}-2} ;;
        *) REPLY=${REPLY//\\/} ;;
    esac
    [[ $REPLY == "~/"* ]] && REPLY=$HOME/${REPLY:2}
}

# Add the candidates of kind $1 that start with $2 to COMPREPLY.
_modelreg_offer() {
    local kind=$1 cur=$2 name quoted
    local -a names
    case $kind in
        files) compopt -o filenames 2>/dev/null
               mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        dirs) compopt -o filenames 2>/dev/null
              mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
        models|envs)
            mapfile -t names < <(command modelreg completion --query "$kind" \
                "${_modelreg_where[@]}" 2>/dev/null)
            for name in "${names[@]}"; do
                printf -v quoted '%q' "$name"
                [[ $quoted == "$cur"* ]] && COMPREPLY+=("$quoted")
            done ;;
        choices:*) read -r -a names <<< "${kind#choices:}"
                   for name in "${names[@]}"; do
                       [[ $name == "$cur"* ]] && COMPREPLY+=("$name")
                   done ;;
    esac
}

_modelreg() {
    local cur=${COMP_WORDS[COMP_CWORD]} name
    local -a reply
    COMPREPLY=()
    _modelreg_parse "${COMP_WORDS[@]:0:COMP_CWORD}"
    if [[ -n $_modelreg_expect ]]; then
        [[ $cur == "=" ]] && cur=''
        _modelreg_value "$_modelreg_cmd" "$_modelreg_expect"
        _modelreg_offer "$REPLY" "$cur"
    elif [[ $cur == -* ]]; then
        _modelreg_options "$_modelreg_cmd"
        for name in "${reply[@]}"; do
            [[ $name == "$cur"* ]] && COMPREPLY+=("$name")
        done
    elif [[ -z $_modelreg_cmd ]]; then
        for name in "${_modelreg_commands[@]}"; do
            [[ $name == "$cur"* ]] && COMPREPLY+=("$name")
        done
    else
        _modelreg_positional "$_modelreg_cmd" "$_modelreg_npos"
        _modelreg_offer "$REPLY" "$cur"
    fi
    return 0
}

complete -F _modelreg modelreg
"""

_ZSH = r"""#compdef modelreg
# modelreg completion for zsh. Load it with: eval "$(modelreg completion zsh)" (after
# compinit), or save it as _modelreg in a directory on $fpath.
@CORE@
# A word as typed, without its shell quoting; ~/ expanded.
_modelreg_unquote() {
    REPLY=${(Q)1}
    [[ $REPLY == "~/"* ]] && REPLY=$HOME/${REPLY:2}
}

# Offer the candidates of kind $1.
_modelreg_offer() {
    local -a names
    case $1 in
        files) _files ;;
        dirs) _files -/ ;;
        models|envs)
            names=("${(@f)$(command modelreg completion --query $1 \
                "${_modelreg_where[@]}" 2>/dev/null)}")
            names=(${names:#})
            compadd -- "${names[@]}" ;;
        choices:*) names=(${(s: :)${1#choices:}})
                   compadd -- "${names[@]}" ;;
    esac
}

_modelreg() {
    local cur=${words[CURRENT]} REPLY
    local -a reply
    _modelreg_parse "${(@)words[1,CURRENT-1]}"
    if [[ -n $_modelreg_expect ]]; then
        _modelreg_value "$_modelreg_cmd" "$_modelreg_expect"
        _modelreg_offer "$REPLY"
    elif [[ $cur == --*=* ]] && _modelreg_value "$_modelreg_cmd" "${cur%%=*}"; then
        compset -P '*='
        _modelreg_offer "$REPLY"
    elif [[ $cur == -* ]]; then
        _modelreg_options "$_modelreg_cmd"
        compadd -- "${reply[@]}"
    elif [[ -z $_modelreg_cmd ]]; then
        compadd -- "${_modelreg_commands[@]}"
    else
        _modelreg_positional "$_modelreg_cmd" "$_modelreg_npos"
        _modelreg_offer "$REPLY"
    fi
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _modelreg "$@"
else
    compdef _modelreg modelreg
fi
"""

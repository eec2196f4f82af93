"""``modelreg completion``: the scripts run in real bash and zsh, with the console script on PATH.

bash: the script is loaded with ``eval``, ``complete -p`` must show it registered, and the
completion function runs with ``COMP_WORDS``/``COMP_CWORD`` set as bash sets them. zsh: the
function runs with ``words``/``CURRENT`` set and ``compadd``, ``_files`` and ``compdef`` replaced
by functions that print what they were given (zsh's completion widgets cannot run without a
terminal); the script is also loaded the ``$fpath`` way. ``.ci/run`` installs zsh when missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.cli.parser import COMMANDS, build_parser
from tests.cli_script import MODELREG_SCRIPT, run_script
from tests.helpers import readme_block

PATH = f"{MODELREG_SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}"
ZSH = shutil.which("zsh")

SETTINGS = r"""
default_model = "chat"
[models.chat]
backend = "fake"
aliases = ["assistant", "default"]
[models.writer]
backend = "fake"
[models."$(touch pwned-dollar)"]
backend = "fake"
[models."`touch pwned-tick`"]
backend = "fake"
[models."a b;touch pwned-semicolon"]
backend = "fake"
[models."line\nbreak"]
backend = "fake"
[environments.prod.models.prod-only]
backend = "fake"
[environments.test.models.chat]
reply = "x"
"""


@pytest.fixture
def settings(isolated: Path) -> Path:
    path = isolated / "settings.toml"
    path.write_text(SETTINGS)
    (isolated / "other.toml").write_text('[models.elsewhere]\nbackend = "fake"\n')
    (isolated / "messages.json").write_text("[]")
    (isolated / "subdir").mkdir()
    return path


def run_shell(
    argv: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": PATH, **(env or {})},
        timeout=60,
    )


BASH = """
eval "$(modelreg completion bash)"
complete -p modelreg >&2
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
_modelreg
printf '%s\\n' "${COMPREPLY[@]}"
"""


def bash(*words: str, env: dict[str, str] | None = None) -> list[str]:
    """What bash offers for the last word of ``modelreg WORDS``."""
    result = run_shell(["bash", "--norc", "--noprofile", "-c", BASH, "_", "modelreg", *words], env)
    assert result.stderr == "complete -F _modelreg modelreg\n", result.stderr
    assert result.returncode == 0
    return [line for line in result.stdout.split("\n") if line]


ZSH_STUBS = """
compdef() { print -r -- "compdef $*" >&2 }
compadd() {  # zsh's compadd keeps what starts with PREFIX
    while [[ $1 != -- ]]; do shift; done; shift
    local word; for word; do [[ $word == ${(b)PREFIX}* ]] && print -r -- "$word"; done
    return 0
}
compset() { [[ $1 == -P ]] && PREFIX=${PREFIX#*=} }
_files() { print -r -- "<files $*>" }
"""

ZSH_EVAL = (
    ZSH_STUBS
    + """
eval "$(modelreg completion zsh)"
words=("$@")
CURRENT=$#
PREFIX=${words[CURRENT]}
_modelreg
"""
)


def zsh(*words: str, env: dict[str, str] | None = None) -> list[str]:
    """What zsh's function hands ``compadd`` for the last word of ``modelreg WORDS``."""
    if ZSH is None:
        pytest.skip("zsh is not installed (.ci/run installs it)")
    result = run_shell([ZSH, "-f", "-c", ZSH_EVAL, "_", "modelreg", *words], env)
    assert result.stderr == "compdef _modelreg modelreg\n", result.stderr
    assert result.returncode == 0
    return [line for line in result.stdout.split("\n") if line]


Complete = Callable[..., list[str]]
SHELLS = [pytest.param(bash, id="bash"), pytest.param(zsh, id="zsh")]


# -- commands and options come from the parser ----------------------------------------------


def parser_options(name: str) -> set[str]:
    parser = build_parser()
    if name:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subparsers.choices[name]
    return {
        option
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
    }


@pytest.mark.parametrize("complete", SHELLS)
def test_commands_and_every_command_s_options(complete: Complete, settings: Path) -> None:
    assert complete("") == [c.name for c in COMMANDS]
    assert complete("ch") == ["check", "chat"]
    assert set(complete("-")) == parser_options("") >= {"--version", "--settings", "--json"}
    for command in COMMANDS:
        offered = complete(command.name, "-")
        assert set(offered) == parser_options(command.name), command.name
    assert "--query" not in complete("completion", "-")  # the hidden query stays hidden
    assert complete("check", "--st") == ["--strict"]
    # options before the command are the top level's; the command is found after them
    assert complete("--env", "prod", "check", "--st") == ["--strict"]


@pytest.mark.parametrize("complete", SHELLS)
def test_values_of_options(complete: Complete, settings: Path) -> None:
    assert complete("init", "--backend", "") == ["azure", "openai"]
    assert complete("completion", "") == ["bash", "zsh"]
    assert complete("show", "--env", "") == ["prod", "test"]
    assert complete("--env", "p") == ["prod"]
    assert complete("chat", "--system", "") == []  # free text: nothing to offer
    assert complete("chat", "chat", "") == []  # the prompt
    if complete is bash:
        assert complete("--settings", "ot") == ["other.toml"]
        assert complete("tokens", "--prefetch", "") == ["subdir"]  # directories only
        assert complete("tokens", "chat", "mes") == ["messages.json"]  # positional FILE
        assert complete("tokens", "--tools", "me") == ["messages.json"]
        # bash splits --option=value at "=": both halves are understood
        assert complete("init", "--backend", "=", "o") == ["openai"]
        assert complete("init", "--backend", "=") == ["azure", "openai"]
    else:
        assert complete("--settings", "ot") == ["<files >"]
        assert complete("tokens", "--prefetch", "") == ["<files -/>"]
        assert complete("tokens", "chat", "mes") == ["<files >"]
        assert complete("tokens", "--tools", "t.json", "chat", "") == ["<files >"]
        assert complete("init", "--backend=o") == ["openai"]  # after compset -P '*='
        assert complete("--env=") == ["prod", "test"]


# -- model names, from the settings, at completion time ---------------------------------------


@pytest.mark.parametrize("complete", SHELLS)
def test_model_names_and_aliases(complete: Complete, settings: Path, isolated: Path) -> None:
    offered = complete("show", "")
    plain = ["assistant", "chat", "default", "writer"]
    assert set(plain) <= set(offered) and "prod-only" not in offered
    assert "prod-only" in complete("show", "--env", "prod", "")
    assert "prod-only" in complete("--env=prod", "routes", "")
    assert "prod-only" in complete("show", "", env={"MODELREG_ENV": "prod"})
    assert complete("chat", "wr") == ["writer"]
    assert complete("tokens", "as") == ["assistant"]
    # --settings typed on the line wins, before or after the command, quoted or not
    assert complete("--settings", "other.toml", "show", "") == ["elsewhere"]
    assert complete("show", "--settings", "'other.toml'", "") == ["elsewhere"]
    assert complete("show", "", env={"MODELREG_SETTINGS": "other.toml"}) == ["elsewhere"]
    (isolated / "dir with space").mkdir()
    shutil.copy(isolated / "other.toml", isolated / "dir with space" / "s.toml")
    assert complete("show", "--settings", "dir\\ with\\ space/s.toml", "") == ["elsewhere"]
    assert complete("show", "--settings", '"dir with space/s.toml"', "") == ["elsewhere"]
    if complete is bash:
        assert complete("show", "--settings", "=", "other.toml", "") == ["elsewhere"]
    assert list((isolated).glob("pwned*")) == []


@pytest.mark.parametrize("complete", SHELLS)
def test_names_with_shell_metacharacters_are_offered_never_run(
    complete: Complete, settings: Path, isolated: Path
) -> None:
    offered = complete("show", "")
    if complete is bash:  # quoted for the command line, as bash inserts COMPREPLY verbatim
        weird = [
            r"\$\(touch\ pwned-dollar\)",
            r"\`touch\ pwned-tick\`",
            r"a\ b\;touch\ pwned-semicolon",
        ]
        assert complete("show", "a\\ b") == [r"a\ b\;touch\ pwned-semicolon"]
    else:  # compadd quotes what it inserts itself
        weird = ["$(touch pwned-dollar)", "`touch pwned-tick`", "a b;touch pwned-semicolon"]
    assert set(weird) <= set(offered)
    assert not any("line" in name for name in offered)  # a name with a line break: left out
    assert list(isolated.glob("pwned*")) == []
    # quoted right: bash itself reads each candidate back as the model's name
    if complete is bash:
        words = subprocess.run(
            ["bash", "-c", "eval \"printf '%s\\n' $1\"", "_", " ".join(weird)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert words == ["$(touch pwned-dollar)", "`touch pwned-tick`", "a b;touch pwned-semicolon"]
        assert list(isolated.glob("pwned*")) == []


@pytest.mark.parametrize("complete", SHELLS)
def test_broken_settings_complete_nothing_quietly(complete: Complete, isolated: Path) -> None:
    (isolated / "settings.toml").write_text("[models.chat\nbackend = ")
    assert complete("show", "") == []  # and no stderr (checked by the helper)
    assert complete("show", "--settings", "missing.toml", "") == []
    assert complete("show", "", env={"MODELREG_ENV": "nope"}) == []


def test_the_query_is_quiet_and_light(settings: Path) -> None:
    names = run_script("completion", "--query", "models")
    assert names.returncode == 0 and names.stderr == ""
    assert "chat\n" in names.stdout and "line" not in names.stdout
    for env in ({"MODELREG_SETTINGS": "missing.toml"}, {"MODELREG_ENVV": "typo"}):
        quiet = run_script("completion", "--query", "models", env=env)
        assert quiet.stderr == "", env
    envs = run_script("completion", "--query", "envs")
    assert envs.stdout == "prod\ntest\n"
    timed = run_script("completion", "--query", "models", env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines()}
    heavy = {"pydantic", "pydantic_settings", "openai", "tiktoken", "pluggy", "httpx"}
    assert "registry.layers" in imported and not heavy & imported


def test_usage_errors() -> None:
    for args in (
        ("completion",),
        ("completion", "fish"),
        ("completion", "bash", "--query", "models"),
    ):
        result = run_script(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("modelreg: error: ") and result.stdout == ""
    as_json = run_script("--json", "completion", "bash")
    assert as_json.returncode == 2 and '"kind": "UsageError"' in as_json.stderr
    help_text = run_script("completion", "--help").stdout
    assert 'eval "$(modelreg completion bash)"' in " ".join(help_text.split())
    assert "exit codes:" in help_text
    assert "--query" not in help_text


@pytest.mark.skipif(ZSH is None, reason="zsh is not installed (.ci/run installs it)")
def test_zsh_script_from_fpath(settings: Path, isolated: Path) -> None:
    functions = isolated / "zfunc"
    functions.mkdir()
    (functions / "_modelreg").write_text(run_script("completion", "zsh").stdout)
    # the first call loads the file and completes; the second runs the function it defined
    script = ZSH_STUBS + (
        "fpath=(zfunc $fpath); autoload -U _modelreg; words=(modelreg show wr); CURRENT=3; "
        "PREFIX=wr; _modelreg; words=(modelreg ch); CURRENT=2; PREFIX=ch; _modelreg"
    )
    result = run_shell([ZSH or "zsh", "-f", "-c", script])
    assert result.returncode == 0 and result.stderr == "", result.stderr  # no compdef call
    assert result.stdout.splitlines() == ["writer", "check", "chat"]


def test_bash_script_is_syntax_checked_and_zsh_too(isolated: Path) -> None:
    bash_script = run_script("completion", "bash").stdout
    assert run_shell(["bash", "-n", "-c", bash_script]).returncode == 0
    if ZSH is not None:
        assert run_shell([ZSH, "-n", "-c", run_script("completion", "zsh").stdout]).returncode == 0


def test_readme_lines_load_the_scripts(settings: Path) -> None:
    bash_line, zsh_line = readme_block("**Shell completion.**", "bash").strip().splitlines()
    loaded = run_shell(["bash", "--norc", "-c", f"{bash_line}\ncomplete -p modelreg"])
    assert loaded.stdout == "complete -F _modelreg modelreg\n", loaded.stderr
    if ZSH is None:
        pytest.skip("zsh is not installed (.ci/run installs it)")
    script = f"autoload -U compinit && compinit -u -D\n{zsh_line}\nprint -r -- $_comps[modelreg]"
    loaded = run_shell([ZSH, "-f", "-c", script])
    assert (loaded.stdout, loaded.stderr) == ("_modelreg\n", "")

"""The CLI used the way a hurried or hostile user would, through the ``modelreg`` console script.

A reader that goes away, standard input closed, abbreviated options, ``--env`` in another case,
settings that leave a credential empty, a ``default_model`` that names nothing, pools with no
valid deployments: each has a plain answer and the right exit code, never a traceback, a secret
or a success that is not one.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.azure_server import AzureServer
from tests.test_cli_platform import SCRIPT, console

BROKEN = """
[models.a]
backend = "fake"
[environments.dev.models.a]
tiemout = 3
"""


def test_check_env_matches_environments_as_other_commands_do(
    write_settings: Callable[[str], Path],
) -> None:
    write_settings(BROKEN)
    # `show --env DEV` means dev; `check --env DEV` used to check nothing and pass.
    result = console("check", "--env", "DEV")
    assert result.returncode == 1, result.stdout
    assert "[env dev] model 'a'" in result.stdout and "1 model(s) checked" in result.stdout
    unknown = console("check", "--env", "nope", "--json")
    assert unknown.returncode == 1
    assert "(from command line)" in json.loads(unknown.stderr)["error"]

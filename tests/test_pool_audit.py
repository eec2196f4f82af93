"""Pools and fallbacks as an adversarial user finds them (issue 14 audit), over real HTTP.

Each test here failed before the fix its commit made: the README's promises taken at their word
(``weight = 0`` is a standby, a stream-parse fails over until its first chunk, ``native_response``
works on a pool's streams, ``modelreg routes`` says when it could not read the shared state).
Servers and faults are tests/azure_server.py's; the pool settings are tests/test_pools.py's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from registry import create_model
from tests import test_pools
from tests.azure_server import AzureServer, Fault
from tests.helpers import modelreg
from tests.test_pools import MESSAGES, asked, settings

# test_pools' fixtures: its three loopback regions and its pool settings
servers = test_pools.servers
regions = test_pools.regions
pool = test_pools.pool

RESPONSES = {"api": '"responses"', "api_version": '"2025-04-01-preview"'}
APIS = {"chat_completions": {}, "responses": RESPONSES}


# -- weight = 0: the README's standby ---------------------------------------------------------


def test_a_zero_weight_deployment_is_a_standby_used_only_while_the_others_cool(
    regions: dict[str, AzureServer], write_settings: Callable[[str], Path]
) -> None:
    """README (Routing): "`weight = 0` is a standby"; settings refused it as not positive."""
    write_settings(settings(regions).replace("weight = 3", "weight = 0"))
    model = create_model("chat")
    for _ in range(20):
        assert model.run(MESSAGES).choices[0].message.content.startswith("west")
    assert asked(regions) == {"east": 0, "west": 20, "backup": 0}
    regions["west"].add_faults(Fault(429, {"retry-after": "30"}))
    assert model.run(MESSAGES).choices[0].message.content.startswith("east")
    assert modelreg("check").returncode == 0
    shown = json.loads(modelreg("routes", "chat", "--json").stdout)
    assert [d["weight"] for d in shown["deployments"]] == [0.0, 1.0]

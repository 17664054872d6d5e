"""Process faults and tampering against CLIProxyAPI (the double) alone: no LiteLLM boot needed.

Each test runs in a `light` home of its own; `doit start:cliproxy` starts only CLIProxyAPI.
"""

from __future__ import annotations

import json

from tests.support import wait_for


def start_cliproxy(light):
    result = light.doit("start:cliproxy")
    assert result.returncode == 0, result.output
    wait_for(lambda: json.loads(light.doit("status", "--json").stdout)["services"][1]["ready"], what="cliproxy ready")
    return light.record("cliproxy")


def cliproxy_status(light) -> dict:
    return json.loads(light.doit("status", "--json").stdout)["services"][1]


def test_restart_prints_no_dependency_noise(light):
    old = start_cliproxy(light)
    result = light.doit("restart", "cliproxy")
    assert result.returncode == 0, result.output
    assert not [line for line in result.stdout.splitlines() if line.startswith("-- ")], result.stdout
    assert "cliproxy: restarted" in result.stdout and light.pid("cliproxy") != old["pid"]

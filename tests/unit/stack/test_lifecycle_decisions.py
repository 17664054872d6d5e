"""tasks.stack.lifecycle: the start / restart / reload / leave-alone decisions (`ensure_running`) and
their cheap twin for doit's uptodate (`is_current`), with the CLIProxyAPI double as a real process."""

from __future__ import annotations

import json
import os
import signal
import sys

import httpx
import pytest

from tasks.services import secrets
from tasks.config.load import load_stack
from tasks.base.errors import FlowgateError
from tasks.base.fsutil import atomic_write
from tasks.services.cliproxy import render_cliproxy
from tasks.stack import events, lifecycle, process
from tests.conftest import ROOT
from tests.support import free_port, wait_for

DOUBLE = ROOT / "tests" / "fakes" / "cliproxy_double.py"


@pytest.fixture
def stack_for(paths, tmp_path):
    """A validated stack whose cliproxy is the double (as a user binary), rendered and ready to start."""
    binary = tmp_path / "bin" / "cli-proxy-api"
    binary.parent.mkdir()
    binary.write_bytes(f"#!{sys.executable}\n".encode() + DOUBLE.read_bytes())
    binary.chmod(0o755)
    port = free_port()

    def make(models=None, **cliproxy) -> dict:
        cfg = {"cliproxy": {"binary": str(binary), "port": port, "stop_timeout": 5, **cliproxy},
               "litellm": {"port": free_port()}, **({"models": models} if models else {})}
        paths.local_config.write_text(json.dumps(cfg))
        stack = load_stack(paths)
        secrets.ensure_all(paths)
        atomic_write(paths.cliproxy_rendered, render_cliproxy(paths, stack, secrets.read_all(paths)), mode=0o600)
        return stack

    yield make, binary, port
    lifecycle.stop_service(paths, None, "cliproxy")


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_start_then_unchanged_then_hot_reload(paths, stack_for):
    make, _, port = stack_for
    stack = make()
    assert not lifecycle.is_current(paths, stack, "cliproxy")
    started = lifecycle.ensure_running(paths, stack, "cliproxy")
    assert started.action == "started" and started.pid
    wait_for(lambda: answers(port), what="the double to answer /healthz")
    assert lifecycle.is_current(paths, stack, "cliproxy")
    assert lifecycle.ensure_running(paths, stack, "cliproxy").action == "unchanged"

    stack = make(settings={"request-retry": 9})  # not a restart input: delivered for hot reload
    assert not lifecycle.is_current(paths, stack, "cliproxy")
    reloaded = lifecycle.ensure_running(paths, stack, "cliproxy")
    assert (reloaded.action, reloaded.pid) == ("reloaded", started.pid)
    assert "request-retry: 9" in paths.cliproxy_config.read_text()
    assert lifecycle.is_current(paths, stack, "cliproxy")


def test_a_changed_binary_restarts_with_the_reason(paths, stack_for):
    make, binary, port = stack_for
    stack = make()
    first = lifecycle.ensure_running(paths, stack, "cliproxy")
    wait_for(lambda: answers(port))
    binary.write_bytes(binary.read_bytes() + b"\n# another build\n")  # a user binary: identity is its stat
    assert not lifecycle.is_current(paths, stack, "cliproxy")
    again = lifecycle.ensure_running(paths, stack, "cliproxy")
    assert again.action == "restarted" and again.pid != first.pid and again.why == "binary changed"
    [restart] = [e for e in events.read(paths) if e["event"] == "restart"]
    assert (restart["service"], restart["detail"], restart["pid"]) == ("cliproxy", "binary changed", again.pid)


def test_a_dead_process_is_started_again_and_said_so(paths, stack_for):
    make, _, port = stack_for
    stack = make()
    first = lifecycle.ensure_running(paths, stack, "cliproxy")
    wait_for(lambda: answers(port))
    record = process.read_record(paths.record("cliproxy"))
    os.killpg(record.pgid, signal.SIGKILL)
    wait_for(lambda: not process.is_alive(record), what="the double to die")
    assert not lifecycle.is_current(paths, stack, "cliproxy")
    again = lifecycle.ensure_running(paths, stack, "cliproxy")
    assert again.action == "restarted" and again.pid != first.pid and "its process was gone" in again.why


def test_disabled_stops_what_runs_and_is_current_only_when_stopped(paths, stack_for):
    make, _, port = stack_for
    lifecycle.ensure_running(paths, make(), "cliproxy")
    wait_for(lambda: answers(port))
    shipped = ["gpt-5-codex", "gpt-5", "claude-sonnet-4-5", "claude-haiku-4-5"]  # clients and profiles name them
    off = make(enabled=False, models=[{"name": n, "via": "direct", "model": f"openai/{n}"} for n in shipped])
    assert not lifecycle.is_current(paths, off, "cliproxy")  # still running: `up` must stop it
    assert lifecycle.ensure_running(paths, off, "cliproxy").action == "disabled"
    assert process.read_record(paths.record("cliproxy")) is None
    assert lifecycle.is_current(paths, off, "cliproxy")


def test_a_missing_binary_is_not_current_and_fails_to_start_with_the_fix(paths, stack_for):
    make, binary, _ = stack_for
    stack = make()
    binary.unlink()
    assert not lifecycle.is_current(paths, stack, "cliproxy")
    with pytest.raises(FlowgateError) as err:
        lifecycle.ensure_running(paths, stack, "cliproxy")
    assert "does not exist" in err.value.message and "cliproxy.binary" in err.value.hint
    assert process.read_record(paths.record("cliproxy")) is None


def test_down_works_with_a_stack_json_written_by_an_older_flowgate(paths, stack_for):
    make, _, port = stack_for
    lifecycle.ensure_running(paths, make(), "cliproxy")
    wait_for(lambda: answers(port))
    old_stack = {"cliproxy": {"host": "127.0.0.1", "port": port}}  # no stop_timeout: an older shape
    assert lifecycle.stop_service(paths, old_stack, "cliproxy").outcome in ("stopped", "killed")
    assert process.read_record(paths.record("cliproxy")) is None

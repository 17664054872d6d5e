"""tasks.events (append-only, no secrets) and tasks.lock (one state-changing command at a time)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tasks.base.errors import FlowgateError
from tasks.stack import events
from tasks.stack.lock import stack_lock
from tests.conftest import ROOT


def test_events_append_and_redact(paths):
    events.record(paths, "start", "litellm", "ok", "pid 1")
    events.record(paths, "stop", "litellm", "ok", "key sk-abcdefghijklmnopqrstuvwxyz leaked?")
    got = events.read(paths)
    assert [e["event"] for e in got] == ["start", "stop"]
    assert "sk-abcdefghijklmnopqrstuvwxyz" not in paths.events.read_text()
    assert got[1]["detail"] == "key [redacted] leaked?"
    with open(paths.events, "a") as fh:
        fh.write('{"torn": ')  # a crash mid-line must not break readers
    assert len(events.read(paths)) == 2


def test_second_holder_fails_clearly_after_timeout(paths, capfd):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from tasks.base.paths import Paths
        from tasks.stack.lock import stack_lock
        with stack_lock(Paths(root=Paths.from_env().root, home=__import__('pathlib').Path({str(paths.home)!r}))):
            print("held", flush=True)
            sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FlowgateError) as info:
            with stack_lock(paths, timeout=0.2, what="this test"):
                pass
        assert "another FlowGate command" in info.value.message
        assert "waiting for another FlowGate command" in capfd.readouterr().err
    finally:
        holder.communicate("\n", timeout=10)
    with stack_lock(paths, timeout=1):  # free again once the holder is gone
        pass

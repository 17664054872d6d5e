"""Faults a new user meets, each in a stack home of its own: one clear line, no traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from tests.conftest import ROOT, base_env
from tests.unit.doubles.test_cliproxy_double import start_double  # noqa: F401  (fixture)


def no_traceback(result):
    assert "Traceback" not in result.output, result.output


def test_port_held_by_foreign_process_refused_before_starting(light):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", light.litellm_port))
        sock.listen()
        result = light.doit("up")
    assert result.returncode == 1
    no_traceback(result)
    assert f"port {light.litellm_port} on 127.0.0.1 is held by pid {os.getpid()}" in result.stderr
    assert light.record("litellm") is None and light.record("cliproxy") is None  # nothing started


def test_stale_record_of_unrelated_process_is_never_signalled(light):
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        light.paths.run_dir.mkdir(parents=True, exist_ok=True)
        light.paths.record("litellm").write_text(json.dumps({
            "version": 1, "service": "litellm", "pid": bystander.pid, "pgid": bystander.pid,
            "create_time": 1000.0, "argv": ["litellm"], "cwd": None, "inputs_hash": "x",
            "started_at": "2026-01-01T00:00:00+00:00", "log": None, "meta": {}}))
        result = light.doit("down")
        assert result.returncode == 0, result.output
        assert "stale" in result.stdout
        assert bystander.poll() is None  # still alive
        assert light.record("litellm") is None
    finally:
        bystander.kill()
        bystander.wait()


def test_service_dying_at_start_fails_up_with_its_log(light):
    light.env["CLIPROXY_DOUBLE_EXIT_AT_START"] = "3"
    result = light.doit("up")
    assert result.returncode == 1
    no_traceback(result)
    assert "cliproxy exited with exit code 3 before it was ready" in result.stderr
    assert "CLIProxyAPI Version:" in result.stderr  # the log tail
    assert light.events("crash", "cliproxy")


def test_sigint_during_up_leaves_tracked_services(light):
    light.env["CLIPROXY_DOUBLE_START_DELAY"] = "60"
    env = {**base_env(light.home), **light.env}
    proc = subprocess.Popen([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "up"], cwd=light.home,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (light.record("litellm") and light.record("cliproxy")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "Traceback" not in out + err
    assert "interrupted" in err
    status = light.doit("status", "--json")
    states = {s["service"]: s["state"] for s in json.loads(status.stdout)["services"]}
    assert states["cliproxy"] in ("starting", "running") and states["litellm"] in ("starting", "running")
    down = light.doit("down")
    assert down.returncode == 0
    assert light.record("litellm") is None and light.record("cliproxy") is None


def test_missing_user_binary_is_one_clear_line(light):
    light.write_local("  binary: /nonexistent/cli-proxy-api-plus\n")
    result = light.doit("up")
    assert result.returncode == 1
    no_traceback(result)
    assert "/nonexistent/cli-proxy-api-plus" in result.stderr
    assert light.record("litellm") is None  # nothing started


def test_unreachable_release_api_names_url(light):
    result = light.doit("fetch", env={"GITHUB_API_URL": "http://127.0.0.1:9"})
    assert result.returncode == 1
    no_traceback(result)
    assert "http://127.0.0.1:9" in result.stderr and "cliproxy.binary" in result.stderr


def test_down_during_up_is_named_and_a_second_up_says_it_waits(light):
    """Issue 31, item 24: `up` stopped by a concurrent `down` says so (no log tail, no "fix the
    cause"); a second `up` meanwhile says it waits for the other command, as `profile` does."""
    light.env["CLIPROXY_DOUBLE_START_DELAY"] = "60"
    env = {**base_env(light.home), **light.env}

    def up():
        return subprocess.Popen([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "up"], cwd=light.home,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = up()
    deadline = time.monotonic() + 60
    while not (light.record("litellm") and light.record("cliproxy")):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = up()
    try:
        line = second.stderr.readline()
        assert line.startswith("waiting for another FlowGate command to finish"), line
    finally:
        down = light.doit("down")
    assert down.returncode == 0, down.output
    out, err = first.communicate(timeout=60)
    assert first.returncode == 1 and "Traceback" not in out + err
    assert "stopped by a concurrent `doit down`" in err, err
    assert "fix the cause" not in err and "last lines of" not in err
    second.communicate(timeout=60)


def test_commands_never_reach_another_checkouts_cliproxy(home, start_double):  # noqa: F811
    """Issue 31, item 22: another checkout's CLIProxyAPI on this checkout's port (even with the same
    management key) gets no management call: one line naming it, exit 1."""
    from tests.conftest import run_doit
    from tests.unit.doubles.test_cliproxy_double import MGMT_KEY, write_account

    other = start_double()
    write_account(other.auth_dir, "codex-a@example.com.json", {"type": "codex", "email": "a@example.com",
                                                               "access_token": "t"})
    (home / "config" / "local.yaml").write_text(f"cliproxy:\n  port: {other.port}\n")
    assert run_doit(home, "secrets").returncode == 0
    (home / ".router" / "secrets" / "cliproxy_management_key").write_text(MGMT_KEY + "\n")
    result = run_doit(home, "accounts", "--disable", "codex-a@example.com.json")
    no_traceback(result)
    assert result.returncode == 1, result.output
    assert f"is not this checkout's ({home}): it is pid {other.proc.pid} (" in result.stderr
    assert "stop that process, or give this checkout another port" in result.stderr
    listed = other.mgmt("GET", "/auth-files").json()["files"]
    assert [f.get("disabled", False) for f in listed] == [False]  # untouched

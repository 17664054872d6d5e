"""Process faults and tampering against CLIProxyAPI (the double) alone: no LiteLLM boot needed.

Each test runs in a `light` home of its own; `doit start:cliproxy` starts only CLIProxyAPI.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess

from tests.support import group_gone, wait_for


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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_tampered_record_pgid_is_never_signalled(light):
    rec = start_cliproxy(light)
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)  # a group of its own
    try:
        light.paths.record("cliproxy").write_text(json.dumps({**rec, "pgid": bystander.pid}))
        down = light.doit("down")
        assert down.returncode == 0, down.output
        assert bystander.poll() is None, "the bystander's group was signalled"
        assert group_gone(rec["pid"]) and light.record("cliproxy") is None
    finally:
        bystander.kill()
        bystander.wait()


def test_binary_modified_in_place_is_reported_and_replaced(light):
    assert light.doit("fetch").returncode == 0
    binary = light.paths.bin_dir / "cli-proxy-api"
    before = binary.stat()
    data = bytearray(binary.read_bytes())
    data[-2:] = b"#!"  # same size, same inode
    with open(binary, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(binary, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime restored
    assert (binary.stat().st_size, binary.stat().st_mtime_ns, binary.stat().st_ino) == \
        (before.st_size, before.st_mtime_ns, before.st_ino)
    result = light.doit("fetch")
    assert result.returncode == 0, result.output
    assert "was modified after it was installed" in result.stdout and "reinstalling" in result.stdout
    # the verified copy kept at install goes back (no download); its sha256 is checked before use
    assert "activated CLIProxyAPI 7.2.140 (mainline, glibc build) from the kept releases" in result.stdout
    manifest = json.loads(light.paths.manifest.read_text())
    assert hashlib.sha256(binary.read_bytes()).hexdigest() == manifest["binary_sha256"]
    assert light.events("tamper", "cliproxy")


def test_unreadable_record_is_recovered_by_identity(light):
    rec = start_cliproxy(light)
    light.paths.record("cliproxy").write_text("{ torn")
    status = cliproxy_status(light)
    assert status["state"] == "running" and status["pid"] == rec["pid"] and status["recovered"] is True
    assert "identified as FlowGate's" in light.doit("status").stdout
    again = light.doit("start:cliproxy")  # `up` minus LiteLLM: no port refusal, one clean restart
    assert again.returncode == 0, again.output
    assert "cliproxy: restarted" in again.stdout and "run record was unreadable" in again.stdout
    assert group_gone(rec["pid"])
    new = light.record("cliproxy")
    light.paths.record("cliproxy").unlink()  # gone altogether: `down` still finds and stops it
    wait_for(lambda: cliproxy_status(light)["ready"], what="cliproxy ready again")
    down = light.doit("down")
    assert down.returncode == 0, down.output
    assert group_gone(new["pid"])


def test_foreign_listener_is_not_adopted(light):
    # a process with the right name on the port, but not started from this home: still foreign
    sock = socket.socket()
    sock.bind(("127.0.0.1", light.cliproxy_port))
    sock.listen()
    try:
        status = cliproxy_status(light)
        assert status["state"] == "stopped" and status["recovered"] is False
        result = light.doit("start:cliproxy")
        assert result.returncode == 1 and f"is held by pid {os.getpid()}" in result.stderr
    finally:
        sock.close()


def test_service_silent_past_its_start_timeout_is_unhealthy_and_restarted(light):
    light.write_local("  start_timeout: 1\n")
    light.env["CLIPROXY_DOUBLE_START_DELAY"] = "120"  # alive, never listening
    assert light.doit("start:cliproxy").returncode == 0
    rec = light.record("cliproxy")
    assert cliproxy_status(light)["state"] in ("starting", "unhealthy")
    hung = wait_for(lambda: (s := cliproxy_status(light))["state"] == "unhealthy" and s, what="unhealthy")
    assert "start_timeout 1 s" in hung["problem"]
    del light.env["CLIPROXY_DOUBLE_START_DELAY"]
    result = light.doit("start:cliproxy")
    assert result.returncode == 0, result.output
    assert "cliproxy: restarted" in result.stdout and "not answering" in result.stdout
    assert group_gone(rec["pid"])


def test_status_says_what_up_would_change_and_changes_nothing(light):
    rec = start_cliproxy(light)
    manifest = light.paths.manifest.read_bytes()
    light.write_local("  release:\n    version: v9.9.9\n")  # pins another release than the installed one
    status = light.doit("status")
    assert status.returncode == 1
    assert "fetch: update CLIProxyAPI to router-for-me/CLIProxyAPI v9.9.9 (installed: router-for-me/CLIProxyAPI v7" \
        in status.stdout
    assert "apply the edited config" in status.stdout and "start litellm" in status.stdout
    light.paths.local_config.write_text(light.paths.local_config.read_text() + "litellm: [not, a, mapping\n")
    invalid = light.doit("status", "--json")
    assert invalid.returncode == 1 and "Traceback" not in invalid.output
    assert any(p.startswith("config is invalid") for p in json.loads(invalid.stdout)["pending"])
    assert light.paths.manifest.read_bytes() == manifest and light.pid("cliproxy") == rec["pid"]  # nothing changed
    assert not [e for e in light.events() if e["event"] in ("fetch", "stop", "restart")][1:]


def test_a_launchers_own_restart_is_reported_and_not_thrown_away(light):
    light.env["CLIPROXY_DOUBLE_START_DELAY"] = "4"  # every start, the restarted one too, takes 4 s to listen
    rec = start_cliproxy(light)
    # as `doit up`'s readiness wait leaves it: the record says it has been ready
    light.paths.record("cliproxy").write_text(json.dumps({**rec, "meta": {**rec["meta"], "ready_at": "2026-01-01T00:00:00+0000"}}))
    victim = cliproxy_status(light)["service_pid"]
    os.kill(victim, signal.SIGKILL)  # its launcher restarts it by itself
    entry = wait_for(lambda: (s := cliproxy_status(light))["state"] == "restarting" and s, what="restarting")
    assert entry["restart"]["attempt"] == 1 and entry["problem"] is None, entry
    status = light.doit("status")
    assert status.returncode == 1 and "restarting (attempt 1, " in status.stdout, status.output
    assert "unhealthy" not in status.stdout and "2026-01-01" not in status.output
    assert "restarting after a crash" in status.stderr
    up = light.doit("start:cliproxy")  # `up` minus LiteLLM: leaves the restart under way alone
    assert up.returncode == 0 and "restarted" not in up.stdout, up.output
    back = wait_for(lambda: (s := cliproxy_status(light))["ready"] and s, what="the restarted cliproxy ready")
    assert back["service_pid"] not in (None, victim) and back["restarts"] == 1 and light.pid("cliproxy") == rec["pid"]


def test_a_provider_the_installed_line_lacks_is_named_with_the_line_that_has_it(light):
    light.write_local("providers: [codex, claude, copilot]\n")  # Copilot logins: the Plus line only
    start_cliproxy(light)
    assert light.doit("check").returncode == 1  # the installed line is known now
    account = {"type": "github-copilot", "email": "dev@example.com", "access_token": "t", "disabled": False}
    (light.paths.auths_dir / "github-copilot-dev@example.com.json").write_text(json.dumps(account))
    line = wait_for(lambda: next((l for l in light.doit("status").stdout.splitlines()
                                  if l.startswith("copilot: 1 account")), None), what="the copilot account listed")
    assert "(unusable here): copilot needs the CLIProxyAPIPlus line" in line and "cliproxy.release.repo" in line, line
    assert "login:copilot" not in line  # that command would fail on this binary

"""tasks.stack.process: spawn, identify, stop, with real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tasks.base.errors import FlowgateError
from tasks.stack import process
from tests.support import wait_for

PY = sys.executable




def gone(pid: int) -> bool:
    """The pid no longer runs (absent, or a zombie waiting for its parent)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def run(tmp_path):
    """spawn() with paths under tmp_path; stops whatever it started afterwards."""
    started: list[Path] = []

    def _spawn(code_or_argv, service="svc", **kw):
        argv = [PY, "-c", code_or_argv] if isinstance(code_or_argv, str) else code_or_argv
        record_path = tmp_path / "run" / f"{service}.json"
        log_path = tmp_path / "logs" / f"{service}.log"
        kw.setdefault("env", {**os.environ})
        kw.setdefault("cwd", tmp_path)
        kw.setdefault("inputs_hash", "h1")
        rec = process.spawn(argv, log_path=log_path, record_path=record_path, service=service, **kw)
        started.append(record_path)
        return rec, record_path, log_path

    yield _spawn
    for path in started:
        process.stop(path, timeout=0.5, kill_timeout=2.0)


SLEEPER = "import time; print('hello', flush=True); time.sleep(60)"


def test_spawn_alive_stop(run, tmp_path):
    rec, record_path, log_path = run(SLEEPER, env={**os.environ, "FG_SECRET": "sk-very-secret"}, meta={"port": 4000})
    assert rec.pgid == rec.pid == os.getpgid(rec.pid)
    assert os.getsid(rec.pid) == rec.pid  # its own session
    assert process.is_alive(rec)

    raw = record_path.read_text()
    assert "sk-very-secret" not in raw and "FG_SECRET" not in raw
    data = json.loads(raw)
    assert data["service"] == "svc" and data["pid"] == rec.pid and data["pgid"] == rec.pid
    assert data["create_time"] == pytest.approx(psutil.Process(rec.pid).create_time(), abs=0.01)
    assert data["argv"][0] == PY and data["cwd"] == str(tmp_path) and data["inputs_hash"] == "h1"
    assert data["log"] == str(log_path) and data["meta"] == {"port": 4000} and data["started_at"]
    assert process.read_record(record_path) == rec

    wait_for(lambda: "hello" in process.tail(log_path), what="output in the log")
    lines = process.tail(log_path)
    assert lines[0].startswith("--- started ") and lines[0].endswith(" ---")
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600

    st = process.status(rec)
    assert st.state == "running" and st.pid == rec.pid and st.uptime is not None and st.uptime >= 0

    res = process.stop(record_path, timeout=5)
    assert res.outcome == "stopped" and res.pid == rec.pid and res.exit_code == -signal.SIGTERM
    assert not record_path.exists()
    assert not process.is_alive(rec) and gone(rec.pid)
    # idempotent
    assert process.stop(record_path).outcome == "not-running"
    assert process.status(process.read_record(record_path)).state == "stopped"


def test_log_is_appended_across_starts(run):
    _, record_path, log_path = run("print('one')")
    wait_for(lambda: "one" in process.tail(log_path))
    process.stop(record_path)
    _, _, _ = run("print('two')")
    wait_for(lambda: "two" in process.tail(log_path))
    lines = process.tail(log_path)
    assert len([line for line in lines if line.startswith("--- started")]) == 2
    assert lines.index("one") < lines.index("two")


def test_sigterm_ignored_gets_sigkill(run):
    code = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    rec, record_path, log_path = run(code)
    wait_for(lambda: "ready" in process.tail(log_path), what="handler installed")
    sent = []

    def killpg(pgid, sig):
        sent.append((pgid, sig))
        os.killpg(pgid, sig)

    res = process.stop(record_path, timeout=0.3, killpg=killpg)
    assert res.outcome == "killed"
    # SIGCONT right after SIGTERM: a stopped group could not act on the SIGTERM otherwise
    assert sent == [(rec.pgid, signal.SIGTERM), (rec.pgid, signal.SIGCONT), (rec.pgid, signal.SIGKILL)]
    assert res.exit_code == -signal.SIGKILL
    assert gone(rec.pid) and not record_path.exists()


def test_escalation_uses_injected_clock(run):
    """With a fake clock, the SIGTERM timeout passes without real waiting."""
    code = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    rec, record_path, log_path = run(code)
    wait_for(lambda: "ready" in process.tail(log_path))
    now = [1000.0]
    sent = []
    sleeps = []

    def killpg(pgid, sig):
        sent.append(sig)
        os.killpg(pgid, sig)

    def fake_sleep(s):
        if signal.SIGKILL in sent:  # let the real process die
            time.sleep(0.01)
            now[0] += 0.01
        else:
            sleeps.append(s)
            now[0] += 1.0

    t0 = time.monotonic()
    res = process.stop(record_path, timeout=10.0, clock=lambda: now[0], sleep=fake_sleep, killpg=killpg)
    assert res.outcome == "killed" and sent == [signal.SIGTERM, signal.SIGCONT, signal.SIGKILL]
    assert len(sleeps) == 10  # ten fake seconds of SIGTERM grace, one per poll
    assert time.monotonic() - t0 < 5
    assert gone(rec.pid)


def test_wrapper_script_whole_group_stopped(run, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    inner = f"import os,time; open({str(pidfile)!r},'w').write(str(os.getpid())); time.sleep(60)"
    # The trailing command keeps sh alive as the parent: the server is a grandchild.
    script = f'"{PY}" -c "{inner}"; echo wrapper-done'
    rec, record_path, _ = run(["sh", "-c", script])
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), what="grandchild pid"))
    assert grandchild != rec.pid
    assert psutil.Process(grandchild).ppid() == rec.pid
    assert os.getpgid(grandchild) == rec.pgid

    res = process.stop(record_path, timeout=5)
    assert res.outcome == "stopped"
    assert gone(rec.pid)
    assert gone(grandchild)


def test_leftover_group_members_are_stopped_when_leader_exited(run, tmp_path):
    """The wrapper exits at once, its server lives on in the group: stop still gets it."""
    pidfile = tmp_path / "bg.pid"
    inner = f"import os,time; open({str(pidfile)!r},'w').write(str(os.getpid())); time.sleep(60)"
    rec, record_path, _ = run(["sh", "-c", f'"{PY}" -c "{inner}" &'])
    bg = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), what="background pid"))
    wait_for(lambda: not process.is_alive(rec), what="wrapper exit")
    assert not gone(bg)

    res = process.stop(record_path, timeout=5)
    assert res.outcome == "stopped" and "leader had exited" in res.detail
    assert gone(bg) and not record_path.exists()


def test_stale_record_with_reused_pid_is_never_signalled(tmp_path):
    other = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        real = process.make_record(other.pid, service="litellm")
        assert process.is_alive(real)
        fake = real._replace(create_time=real.create_time - 5.0)  # same pid, another process
        record_path = tmp_path / "litellm.json"
        process.write_record(record_path, fake)
        assert not process.is_alive(fake)
        assert process.status(fake).state == "crashed"

        def never(*a):
            raise AssertionError(f"signalled {a}")

        res = process.stop(record_path, timeout=0.2, killpg=never, kill=never)
        assert res.outcome == "stale" and "another process" in res.detail
        assert not record_path.exists()
        assert other.poll() is None and not gone(other.pid)
    finally:
        other.kill()
        other.wait()


def test_identity_survives_wall_clock_step_but_not_reboot(tmp_path):
    other = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        real = process.make_record(other.pid, service="x")
        if real.boot_id is None:
            pytest.skip("no boot id on this platform")
        # Recorded while the kernel's boot time read 3 s later (the clock was stepped since).
        stepped = real._replace(create_time=real.create_time + 3.0, boot_time=real.boot_time + 3.0)
        assert process.is_alive(stepped)
        # Same pid and times, but from an earlier boot: not ours, never signalled.
        old_boot = real._replace(boot_id="00000000-0000-0000-0000-000000000000")
        assert not process.is_alive(old_boot)
        record_path = tmp_path / "x.json"
        process.write_record(record_path, old_boot)
        res = process.stop(record_path, killpg=lambda *a: pytest.fail("signalled"))
        assert res.outcome == "stale" and "reboot" in res.detail and other.poll() is None
        # Without boot information (other platforms) the plain create time decides.
        plain = real._replace(boot_id=None, boot_time=None)
        assert process.is_alive(plain)
        assert not process.is_alive(plain._replace(create_time=plain.create_time + 1.0))
    finally:
        other.kill()
        other.wait()


def test_stale_record_with_vanished_pid(tmp_path):
    p = subprocess.Popen([PY, "-c", "pass"])
    rec = process.make_record(p.pid, service="x")
    p.wait()
    record_path = tmp_path / "x.json"
    process.write_record(record_path, rec)
    assert not process.is_alive(rec)
    res = process.stop(record_path, killpg=lambda *a: pytest.fail("signalled"))
    assert res.outcome == "stale" and not record_path.exists()


def test_zombie_child_counts_as_dead(run):
    rec, record_path, _ = run("raise SystemExit(3)")
    # Our child, not reaped yet: a zombie.
    wait_for(lambda: psutil.Process(rec.pid).status() == psutil.STATUS_ZOMBIE, what="zombie")
    assert not process.is_alive(rec)
    st = process.status(rec)
    assert st.state == "crashed" and st.exit_code == 3
    res = process.stop(record_path)
    assert res.outcome == "stale" and res.exit_code == 3 and not record_path.exists()


def test_zombie_of_another_parent_counts_as_dead(tmp_path):
    # A parent that never reaps its child: the child stays a zombie we cannot reap.
    code = "import subprocess,sys,time; p=subprocess.Popen([sys.executable,'-c','pass']); print(p.pid, flush=True); time.sleep(60)"
    parent = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        zpid = int(parent.stdout.readline())
        wait_for(lambda: psutil.Process(zpid).status() == psutil.STATUS_ZOMBIE, what="zombie")
        rec = process.make_record(zpid, service="z")
        assert not process.is_alive(rec)
        st = process.status(rec)
        assert st.state == "crashed" and st.exit_code is None
    finally:
        parent.kill()
        parent.wait()


def test_missing_binary(tmp_path):
    record_path = tmp_path / "run" / "x.json"
    missing = tmp_path / "nope" / "cli-proxy-api-plus"
    with pytest.raises(FlowgateError) as err:
        process.spawn([str(missing)], env=None, cwd=None, log_path=tmp_path / "x.log",
                      record_path=record_path, service="cliproxy", inputs_hash="")
    assert str(missing) in err.value.message and "not found" in err.value.message
    assert not record_path.exists()


def test_not_executable(tmp_path):
    binary = tmp_path / "bin"
    binary.write_text("#!/bin/sh\necho hi\n")
    binary.chmod(0o644)
    with pytest.raises(FlowgateError) as err:
        process.spawn([str(binary)], env=None, cwd=None, log_path=tmp_path / "x.log",
                      record_path=tmp_path / "x.json", service="cliproxy", inputs_hash="")
    assert str(binary) in err.value.message and "not executable" in err.value.message


def test_refuses_to_start_twice(run):
    rec, record_path, _ = run(SLEEPER)
    with pytest.raises(FlowgateError, match="already running"):
        run(SLEEPER)
    assert process.read_record(record_path) == rec


@pytest.mark.parametrize("content", ["{not json", "[]", '{"service": "x"}', '{"service":"x","pid":-1,"pgid":1,"create_time":1,"argv":[]}', ""])
def test_corrupt_record_is_stale(tmp_path, content):
    record_path = tmp_path / "x.json"
    record_path.write_text(content)
    assert process.read_record(record_path) is None
    assert process.status(process.read_record(record_path)).state == "stopped"
    res = process.stop(record_path, killpg=lambda *a: pytest.fail("signalled"))
    assert res.outcome == "stale" and not record_path.exists()


def test_port_holder_finds_listener(tmp_path):
    code = ("import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen();"
            "print(s.getsockname()[1], flush=True); time.sleep(60)")
    child = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        holder = process.port_holder("127.0.0.1", port)
        assert holder is not None
        pid, name = holder
        assert pid == child.pid and name == psutil.Process(child.pid).name()
        assert process.port_holder("localhost", port) is not None
    finally:
        child.kill()
        child.wait()
    assert process.port_holder("127.0.0.1", port) is None


def test_port_holder_falls_back_to_bind(monkeypatch):
    def denied(*a, **k):
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", denied)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    try:
        assert process.port_holder("127.0.0.1", port) == (None, None)
    finally:
        srv.close()
    assert process.port_holder("127.0.0.1", port) is None


def test_tail(tmp_path):
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i} " + "x" * 100 + "\n" for i in range(1000)))
    last = process.tail(log, 20)
    assert len(last) == 20 and last[0].startswith("line 980 ") and last[-1].startswith("line 999 ")
    assert process.tail(log, 1)[0].startswith("line 999 ")
    small = tmp_path / "small.log"
    small.write_text("a\nb")
    assert process.tail(small, 20) == ["a", "b"]
    assert process.tail(tmp_path / "missing.log") == []
    assert process.tail(small, 0) == []
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"ok\n\xff\xfe broken\n")
    assert process.tail(bad)[0] == "ok"

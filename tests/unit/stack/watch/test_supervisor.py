"""tasks.stack.watch.supervisor and reuseport: restart policy, giving up, stopping; steering connections."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from tasks.stack.launch import launcher_files
from tasks.gateway import reuseport
from tasks.stack.watch import supervisor
from tests.support import free_port

FAST = supervisor.RestartPolicy(backoff=(0.01, 0.01, 0.01), window=60)


def run_supervisor(paths, argv, ready, policy=FAST) -> tuple[int, dict]:
    sup = supervisor.Supervisor(paths, "svc", argv, ready, policy)
    code = sup.run()
    return code, launcher_files.read_state(paths, "svc", os.getpid())


def events(paths) -> list[dict]:
    return [json.loads(line) for line in paths.events.read_text().splitlines()] if paths.events.exists() else []


@pytest.fixture
def run_dir(paths):
    paths.run_dir.mkdir(parents=True)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield paths
    for sig, handler in handlers.items():  # the supervisor installs its own
        signal.signal(sig, handler)


def test_a_child_that_never_became_ready_is_not_restarted(run_dir):
    code, state = run_supervisor(run_dir, [sys.executable, "-c", "raise SystemExit(3)"], lambda pid: False)
    assert code == 3
    assert state["state"] == "failed" and state["restarts"] == 0 and state["last_exit_code"] == 3
    assert "before it was ready" in state["detail"]
    assert not [e for e in events(run_dir) if e["event"] == "restart"]


def test_a_child_dying_after_ready_is_restarted_then_given_up(run_dir):
    dies = "import time; time.sleep(0.2); raise SystemExit(4)"  # seen ready first, then exits
    code, state = run_supervisor(run_dir, [sys.executable, "-c", dies], lambda pid: True)
    assert code == 4
    assert state["state"] == "gave-up" and state["restarts"] == 3
    assert "4 unexpected exits within 60 s, the last exited with code 4" in state["detail"]
    kinds = [e["event"] for e in events(run_dir)]
    assert kinds.count("crash") == 4 and kinds.count("restart") == 3 and kinds[-1] == "give-up"


def test_a_stop_request_stops_the_child_and_is_no_failure(run_dir):
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    code, state = run_supervisor(run_dir, [sys.executable, "-c", "import time; time.sleep(60)"], lambda pid: True)
    assert code == 0 and state["state"] == "stopped" and state["last_exit_code"] == -signal.SIGTERM
    assert not [e for e in events(run_dir) if e["event"] in ("crash", "restart")]


def test_a_stop_signal_of_its_own_is_what_the_child_gets(run_dir):
    """PostgreSQL's launcher (`--stop-signal INT`): any stop signal reaches the child as SIGINT, its fast shutdown."""
    child = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
             "signal.signal(signal.SIGINT, lambda *_: sys.exit(7)); time.sleep(60)")
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    sup = supervisor.Supervisor(run_dir, "svc", [sys.executable, "-c", child], lambda pid: True, FAST,
                                stop_signal=signal.SIGINT)
    assert sup.run() == 0
    state = launcher_files.read_state(run_dir, "svc", os.getpid())
    assert state["state"] == "stopped" and state["last_exit_code"] == 7


def test_launcher_exits_as_its_service_did(paths):
    paths.run_dir.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(paths.root)}
    proc = subprocess.run([sys.executable, "-m", "tasks.stack.launcher", "supervise", "--home", str(paths.home),
                           "--service", "svc", "--ready", "http://127.0.0.1:9/", "--", sys.executable, "-c",
                           "import os; os.kill(os.getpid(), 9)"], env=env, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.skipif(reuseport.unsupported() is not None, reason="Linux SO_REUSEPORT only")
def test_new_connections_go_to_the_newest_listener_once_steered():
    port = free_port()
    old, new = reuseport.bind("127.0.0.1", port, True), reuseport.bind("127.0.0.1", port, True)
    try:
        old.listen()
        early = socket.create_connection(("127.0.0.1", port))  # `new` is bound but not listening
        new.listen()
        assert reuseport.steer_to(new)
        late = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        old.setblocking(False)
        new.setblocking(False)
        assert accepted(old) == 1 and accepted(new) == 10
        for sock in [early, *late]:
            sock.close()
    finally:
        old.close()
        new.close()


@pytest.mark.skipif(reuseport.unsupported() is not None, reason="Linux SO_REUSEPORT only")
def test_steering_is_detached_once_the_old_listener_closed():
    """Left attached, "socket 1" would hand every new connection to a process joining the group later."""
    port = free_port()
    old, new = reuseport.bind("127.0.0.1", port, True), reuseport.bind("127.0.0.1", port, True)
    intruder = None
    try:
        old.listen()
        new.listen()
        assert reuseport.steer_to(new)
        assert reuseport.listening_beside(new) == 2
        released = []
        watcher = threading.Thread(target=lambda: released.append(reuseport.release_when_alone(new, 1, 30)))
        watcher.start()
        old.close()  # the swap's old instance stops accepting
        watcher.join(timeout=30)
        assert released == [True]
        intruder = reuseport.bind("127.0.0.1", port, True)  # a same-user process joins at index 1
        intruder.listen()
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        new.setblocking(False)
        intruder.setblocking(False)
        ours, theirs = accepted(new), accepted(intruder)
        assert ours + theirs == 40 and ours > 0, (ours, theirs)  # the kernel's hash again, not "all to index 1"
        for conn in conns:
            conn.close()
    finally:
        for sock in (old, new, intruder):
            if sock is not None:
                sock.close()


def accepted(listener) -> int:
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_worker_ready_reads_the_report_of_this_child(run_dir):
    check = supervisor.worker_ready(run_dir, "svc", 42)
    path = launcher_files.worker_path(run_dir, "svc", 42)
    assert not check(1000)
    path.write_text(json.dumps({"pid": 999, "ready": True}))
    assert not check(1000)  # an earlier child's report
    path.write_text(json.dumps({"pid": 1000, "ready": True}))
    assert check(1000)

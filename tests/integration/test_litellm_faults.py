"""Faults that need the real LiteLLM: the gateway key, a launch that cannot start, a hung process.

One stack for the module (LiteLLM boots in 5-12 s); the tests run in file order and each leaves it
up and ready for the next.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket

import httpx
import psutil
import pytest

from tests.integration.conftest import make_stack
from tests.support import group_gone

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "key check"}]}


@pytest.fixture(scope="module")
def st(tmp_path_factory, github):
    stack = make_stack(tmp_path_factory, github, "litellm-faults")
    stack.seed_accounts("codex")
    result = stack.doit("up")
    assert result.returncode == 0, result.output
    yield stack
    stack.doit("down")
    stack.kill_all()


def litellm_status(st) -> dict:
    return json.loads(st.doit("status", "--json").stdout)["services"][0]


def log_size(st) -> int:
    return st.paths.log("litellm").stat().st_size


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong-key-0123456789"},
                                     {"x-api-key": "sk-wrong-key-0123456789"}, {"Authorization": "nonsense"}],
                         ids=["no key", "wrong bearer", "wrong x-api-key", "malformed"])
def test_wrong_or_missing_key_is_401_naming_the_key_file(st, headers):
    before = log_size(st)
    resp = httpx.post(f"{st.litellm_url}/v1/chat/completions", headers=headers, json=CHAT, timeout=30)
    assert resp.status_code == 401, resp.text
    message = resp.json()["error"]["message"]
    assert str(st.paths.secret("litellm_master_key")) in message and "gateway key" in message
    with open(st.paths.log("litellm"), "rb") as fh:
        fh.seek(before)
        logged = fh.read().decode()
    assert "Traceback" not in logged and "prisma" not in logged, logged
    assert len([line for line in logged.splitlines() if line.strip()]) <= 3, logged  # one entry + access line


@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
def test_the_key_works_in_either_header(st, header):
    value = f"Bearer {st.master_key}" if header == "Authorization" else st.master_key
    resp = httpx.post(f"{st.litellm_url}/v1/chat/completions", headers={header: value}, json=CHAT, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "double(gpt-5.5): key check"


def test_launch_that_cannot_start_leaves_the_healthy_service_running(st):
    pid = st.pid("litellm")
    local = st.paths.local_config.read_text()
    st.paths.local_config.write_text(local.replace("litellm:\n", 'litellm:\n  env:\n    "A=B": "x"\n', 1))
    try:
        for args in (("up",), ("restart", "litellm")):
            result = st.doit(*args)
            assert result.returncode == 1, result.output
            assert "Traceback" not in result.output
            # refused before anything is stopped: by the config check now, by launchcheck behind it
            assert "litellm.env.A=B" in result.stderr
            assert st.pid("litellm") == pid and litellm_status(st)["ready"] is True
    finally:
        st.paths.local_config.write_text(local)


def test_hung_litellm_is_unhealthy_and_up_restarts_it(st):
    old = st.record("litellm")
    os.killpg(old["pid"], signal.SIGSTOP)
    try:
        status = st.doit("status")
        assert status.returncode == 1
        assert "unhealthy" in status.stdout and "`uv run doit up` restarts it" in status.stdout
        result = st.doit("up")
        assert result.returncode == 0, result.output
        assert "litellm: restarted" in result.stdout and "not answering" in result.stdout
        assert st.pid("litellm") != old["pid"] and group_gone(old["pid"])
    finally:
        os.killpg(old["pid"], signal.SIGCONT) if not group_gone(old["pid"]) else None
    assert litellm_status(st)["ready"] is True


def test_restart_of_a_stopped_litellm_brings_it_back(st):
    old = st.record("litellm")
    os.killpg(old["pid"], signal.SIGSTOP)
    result = st.doit("restart", "litellm")
    assert result.returncode == 0, result.output
    assert "ready: litellm" in result.stdout
    assert st.pid("litellm") != old["pid"] and group_gone(old["pid"])
    assert litellm_status(st)["state"] == "running"


def test_litellm_without_a_usable_run_record_is_recovered(st):
    """The launcher's command line names no config file: it is identified by `--home`/`--service`."""
    rec = st.record("litellm")
    path = st.paths.record("litellm")
    for damage in ("", "{ torn", "sparse"):
        path.write_text(damage) if damage != "sparse" else os.truncate(path, 2 << 30)  # 2 GiB, never read whole
        status = litellm_status(st)
        assert (status["state"], status["pid"], status["recovered"]) == ("running", rec["pid"], True), (damage, status)
    result = st.doit("up")  # restarts it once, instead of refusing its own port as foreign
    assert result.returncode == 0, result.output
    assert "litellm: restarted" in result.stdout and "run record was unreadable" in result.stdout
    assert group_gone(rec["pid"])
    new = st.record("litellm")
    path.unlink()
    status = litellm_status(st)
    assert (status["state"], status["pid"], status["ready"]) == ("running", new["pid"], True), status
    down = st.doit("down")
    assert down.returncode == 0 and "litellm stopped" in down.stdout, down.output
    assert group_gone(new["pid"])
    again = st.doit("up")
    assert again.returncode == 0, again.output
    assert litellm_status(st)["ready"] is True


def test_a_run_record_that_is_a_directory_does_not_stop_down(st):
    """Issue 31, item 21: `down` failed ("cannot write … Is a directory") and LiteLLM kept serving."""
    rec = st.record("litellm")
    path = st.paths.record("litellm")
    path.unlink()
    path.mkdir()
    try:
        down = st.doit("down")
        assert down.returncode == 0 and "Traceback" not in down.output, down.output
        assert group_gone(rec["pid"])
        assert [p.name for p in st.paths.run_dir.glob("litellm.json.odd-*")]  # set aside, nothing deleted
    finally:
        again = st.doit("up")
    assert again.returncode == 0, again.output
    assert litellm_status(st)["ready"] is True


def test_stopped_worker_of_a_killed_launcher_is_recovered(st):
    """SIGSTOP the server, SIGKILL its launcher: the stopped worker holds the port in a group whose
    leader is gone; it is still found by its command line (the launcher forks it), and replaced."""
    rec = st.record("litellm")
    worker = json.loads(next(st.paths.run_dir.glob(f"litellm.{rec['pid']}.worker.json")).read_text())["pid"]
    os.kill(worker, signal.SIGSTOP)
    os.kill(rec["pid"], signal.SIGKILL)
    try:
        status = litellm_status(st)
        assert (status["state"], status["pid"], status["recovered"]) == ("unhealthy", worker, True), status
        result = st.doit("up")
        assert result.returncode == 0, result.output
        assert "litellm: restarted" in result.stdout and "stopped" in result.stdout
        assert group_gone(rec["pid"]) and not psutil.pid_exists(worker)
    finally:
        if psutil.pid_exists(worker):
            os.kill(worker, signal.SIGKILL)
    assert litellm_status(st)["ready"] is True


def test_a_same_user_listener_on_the_gateway_port_is_flagged_and_gets_no_steered_traffic(st):
    """SO_REUSEPORT lets any process of this user join the gateway's port: it must not receive every
    new connection (the swap's steering is detached), and status and doctor must name it."""
    intruder = socket.socket()
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    intruder.bind(("127.0.0.1", st.litellm_port))
    intruder.listen(64)
    try:
        conns = [socket.create_connection(("127.0.0.1", st.litellm_port)) for _ in range(40)]
        intruder.setblocking(False)
        stolen = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                intruder.accept()[0].close()
                stolen += 1
        for conn in conns:
            conn.close()
        assert stolen < 40, "every new connection went to the intruder: the steering program is still attached"
        status = st.doit("status")
        assert status.returncode == 1 and "Traceback" not in status.output
        assert f"port {st.litellm_port} is shared with a listener that is not FlowGate's: pid {os.getpid()}" \
            in status.stdout, status.output
        doctor = st.doit("doctor")
        assert doctor.returncode == 1 and "shared with a listener that is not FlowGate's" in doctor.stdout, doctor.output
    finally:
        intruder.close()
    assert st.doit("status").returncode == 0


def test_up_warns_about_a_provider_the_installed_line_lacks(st):
    local = st.paths.local_config.read_text()
    st.paths.local_config.write_text(local + "providers: [codex, claude, copilot]\n")
    try:
        result = st.doit("up")
        assert result.returncode == 0, result.output
        assert "warning: providers: copilot needs the CLIProxyAPIPlus line" in result.stdout, result.stdout
    finally:
        st.paths.local_config.write_text(local)
    assert "warning: providers" not in st.doit("up").stdout


def test_silent_connections_beyond_the_cap_leave_room_for_a_keyed_request(st):
    """Issue 31, item 7, at a small scale: the cap set through litellm.env reaches the running server."""
    local = st.paths.local_config.read_text()
    st.paths.local_config.write_text(local.replace(
        "litellm:\n", 'litellm:\n  env:\n    FLOWGATE_MAX_CONNECTIONS: "24"\n    FLOWGATE_HEAD_TIMEOUT: "600"\n', 1))
    silent = []
    try:
        result = st.doit("up")
        assert result.returncode == 0, result.output
        for _ in range(60):
            sock = socket.create_connection(("127.0.0.1", st.litellm_port), timeout=30)
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
            silent.append(sock)
        resp = httpx.post(f"{st.litellm_url}/v1/chat/completions", json=CHAT, timeout=30,
                          headers={"Authorization": f"Bearer {st.master_key}"})
        assert resp.status_code == 200, resp.text

        def closed(sock) -> bool:
            try:
                return sock.recv(1) == b""
            except ConnectionResetError:
                return True
        assert sum(closed(s) for s in silent[:30]) == 30  # the oldest went to make room
    finally:
        for sock in silent:
            sock.close()
        st.paths.local_config.write_text(local)
        again = st.doit("up")
    assert again.returncode == 0, again.output
    assert litellm_status(st)["ready"] is True

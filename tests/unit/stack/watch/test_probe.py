"""tasks.stack.watch.probe: readiness polling against real sockets."""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.services.common import CLIPROXY_PROBE_PATH, LITELLM_PROBE_PATH
from tasks.stack.watch import probe
from tasks.stack import process
from tests.support import free_port

PY = sys.executable


class Handler(BaseHTTPRequestHandler):
    routes = {"/health/liveliness": 200, "/": 200}

    def do_GET(self):  # noqa: N802
        code = self.server.routes.get(self.path, 404)
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True


class Server6(Server):
    address_family = socket.AF_INET6




@pytest.fixture
def serve():
    servers = []

    def _serve(host="127.0.0.1", port=0, routes=None, cls=Server):
        srv = cls((host, port), Handler)
        srv.routes = dict(routes or Handler.routes)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv

    yield _serve
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_http_status(serve):
    srv = serve(routes={"/health/liveliness": 200, "/": 200})
    port = srv.server_address[1]
    assert probe.http_status("127.0.0.1", port, "/health/liveliness") == 200
    assert probe.http_ok("127.0.0.1", port, "/")
    assert probe.http_status("127.0.0.1", port, "/nope") == 404
    assert not probe.http_ok("127.0.0.1", port, "/nope")
    closed = free_port()
    assert probe.http_status("127.0.0.1", closed) is None
    assert probe.fetch("127.0.0.1", closed).error == "connection refused"


def test_ipv6_loopback(serve):
    try:
        srv = serve(host="::1", cls=Server6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = srv.server_address[1]
    assert probe.http_ok("::1", port, "/health/liveliness")
    assert probe.http_ok("[::1]", port, "/")
    res = probe.wait_ready([probe.Check("litellm", "::1", port, LITELLM_PROBE_PATH)], timeout=2)
    assert res["litellm"].ready


def test_waits_for_late_listener(serve):
    port = free_port()
    polls = []

    def alive():
        # Readiness condition instead of a sleep: start listening once the probe has been
        # refused a few times.
        polls.append(1)
        if len(polls) == 3:
            serve(port=port)
        return True

    res = probe.wait_ready([probe.Check("litellm", "127.0.0.1", port, LITELLM_PROBE_PATH, 200, alive)], timeout=5)
    r = res["litellm"]
    assert r.ready and r.reason == "ready" and r.status == 200
    assert r.attempts == 3  # refused twice, then answered
    assert len(polls) == 3


def test_fails_fast_when_process_dies(tmp_path):
    rec = process.spawn([PY, "-c", "print('boom: cannot bind', flush=True); raise SystemExit(2)"], env=None, cwd=None,
                        log_path=tmp_path / "x.log", record_path=tmp_path / "x.json", service="x", inputs_hash="")
    port = free_port()
    t0 = time.monotonic()
    res = probe.wait_ready([("x", "127.0.0.1", port, "/", 200, lambda: process.is_alive(rec))], timeout=60)
    elapsed = time.monotonic() - t0
    r = res["x"]
    assert not r.ready and r.exited and "exited" in r.reason
    assert elapsed < 30  # nowhere near the 60 s timeout
    assert process.status(rec).exit_code == 2
    assert "boom: cannot bind" in process.tail(tmp_path / "x.log")
    process.stop(tmp_path / "x.json")


def test_two_services_in_one_loop(serve):
    fast = serve(routes={"/": 200})
    slow_port = free_port()
    order = []

    def fast_alive():
        order.append("fast")
        return True

    def slow_alive():
        order.append("slow")
        if order.count("slow") == 4:
            serve(port=slow_port, routes={"/health/liveliness": 200})
        return True

    checks = [
        probe.Check("litellm", "127.0.0.1", slow_port, LITELLM_PROBE_PATH, 200, slow_alive),
        probe.Check("cliproxy", "127.0.0.1", fast.server_address[1], CLIPROXY_PROBE_PATH, 200, fast_alive),
    ]
    res = probe.wait_ready(checks, timeout=5)
    assert list(res) == ["litellm", "cliproxy"]
    assert res["litellm"].ready and res["cliproxy"].ready
    # Both were probed in the first round: the fast one did not wait for the slow one.
    assert order[:2] == ["slow", "fast"] and order.count("fast") == 1
    assert res["cliproxy"].seconds < res["litellm"].seconds


def test_timeout_names_the_laggard(serve):
    ok = serve(routes={"/": 200})
    never = free_port()
    res = probe.wait_ready(
        [("cliproxy", "127.0.0.1", ok.server_address[1], "/", 200, None),
         ("litellm", "127.0.0.1", never, LITELLM_PROBE_PATH, 200, None)],
        timeout=0.3,
    )
    assert res["cliproxy"].ready
    bad = probe.not_ready(res)
    assert [r.name for r in bad] == ["litellm"]
    assert "not ready after 0.3 s" in bad[0].reason and "connection refused" in bad[0].reason
    assert not bad[0].exited and bad[0].attempts >= 2


def test_wrong_status_is_not_ready(serve):
    srv = serve(routes={"/": 200})  # /health/liveliness -> 404
    res = probe.wait_ready([("litellm", "127.0.0.1", srv.server_address[1], LITELLM_PROBE_PATH, 200, None)],
                           timeout=0.2)
    r = res["litellm"]
    assert not r.ready and r.status == 404 and "answered 404 (expected 200)" in r.reason


def test_fake_clock_no_real_waiting():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    res = probe.wait_ready([("a", "127.0.0.1", 1, "/", 200, None)], timeout=2.0, clock=lambda: now[0], sleep=sleep,
                           fetch=lambda *a: probe.Answer(None, "connection refused"))
    assert not res["a"].ready
    assert slept[0] == 0.05 and 0.05 <= min(slept[:-1]) and max(slept) <= 0.1  # 50 ms, backing off to 100 ms
    assert slept[1] > slept[0]
    assert sum(slept) == pytest.approx(2.0)


def test_probe_module_does_not_import_http_client_eagerly():
    import subprocess

    code = "import sys; import tasks.stack.watch.probe; print('http.client' in sys.modules, 'httpx' in sys.modules)"
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__('pathlib').Path(probe.__file__).parents[3])).stdout.split()
    assert out == ["False", "False"]


def test_an_answer_from_before_a_restart_does_not_make_the_new_process_ready(serve):
    srv = serve()
    port = srv.server_address[1]
    assert probe.http_ok("127.0.0.1", port, LITELLM_PROBE_PATH)  # the old process answered (hung check)
    srv.shutdown()
    srv.server_close()  # then it was stopped, and its successor is still booting
    res = probe.wait_ready([probe.Check("litellm", "127.0.0.1", port, LITELLM_PROBE_PATH)], timeout=0.3)
    assert not res["litellm"].ready and res["litellm"].attempts > 0


def test_a_recent_answer_of_the_same_process_counts_without_asking_again(serve):
    srv = serve()
    port = srv.server_address[1]
    assert probe.http_ok("127.0.0.1", port, LITELLM_PROBE_PATH)  # `up`'s hung check, moments ago
    srv.shutdown()
    srv.server_close()  # not asked again: it would be refused now
    res = probe.wait_ready([probe.Check("litellm", "127.0.0.1", port, LITELLM_PROBE_PATH, recent_ok=True)],
                           timeout=0.3)
    assert res["litellm"].ready and res["litellm"].attempts == 0

"""tasks.base.localhttp: one exchange over a raw socket, and requests sent early (`send_early`)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.base import localhttp
from tests.support import free_port, wait_for


class Counting(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        body = f"answer {len(self.server.seen)}".encode()
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    srv.daemon_threads = True
    srv.seen = []
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()
    localhttp._EARLY.clear()


def test_exchange_returns_status_and_body(server):
    port = server.server_address[1]
    assert localhttp.exchange("127.0.0.1", port, "GET", "/x") == (200, b"answer 1")
    assert localhttp.exchange("127.0.0.1", port, "GET", "/missing")[0] == 404
    assert localhttp.exchange("127.0.0.1", port, "GET", "/y", status_only=True)[0] == 200


def test_an_early_request_is_answered_once_and_read_later(server):
    port = server.server_address[1]
    headers = {"Authorization": "Bearer k"}
    assert localhttp.send_early("127.0.0.1", port, "/probe", headers=headers)
    assert localhttp.exchange("127.0.0.1", port, "GET", "/probe", headers=headers) == (200, b"answer 1")
    assert server.seen == [("/probe", "Bearer k")]  # asked once, not twice
    # used up: the next exchange asks afresh
    assert localhttp.exchange("127.0.0.1", port, "GET", "/probe", headers=headers) == (200, b"answer 2")


def test_an_early_request_counts_only_for_the_same_request(server):
    port = server.server_address[1]
    localhttp.send_early("127.0.0.1", port, "/probe")
    localhttp.exchange("127.0.0.1", port, "GET", "/other")  # another path
    localhttp.exchange("127.0.0.1", port, "GET", "/probe", headers={"Authorization": "x"})  # other headers
    localhttp.exchange("127.0.0.1", port, "POST", "/probe", body=b"{}")  # never for a POST
    wait_for(lambda: len(server.seen) == 4, what="the early request and three of their own", timeout=5)
    assert localhttp.exchange("127.0.0.1", port, "GET", "/probe")[0] == 200  # the early answer, kept for it
    assert len(server.seen) == 4


def test_a_stale_early_answer_is_not_used(server, monkeypatch):
    port = server.server_address[1]
    localhttp.send_early("127.0.0.1", port, "/probe")
    monkeypatch.setattr(localhttp, "EARLY_FOR", 0.0)  # "half a second later"
    assert localhttp.exchange("127.0.0.1", port, "GET", "/probe")[0] == 200
    wait_for(lambda: len(server.seen) == 2, what="a second request: the stale answer was not used", timeout=5)


def test_nothing_listening_is_not_an_error_until_asked():
    port = free_port()
    assert localhttp.send_early("127.0.0.1", port, "/probe") is False
    with pytest.raises(ConnectionRefusedError):
        localhttp.exchange("127.0.0.1", port, "GET", "/probe")


def _raw_server(answer):
    """A one-connection server that reads the request, then runs `answer(conn)`."""
    import socket

    srv = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def run():
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            try:
                answer(conn, done)
            except OSError:
                pass

    threading.Thread(target=run, daemon=True).start()
    return srv, done


def test_a_trickling_answer_is_bounded_as_a_whole():
    def trickle(conn, done):
        conn.sendall(b"HTTP/1.0 200 OK\r\n")
        while not done.wait(0.05):  # a byte at a time, forever: each read alone would succeed
            conn.sendall(b"x")

    srv, done = _raw_server(trickle)
    try:
        with pytest.raises(TimeoutError):
            localhttp.exchange("127.0.0.1", srv.getsockname()[1], "GET", "/", timeout=0.5)
    finally:
        done.set()
        srv.close()


def test_an_answer_over_the_limit_is_too_large_not_cut_short():
    def flood(conn, done):
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b"[" * (300 * 1024))

    srv, done = _raw_server(flood)
    try:
        with pytest.raises(localhttp.TooLarge, match="answer too large"):
            localhttp.exchange("127.0.0.1", srv.getsockname()[1], "GET", "/", timeout=5, limit=100 * 1024)
    finally:
        done.set()
        srv.close()

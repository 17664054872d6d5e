"""tasks.gateway.connlimits through the gateway's own uvicorn settings (litellm_server.server_config), on a
real socket: connections that send nothing or too slowly are closed, and a keyed request is still
answered however many came first (issue 31, item 7)."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from tasks.gateway import connlimits
from tasks.gateway import litellm_server
from tests.support import free_port, wait_for

DEADLINE = 30  # seconds: a socket read that never ends fails the test instead of hanging it
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"  # a request's head, never finished


class App:
    """The gateway's stand-in: reads the body, answers 200; counts the clients it saw leave."""

    def __init__(self):
        self.left = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.left += 1
                return
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server(monkeypatch):
    """A gateway server with the limits given as the environment would: yields (start(env) -> port, app)."""
    import uvicorn

    started = []

    def start(env: dict):
        app, port = App(), free_port()
        config = litellm_server.server_config(app, grace=1, environ=env)
        config.host, config.port, config.log_level = "127.0.0.1", port, "warning"
        srv = uvicorn.Server(config)
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        started.append((srv, thread))
        wait_for(lambda: srv.started, timeout=DEADLINE, interval=0.02, what="the server")
        return port, app, srv

    yield start
    for srv, thread in started:
        srv.should_exit = True
        thread.join(DEADLINE)


def connect(port: int, data: bytes = HEAD) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    sock.sendall(data)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection (an end of file, or a reset), waiting up to DEADLINE."""
    try:
        while chunk := sock.recv(4096):
            if chunk.startswith(b"HTTP/1.1 200"):
                return False
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def keyed_request(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(HEAD + b"Content-Length: 2\r\nAuthorization: Bearer k\r\n\r\n{}")
        return sock.recv(4096)


def test_connections_beyond_the_cap_close_the_oldest_idle_ones_and_a_keyed_request_is_answered(server):
    port, app, srv = server({connlimits.ENV["max_connections"]: "8", connlimits.ENV["head_timeout"]: "600"})
    slow = [connect(port) for _ in range(20)]
    wait_for(lambda: len(srv.server_state.connections) <= 8, timeout=DEADLINE, interval=0.02, what="the cap")
    assert keyed_request(port).startswith(b"HTTP/1.1 200")
    dropped = sum(closed_by_server(s) for s in slow[:12])  # the oldest went first
    assert dropped == 12
    for s in slow:
        s.close()


def test_a_head_that_never_ends_is_closed_at_its_deadline(server):
    port, app, srv = server({connlimits.ENV["head_timeout"]: "0.5"})
    with connect(port) as sock, connect(port, b"") as silent:
        assert closed_by_server(sock) and closed_by_server(silent)
    assert keyed_request(port).startswith(b"HTTP/1.1 200")


def test_a_body_that_goes_silent_is_closed_and_the_app_sees_the_client_leave(server):
    port, app, srv = server({connlimits.ENV["body_silence"]: "0.5"})
    with connect(port, HEAD + b"Content-Length: 100\r\n\r\n{\"model\":") as sock:
        assert closed_by_server(sock)
    wait_for(lambda: app.left == 1, timeout=DEADLINE, interval=0.02, what="the app to see the client leave")


def test_the_default_cap_leaves_room_below_the_file_limit():
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limits = connlimits.limits({})
    assert limits["max_connections"] * 2 + connlimits.RESERVE <= max(soft, 16 * 2 + connlimits.RESERVE)
    assert connlimits.limits({"FLOWGATE_MAX_CONNECTIONS": "x"})["max_connections"] == limits["max_connections"]

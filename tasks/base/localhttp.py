"""One HTTP exchange with a service FlowGate runs on this machine, over a raw socket.

Why not http.client or httpx: importing them costs ~10 ms (email.*) or ~100 ms, paid by every
`doit status` and `doit up` that probes or asks the management API. Our own services answer plain
HTTP/1.0 (no chunked bodies, connection closed after the answer), which takes a few lines.

Early requests: a command that will ask a service something (the probes of `doit up` and
`doit status`) may send the GET as soon as it starts (`send_early`); the matching `exchange` later
in the same process collects that answer instead of asking again. The service's answer (a few ms,
more when its CPU was idle) then overlaps with doit loading its tasks instead of adding to it.
"""

from __future__ import annotations

import socket
import time

__all__ = ["EARLY_FOR", "MAX_ANSWER", "NoAnswer", "TooLarge", "exchange", "send_early"]

USER_AGENT = "flowgate"
MAX_ANSWER = 16 * 1024 * 1024
EARLY_FOR = 0.5  # seconds an early request's answer stands in for a request made now

# (host, port, method, path, headers) -> (socket with the request sent, when it was sent)
_EARLY: dict[tuple, tuple[socket.socket, float]] = {}


class NoAnswer(OSError):
    """The service did not answer (refused, timed out, closed early, or not HTTP)."""


class TooLarge(NoAnswer):
    """The answer went on past the size limit: refused, never parsed cut short."""

    def __init__(self, limit: int):
        super().__init__(f"answer too large (over {limit // (1024 * 1024) or limit} {'MiB' if limit >= 1024 * 1024 else 'bytes'})")
        self.limit = limit


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    # An ASCII host as bytes: a str would make getaddrinfo load the idna codec (~1 ms of imports).
    bare = _bare(host)
    return socket.create_connection((bare.encode() if bare.isascii() else bare, port), timeout=timeout)


def _request(host: str, port: int, method: str, path: str, headers: dict | None, body: bytes | None) -> bytes:
    bare = _bare(host)
    authority = f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"
    lines = [f"{method} {path} HTTP/1.0", f"Host: {authority}", f"User-Agent: {USER_AGENT}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def _key(host: str, port: int, method: str, path: str, headers: dict | None) -> tuple:
    return _bare(host), int(port), method, path, tuple(sorted((headers or {}).items()))


def send_early(host: str, port: int, path: str, *, headers: dict | None = None, timeout: float = 0.2) -> bool:
    """Send `GET path` now; the next matching `exchange` within EARLY_FOR s reads its answer.

    Only GETs (asking twice must be harmless). Never raises: False when it could not be sent (the
    later exchange then asks afresh and reports the failure itself)."""
    try:
        sock = _connect(host, port, timeout)
    except OSError:
        return False
    try:
        sock.sendall(_request(host, port, "GET", path, headers, None))
    except OSError:
        sock.close()
        return False
    old = _EARLY.pop(_key(host, port, "GET", path, headers), None)
    if old:
        old[0].close()
    _EARLY[_key(host, port, "GET", path, headers)] = (sock, time.monotonic())
    return True


def _early(host: str, port: int, method: str, path: str, headers: dict | None) -> socket.socket | None:
    """The early request matching this one, if it is recent enough to count as asked now."""
    if method != "GET" or not _EARLY:
        return None
    found = _EARLY.pop(_key(host, port, method, path, headers), None)
    if found is None:
        return None
    sock, sent = found
    if time.monotonic() - sent > EARLY_FOR:
        sock.close()
        return None
    return sock


def exchange(host: str, port: int, method: str, path: str, *, headers: dict | None = None,
             body: bytes | None = None, timeout: float = 1.0, status_only: bool = False,
             limit: int = MAX_ANSWER) -> tuple[int, bytes]:
    """(status, body) of one request; `status_only` stops reading after the status line.

    `timeout` bounds the whole exchange, not each read: a peer sending a byte a second cannot keep
    it alive. An answer over `limit` bytes is TooLarge. Raises ConnectionRefusedError, TimeoutError,
    NoAnswer or TooLarge.
    """
    deadline = time.monotonic() + timeout
    sock = _early(host, port, method, path, headers) if body is None else None
    if sock is not None:
        sock.settimeout(timeout)
    else:
        sock = _connect(host, port, timeout)
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(_request(host, port, method, path, headers, body))
        except BaseException:
            sock.close()
            raise
    chunks, size = [], 0
    with sock:
        while True:
            if status_only and b"\r\n" in b"".join(chunks):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete answer within {timeout:g} s")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit + 65536:  # headers' allowance beyond the body's limit
                raise TooLarge(limit)
            chunks.append(chunk)
    buf = b"".join(chunks)
    head, _, payload = buf.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise NoAnswer("bad HTTP answer" if buf else "connection closed without an answer")
    return int(parts[1]), payload

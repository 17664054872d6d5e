"""One HTTP exchange with a service FlowGate runs on this machine, over a raw socket.

Why not http.client or httpx: importing them costs ~10 ms (email.*) or ~100 ms, paid by every
`doit status` and `doit up` that probes or asks the management API. Our own services answer plain
HTTP/1.0 (no chunked bodies, connection closed after the answer), which takes a few lines.
"""

from __future__ import annotations

import socket

USER_AGENT = "flowgate"
MAX_ANSWER = 16 * 1024 * 1024


class NoAnswer(OSError):
    """The service did not answer (refused, timed out, closed early, or not HTTP)."""


def exchange(host: str, port: int, method: str, path: str, *, headers: dict | None = None,
             body: bytes | None = None, timeout: float = 1.0, status_only: bool = False) -> tuple[int, bytes]:
    """(status, body) of one request; `status_only` stops reading after the status line.

    Raises ConnectionRefusedError, TimeoutError, or NoAnswer.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    authority = f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"
    lines = [f"{method} {path} HTTP/1.0", f"Host: {authority}", f"User-Agent: {USER_AGENT}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    buf = b""
    with socket.create_connection((bare, port), timeout=timeout) as sock:
        sock.sendall(request)
        while len(buf) < MAX_ANSWER:
            if status_only and b"\r\n" in buf:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, payload = buf.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise NoAnswer("bad HTTP answer" if buf else "connection closed without an answer")
    return int(parts[1]), payload

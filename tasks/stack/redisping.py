"""PING a Redis server, AUTH first: its readiness probe (a raw socket and RESP, no client library)."""

from __future__ import annotations

import socket


def _command(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def ping(host: str, port: int, password: str | None, timeout: float = 1.0) -> str:
    """The server's answer to PING (after AUTH when a password is given): "PONG" when ready, else
    the error line or why there was no answer. Never raises."""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout) as sock:
            sock.sendall((_command("AUTH", password) if password else b"") + _command("PING"))
            reader = sock.makefile("rb")
            lines = [reader.readline().rstrip(b"\r\n").decode(errors="replace") for _ in range(2 if password else 1)]
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    for line in lines:
        if not line.startswith("+"):
            return line.lstrip("-") or "no answer"
    return lines[-1][1:]

"""PING a Redis server, AUTH first: its readiness probe (a raw socket and RESP, no client library)."""

from __future__ import annotations

import socket
import time


def _command(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def ping(host: str, port: int, password: str | None, timeout: float = 1.0) -> str:
    """The server's answer to PING (after AUTH when a password is given): "PONG" when ready, else
    the error line or why there was no answer. Never raises."""
    deadline, want, buf = time.monotonic() + timeout, 2 if password else 1, b""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout) as sock:
            sock.sendall((_command("AUTH", password) if password else b"") + _command("PING"))
            # bounded as a whole, in time and size: a peer trickling bytes or sending a flood gets nowhere
            while buf.count(b"\r\n") < want and len(buf) < 4096:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                if time.monotonic() >= deadline:
                    return "no answer in time"
                chunk = sock.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    lines = [line.decode(errors="replace") for line in buf.split(b"\r\n")[:want]]
    lines += [""] * (want - len(lines))
    for line in lines:
        if not line.startswith("+"):
            return line.lstrip("-") or "no answer"
    return lines[-1][1:]

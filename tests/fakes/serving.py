"""What the fakes served over HTTP on 127.0.0.1 share: starting and closing their servers (one
thread each), `with` blocks, and counting requests per path."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class ServedFake:
    """A fake made of stdlib HTTP servers, built by a subclass's `_make_servers`; its handlers call
    `arrive` first. `stall`: hold every request until the fake closes (for timeout tests)."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.stall = False
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []

    def _make_servers(self) -> list[ThreadingHTTPServer]:
        raise NotImplementedError

    def arrive(self, handler: BaseHTTPRequestHandler) -> str | None:
        """Count the request by its path; hold it while `stall` is set. Its path, or None when it was held."""
        path = urlsplit(handler.path).path
        with self._lock:
            self.requests[path] += 1
        if self.stall:
            self._closing.wait(30)
            handler.close_connection = True
            return None
        return path

    def start(self):
        self._servers = self._make_servers()
        for srv in self._servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def close(self) -> None:
        self._closing.set()
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for t in self._threads:
            t.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

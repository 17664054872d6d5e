"""The usage recorder: an ASGI wrapper around LiteLLM's app, composed in tasks/gateway/litellm_server.py.

On the request path it only takes times and keeps references to the body chunks that pass by (a
bounded head and tail of each body: no copy, no JSON parsing, no I/O); when the response has ended
(or broke off: a response whose body never ended is recorded as an error) it appends one tuple to a bounded queue. A background thread takes the queue in batches, finds the
model and tokens in the bodies (tasks.gateway.usage.extract) and writes one transaction per batch
(tasks.gateway.usage.store). A queue that is full drops the record (counted, one log line); a database
that is locked, full or corrupt leaves serving alone: one log line, the health file for `doit
doctor`, and another try after RETRY_S.
"""

from __future__ import annotations

import collections
import os
import threading
import time

from ...base.paths import Paths
from ..keys import MEMBER_SCOPE
from ..keys.shared import tokens_used
from .rollup import CUT_OFF, UNPARSED  # the errors it writes, which the sums read

KEEP = 32 * 1024  # bytes kept of each body's head, and of a response's tail (a usage chunk is < 1 KiB)
QUEUE_MAX = 2000  # records waiting for the writer (at most ~130 MB of body references); beyond, dropped
BATCH_MAX = 500
BATCH_WAIT = 0.5  # seconds the writer collects a batch before writing it
RETRY_S = 30.0  # after a failure, the writer tries the database again this much later
PRUNE_EVERY = 3600.0
SKIP = ("/health", "/flowgate/", "/favicon.ico")  # probes and the dashboard are not gateway traffic


class Body:
    """A bounded view of a body as it streams: the first KEEP bytes and (responses) the last KEEP."""

    __slots__ = ("head", "head_len", "tail", "tail_len", "size", "keep_tail")

    def __init__(self, keep_tail: bool):
        self.head, self.head_len, self.tail, self.tail_len, self.size = [], 0, [], 0, 0
        self.keep_tail = keep_tail

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.head_len < KEEP:
            self.head.append(chunk)
            self.head_len += len(chunk)
            return
        if self.keep_tail:
            self.tail.append(chunk)
            self.tail_len += len(chunk)
            while self.tail_len - len(self.tail[0]) >= KEEP:
                self.tail_len -= len(self.tail.pop(0))

    def parts(self) -> tuple[bytes, bytes, bool]:
        """(head, tail, complete) — in the writer thread."""
        head, tail = b"".join(self.head), b"".join(self.tail)
        return head, tail, len(head) + len(tail) == self.size


class Writer(threading.Thread):
    """The background thread: queue -> parsed rows -> SQLite, in batches."""

    def __init__(self, paths: Paths, retention_days: int, log=print):
        super().__init__(name="flowgate-usage", daemon=True)
        self.paths, self.retention_days, self.log = paths, retention_days, log
        self.pending: collections.deque = collections.deque()  # append/popleft are atomic: no lock on the request path
        self.wake = threading.Event()
        self.lock = threading.Lock()  # the thread and the exit-time flush never write at once
        self.dropped = 0
        self.db = None
        self.failing: str | None = None  # the failure last logged; logged again only when it changes
        self.next_try = 0.0
        self.next_prune = 0.0
        self.written = 0

    def put(self, record: tuple) -> None:
        """On the request path: one append, and a wake-up only when the writer sleeps."""
        if len(self.pending) >= QUEUE_MAX:
            self.dropped += 1
            if self.dropped == 1:
                self.log("flowgate usage: the recorder's queue is full: requests are not recorded until it drains")
            return
        self.pending.append(record)
        if not self.wake.is_set():
            self.wake.set()

    def run(self) -> None:
        while True:
            self.wake.wait()
            time.sleep(BATCH_WAIT)  # let a batch gather: no thread switch per request
            self.wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write what is pending. Also at the app's shutdown (after uvicorn drained the requests): a
        stopped or swapped-out instance keeps its last requests."""
        with self.lock:
            while self.pending:
                batch = [self.pending.popleft() for _ in range(min(BATCH_MAX, len(self.pending)))]
                rows = [row for row in (self._row(r) for r in batch) if row is not None]
                tokens_used(rows)  # members' tokens to the replicas' shared counts, if any (before the disk)
                self.write(rows)

    def write(self, rows: list[dict]) -> None:
        import sqlite3

        from . import store

        if time.monotonic() < self.next_try:
            self.dropped += len(rows)
            return
        try:
            if self.db is None:
                self.db = store.connect(self.paths.usage_db)
            if rows:
                store.insert(self.db, rows)
                self.written += len(rows)
            if time.monotonic() >= self.next_prune:
                store.prune(self.db, self.retention_days)
                self.next_prune = time.monotonic() + PRUNE_EVERY
        except (sqlite3.Error, OSError) as exc:
            self._failed(f"{type(exc).__name__}: {exc}", len(rows))
            return
        if self.failing is not None or self.written == len(rows):
            store.write_health(self.paths, True, "recording")
            if self.failing is not None:
                self.log("flowgate usage: recording works again")
            self.failing = None

    def _failed(self, why: str, lost: int) -> None:
        from . import store

        self.dropped += lost
        self.next_try = time.monotonic() + RETRY_S
        if self.db is not None:
            try:
                self.db.close()
            except Exception:  # noqa: BLE001  (a broken connection is dropped whatever it says)
                pass
            self.db = None
        if why != self.failing:
            self.log(f"flowgate usage: requests are not recorded ({why}); serving goes on; "
                     f"retrying every {RETRY_S:g} s; see `uv run doit doctor`")
            store.write_health(self.paths, False, f"{why} ({self.paths.usage_db})")
        self.failing = why

    @staticmethod
    def _row(record: tuple) -> dict | None:
        from . import extract

        try:
            ts, route, method, status, latency, ttfb, request, response, event_stream, ended, member = record
            head, _, complete = request.parts()
            model, streamed = extract.request_model(head, complete)
            r_head, r_tail, r_complete = response.parts()
            fields = extract.response_fields(r_head, r_tail, r_complete, event_stream)
            if status >= 400 or status == 0:
                fields["error"] = extract.error_message(r_head) or f"HTTP {status}"
            elif not ended:  # the answer began, then broke off (an upstream that cut its stream)
                fields["error"] = CUT_OFF
        except Exception as exc:  # noqa: BLE001  (a body nobody foresaw must not stop the writer)
            return {"ts": record[0], "route": str(record[1])[:200], "status": record[3], "error": f"{UNPARSED}{exc}"[:300],
                    "member": record[-1]}
        return {"ts": ts, "route": route[:200], "method": method, "model": model, "status": status,
                "latency_ms": round(latency * 1000, 2), "ttfb_ms": round(ttfb * 1000, 2) if ttfb is not None else None,
                "stream": int(event_stream or streamed), "account": None, "member": member, **fields}


def _content_type(headers) -> bytes:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value
    return b""


def record_usage(app, paths: Paths | None = None):
    """`app` with every HTTP request recorded (see the module's docstring). FLOWGATE_USAGE=off disables it."""
    if os.environ.get("FLOWGATE_USAGE", "").lower() in ("off", "0", "false"):
        return app
    paths = paths or Paths.from_env()
    writer = Writer(paths, _retention(paths))
    writer.start()
    perf = time.perf_counter

    async def recorded(scope, receive, send):
        if scope["type"] == "lifespan":
            return await app(scope, receive, _flushing(send, writer))
        if scope["type"] != "http" or scope["path"].startswith(SKIP):
            return await app(scope, receive, send)
        started, t0 = time.time(), perf()
        request, response = Body(False), Body(True)
        seen = {"status": 0, "ttfb": None, "sse": False, "ended": False}

        async def receive_kept():
            message = await receive()
            if message["type"] == "http.request":
                request.add(message.get("body", b""))
            return message

        async def send_kept(message):
            kind = message["type"]
            if kind == "http.response.start":
                seen["status"] = message["status"]
                seen["sse"] = _content_type(message.get("headers", ())).startswith(b"text/event-stream")
            elif kind == "http.response.body":
                body = message.get("body", b"")
                if body and seen["ttfb"] is None and seen["sse"]:
                    seen["ttfb"] = perf() - t0
                response.add(body)
                if not message.get("more_body", False):
                    seen["ended"] = True
            await send(message)

        try:
            await app(scope, receive_kept, send_kept)
        finally:
            writer.put((started, scope["path"], scope.get("method", ""), seen["status"], perf() - t0, seen["ttfb"],
                        request, response, seen["sse"], seen["ended"], scope.get(MEMBER_SCOPE)))

    recorded.writer = writer  # for tests and the bench
    return recorded


def _flushing(send, writer: Writer):
    """The lifespan's `send`: on shutdown complete, the pending records are written first."""

    async def send_flushed(message):
        if message["type"] == "lifespan.shutdown.complete":
            writer.flush()
        await send(message)

    return send_flushed


def _retention(paths: Paths) -> int:
    """usage.retention_days as the launch handed it over (tasks.services.litellm sets it); the
    config's default where it did not (an app wrapped by hand, a test)."""
    from ..handoff import RETENTION_DEFAULT, RETENTION_ENV

    value = os.environ.get(RETENTION_ENV, "")
    return int(value) if value.isdigit() and int(value) >= 1 else RETENTION_DEFAULT

"""The gateway's view of member keys kept in PostgreSQL (tasks.gateway.keys.pgstore): the same
`find` as the SQLite book (tasks.gateway.keys.book), with the network kept off the request path.

A thread of this process asks the store every REFRESH_S whether it changed (its version row) and
reads the rows when it did; a lookup reads the last copy. A key the copy does not know wakes the
thread and waits up to ASK_WAIT_S for a read that began after it (a key made a moment ago works on
its first request; an unreachable store is never waited for: its reads fail fast and the book says so).
When the store cannot be read the copy stands for STALE_S (a server restart is not an outage), then
member keys are refused with the reason (503, fail closed) until a read succeeds: a revocation
is never missed for longer than STALE_S + REFRESH_S. The master key is never looked up here.
"""

from __future__ import annotations

import threading
import time

from . import pgstore, store
from .book import Unavailable

REFRESH_S = 0.25
STALE_S = 1.0
ASK_WAIT_S = 0.25
FIRST_WAIT_S = 3.0  # the process's first lookup waits for the first read (its connect's deadline included)


class PgKeyBook:
    def __init__(self, environ=None, clock=time.monotonic, start_thread: bool = True):
        self.environ, self.clock, self.start_thread = environ, clock, start_thread
        self.members: dict[str, store.Member] = {}
        self.broken: str | None = None
        self.db = None
        self.version = None
        self.read_at: float | None = None  # when the last read that succeeded began
        self.next_check = 0.0
        self.started = self.done = 0  # reads begun and finished: a lookup waits for one begun after it
        self.cond = threading.Condition()
        self.wake = threading.Event()
        self.thread = None

    def find(self, key: str) -> store.Member | None:
        """The member `key` belongs to, or None; Unavailable when the store has been unreadable too long."""
        hashed = store.digest(key)
        if not self.start_thread:  # in-line reads: doctor and tests
            if self.clock() >= self.next_check or hashed not in self.members:
                self.refresh()
        else:
            self._ensure_running()
            if self.read_at is None:
                self._wait(FIRST_WAIT_S)
            elif hashed not in self.members and self.broken is None:
                self._wait(ASK_WAIT_S)
        if self.read_at is None or self.clock() - self.read_at > STALE_S:
            raise Unavailable(self.broken or f"{pgstore.described(self.environ)} was not read yet: member keys are refused "
                                             "for now; see `uv run doit doctor`")
        return self.members.get(hashed)

    def _wait(self, seconds: float) -> None:
        with self.cond:
            target = self.started + 1
            self.wake.set()
            self.cond.wait_for(lambda: self.done >= target, timeout=seconds)

    def refresh(self) -> None:
        """One read (the thread's loop; doctor and tests call it directly)."""
        began = self.clock()
        self.next_check = began + REFRESH_S
        try:
            if self.db is None:
                self.db = pgstore.connect(self.environ)
            version = pgstore.version(self.db)
            if version is None:  # no key made yet
                self.members = {}
            elif version != self.version:
                self.members = store.read_all(self.db, pgstore.TABLE)
            self.version, self.read_at, self.broken = version, began, None
        except Exception as exc:  # noqa: BLE001  (psycopg's errors and ours: the store is unreadable, said once per state)
            self._close()
            reason = str(exc) if isinstance(exc, pgstore.Unreachable) else pgstore._reason(exc)
            self.broken = (f"{pgstore.described(self.environ)} cannot be read ({reason}): member keys are refused; "
                           "see `uv run doit doctor`")

    def _ensure_running(self) -> None:
        if self.thread is None:
            with self.cond:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, daemon=True, name="flowgate-keys")
                    self.thread.start()

    def _loop(self) -> None:
        while True:
            self.wake.clear()  # a lookup that asks from here on gets this read or the next
            with self.cond:
                self.started += 1
            self.refresh()
            with self.cond:
                self.done += 1
                self.cond.notify_all()
            self.wake.wait(REFRESH_S)

    def _close(self) -> None:
        if self.db is not None:
            try:
                self.db.close()
            except Exception:  # noqa: BLE001
                pass
        self.db, self.version = None, None

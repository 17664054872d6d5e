"""The gateway's view of member keys kept in PostgreSQL (tasks.gateway.keys.pgstore): the same
`find` as the SQLite book (tasks.gateway.keys.book), with the network kept off the request path.

A thread of this process asks the store every REFRESH_S whether it changed (its version row) and
reads the rows when it did; a lookup (`find`) reads the last copy and never waits. Before it, the
gate asks `needs_read`: for a key the copy does not know it awaits `wait_fresh` in a worker thread
(off the event loop: other requests go on), which wakes the reader and waits up to ASK_WAIT_S for a
read begun after it (a key made a moment ago works on its first request; a store whose last read
failed is not waited for).
When the store cannot be read the copy stands for STALE_S (a server restart is not an outage), then
member keys are refused with the reason (503, fail closed) until a read succeeds: a revocation
is never missed for longer than STALE_S + REFRESH_S. The master key is never looked up here.
"""

from __future__ import annotations

import os
import threading
import time

from . import pgstore, store
from .book import Unavailable

REFRESH_S = 0.25
STALE_S = 1.0
ASK_WAIT_S = 0.25
FIRST_WAIT_S = 2.5  # the process's first lookups wait for the first read (its connect's deadline, almost)


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
        self.thread, self.pid = None, None

    def needs_read(self, keys) -> bool:
        """Whether a lookup of `keys` should first await `wait_fresh` (the gate asks, on the event loop: µs)."""
        if not self.start_thread:
            return False
        self._ensure_running()
        if self.read_at is None:
            return self.broken is None
        return self.broken is None and not any(store.digest(k) in self.members for k in keys if k)

    def wait_fresh(self) -> None:
        """Block (in a worker thread) until a read begun now has ended, at most ASK_WAIT_S (FIRST_WAIT_S before the first)."""
        self._wait(FIRST_WAIT_S if self.read_at is None else ASK_WAIT_S)

    def find(self, key: str) -> store.Member | None:
        """The member `key` belongs to, or None; Unavailable when the store has been unreadable too long."""
        hashed = store.digest(key)
        if not self.start_thread:  # in-line reads: doctor and tests
            if self.clock() >= self.next_check or hashed not in self.members:
                self.refresh()
        else:
            self._ensure_running()
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
        except Exception as exc:  # noqa: BLE001  (psycopg's errors and ours: the store is unreadable; the copy stands STALE_S)
            self._close()
            reason = str(exc) if isinstance(exc, pgstore.Unreachable) else pgstore._reason(exc)
            self.broken = (f"{pgstore.described(self.environ)} cannot be read ({reason}): member keys are refused; "
                           "see `uv run doit doctor`")

    def _ensure_running(self) -> None:
        if self.pid != os.getpid():  # first use, or a forked child: threads do not cross a fork
            with self.cond:
                if self.pid != os.getpid():
                    self.db, self.version = None, None  # the parent's connection is not ours to use
                    self.thread = threading.Thread(target=self._loop, daemon=True, name="flowgate-keys")
                    self.thread.start()
                    self.pid = os.getpid()

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

"""The gateway's read-only view of the member keys: a lookup by hash in an in-process copy.

On the request path a lookup is a SHA-256 and a dict access. At most every REFRESH_S the book asks
the database whether it changed (`PRAGMA data_version`, and the file's identity: a database moved
aside and made again is opened again) and reads it whole when it did: a revocation reaches every
replica within REFRESH_S plus one read; a key the copy does not know makes the book ask at once (a
key just made works on its first request). A database that cannot be read (a link, corrupt, locked past
READER_BUSY_MS) empties the book and says why: member keys are refused with that reason until it
reads again (fail closed); the master key is never looked up here.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path

from . import store

REFRESH_S = 0.25


class Unavailable(Exception):
    """The key database cannot be read: member keys are refused (the message says why)."""


class KeyBook:
    def __init__(self, path: Path, clock=time.monotonic):
        self.path, self.clock = Path(path), clock
        self.members: dict[str, store.Member] = {}
        self.broken: str | None = None
        self.db: sqlite3.Connection | None = None
        self.ident = self.version = None
        self.next_check = 0.0

    def find(self, key: str) -> store.Member | None:
        """The member `key` belongs to (revoked or expired included: the caller says which), or None.
        Raises Unavailable when the database cannot be read."""
        hashed, refreshed = store.digest(key), self.clock() >= self.next_check
        if refreshed:
            self.refresh()
        found = self.members.get(hashed) if self.broken is None else None
        if found is None and not refreshed:  # a key made a moment ago: ask the database now (a few µs)
            self.refresh()
            found = self.members.get(hashed)
        if self.broken is not None:
            raise Unavailable(self.broken)
        return found

    def refresh(self) -> None:
        self.next_check = self.clock() + store.READER_BUSY_MS / 1000 + REFRESH_S
        try:
            self._refresh()
            self.broken = None
        except (sqlite3.Error, OSError, store.LinkedDatabase) as exc:
            self._close()
            self.members = {}
            self.broken = f"the key database {self.path} cannot be read ({exc}): member keys are refused; see `uv run doit doctor`"

    def _refresh(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:  # no key made yet: every member key is unknown
            self._close()
            self.members = {}
            return
        store.refuse_link(self.path)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{self.path} is not a regular file")
        ident = (info.st_dev, info.st_ino)
        if self.db is None or ident != self.ident:
            self._close()
            self.db, self.ident = store.connect(self.path, readonly=True), ident
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self.version:  # a database still being made (no schema yet) holds no key
            made = self.db.execute("PRAGMA user_version").fetchone()[0]
            self.members = store.read_all(self.db) if made else {}
            self.version = version

    def _close(self) -> None:
        if self.db is not None:
            try:
                self.db.close()
            except sqlite3.Error:
                pass
        self.db = self.ident = self.version = None

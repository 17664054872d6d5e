"""The SQLite files FlowGate keeps under `.router/` (usage history, member keys): private (0600)
from the first byte, WAL so readers never wait for the writer, and never opened through a symbolic
link (the database, its WAL or its shared-memory file): a link planted there never gets our tables."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class LinkedDatabase(sqlite3.Error):
    """The database (or its WAL or shared-memory file) is a symbolic link: never opened through it."""


def refuse_link(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if candidate.is_symlink():
            raise LinkedDatabase(f"{candidate} is a symbolic link (to {os.readlink(candidate)}); FlowGate never "
                                 "reads or writes a database through a link: remove it")


def open_writer(path: Path, busy_ms: int, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A writer in WAL mode, autocommit (callers open their transactions). `synchronous`: NORMAL
    loses at most the last transaction in a crash, never the file; FULL loses nothing that returned."""
    refuse_link(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:  # made by hand, or by an older tool: private again
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    db = sqlite3.connect(str(path), timeout=busy_ms / 1000, check_same_thread=False, isolation_level=None)
    db.execute(f"PRAGMA synchronous={synchronous}")
    # needs a write lock: only when not done yet (replicas starting together would wait on each other)
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA busy_timeout={busy_ms}")
    return db


def open_reader(path: Path, busy_ms: int) -> sqlite3.Connection:
    """A read-only connection to an existing database."""
    refuse_link(path)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_ms / 1000, check_same_thread=False,
                         isolation_level=None)
    db.execute(f"PRAGMA busy_timeout={busy_ms}")
    return db

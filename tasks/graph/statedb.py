"""doit's state db (.router/doit.sqlite3): a corrupt one is moved aside, never fatal.

doit opens it for every command and exits with its traceback when sqlite says it is not a database
or malformed, which would lock the user out of `status` and `down` while the services run on. The db
only caches up-to-date decisions; without it every task checks its inputs afresh (and FlowGate's
own checks decide what really restarts). A check costs ~0.5 ms, so it runs only when the file
changed since the last one that passed (its inode, size and mtime are kept beside it).

Unchanged rows are not rewritten (`write_only_changes`): doit saves the row of every task it ran,
and `preflight`, `ready` and `up` run on every `doit up`, so a no-op `up` committed three identical
rows, a journalled write with its fsyncs (~4 ms, a twentieth of the whole command).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# sqlite's words for a damaged file (a busy or locked db is fine: doit waits for it)
_CORRUPT = ("not a database", "malformed", "corrupt", "file is encrypted")


def problem(db: Path) -> str | None:
    """Why `db` is unusable, or None when it is fine (or does not exist yet)."""
    import sqlite3

    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        return text if any(word in text for word in _CORRUPT) else None
    verdict = rows[0][0] if rows and rows[0] else "no answer"
    return None if verdict == "ok" else f"integrity check: {verdict}"


def _identity(db: Path) -> str | None:
    try:
        st = os.stat(db)
    except OSError:
        return None
    return f"{st.st_ino} {st.st_size} {st.st_mtime_ns}"


def ensure_usable(db: Path) -> Path | None:
    """Move a corrupt db (and its journal) aside and say so on stderr; where it went, or None."""
    seen = Path(f"{db}.checked")
    identity = _identity(db)
    if identity is None:
        return None
    try:
        if seen.read_text(encoding="utf-8") == identity:
            return None  # checked in exactly this state
    except (OSError, UnicodeDecodeError):
        pass
    why = problem(db)
    if why is None:
        try:
            seen.write_text(identity, encoding="utf-8")
        except OSError:
            pass  # only costs a check next time
        return None
    aside = db.with_name(f"{db.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    try:
        os.replace(db, aside)
    except FileNotFoundError:
        return None  # a concurrent command moved it first
    for suffix in ("-journal", "-wal", "-shm"):
        try:
            os.replace(f"{db}{suffix}", f"{aside}{suffix}")
        except FileNotFoundError:
            pass
    sys.stderr.write(f"warning: doit's state db {db} was unreadable ({why}); moved it to {aside.name} and "
                     "started a fresh one: every task re-checks its inputs this time\n")
    return aside


_REPORTED: list = []  # a failed write is reported once; doit saves again on its way out


def guard_writes(db: Path) -> None:
    """A full disk (or a read-only one) while doit writes its db: one error line and exit 1, not
    sqlite's traceback. The db only caches up-to-date decisions; the next run re-checks."""
    from doit.dependency import SqliteDB

    if getattr(SqliteDB.remove, "flowgate", False):
        return
    for name in ("__init__", "dump", "remove", "remove_all"):
        setattr(SqliteDB, name, _guarded(getattr(SqliteDB, name), db))


def _guarded(method, db: Path):
    def run(self, *args, **kwargs):
        import sqlite3

        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if _REPORTED:
                return None
            _REPORTED.append(exc)
            full = "full" in str(exc)
            sys.stderr.write(f"error: {'disk full while writing' if full else 'cannot write'} doit's state db {db} "
                             f"({exc})\n  hint: {'free some space' if full else 'check that directory'} and run "
                             "the command again\n")
            sys.stderr.flush()
            raise SystemExit(1) from None

    run.flowgate = True
    return run


def write_only_changes() -> None:
    """Make doit's sqlite3 backend skip the rows whose content did not change when it saves.

    doit's `SqliteDB.dump` writes every task it marked dirty, changed or not. Dropping the unchanged
    ones first writes the same db, and a commit with nothing written touches no file."""
    from doit.dependency import SqliteDB

    if getattr(SqliteDB.dump, "flowgate", False):
        return
    dump = SqliteDB.dump

    def dump_changes(self):
        for task_id in list(self._dirty):
            if self.codec.encode(self._get_task_data(task_id)) == self.codec.encode(self._cache[task_id]):
                self._dirty.discard(task_id)
        dump(self)

    dump_changes.flowgate = True
    SqliteDB.dump = dump_changes

"""doit's state db (.router/doit.sqlite3): a corrupt one is moved aside, never fatal.

doit opens it for every command and exits with its traceback when sqlite says it is not a database
or malformed, which would lock the user out of `status` and `down` while the services run on. The db
only caches up-to-date decisions; without it every task checks its inputs afresh (and FlowGate's
own checks decide what really restarts). A check costs ~0.3 ms: doit imports sqlite3 anyway.
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


def ensure_usable(db: Path) -> Path | None:
    """Move a corrupt db (and its journal) aside and say so on stderr; where it went, or None."""
    why = problem(db)
    if why is None:
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

"""The member-key database, `.router/keys.sqlite3`: one row per key, the key itself never stored.

A key is `fg-` and 43 characters of `secrets.token_urlsafe(32)` (256 bits): its SHA-256 is stored (a
slow hash adds nothing at that entropy), with the first characters for display. WAL mode, so the
gateway's replicas read while `doit keys` writes; private (0600) from the first byte, never opened
through a symbolic link (the database, its WAL or its shared-memory file).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from ...base.sqlitedb import LinkedDatabase, open_reader, open_writer, refuse_link

__all__ = ["LinkedDatabase", "refuse_link", "connect", "digest", "Member", "read_all", "KEY_PREFIX"]

KEY_PREFIX = "fg-"
SHOWN = 10  # characters of a key kept for display: `fg-` and 7 of its random part
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    name TEXT PRIMARY KEY,        -- the member's name, as given to `doit keys create`
    hash TEXT NOT NULL UNIQUE,    -- sha256 of the key, hex
    shown TEXT NOT NULL,          -- the key's first SHOWN characters (not a secret)
    created REAL NOT NULL,        -- epoch seconds
    rotated REAL,                 -- last `doit keys rotate`
    revoked REAL,                 -- `doit keys revoke`: refused from then on
    expires REAL,                 -- refused from then on (NULL: never)
    models TEXT NOT NULL,         -- JSON list of fnmatch patterns; empty: every model
    rpm INTEGER, tpm INTEGER,     -- requests / tokens per minute (NULL: unlimited)
    budget REAL, period TEXT      -- USD per day|week|month (NULL: none)
)
"""
BUSY_MS = 2000  # the writer's wait; the gateway's reader waits READER_BUSY_MS (on the request path)
READER_BUSY_MS = 100


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A writer with the schema in place, or a reader of an existing database (the gateway)."""
    if readonly:
        return open_reader(path, READER_BUSY_MS)
    db = open_writer(path, BUSY_MS, synchronous="FULL")  # a revocation that returned is on disk
    if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return db


class Member:
    """A key's row as the gateway uses it."""

    __slots__ = ("name", "revoked", "expires", "models", "rpm", "tpm", "budget", "period")

    def __init__(self, name, revoked, expires, models, rpm, tpm, budget, period):
        self.name, self.revoked, self.expires, self.models = name, revoked, expires, models
        self.rpm, self.tpm, self.budget, self.period = rpm, tpm, budget, period


COLUMNS = "name, hash, revoked, expires, models, rpm, tpm, budget, period"


def read_all(db, table: str = "keys") -> dict[str, Member]:
    """Every key by its hash (`db`: this store's connection or PostgreSQL's, tasks.gateway.keys.pgstore).
    A row that does not read as written is left out: its key is refused."""
    out = {}
    for name, hashed, revoked, expires, models, rpm, tpm, budget, period in db.execute(f"SELECT {COLUMNS} FROM {table}"):
        try:
            patterns = tuple(json.loads(models))
        except (TypeError, ValueError):
            continue
        if not isinstance(name, str) or not isinstance(hashed, str) or not all(isinstance(p, str) for p in patterns):
            continue
        out[hashed] = Member(name, revoked, expires, patterns, rpm, tpm, budget, period)
    return out

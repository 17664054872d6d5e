"""The usage database, `.router/usage.sqlite3`: one row per request through the gateway.

WAL mode, so `doit usage` and the dashboard read while LiteLLM's recorder writes; the recorder
writes in batches (one transaction each) and deletes rows older than the retention. A locked, full
or corrupt database must never break serving: the writer reports what happened in the health file
(`.router/state/usage.health.json`, read by `doit doctor`) and keeps trying, less often.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from ...base.paths import Paths
from ...base.sqlitedb import LinkedDatabase, open_reader, open_writer, refuse_link  # noqa: F401  (doctor, the recorder)
from . import rollup

SCHEMA_VERSION = 4  # 2: the hourly rollup (tasks.gateway.usage.rollup); 3: the member whose key was sent;
# 4: usage per CLIProxyAPI account (ACCOUNTS below, written by the control plane's tasks.usage.ledger)
COLUMNS = ("ts", "route", "method", "model", "status", "latency_ms", "ttfb_ms", "stream", "tokens_in", "tokens_out",
           "tokens_cached", "account", "error", "member")
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,             -- when the request arrived, epoch seconds (UTC)
    route TEXT NOT NULL,          -- /v1/chat/completions, /v1/messages, /v1/responses, ...
    method TEXT,
    model TEXT,                   -- as the client asked for it
    status INTEGER,               -- the HTTP status sent (0: the client went away first)
    latency_ms REAL,              -- until the last byte
    ttfb_ms REAL,                 -- streams: until the first byte of the body
    stream INTEGER,
    tokens_in INTEGER, tokens_out INTEGER, tokens_cached INTEGER,
    account TEXT,                 -- the account that served it, when known
    error TEXT,                   -- a failure's message, as the upstream said it (bounded)
    member TEXT                   -- the member whose key was sent (tasks.gateway.keys), NULL for the master key
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
{rollup.TABLE}
{rollup.MEMBERS_TABLE}
{{accounts}}
"""
# Usage per CLIProxyAPI account (issue 29): the binary's own per-account counters, read without taking
# anything from other readers, and (when the user lets FlowGate be its one usage-queue reader) one row
# per request with the account, model and tokens. Accounts are named at record time: a removed
# account keeps its name in the reports. Written by tasks.usage.ledger; the gateway only creates them.
ACCOUNTS = """
CREATE TABLE IF NOT EXISTS accounts (
    auth_index TEXT PRIMARY KEY,  -- the binary's handle of the account (usage-queue records carry it)
    name TEXT NOT NULL, provider TEXT NOT NULL, label TEXT NOT NULL,
    oauth INTEGER NOT NULL,       -- 1: an account file from a login (a subscription), 0: an API key
    seen REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_counters (
    name TEXT PRIMARY KEY,        -- the account file's name
    instance TEXT NOT NULL,       -- the binary's process (pid:create time) the counters belong to
    success INTEGER NOT NULL, failed INTEGER NOT NULL, seen REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_hourly (
    hour INTEGER NOT NULL, name TEXT NOT NULL, provider TEXT NOT NULL, label TEXT NOT NULL,
    success INTEGER NOT NULL, failed INTEGER NOT NULL,
    PRIMARY KEY (hour, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_requests (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, auth_index TEXT, name TEXT, provider TEXT, label TEXT,
    oauth INTEGER,                -- NULL: an account the listing did not name
    model TEXT, tokens_in INTEGER, tokens_out INTEGER, tokens_cached INTEGER, failed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS account_requests_ts ON account_requests (ts);
CREATE TABLE IF NOT EXISTS account_tokens (  -- account_requests per UTC hour, what reports read
    hour INTEGER NOT NULL, name TEXT NOT NULL, provider TEXT NOT NULL, label TEXT NOT NULL,  -- '' when unnamed
    oauth INTEGER NOT NULL,       -- -1 when the record did not say
    model TEXT NOT NULL, requests INTEGER NOT NULL, failed INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, tokens_cached INTEGER NOT NULL,
    PRIMARY KEY (hour, name, provider, oauth, model)
) WITHOUT ROWID;
"""
SCHEMA = SCHEMA.replace("{accounts}", ACCOUNTS)
BUSY_MS = 2000  # a reader's lock is short: wait this long before calling the database locked


def health_file(paths: Paths) -> Path:
    return paths.state_dir / "usage.health.json"


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the schema in place (a writer) or an existing database read-only."""
    if readonly:
        return open_reader(path, BUSY_MS)
    db = open_writer(path, BUSY_MS)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        db.close()
        raise sqlite3.DatabaseError(f"{path} was written by a newer FlowGate (schema {version}, this one knows "
                                    f"{SCHEMA_VERSION}): not writing to it")
    if version != SCHEMA_VERSION:
        _migrate(db)
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """The schema in place, in one short transaction with the version (a second writer starting
    meanwhile waits, then skips it). The rows of a schema-1 database are rolled up afterwards, a
    chunk with each batch (rollup.add): never one long lock that other writers would time out on."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        if "member" not in {row[1] for row in db.execute("PRAGMA table_info(requests)")}:  # schema 1 or 2
            db.execute("ALTER TABLE requests ADD COLUMN member TEXT")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def insert(db: sqlite3.Connection, rows: list[dict]) -> None:
    """One transaction for the batch and its rollup."""
    marks = ",".join("?" * len(COLUMNS))
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(f"INSERT INTO requests ({','.join(COLUMNS)}) VALUES ({marks})",
                       [tuple(row.get(c) for c in COLUMNS) for row in rows])
        rollup.add(db, len(rows) + rollup.CHUNK)


def catch_up(db: sqlite3.Connection) -> None:
    """Roll up what is not yet (a schema-1 database's rows), a chunk per transaction."""
    while True:
        with db:
            db.execute("BEGIN IMMEDIATE")
            if rollup.add(db):
                return


def prune(db: sqlite3.Connection, retention_days: int, now: float | None = None) -> int:
    """Rows older than the retention, by whole hours (the rollup's unit: its sums stay the rows')."""
    now = time.time() if now is None else now
    hour = int((now - retention_days * 86400) // 3600)
    with db:
        db.execute("BEGIN IMMEDIATE")
        rollup.prune(db, hour, int(now // 3600))
        return db.execute("DELETE FROM requests WHERE ts < ?", (hour * 3600,)).rowcount


def rows_since(db: sqlite3.Connection, since: float) -> list[dict]:
    cur = db.execute(f"SELECT {','.join(COLUMNS)} FROM requests WHERE ts >= ? ORDER BY ts", (since,))
    return [dict(zip(COLUMNS, r)) for r in cur]


def write_health(paths: Paths, ok: bool, detail: str = "") -> None:
    """What the recorder last saw (atomic; best effort: a full disk is what it may be reporting)."""
    target = health_file(paths)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"ok": ok, "detail": detail[:300], "at": time.time(), "pid": os.getpid()}))
        os.replace(tmp, target)
    except OSError:
        pass


def read_health(paths: Paths) -> dict | None:
    from ...base.fsutil import NotRegularFile, read_regular

    try:
        raw, _ = read_regular(health_file(paths), 4096)
        data = json.loads(raw)
    except (OSError, NotRegularFile, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("ok"), bool) else None


def check(paths: Paths) -> tuple[bool, str]:
    """For `doit doctor`: (ok, what) about the database and the recorder's last word."""
    path = paths.usage_db
    try:
        refuse_link(path)
    except LinkedDatabase as exc:
        return False, f"{exc}; requests are not being recorded"
    if path.exists():
        try:
            db = connect(path, readonly=True)
            try:
                count = db.execute("SELECT count(*) FROM requests").fetchone()[0]
                mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error as exc:
            return False, f"{path} cannot be read ({exc}): requests are not being recorded"
        what = f"{count} request(s) recorded in {path.name} ({mode})"
    else:
        what = f"no {path.name} yet (it appears with the first request through the gateway)"
    health = read_health(paths)
    if health and not health["ok"]:
        return False, f"the recorder reported: {health.get('detail') or 'recording failed'}"
    return True, what

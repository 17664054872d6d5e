"""The member keys in PostgreSQL (`keys.store: postgres`, issue 30 item 4): for gateways on several
hosts. The same rows as the SQLite store (tasks.gateway.keys.store), in table `flowgate_keys`, and a
one-row table `flowgate_keys_version` that every write bumps in its transaction: a reader asks for
that number and reads the rows only when it moved.

Where the database is comes from the environment (the gateway may not read FlowGate's config):
  FLOWGATE_KEYS_STORE            "postgres" (anything else: SQLite)
  FLOWGATE_KEYS_PG_CONNINFO      libpq key=value words without a password (the managed server's)
  FLOWGATE_KEYS_PG_PASSWORD_FILE its password, in a 0600 file (the managed server's)
  FLOWGATE_KEYS_PG_URL_ENV       or: the name of a variable holding a postgresql:// URL (a server you run)
  FLOWGATE_KEYS_PG_URL_FILE      or: a file holding that URL
The URL or password is read when connecting, never put in argv or logs. Every exchange has a deadline:
CONNECT_S to connect, STATEMENT_MS per statement (a wedged server refuses member keys, never hangs them).
psycopg is imported on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...base.fsutil import NotRegularFile, read_regular

STORE_ENV = "FLOWGATE_KEYS_STORE"
CONNINFO_ENV = "FLOWGATE_KEYS_PG_CONNINFO"
PASSWORD_FILE_ENV = "FLOWGATE_KEYS_PG_PASSWORD_FILE"
URL_ENV_ENV = "FLOWGATE_KEYS_PG_URL_ENV"
URL_FILE_ENV = "FLOWGATE_KEYS_PG_URL_FILE"
ALL_ENV = (STORE_ENV, CONNINFO_ENV, PASSWORD_FILE_ENV, URL_ENV_ENV, URL_FILE_ENV)
CONNECT_S = 2  # libpq's connect_timeout: whole seconds, at least 2
STATEMENT_MS = 1000
SECRET_LIMIT = 4096

TABLE = "flowgate_keys"
SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, shown TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, rotated DOUBLE PRECISION, revoked DOUBLE PRECISION,
    expires DOUBLE PRECISION, models TEXT NOT NULL, rpm INTEGER, tpm INTEGER,
    budget DOUBLE PRECISION, period TEXT)""",
    "CREATE TABLE IF NOT EXISTS flowgate_keys_version (one INTEGER PRIMARY KEY CHECK (one = 1), version BIGINT NOT NULL)",
    "INSERT INTO flowgate_keys_version VALUES (1, 0) ON CONFLICT DO NOTHING",
]


class Unreachable(Exception):
    """The PostgreSQL store cannot be reached or read (the message says why, never a password)."""


def selected(environ=None) -> bool:
    return (os.environ if environ is None else environ).get(STORE_ENV) == "postgres"


def _secret_file(path: str, what: str) -> str:
    try:
        data, _ = read_regular(Path(path), SECRET_LIMIT)
    except OSError as exc:
        raise Unreachable(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except NotRegularFile as exc:
        raise Unreachable(f"{what} {path} is not a regular file ({exc})") from None
    text = data.decode("utf-8", "replace").strip()
    if not text or len(data) > SECRET_LIMIT:
        raise Unreachable(f"{what} {path} is empty or not one line")
    return text


def where(environ=None) -> tuple[str, dict]:
    """(conninfo or URL, extra keyword arguments) for psycopg.connect; Unreachable when not set up."""
    env = os.environ if environ is None else environ
    if env.get(URL_ENV_ENV):
        url = env.get(env[URL_ENV_ENV], "")
        if not url:
            raise Unreachable(f"the variable {env[URL_ENV_ENV]} (postgres.url_env) is not set")
        return url, {}
    if env.get(URL_FILE_ENV):
        return _secret_file(env[URL_FILE_ENV], "postgres.url_file"), {}
    if env.get(CONNINFO_ENV):
        extra = {"password": _secret_file(env[PASSWORD_FILE_ENV], "the password file")} if env.get(PASSWORD_FILE_ENV) else {}
        return env[CONNINFO_ENV], extra
    raise Unreachable(f"keys.store is postgres but {CONNINFO_ENV} or {URL_ENV_ENV} is not set")


def described(environ=None) -> str:
    """Where the store is, for messages: host and port, never a password."""
    try:
        conninfo, _ = where(environ)
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(conninfo)
        return f"the PostgreSQL key store at {parts.get('host', '?')}:{parts.get('port', 5432)}"
    except Exception:  # noqa: BLE001  (a message only)
        return "the PostgreSQL key store"


def connect(environ=None, statement_ms: int = STATEMENT_MS):
    """An autocommit connection with deadlines; Unreachable with libpq's reason (no secret in it)."""
    import psycopg

    conninfo, extra = where(environ)
    try:
        return psycopg.connect(conninfo, connect_timeout=CONNECT_S, autocommit=True,
                               options=f"-c statement_timeout={int(statement_ms)}", application_name="flowgate", **extra)
    except psycopg.ProgrammingError:  # libpq could not parse it: its words may quote the URL, password and all
        raise Unreachable("the store's URL or connection string is malformed (expected postgresql://user:password@host:port/db)") from None
    except psycopg.Error as exc:
        raise Unreachable(_reason(exc, [extra.get("password"), _password(conninfo)])) from None


def _password(conninfo: str) -> str | None:
    try:
        from psycopg.conninfo import conninfo_to_dict

        return conninfo_to_dict(conninfo).get("password")
    except Exception:  # noqa: BLE001
        return None


def _reason(exc, secrets=()) -> str:
    """libpq's words on one line, bounded, a password it might echo masked."""
    text = " ".join(str(exc).split())
    for secret in secrets:
        if secret:
            text = text.replace(str(secret), "***")
    return text[:300] or type(exc).__name__


def ensure_schema(db) -> None:
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(30030)")  # two first writers at once: one makes the tables
        for statement in SCHEMA:
            db.execute(statement)


def version(db) -> int | None:
    """The store's write counter, or None before the first key (no tables yet)."""
    import psycopg

    try:
        row = db.execute("SELECT version FROM flowgate_keys_version").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return row[0] if row else None


class Qmark:
    """A psycopg connection that takes the SQLite store's queries as written: `?` placeholders, and the
    table `keys` (here TABLE, a name no other application's is likely to be); the control plane's queries
    (tasks.keys.manage: plain SELECT / INSERT / UPDATE / DELETE on it) are written once, for both stores."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql: str, params=()):
        return self.db.execute(sql.replace(" keys", f" {TABLE}").replace("?", "%s"), params)


def write(db, work):
    """`work(Qmark)` in one transaction that holds the table (two writers wait for each other) and bumps the version."""
    ensure_schema(db)
    with db.transaction():
        db.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
        result = work(Qmark(db))
        db.execute("UPDATE flowgate_keys_version SET version = version + 1")
    return result

"""`doit keys` on the PostgreSQL store (`keys.store: postgres`): one transaction per write, the rows
for the listing, and doctor's check. The queries are tasks.keys.manage's, shared with the SQLite
store. Where the store is comes from the caller (`store`: the environment tasks.gateway.keys.pgstore
reads, made from the config by tasks.services.postgres.control_env, as the gateway is told).
"""

from __future__ import annotations

from ..base.errors import FlowgateError
from ..gateway.keys import pgstore

FIX = "`uv run doit up` starts the managed PostgreSQL (postgres.managed); see `uv run doit doctor`"


def _unreachable(env: dict, exc) -> FlowgateError:
    return FlowgateError(f"{pgstore.described(env)} cannot be reached: {exc}", FIX)


def write(env: dict, work):
    import psycopg

    try:
        db = pgstore.connect(env, statement_ms=10_000)  # a write may wait for another `doit keys` holding the table
    except pgstore.Unreachable as exc:
        raise _unreachable(env, exc) from None
    try:
        return pgstore.write(db, work)
    except psycopg.Error as exc:
        raise FlowgateError(f"cannot write {pgstore.described(env)}: {pgstore._reason(exc)}", FIX) from None
    finally:
        db.close()


def rows(env: dict, fields) -> list[tuple]:
    import psycopg

    try:
        db = pgstore.connect(env)
    except pgstore.Unreachable as exc:
        raise _unreachable(env, exc) from None
    try:
        if pgstore.version(db) is None:
            return []
        return db.execute(f"SELECT {', '.join(fields)} FROM {pgstore.TABLE} ORDER BY name").fetchall()
    except psycopg.Error as exc:
        raise FlowgateError(f"cannot read {pgstore.described(env)}: {pgstore._reason(exc)}", FIX) from None
    finally:
        db.close()


def check(env: dict) -> tuple[bool, str]:
    """For `doit doctor`: (ok, what), read as the gateway reads it (tasks.gateway.keys.pgbook)."""
    import time

    from ..gateway.keys.pgbook import PgKeyBook

    book = PgKeyBook(env, start_thread=False)
    book.refresh()
    book._close()
    if book.broken is not None:
        return False, book.broken
    now = time.time()
    live = sum(m.revoked is None and (m.expires is None or m.expires > now) for m in book.members.values())
    return True, f"{live} active member key(s) of {len(book.members)} in {pgstore.described(env)}"

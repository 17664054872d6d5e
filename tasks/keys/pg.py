"""`doit keys` on the PostgreSQL store (`keys.store: postgres`): where it is (the config, as the
gateway is told: tasks.services.postgres.store_env), one transaction per write, the rows for the
listing, and doctor's check. The queries are tasks.keys.manage's, shared with the SQLite store.
"""

from __future__ import annotations

import os

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..gateway.keys import pgstore

FIX = "`uv run doit up` starts the managed PostgreSQL (postgres.managed); see `uv run doit doctor`"


def environ(paths: Paths) -> dict | None:
    """The environment pgstore reads when the config selects PostgreSQL, else None (SQLite). The
    config as it is now (not stack.json, which the next `doit up` writes): a store switched in the
    config is the one written, and an invalid config is its one clear error, never a write to the other store."""
    if not paths.base_config.exists() and not paths.local_config.exists():
        return None  # no config at all (tests of the store): the default
    from ..config.load import load_stack
    from ..services.postgres import store_env

    found = store_env(paths, load_stack(paths))
    return {**os.environ, **found} if found else None


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

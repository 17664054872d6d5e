"""Create, list, revoke and rotate member keys in `.router/keys.sqlite3`, or in PostgreSQL with
`keys.store: postgres` (tasks.keys.pg: the same queries, one transaction per write).

Each write is one transaction (BEGIN IMMEDIATE: two `doit keys` at once wait for each other), with
`synchronous=FULL`: when the command returns, every gateway replica sees the change at its next
refresh (tasks.gateway.keys.book, within a second). The key itself exists only in what `create` and
`rotate` return; the database keeps its SHA-256 and its first characters.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import sqlite3
import time

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..gateway.keys import store as keystore

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}\Z")
PERIODS = ("day", "week", "month")


def new_key() -> str:
    return keystore.KEY_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        from ..base.terminal import printable

        raise FlowgateError(f"bad key name {printable(str(name))[:80]!r}",
                            "a name is 1-64 letters, digits or . _ @ + - (starting with a letter or digit)")
    return name


def parse_expiry(value: str, now: float | None = None) -> float | None:
    """`YYYY-MM-DD` (the end of that day, UTC) or an ISO date-time (UTC unless it says): epoch seconds."""
    if not value:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            moment = datetime.datetime.fromisoformat(value) + datetime.timedelta(days=1)
        else:
            moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise FlowgateError(f"--expires takes a date: {value[:40]!r}", "e.g. --expires 2026-12-31") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    when = moment.timestamp()
    if when <= (time.time() if now is None else now):
        raise FlowgateError(f"--expires {value} is in the past", "give a date to come")
    return when


def limits(budget: float = 0.0, period: str = "", rpm: int = 0, tpm: int = 0, models=()) -> dict:
    """The limits of a key as stored, checked: 0 or nothing means none."""
    if period and period not in PERIODS:
        raise FlowgateError(f"--period takes {', '.join(PERIODS)}, not {period[:20]!r}")
    for label, value in (("--budget", budget), ("--rpm", rpm), ("--tpm", tpm)):
        if value < 0:
            raise FlowgateError(f"{label} cannot be negative")
    patterns = [p for p in (models or []) if p]
    for pattern in patterns:
        if len(pattern) > 200 or not pattern.isprintable():
            raise FlowgateError("a --models pattern is printable and at most 200 characters")
    return {"budget": budget or None, "period": (period or "month") if budget else None, "rpm": rpm or None,
            "tpm": tpm or None, "models": json.dumps(patterns)}


def _open(paths: Paths) -> sqlite3.Connection:
    try:
        return keystore.connect(paths.keys_db)
    except keystore.LinkedDatabase as exc:
        raise FlowgateError(str(exc)) from None
    except (sqlite3.Error, OSError) as exc:
        raise FlowgateError(f"cannot open {paths.keys_db}: {exc}", "see `uv run doit doctor`") from None


def _write(paths: Paths, work, store_env: dict | None = None):
    """`work(db)` in one transaction: in the SQLite file, or in PostgreSQL when `store_env` says where
    it is (tasks.services.postgres.control_env; every public function here takes it as `store`)."""
    if store_env is not None:
        from . import pg

        return pg.write(store_env, work)
    db = _open(paths)
    try:
        with db:
            db.execute("BEGIN IMMEDIATE")
            return work(db)
    except sqlite3.Error as exc:
        raise FlowgateError(f"cannot write {paths.keys_db}: {exc}", "see `uv run doit doctor`") from None
    finally:
        db.close()


def create(paths: Paths, name: str, expires: float | None = None, store: dict | None = None, keep: bool = False,
           **limit) -> str:
    """A new key for `name` (a revoked key's name may be given again): the key, to show once.
    `keep`: a private copy for this machine's clients (tasks.keys.kept: `integrate --key NAME`)."""
    check_name(name)
    row, key = limits(**limit), new_key()

    def work(db):
        old = db.execute("SELECT revoked FROM keys WHERE name = ?", (name,)).fetchone()
        if old is not None and old[0] is None:
            raise FlowgateError(f"a key named {name} exists", f"`uv run doit keys rotate {name}` replaces it")
        db.execute("DELETE FROM keys WHERE name = ?", (name,))
        db.execute("INSERT INTO keys (name, hash, shown, created, expires, models, rpm, tpm, budget, period) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (name, keystore.digest(key), key[:keystore.SHOWN], time.time(), expires, row["models"], row["rpm"],
                    row["tpm"], row["budget"], row["period"]))

    _write(paths, work, store)
    _kept(paths, name, key if keep else None)
    return key


def _kept(paths: Paths, name: str, key: str | None) -> None:
    """The kept copy of `name`'s key: written (`key`), or gone (None: a copy of an older key must not stay)."""
    from . import kept

    if key is None:
        kept.drop(paths, name)
        return
    try:
        kept.keep(paths, name, key)
    except FlowgateError as exc:
        raise FlowgateError(f"the key of {name} was made, but not kept for clients: {exc.message}",
                            f"fix that, then `uv run doit keys rotate {name} --keep`") from None


def _live(db, name: str) -> None:
    found = db.execute("SELECT revoked FROM keys WHERE name = ?", (name,)).fetchone()
    if found is None:
        raise FlowgateError(f"no key named {name}", "`uv run doit keys list` shows them")
    if found[0] is not None:
        raise FlowgateError(f"the key {name} is revoked", f"`uv run doit keys create {name}` makes a new one")


def revoke(paths: Paths, name: str, store: dict | None = None) -> None:
    check_name(name)

    def work(db):
        _live(db, name)
        db.execute("UPDATE keys SET revoked = ? WHERE name = ?", (time.time(), name))

    _write(paths, work, store)
    _kept(paths, name, None)


def rotate(paths: Paths, name: str, store: dict | None = None, keep: bool = False) -> str:
    """A new key for `name`, same limits; the old one is refused from now on. The key, to show once.
    A kept copy is replaced (a client wired with it sends the new key); `keep` keeps one from now on."""
    from . import kept

    check_name(name)
    keep = keep or kept.is_kept(paths, name)
    key = new_key()

    def work(db):
        _live(db, name)
        db.execute("UPDATE keys SET hash = ?, shown = ?, rotated = ? WHERE name = ?",
                   (keystore.digest(key), key[:keystore.SHOWN], time.time(), name))

    _write(paths, work, store)
    if keep:
        _kept(paths, name, key)
    return key


FIELDS = ("name", "shown", "created", "rotated", "revoked", "expires", "models", "rpm", "tpm", "budget", "period")


def listing(paths: Paths, now: float | None = None, store: dict | None = None) -> list[dict]:
    """Every key (no secret: its first characters only), with its state."""
    if store is not None:
        from . import pg

        rows = [dict(zip(FIELDS, r)) for r in pg.rows(store, FIELDS)]
    elif not paths.keys_db.exists() and not paths.keys_db.is_symlink():
        return []
    else:
        rows = _sqlite_rows(paths)
    now = time.time() if now is None else now
    from . import kept

    for row in rows:
        row["kept"] = kept.is_kept(paths, row["name"])  # a private copy for this machine's clients (--keep)
        row["models"] = json.loads(row["models"] or "[]")
        row["state"] = ("revoked" if row["revoked"] is not None else
                        "expired" if row["expires"] is not None and row["expires"] <= now else "active")
    return rows


def _sqlite_rows(paths: Paths) -> list[dict]:
    try:
        db = keystore.connect(paths.keys_db, readonly=True)
        try:
            rows = [dict(zip(FIELDS, r)) for r in db.execute(f"SELECT {', '.join(FIELDS)} FROM keys ORDER BY name")]
        finally:
            db.close()
    except keystore.LinkedDatabase as exc:
        raise FlowgateError(str(exc)) from None
    except sqlite3.Error as exc:
        raise FlowgateError(f"cannot read {paths.keys_db}: {exc}", "see `uv run doit doctor`") from None
    return rows


def check(paths: Paths, store: dict | None = None) -> tuple[bool, str]:
    """For `doit doctor`: (ok, what) as the gateway reads the database (tasks.gateway.keys.book)."""
    import os

    from ..gateway.keys.book import KeyBook

    if store is not None:
        from . import pg

        return pg.check(store)
    book = KeyBook(paths.keys_db)
    book.refresh()
    if book.broken is not None:
        return False, book.broken
    if book.db is None:
        return True, f"no member keys ({paths.keys_db.name} appears with `uv run doit keys create`)"
    book._close()
    mode = os.stat(paths.keys_db).st_mode & 0o777
    if mode & 0o077:
        return False, f"{paths.keys_db} is readable by others (mode {mode:o}): `chmod 600 {paths.keys_db}`"
    now = time.time()
    live = sum(m.revoked is None and (m.expires is None or m.expires > now) for m in book.members.values())
    return True, f"{live} active member key(s) of {len(book.members)} in {paths.keys_db.name}"


def spend_since(paths: Paths, since: float) -> dict[str, dict]:
    """Spend per member from `since` (tasks.gateway.keys.spend); a database that cannot be read is one clear error."""
    from ..gateway.keys import spend

    try:
        return spend.by_member(paths, since)
    except sqlite3.Error as exc:
        raise FlowgateError(f"cannot read {paths.usage_db}: {exc}", "see `uv run doit doctor`") from None


def listing_with_spend(paths: Paths, store: dict | None = None) -> list[dict]:
    """The listing, each key with its spend this period (its budget's, else this month) and last use,
    from the usage recorder (tasks.gateway.keys.spend): `doit keys list` and the dashboard."""
    from ..gateway.keys import spend

    rows = listing(paths, store=store)
    starts = {r["name"]: spend.period_start(r["period"]) for r in rows}
    used, unknown = {}, None
    try:
        for start in sorted(set(starts.values())):
            for name, entry in spend_since(paths, start).items():
                if starts.get(name) == start:
                    used[name] = entry
    except FlowgateError as exc:  # the keys are still listed; their spend is unknown (None) and says why
        unknown = exc.one_line()
    for row in rows:
        entry = used.get(row["name"]) or {}
        row["spend_error"] = unknown
        row["spend_usd"] = None if unknown else round(entry.get("usd", 0.0), 6)
        row["spend_unpriced_tokens"] = entry.get("unpriced_tokens", 0)
        row["requests_this_period"] = entry.get("requests", 0)
        row["last_use"] = entry.get("last_use")
    return rows

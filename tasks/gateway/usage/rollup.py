"""The hourly rollup of the usage database, and the rules every sum follows (what counts as a
failure, which latency bucket a request falls in).

Summing 10 M rows took SQLite 33-46 s whatever the indexes: the latency histogram that percentiles
need has nearly as many groups as rows. So `store.insert` keeps, in the same transaction as the
rows, one `hourly` row per UTC hour, model and account: requests, errors, tokens, and the latency
histogram as JSON, and moves a mark to the last row folded (a database from before the rollup is
caught up from its first row, a chunk per batch; until the mark reaches the last row, reports sum
the rows themselves). A report reads those (~10,000 for a week of 20 models and 3 accounts) plus the
raw rows of any hour it cannot take whole: the partial first hour of the span, and an hour that
straddles two groups (a local day or hour of a time zone offset by 30 or 45 minutes). The answers
are the raw rows' answers exactly: both paths bucket with the same SQL.
"""

from __future__ import annotations

import json
import sqlite3

UNPARSED = "unparsed: "  # the error of a row whose bodies the writer could not read (not the request's failure)
CUT_OFF = "the answer was cut off before its end"  # the error a response with no end of body is recorded with
assert "'" not in CUT_OFF + UNPARSED  # written into the SQL below as literals

# as tests/usage_reference.failed: an error status, no status, or a 200 whose answer broke off (CUT_OFF) or whose stream
# carried an error event; a row whose bodies could not be read (UNPARSED) is not the request's failure
FAILED = (f"(status IS NULL OR status = 0 OR status >= 400 OR (error IS NOT NULL AND error <> '' AND "
          f"(error = '{CUT_OFF}' OR substr(error, 1, {len(UNPARSED)}) <> '{UNPARSED}')))")
NO_MODEL = "(no model)"  # the group of requests that name no model (model lists, `HEAD /` probes)
MODEL = f"COALESCE(NULLIF(model, ''), '{NO_MODEL}')"
ACCOUNT = "COALESCE(NULLIF(account, ''), 'unknown')"
# three significant digits (0.1 ms below 100 ms): at most ~4,500 distinct values a group, 1 % at most off
LATENCY = ("CASE WHEN latency_ms IS NULL THEN NULL WHEN latency_ms < 100 THEN round(latency_ms, 1) "
           "WHEN latency_ms < 1000 THEN round(latency_ms) WHEN latency_ms < 10000 THEN round(latency_ms, -1) "
           "WHEN latency_ms < 100000 THEN round(latency_ms, -2) ELSE round(latency_ms, -3) END")
HOUR = "CAST(ts / 3600 AS INTEGER)"  # ts is epoch seconds, never negative
TABLE = """
CREATE TABLE IF NOT EXISTS hourly (
    hour INTEGER NOT NULL,        -- the UTC hour: ts / 3600
    model TEXT NOT NULL,          -- as MODEL above (NO_MODEL: e.g. a model list)
    account TEXT NOT NULL,        -- as ACCOUNT above
    requests INTEGER NOT NULL, errors INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, tokens_cached INTEGER NOT NULL,
    latency TEXT NOT NULL,        -- JSON {bucket (LATENCY above): requests}
    PRIMARY KEY (hour, model, account)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_mark (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    id INTEGER NOT NULL           -- every row up to this id is in `hourly`
);
INSERT OR IGNORE INTO rollup_mark VALUES (1, 0);
"""
CHUNK = 50_000  # rows folded at most per transaction beyond a batch's own: a catch-up never holds the lock long

# per member (issue 30: spend per key) and model, whole hours: what a key's budget and `doit usage --by key` read
MEMBERS_TABLE = """
CREATE TABLE IF NOT EXISTS hourly_members (
    hour INTEGER NOT NULL, member TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, tokens_cached INTEGER NOT NULL,
    PRIMARY KEY (hour, member, model)
) WITHOUT ROWID;
"""


def grouped(db: sqlite3.Connection, where: str, args: tuple) -> sqlite3.Cursor:
    """(hour, model, account, latency bucket, requests, errors, tokens in, out, cached) of the rows
    `where` selects: the one GROUP BY both the rollup and a report's raw hours are made of."""
    return db.execute(f"SELECT {HOUR}, {MODEL}, {ACCOUNT}, {LATENCY}, count(*), sum({FAILED}), "
                      f"total(tokens_in), total(tokens_out), total(tokens_cached) FROM requests WHERE {where} "
                      "GROUP BY 1, 2, 3, 4", args)


def mark(db: sqlite3.Connection) -> int:
    return db.execute("SELECT id FROM rollup_mark").fetchone()[0]


def covers(db: sqlite3.Connection) -> bool:
    """Whether `hourly` holds every row: schema 2 and the mark at the last row. Not while a database
    from before the rollup is being rolled up, nor after a writer of schema 1 (an instance still
    draining during the upgrade's swap) added rows the next insert has not folded yet."""
    if db.execute("PRAGMA user_version").fetchone()[0] < 2:
        return False
    return mark(db) >= db.execute("SELECT COALESCE(max(id), 0) FROM requests").fetchone()[0]


def add(db: sqlite3.Connection, extra: int = CHUNK) -> bool:
    """Fold the rows past the mark into `hourly`, at most `extra` of them beyond the caller's own, and
    move the mark. In the caller's transaction: rows and rollup are written together or not at all.
    The mark, not the batch, says what is folded: rows an older writer added are picked up too, and a
    database from before the rollup is caught up a chunk per batch. True when it is caught up."""
    done = mark(db)
    top = db.execute("SELECT COALESCE(max(id), 0) FROM requests").fetchone()[0]
    upto = min(top, done + extra)
    if upto <= done:
        return True
    deltas: dict[tuple, list] = {}
    for hour, model, account, latency, count, errors, t_in, t_out, t_cached in grouped(
            db, "id > ? AND id <= ?", (done, upto)):
        entry = deltas.setdefault((hour, model, account), [0, 0, 0, 0, 0, {}])
        _fold(entry, count, errors, (t_in, t_out, t_cached), {repr(latency): count} if latency is not None else {})
    for key, entry in deltas.items():
        kept = db.execute("SELECT requests, errors, tokens_in, tokens_out, tokens_cached, latency FROM hourly "
                          "WHERE hour = ? AND model = ? AND account = ?", key).fetchone()
        if kept:
            _fold(entry, kept[0], kept[1], kept[2:5], json.loads(kept[5]))
        db.execute("INSERT OR REPLACE INTO hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (*key, *entry[:5], json.dumps(entry[5], separators=(",", ":"))))
    db.execute(f"INSERT INTO hourly_members SELECT {HOUR}, member, {MODEL}, count(*), total(tokens_in), "
               "total(tokens_out), total(tokens_cached) FROM requests WHERE id > ? AND id <= ? AND member IS NOT NULL "
               "GROUP BY 1, 2, 3 ON CONFLICT (hour, member, model) DO UPDATE SET requests = requests + excluded.requests, "
               "tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out, "
               "tokens_cached = tokens_cached + excluded.tokens_cached", (done, upto))
    db.execute("UPDATE rollup_mark SET id = ?", (upto,))
    return upto == top


def _fold(entry: list, count: int, errors, tokens, histogram: dict) -> None:
    entry[0] += count
    entry[1] += int(errors or 0)
    for i, value in enumerate(tokens):
        entry[2 + i] += int(value or 0)
    for bucket, n in histogram.items():
        entry[5][bucket] = entry[5].get(bucket, 0) + n


MEMBER_HOURS = 32 * 24  # the per-member rollup outlives a shorter retention: a month's budget reads a whole month


def prune(db: sqlite3.Connection, before_hour: int, now_hour: int | None = None) -> None:
    db.execute("DELETE FROM hourly WHERE hour < ?", (before_hour,))
    members_before = before_hour if now_hour is None else min(before_hour, now_hour - MEMBER_HOURS)
    db.execute("DELETE FROM hourly_members WHERE hour < ?", (members_before,))


def rows(db: sqlite3.Connection, from_hour: int, histograms: bool = True):
    """(hour, model, account, requests, errors, (tokens in, out, cached), {bucket: requests} or None)
    from `from_hour` on."""
    cur = db.execute("SELECT hour, model, account, requests, errors, tokens_in, tokens_out, tokens_cached, "
                     f"{'latency' if histograms else 'NULL'} FROM hourly WHERE hour >= ?", (from_hour,))
    for hour, model, account, count, errors, t_in, t_out, t_cached, latency in cur:
        yield hour, model, account, count, errors, (t_in, t_out, t_cached), json.loads(latency) if histograms else None

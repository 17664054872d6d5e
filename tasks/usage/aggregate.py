"""Usage summed inside SQLite: `doit usage` and the dashboard never hold the rows themselves.

At 10 M rows, loading the rows took 75 s and 7.9 GB (then a MemoryError), and the dashboard's
refresh ~10 s of CPU and +530 MB in the gateway's own process; summing the rows in SQLite, 33-46 s.
Here every figure comes from the hourly rollup (tasks.gateway.usage.rollup), plus a GROUP BY over the `ts`
index for the hours it cannot take whole (a database not yet rolled up: all of them); memory is
bounded by the number of groups times the distinct latencies kept for percentiles, never by the
number of rows. Percentiles are nearest-rank over a latency histogram
kept to three significant digits: exact at the 0.1 ms `doit usage` prints below 100 ms, within 1 %
above. Python's sqlite3 releases the GIL while SQLite works, so a dashboard refresh in a
worker thread leaves LiteLLM's event loop free.
"""

from __future__ import annotations

import math
import sqlite3
import time

from ..gateway.usage import rollup
from ..gateway.usage.rollup import ACCOUNT, FAILED, LATENCY, MODEL, NO_MODEL  # noqa: F401  (report reads NO_MODEL here)

KEYS = {
    "model": MODEL,
    "account": ACCOUNT,
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch', 'localtime')",
    "hour": "strftime('%Y-%m-%d %H:00', ts, 'unixepoch', 'localtime')",
    "": "''",
}
LABELS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00"}  # the same labels as KEYS, for an hour of the rollup
TOKENS = ("tokens_in", "tokens_out", "tokens_cached")


class _Fold:
    """One group's counters and latency histogram, filled from the GROUP BY's rows."""

    __slots__ = ("requests", "errors", "tokens", "latency")

    def __init__(self) -> None:
        self.requests, self.errors, self.tokens, self.latency = 0, 0, [0, 0, 0], {}

    def add(self, latency, count, errors, tokens) -> None:
        self.requests += count
        self.errors += errors or 0
        for i, value in enumerate(tokens):
            self.tokens[i] += int(value or 0)
        if latency is not None:  # keyed as the rollup's JSON keys them: repr() gives back the same float
            key = repr(latency)
            self.latency[key] = self.latency.get(key, 0) + count

    def merge(self, other: "_Fold") -> None:
        self.add_histogram(other.requests, other.errors, other.tokens, other.latency)

    def add_histogram(self, count, errors, tokens, histogram: dict) -> None:
        self.add(None, count, errors, tokens)
        kept = self.latency
        for latency, n in histogram.items():
            kept[latency] = kept.get(latency, 0) + n

    def summary(self) -> dict:
        return {"requests": self.requests, "errors": self.errors,
                **dict(zip(TOKENS, self.tokens)), "p50_ms": self.percentile(50), "p95_ms": self.percentile(95)}

    def percentile(self, p: float) -> float | None:
        """Nearest rank: the smallest value with at least p % of the values at or below it."""
        n = sum(self.latency.values())
        if not n:
            return None
        rank, seen = max(1, math.ceil(p / 100 * n)), 0
        for latency in sorted(self.latency, key=float):
            seen += self.latency[latency]
            if seen >= rank:
                return round(float(latency), 1)
        return None  # unreachable: the ranks add up to n


def empty_db() -> sqlite3.Connection:
    """An in-memory database with the schema and no row: the same answers before the first request."""
    from ..gateway.usage.store import SCHEMA

    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    return db


def _source(db: sqlite3.Connection, since: float) -> str:
    """The table, read through the `ts` index only when the span is a small part of it: reading the
    whole table in order is ~4x faster than through the index when the span covers most rows."""
    total = db.execute("SELECT count(*) FROM requests").fetchone()[0]
    in_span = db.execute("SELECT count(*) FROM requests WHERE ts >= ?", (since,)).fetchone()[0]
    return "requests" if in_span * 4 < total else "requests NOT INDEXED"


def _folds(db: sqlite3.Connection, since: float, names: list[str], out: dict | None = None,
           until: float | None = None, source: str | None = None) -> dict[tuple, _Fold]:
    """One pass over the rows from `since` (to `until`) grouping by every name in `names` at once
    (and the latency bucket)."""
    keys = ", ".join(f"{KEYS[n]}" for n in names) or "''"
    span, args = ("ts >= ?", (since,)) if until is None else ("ts >= ? AND ts < ?", (since, until))
    cur = db.execute(f"SELECT {keys}, {LATENCY} AS l, count(*), sum({FAILED}), "
                     f"total(tokens_in), total(tokens_out), total(tokens_cached) "
                     f"FROM {source or _source(db, since)} WHERE {span} "
                     f"GROUP BY {', '.join(str(i + 1) for i in range(len(names) or 1))}, l", args)
    width = len(names) or 1
    out = {} if out is None else out
    for row in cur:
        key, (latency, count, errors, *tokens) = tuple(str(k) for k in row[:width]), row[width:]
        out.setdefault(key, _Fold()).add(latency, count, errors, tokens)
    return out


def _rolled(db: sqlite3.Connection, since: float, names: list[str]) -> dict[tuple, _Fold]:
    """What _folds answers, from the hourly rollup: its whole hours from the span's first one on, and
    the raw rows of the hours it cannot take whole (the partial first hour; an hour holding the
    start of a local day or hour, where the time zone is offset by 30 or 45 minutes)."""
    first = math.ceil(since / 3600)
    out = _folds(db, since, names, until=first * 3600, source="requests") if since < first * 3600 else {}
    labelled = [n for n in names if n in LABELS]
    labels: dict[int, tuple | None] = {}  # hour -> its labels, None when it straddles two
    straddling = []
    for hour, model, account, count, errors, tokens, histogram in rollup.rows(db, first):
        if hour not in labels:
            labels[hour] = _labels(hour, labelled)
            if labels[hour] is None:
                straddling.append(hour)
        if labels[hour] is None:
            continue
        found = dict(zip(labelled, labels[hour]), model=model, account=account)
        key = tuple(found.get(n, "") for n in names) or ("",)
        out.setdefault(key, _Fold()).add_histogram(count, errors, tokens, histogram)
    for hour in straddling:
        _folds(db, hour * 3600, names, out, until=(hour + 1) * 3600, source="requests")
    return out


def _labels(hour: int, names: list[str]) -> tuple | None:
    at = [time.strftime(LABELS[n], time.localtime(hour * 3600)) for n in names]
    return tuple(at) if at == [time.strftime(LABELS[n], time.localtime(hour * 3600 + 3599)) for n in names] else None


def _project(folds: dict[tuple, _Fold], position: int) -> dict[str, _Fold]:
    out: dict[str, _Fold] = {}
    for key, fold in folds.items():
        out.setdefault(key[position], _Fold()).merge(fold)
    return out


def _ordered(folds: dict[str, _Fold], by: str) -> list[dict]:
    groups = [{by: key, **fold.summary()} for key, fold in folds.items()]
    return sorted(groups, key=lambda g: g[by] if by in ("day", "hour") else (-g["requests"], g[by]))


def report(db: sqlite3.Connection, since: float, wanted: list[str]) -> dict:
    """{"totals": {...}, "by": {by: [group, ...]}} for the rows since `since` (epoch seconds).

    The default pair (model and day) and any two groupings without `hour` are read in one pass
    (their combinations stay few); otherwise one pass per grouping."""
    names = list(dict.fromkeys(wanted))
    passes = [names] if len(names) <= 2 and "hour" not in names else [[n] for n in names] or [[]]
    by: dict[str, list[dict]] = {}
    total = _Fold()
    in_transaction = db.in_transaction
    if not in_transaction:
        db.execute("BEGIN")  # one snapshot for every pass: a batch written meanwhile is in all of them or none
    try:
        summed = _rolled if rollup_covers(db) else _folds
        for i, group in enumerate(passes or [[]]):
            folds = summed(db, since, group)
            if i == 0:  # every pass covers the same rows: the totals come from the first
                for fold in folds.values():
                    total.merge(fold)
            for position, name in enumerate(group):
                by[name] = _ordered(_project(folds, position), name)
    finally:
        if not in_transaction:
            db.execute("COMMIT")
    return {"totals": total.summary(), "by": by}


def rollup_covers(db: sqlite3.Connection) -> bool:
    """Whether the rollup holds every row (rollup.covers); False on a database from before it."""
    try:
        return rollup.covers(db)
    except sqlite3.OperationalError:  # schema 1 read-only: no rollup_mark table
        return False


def series(db: sqlite3.Connection, start: float, buckets: int, width: int) -> dict[str, dict]:
    """Requests and tokens (in + out) per bucket per model from `start`, oldest bucket first."""
    models: dict[str, dict] = {}
    if rollup_covers(db) and start % 3600 == 0 and width % 3600 == 0:  # the dashboard's: whole UTC hours
        for hour, model, _, count, _, tokens, _ in rollup.rows(db, int(start) // 3600, histograms=False):
            i = (hour * 3600 - int(start)) // width
            if i < buckets:
                entry = models.setdefault(model, {"requests": [0] * buckets, "tokens": [0] * buckets})
                entry["requests"][i] += count
                entry["tokens"][i] += int(tokens[0] or 0) + int(tokens[1] or 0)
        return models
    cur = db.execute(f"SELECT {KEYS['model']} AS k, CAST((ts - ?) / ? AS INTEGER) AS i, count(*), "
                     f"total(tokens_in) + total(tokens_out) FROM {_source(db, start)} WHERE ts >= ? AND ts < ? "
                     "GROUP BY k, i",
                     (start, width, start, start + buckets * width))
    for key, i, count, tokens in cur:
        if 0 <= i < buckets:
            entry = models.setdefault(str(key), {"requests": [0] * buckets, "tokens": [0] * buckets})
            entry["requests"][i] += count
            entry["tokens"][i] += int(tokens or 0)
    return models


def failures(db: sqlite3.Connection, since: float, limit: int) -> list[dict]:
    """The latest `limit` failed requests, newest first (the ts index read backwards)."""
    cur = db.execute(f"SELECT ts, model, route, status, error FROM requests WHERE ts >= ? AND {FAILED} "
                     "ORDER BY ts DESC LIMIT ?", (since, limit))
    return [dict(zip(("ts", "model", "route", "status", "error"), row)) for row in cur]

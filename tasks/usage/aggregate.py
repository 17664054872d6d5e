"""Usage summed inside SQLite: `doit usage` and the dashboard never hold the rows themselves.

At 10 M rows, loading the rows took 75 s and 7.9 GB (then a MemoryError), and the dashboard's
refresh ~10 s of CPU and +530 MB in the gateway's own process. Here every figure is one GROUP BY
over the `ts` index; memory is bounded by the number of groups times the distinct latencies kept
for percentiles, never by the number of rows. Percentiles are nearest-rank over a latency histogram
kept to three significant digits: exact at the 0.1 ms `doit usage` prints below 100 ms, within 1 %
above. Python's sqlite3 releases the GIL while SQLite works, so a dashboard refresh in a
worker thread leaves LiteLLM's event loop free.
"""

from __future__ import annotations

import math
import sqlite3

from .recorder import CUT_OFF, UNPARSED

assert "'" not in CUT_OFF + UNPARSED  # written into the SQL below as literals
# as tests/usage_reference.failed: an error status, no status, or a 200 whose answer broke off (CUT_OFF) or whose stream
# carried an error event; a row whose bodies could not be read (UNPARSED) is not the request's failure
FAILED = (f"(status IS NULL OR status = 0 OR status >= 400 OR (error IS NOT NULL AND error <> '' AND "
          f"(error = '{CUT_OFF}' OR substr(error, 1, {len(UNPARSED)}) <> '{UNPARSED}')))")
NO_MODEL = "(no model)"  # the group of requests that name no model (model lists, `HEAD /` probes)
KEYS = {
    "model": f"COALESCE(NULLIF(model, ''), '{NO_MODEL}')",
    "account": "COALESCE(NULLIF(account, ''), 'unknown')",
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch', 'localtime')",
    "hour": "strftime('%Y-%m-%d %H:00', ts, 'unixepoch', 'localtime')",
    "": "''",
}
# three significant digits (0.1 ms below 100 ms): at most ~4,500 distinct values a group, 1 % at most off
LATENCY = ("CASE WHEN latency_ms IS NULL THEN NULL WHEN latency_ms < 100 THEN round(latency_ms, 1) "
           "WHEN latency_ms < 1000 THEN round(latency_ms) WHEN latency_ms < 10000 THEN round(latency_ms, -1) "
           "WHEN latency_ms < 100000 THEN round(latency_ms, -2) ELSE round(latency_ms, -3) END")
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
        if latency is not None:
            self.latency[latency] = self.latency.get(latency, 0) + count

    def merge(self, other: "_Fold") -> None:
        self.add(None, other.requests, other.errors, other.tokens)
        for latency, count in other.latency.items():
            self.latency[latency] = self.latency.get(latency, 0) + count

    def summary(self) -> dict:
        return {"requests": self.requests, "errors": self.errors,
                **dict(zip(TOKENS, self.tokens)), "p50_ms": self.percentile(50), "p95_ms": self.percentile(95)}

    def percentile(self, p: float) -> float | None:
        """Nearest rank: the smallest value with at least p % of the values at or below it."""
        n = sum(self.latency.values())
        if not n:
            return None
        rank, seen = max(1, math.ceil(p / 100 * n)), 0
        for latency in sorted(self.latency):
            seen += self.latency[latency]
            if seen >= rank:
                return round(float(latency), 1)
        return None  # unreachable: the ranks add up to n


def empty_db() -> sqlite3.Connection:
    """An in-memory database with the schema and no row: the same answers before the first request."""
    from .store import SCHEMA

    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    return db


def _source(db: sqlite3.Connection, since: float) -> str:
    """The table, read through the `ts` index only when the span is a small part of it: reading the
    whole table in order is ~4x faster than through the index when the span covers most rows."""
    total = db.execute("SELECT count(*) FROM requests").fetchone()[0]
    in_span = db.execute("SELECT count(*) FROM requests WHERE ts >= ?", (since,)).fetchone()[0]
    return "requests" if in_span * 4 < total else "requests NOT INDEXED"


def _folds(db: sqlite3.Connection, since: float, names: list[str]) -> dict[tuple, _Fold]:
    """One pass grouping by every name in `names` at once (and the latency bucket)."""
    keys = ", ".join(f"{KEYS[n]}" for n in names) or "''"
    cur = db.execute(f"SELECT {keys}, {LATENCY} AS l, count(*), sum({FAILED}), "
                     f"total(tokens_in), total(tokens_out), total(tokens_cached) "
                     f"FROM {_source(db, since)} WHERE ts >= ? GROUP BY {', '.join(str(i + 1) for i in range(len(names) or 1))}, l",
                     (since,))
    width = len(names) or 1
    out: dict[tuple, _Fold] = {}
    for row in cur:
        key, (latency, count, errors, *tokens) = tuple(str(k) for k in row[:width]), row[width:]
        out.setdefault(key, _Fold()).add(latency, count, errors, tokens)
    return out


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
    for i, group in enumerate(passes or [[]]):
        folds = _folds(db, since, group)
        if i == 0:  # every pass covers the same rows: the totals come from the first
            for fold in folds.values():
                total.merge(fold)
        for position, name in enumerate(group):
            by[name] = _ordered(_project(folds, position), name)
    return {"totals": total.summary(), "by": by}


def series(db: sqlite3.Connection, start: float, buckets: int, width: int) -> dict[str, dict]:
    """Requests and tokens (in + out) per bucket per model from `start`, oldest bucket first."""
    cur = db.execute(f"SELECT {KEYS['model']} AS k, CAST((ts - ?) / ? AS INTEGER) AS i, count(*), "
                     f"total(tokens_in) + total(tokens_out) FROM {_source(db, start)} WHERE ts >= ? AND ts < ? "
                     "GROUP BY k, i",
                     (start, width, start, start + buckets * width))
    models: dict[str, dict] = {}
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

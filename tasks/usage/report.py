"""`doit usage`: what went through the gateway, grouped by model, day, hour or account.

Read-only on the database (WAL: LiteLLM's recorder keeps writing meanwhile). Model names are the
clients' text: escaped before a terminal sees them; CSV cells that a spreadsheet would run as a
formula are quoted.
"""

from __future__ import annotations

import math
import re
import time

from ..base.errors import FlowgateError
from ..base.paths import Paths
from .recorder import CUT_OFF, UNPARSED

BY = ("model", "day", "hour", "account")
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FIELDS = ("requests", "errors", "tokens_in", "tokens_out", "tokens_cached", "p50_ms", "p95_ms")


def parse_since(text: str) -> float:
    """`24h`, `7d`, `30m`, `2w` -> seconds; anything else is the user's error."""
    found = re.fullmatch(r"\s*(\d{1,6})\s*([mhdw])\s*", text or "")
    if not found or int(found.group(1)) == 0:
        raise FlowgateError(f"--since {text!r} is not a duration", "give a number and a unit: 30m, 24h, 7d or 2w")
    return int(found.group(1)) * UNITS[found.group(2)]


def load(paths: Paths, since: float) -> list[dict]:
    """The rows of the last `since` seconds ([] when nothing was recorded yet)."""
    import sqlite3

    from . import store

    if not paths.usage_db.exists():
        return []
    try:
        db = store.connect(paths.usage_db, readonly=True)
        try:
            return store.rows_since(db, time.time() - since)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise FlowgateError(f"cannot read {paths.usage_db}: {exc}", "see `uv run doit doctor`") from None


def query(paths: Paths, since: float, wanted: list[str]) -> dict:
    """{"totals", "by": {grouping: [group, ...]}} of the last `since` seconds, summed by SQLite
    (tasks.usage.aggregate): bounded memory whatever the number of rows."""
    import sqlite3

    from . import aggregate, store

    if not paths.usage_db.exists():
        return aggregate.report(_empty_db(), 0, wanted)
    try:
        db = store.connect(paths.usage_db, readonly=True)
        try:
            return aggregate.report(db, time.time() - since, wanted)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise FlowgateError(f"cannot read {paths.usage_db}: {exc}", "see `uv run doit doctor`") from None


def _empty_db():
    """An in-memory database with the schema and no row: the same answer shape before the first request."""
    import sqlite3

    from . import store

    db = sqlite3.connect(":memory:")
    db.executescript(store.SCHEMA)
    return db


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)


def failed(row: dict) -> bool:
    """An error status, no status, or a 200 whose answer failed midway: it broke off
    (recorder.CUT_OFF) or its stream carried an error event."""
    error = row.get("error")
    return (not row.get("status") or row["status"] >= 400
            or bool(error and (error == CUT_OFF or not error.startswith(UNPARSED))))


def key_of(row: dict, by: str) -> str:
    if by == "model":
        return row.get("model") or "-"
    if by == "account":
        return row.get("account") or "unknown"
    stamp = time.localtime(row["ts"])
    return time.strftime("%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:00", stamp)


def group(rows: list[dict], by: str) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(key_of(row, by), []).append(row)
    out = [{by: key, **summary(mine)} for key, mine in groups.items()]
    return sorted(out, key=lambda g: g[by] if by in ("day", "hour") else (-g["requests"], g[by]))


def table(groups: list[dict], by: str) -> str:
    from ..base.terminal import printable

    headers = [by, "requests", "errors", "tokens in", "tokens out", "cached", "p50 ms", "p95 ms"]
    rows = [[printable(str(g[by]))] + ["-" if g[f] is None else f"{g[f]:g}" for f in FIELDS] for g in groups]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
                     for row in [headers, *rows])


def as_csv(groups: list[dict], by: str) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([by, *FIELDS])
    for g in groups:
        name = str(g[by])
        # a spreadsheet runs a cell starting with these as a formula (TAB and CR too): quote it as text
        writer.writerow(["'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") and len(name) > 1 else name,
                         *("" if g[f] is None else g[f] for f in FIELDS)])
    return out.getvalue().rstrip("\n")


def summary(rows: list[dict]) -> dict:
    """Totals over every row, the same fields as a group's."""
    latencies = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
    return {"requests": len(rows), "errors": sum(1 for r in rows if failed(r)),
            **{t: sum(r.get(t) or 0 for r in rows) for t in ("tokens_in", "tokens_out", "tokens_cached")},
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95)}

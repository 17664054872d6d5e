"""The row-by-row sums `doit usage` used before it summed inside SQLite (tasks.usage.aggregate):
kept as the reference the SQL is held to (tests/unit/usage/test_report.py) and as bench/usage.py's
"before" figures. Not used by FlowGate itself."""

from __future__ import annotations

import math
import time

from tasks.base.paths import Paths
from tasks.gateway.usage.recorder import CUT_OFF, UNPARSED


def load(paths: Paths, since: float) -> list[dict]:
    """The rows of the last `since` seconds ([] when nothing was recorded yet)."""
    from tasks.gateway.usage import store

    if not paths.usage_db.exists():
        return []
    db = store.connect(paths.usage_db, readonly=True)
    try:
        return store.rows_since(db, time.time() - since)
    finally:
        db.close()


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
        return row.get("model") or "(no model)"
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


def summary(rows: list[dict]) -> dict:
    """Totals over every row, the same fields as a group's."""
    latencies = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
    return {"requests": len(rows), "errors": sum(1 for r in rows if failed(r)),
            **{t: sum(r.get(t) or 0 for r in rows) for t in ("tokens_in", "tokens_out", "tokens_cached")},
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95)}

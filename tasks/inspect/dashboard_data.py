"""What the dashboard shows, as one JSON-able dict: the services as `doit status` reports them, the
active profile, each account's quota, and the usage of the last 24 h and 7 d (charts per hour per
model, per-model totals, error rate, latency percentiles, the latest failures).

Runs in a worker thread of LiteLLM's process (tasks.gateway.dashboard.routes), never on its event loop: it probes
services, may ask the providers for quota (bounded by quota.STATUS_WAIT) and reads SQLite.
Text is left as the peers wrote it: the page puts it in the DOM as text, never as markup.
"""

from __future__ import annotations

import time

from ..base.paths import Paths

FAILURES = 10  # latest failures shown
EVENTS = 10  # latest stack events shown
QUIET_EVENTS = {"ready", "start", "stop", "reload", "swap"}  # what every `up` and profile switch writes
SPANS = {"24h": (24, 3600), "7d": (7 * 24, 3600)}  # buckets, seconds per bucket: per hour in both


def _stack(paths: Paths) -> dict | None:
    import json

    try:
        return json.loads(paths.stack_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def services(paths: Paths, stack: dict | None) -> dict:
    from . import status

    report = status.collect(paths, stack)
    keep = ("service", "state", "ready", "pid", "address", "version", "restarts", "problem")
    return {"ready": report["ready"], "profile": report["profile"], "pending": report["pending"],
            "services": [{k: s.get(k) for k in keep} for s in report["services"]],
            "accounts": report["accounts"], "quota": _quota(report.get("quota"))}


def _quota(data: dict | None) -> dict:
    from ..accounts.quota import Quota, as_json

    if not data:
        return {"accounts": [], "error": None}
    if "error" in data:
        return {"accounts": [], "error": data["error"]}
    out = []
    for entry in data["accounts"]:
        q = Quota.from_dict(entry)
        if q is not None:
            out.append({"account": q.account, "provider": q.provider, "label": q.label, **as_json(q)})
    return {"accounts": out, "error": None}


def series(db, buckets: int, width: int, now: float) -> dict:
    """Requests and tokens (in + out) per bucket per model, oldest bucket first; labels in local time."""
    from ..usage import aggregate

    start = (int(now) // width + 1) * width - buckets * width
    labels = [time.strftime("%H:00" if buckets <= 24 else "%m-%d %H:00", time.localtime(start + i * width))
              for i in range(buckets)]
    return {"labels": labels, "models": aggregate.series(db, start, buckets, width)}


def usage(paths: Paths, now: float | None = None) -> dict:
    """Summed by SQLite (tasks.usage.aggregate): a few MB and a few GROUP BYs whatever the rows,
    where loading 7 days of rows cost +530 MB and ~10 s of CPU per refresh at 1 M rows."""
    import sqlite3

    from ..usage import aggregate
    from ..gateway.usage import store

    now = time.time() if now is None else now
    out: dict = {"error": None, "recorder": store.read_health(paths)}
    try:
        db = store.connect(paths.usage_db, readonly=True) if paths.usage_db.exists() else aggregate.empty_db()
        try:
            for span, (buckets, width) in SPANS.items():
                found = aggregate.report(db, now - buckets * width, ["model"])
                out[span] = {"totals": found["totals"], "models": found["by"]["model"],
                             "series": series(db, buckets, width, now)}
            failed = aggregate.failures(db, now - SPANS["7d"][0] * SPANS["7d"][1], FAILURES)
        finally:
            db.close()
    except sqlite3.Error as exc:
        return {"error": f"cannot read {paths.usage_db}: {exc} (see `uv run doit doctor`)"}
    out["failures"] = [{"time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"])), "model": r.get("model"),
                        "route": r.get("route"), "status": r.get("status"), "error": r.get("error")} for r in failed]
    return out


def stack_events(paths: Paths) -> list[dict]:
    """The latest upgrades, rollbacks, switches, crashes, logins... newest first, as the peers wrote them."""
    from datetime import datetime

    from ..stack import events

    out = []
    for entry in reversed(events.tail(paths)):
        if entry.get("event") in QUIET_EVENTS:
            continue
        try:
            when = datetime.fromisoformat(str(entry.get("ts"))).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            when = "?"
        out.append({"time": when, **{k: str(entry.get(k) or "") for k in ("event", "service", "result", "detail")}})
        if len(out) == EVENTS:
            break
    return out


def member_keys(paths: Paths) -> dict:
    """The member keys by name (never a secret, nor its first characters), limits, spend this period, last use."""
    from ..base.errors import FlowgateError
    from ..keys.manage import listing_with_spend
    from ..services.postgres import control_env

    keep = ("name", "state", "models", "rpm", "tpm", "budget", "period", "spend_usd", "spend_error", "spend_unpriced_tokens",
            "requests_this_period", "last_use", "expires")
    try:
        return {"keys": [{k: r[k] for k in keep} for r in listing_with_spend(paths, control_env(paths))], "error": None}
    except FlowgateError as exc:
        return {"keys": [], "error": exc.one_line()}


def pool(paths: Paths) -> dict | None:
    """The steward's state (.router/state/pool.json: each account's state and windows with their
    forecast), or None when missing, invalid or oversized: then no state and no forecast is shown."""
    from ..gateway.handoff import read_json  # capped: a damaged or oversized file is None

    found = read_json(paths.state_dir / "pool.json")
    if not isinstance(found, dict) or not isinstance(found.get("accounts"), list):
        return None
    accounts = []
    for a in found["accounts"]:  # what the page reads, of the types it reads them as: a bad entry is left out
        if isinstance(a, dict) and isinstance(a.get("name"), str):
            windows = [{"name": str(w.get("name") or "?"), "used_percent": float(w["used_percent"]),
                        "resets_at": _epoch(w.get("resets_at")), "full_at": _epoch(w.get("full_at"))}
                       for w in a.get("windows") or [] if isinstance(w, dict) and _epoch(w.get("used_percent")) is not None]
            accounts.append({**{k: str(a.get(k) or "") for k in ("name", "provider", "label", "state", "reason")},
                             "until": _epoch(a.get("until")), "windows": windows})
    return {"updated": _epoch(found.get("updated")), "accounts": accounts}


def _epoch(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def accounts_usage(paths: Paths) -> dict:
    """Requests per account (24 h, 7 d), tokens and savings when the usage queue is read (tasks.usage.accounts)."""
    import sqlite3

    from ..usage import accounts

    try:
        return {"error": None, **accounts.dashboard(paths)}
    except sqlite3.Error as exc:
        return {"error": f"cannot read {paths.usage_db}: {exc} (see `uv run doit doctor`)"}


def collect(paths: Paths) -> dict:
    stack = _stack(paths)
    return {"generated_at": time.strftime("%Y-%m-%d %H:%M:%S"), **services(paths, stack), "usage": usage(paths),
            "pool": pool(paths), "per_account": accounts_usage(paths), "keys": member_keys(paths),
            "events": stack_events(paths)}


def main(argv: list[str] | None = None) -> int:
    """The data as JSON on stdout, for the gateway's dashboard route."""
    import argparse
    import json
    import sys
    from pathlib import Path

    from ..base.paths import ROOT

    parser = argparse.ArgumentParser(prog="python -m tasks.inspect.dashboard_data")
    parser.add_argument("--home", required=True)
    paths = Paths(root=ROOT, home=Path(parser.parse_args(argv).home))
    sys.stdout.write(json.dumps(collect(paths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

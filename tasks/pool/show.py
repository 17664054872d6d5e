"""The pool as `doit status`, `doit up` and `doit accounts` show it: from the steward's state file
and the event log, never a request (tasks.accounts.pool_state)."""

from __future__ import annotations

import time

from ..base.paths import Paths

EVENTS_SHOWN = 5
EVENTS_MAX_AGE = 6 * 3600.0


def status(paths: Paths, stack: dict | None) -> dict | None:
    """For `doit status`: None when the steward is not wanted (CLIProxyAPI off, steering off)."""
    from ..accounts import pool_state
    from ..config.accountspec import steering
    from .service import running, wanted

    if not wanted(stack):
        return None
    settings = steering(stack)
    data = pool_state.read(paths)
    return {"steering": settings.steering, "threshold": settings.threshold, "pid": running(paths),
            "fresh": pool_state.fresh(data), "accounts": (data or {}).get("accounts") or [],
            "steered": (data or {}).get("steered") or {}, "events": recent_events(paths)}


def recent_events(paths: Paths, now: float | None = None) -> list[dict]:
    from datetime import datetime

    from ..stack import events

    now = time.time() if now is None else now
    out = []
    for entry in events.tail(paths, having=b'"event": "steer"'):  # only the steward's lines parsed: `status` pays this
        if entry.get("event") != "steer":
            continue
        try:
            at = datetime.fromisoformat(str(entry.get("ts"))).timestamp()
        except ValueError:
            continue
        if now - at <= EVENTS_MAX_AGE:
            out.append({"at": at, "result": str(entry.get("result") or ""), "detail": str(entry.get("detail") or "")})
    return out[-EVENTS_SHOWN:]


def _clock(epoch) -> str:
    return time.strftime("%H:%M", time.localtime(epoch)) if isinstance(epoch, (int, float)) else "its reset"


def _fullest(entry: dict) -> str:
    windows = [w for w in entry.get("windows") or [] if isinstance(w, dict) and isinstance(w.get("used_percent"), (int, float))]
    if not windows:
        return ""
    w = max(windows, key=lambda w: w["used_percent"])
    return f"{w.get('name')} {w['used_percent']:g} %"


def lines(data: dict | None) -> list[str]:
    """`steering: on, threshold 90 %; codex a@x out until 15:40 (5h 92 %)`, then the exhausted
    providers and the latest decisions. Peer text (labels) is escaped by the caller's printable."""
    if data is None:
        return []
    if data["pid"] is None:
        return ["steering: the steward is not running: `uv run doit up` starts it"]
    head = f"steering: on, threshold {data['threshold']:g} %" if data["steering"] else "steering: off"
    outs = [f"{e.get('provider')} {e.get('label') or e.get('name')} out until {_clock(e.get('until'))}"
            + (f" ({_fullest(e)})" if _fullest(e) else "")
            for e in data["accounts"] if isinstance(e, dict) and e.get("state") == "out"]
    out = [head + ("; " + "; ".join(outs) if outs else "")]
    if not data["fresh"]:
        out.append("steering: the steward has not written its state for a while: see `uv run doit logs steward`")
    providers: dict[str, list] = {}
    for model, entry in sorted(data["steered"].items()):
        if isinstance(entry, dict):
            providers.setdefault(str(entry.get("provider")), []).append((model, entry))
    for provider, models in providers.items():
        resets = min((e["resets_at"] for _, e in models if isinstance(e.get("resets_at"), (int, float))), default=None)
        routes = ", ".join(f"{m} -> {e['fallback']}" if e.get("fallback") else f"{m} answers 429" for m, e in models)
        out.append(f"steering: every {provider} account is out until {_clock(resets)}: {routes}")
    for event in data["events"]:
        out.append(f"  {time.strftime('%H:%M:%S', time.localtime(event['at']))} {event['result']}: {event['detail']}")
    return out

"""Usage per CLIProxyAPI account and what the subscriptions saved, from the ledger's tables
(tasks.usage.ledger; schema 4 of the usage database).

Requests per account come from the binary's per-account totals (always recorded by the steward),
hour by hour: a span's first hour is counted whole. Tokens per account, and the savings, need
the usage queue's records (`accounts.read_usage_queue: true`).

Savings: the API list price of the tokens that CLIProxyAPI's OAuth accounts served (a record whose
auth_type is `oauth`: a login's subscription), priced by LiteLLM's offline price map the way member
keys' spend is (tasks.gateway.keys.spend.cost). Not counted: CLIProxyAPI's API-key accounts and
LiteLLM's API-key passthrough models (those are paid at list price already). A model the map does
not price is named, with its tokens, never guessed.
"""

from __future__ import annotations

import datetime
import sqlite3
import time

NEEDS_QUEUE = "tokens per account need accounts.read_usage_queue: true (see docs/usage.md, \"Usage per account\")"
API_KEY = "(API key)"
DAY = "strftime('%Y-%m-%d', ts, 'unixepoch', 'localtime')"


def week_start(now: float) -> float:
    """Monday 00:00 local time of the week holding `now`."""
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday - t.tm_wday, 0, 0, 0, 0, 0, -1))


def _tables(db: sqlite3.Connection) -> bool:
    """Whether the database has the ledger's tables (a schema-3 database read-only has none)."""
    return db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'account_tokens'").fetchone()[0] == 1


def _key(name, label, provider) -> tuple:
    return (name or "", label or name or API_KEY, provider or "?")  # '' and NULL: an unnamed account


def by_account(db: sqlite3.Connection, since: float, prices: dict) -> dict:
    """{"accounts": [{account, name, provider, requests, errors, tokens_in, tokens_out, tokens_cached,
    usd, unpriced_tokens}], "tokens_known": bool, "note": str | None}, most requests first. The token
    fields are None when no usage-queue record covers the span. Whole hours: the first one counted whole."""
    if not _tables(db):
        return {"accounts": [], "tokens_known": False, "note": NEEDS_QUEUE}
    out: dict[tuple, dict] = {}
    first = int(since // 3600)

    def entry(key):
        return out.setdefault(key, {"account": key[1], "name": key[0], "provider": key[2], "requests": 0, "errors": 0,
                                    "tokens_in": None, "tokens_out": None, "tokens_cached": None, "usd": None,
                                    "unpriced_tokens": None})

    for name, label, provider, success, failed in db.execute(
            "SELECT name, max(label), max(provider), sum(success), sum(failed) FROM account_hourly WHERE hour >= ? "
            "GROUP BY name", (first,)):
        e = entry(_key(name, label, provider))
        e["requests"], e["errors"] = int(success) + int(failed), int(failed)
    queued = db.execute("SELECT name, max(label), provider, model, sum(requests), sum(failed), sum(tokens_in), "
                        "sum(tokens_out), sum(tokens_cached) FROM account_tokens WHERE hour >= ? "
                        "GROUP BY name, CASE WHEN name = '' THEN provider END, model", (first,)).fetchall()
    from ..gateway.keys.spend import cost

    counted = {k for k, e in out.items() if e["requests"]}
    for name, label, provider, model, count, failed, t_in, t_out, t_cached in queued:
        key = _key(name, label, provider)
        e = entry(key)
        if key not in counted:  # an account the counters did not see (an API key): the records count it
            e["requests"] += count
            e["errors"] += int(failed or 0)
        for field, value in (("tokens_in", t_in), ("tokens_out", t_out), ("tokens_cached", t_cached)):
            e[field] = (e[field] or 0) + value
        usd = cost(prices, model, t_in, t_out, t_cached)
        e["usd"] = (e["usd"] or 0.0) + (usd or 0.0)
        e["unpriced_tokens"] = (e["unpriced_tokens"] or 0) + (0 if usd is not None else t_in + t_out)
    accounts = sorted(out.values(), key=lambda e: (-e["requests"], e["provider"], e["account"]))
    for e in accounts:
        if e["usd"] is not None:
            e["usd"] = round(e["usd"], 6)
    return {"accounts": accounts, "tokens_known": bool(queued), "note": None if queued else NEEDS_QUEUE}


def _subscription_hours(db: sqlite3.Connection, first: int):
    """(local day, hour, name, label, provider, model, requests, tokens in, out, cached) of the OAuth
    accounts' records from UTC hour `first`: the hourly sums, and the rows of an hour that straddles
    two local days (a time zone offset by 30 or 45 minutes)."""
    from .aggregate import _labels

    days: dict[int, tuple | None] = {}
    straddling = set()
    for hour, name, label, provider, model, count, t_in, t_out, t_cached in db.execute(
            "SELECT hour, name, max(label), provider, model, sum(requests), sum(tokens_in), sum(tokens_out), "
            "sum(tokens_cached) FROM account_tokens WHERE hour >= ? AND oauth = 1 GROUP BY 1, 2, 4, 5", (first,)):
        if hour not in days:
            days[hour] = _labels(hour, ["day"])
        if days[hour] is None:
            straddling.add(hour)
            continue
        yield days[hour][0], hour, name, label, provider, model, count, t_in, t_out, t_cached
    for hour in sorted(straddling):
        for row in db.execute(f"SELECT {DAY}, name, max(label), provider, model, count(*), total(tokens_in), "
                              "total(tokens_out), total(tokens_cached) FROM account_requests WHERE ts >= ? AND ts < ? "
                              "AND oauth = 1 GROUP BY 1, 2, 4, 5", (hour * 3600, (hour + 1) * 3600)):
            yield row[0], hour, *row[1:6], *(int(v) for v in row[6:])


def savings(db: sqlite3.Connection, since: float, prices: dict, now: float | None = None) -> dict:
    """What the subscriptions served at API list price: in the span from `since` (whole hours), this
    week (from Monday local), per model, account and day; the models without a price, with their tokens."""
    now = time.time() if now is None else now
    week = week_start(now)
    out = {"usd": 0.0, "week_usd": 0.0, "week_start": time.strftime("%Y-%m-%d", time.localtime(week)),
           "by_model": [], "by_account": [], "by_day": [], "by_week": [], "unpriced": [], "known": False, "note": None}
    if not _tables(db):
        out["note"] = NEEDS_QUEUE.replace("tokens per account", "savings")
        return out
    from ..gateway.keys.spend import cost

    first = int(since // 3600)
    models: dict[str, dict] = {}
    accounts: dict[tuple, float] = {}
    days: dict[str, float] = {}
    unpriced: dict[str, int] = {}
    for day, hour, name, label, provider, model, count, t_in, t_out, t_cached in _subscription_hours(
            db, min(first, int(week // 3600))):
        model = model or "(no model)"
        usd = cost(prices, model, t_in, t_out, t_cached)
        if day >= out["week_start"]:
            out["week_usd"] += usd or 0.0
        if hour < first:
            continue
        if usd is None:
            unpriced[model] = unpriced.get(model, 0) + t_in + t_out
        out["usd"] += usd or 0.0
        m = models.setdefault(model, {"model": model, "requests": 0, "tokens_in": 0, "tokens_out": 0, "tokens_cached": 0,
                                      "usd": 0.0})
        m["requests"] += count
        m["tokens_in"], m["tokens_out"], m["tokens_cached"] = m["tokens_in"] + t_in, m["tokens_out"] + t_out, m["tokens_cached"] + t_cached
        m["usd"] += usd or 0.0
        key = _key(name, label, provider)
        accounts[key] = accounts.get(key, 0.0) + (usd or 0.0)
        days[day] = days.get(day, 0.0) + (usd or 0.0)
    out["known"] = bool(db.execute("SELECT 1 FROM account_tokens WHERE hour >= ? LIMIT 1", (first,)).fetchone())
    if not out["known"]:
        out["note"] = NEEDS_QUEUE.replace("tokens per account", "savings")
    for m in models.values():
        m["priced"] = m["model"] not in unpriced
        m["usd"] = round(m["usd"], 6)
    out["by_model"] = sorted(models.values(), key=lambda m: (-m["usd"], m["model"]))
    out["by_account"] = [{"account": k[1], "name": k[0], "provider": k[2], "usd": round(v, 6)}
                         for k, v in sorted(accounts.items(), key=lambda kv: -kv[1])]
    out["by_day"] = [{"day": d, "usd": round(v, 6)} for d, v in sorted(days.items())]
    weeks: dict[str, float] = {}
    for d, v in days.items():  # each local day into its week, named by its Monday
        monday = datetime.date.fromisoformat(d) - datetime.timedelta(days=datetime.date.fromisoformat(d).weekday())
        weeks[monday.isoformat()] = weeks.get(monday.isoformat(), 0.0) + v
    out["by_week"] = [{"week": w, "usd": round(v, 6)} for w, v in sorted(weeks.items())]
    out["unpriced"] = [{"model": m, "tokens": t} for m, t in sorted(unpriced.items())]
    out["usd"], out["week_usd"] = round(out["usd"], 6), round(out["week_usd"], 6)
    return out


def read(paths, since_seconds: float, now: float | None = None) -> dict:
    """{"by_account": by_account(...), "savings": savings(...)} of the last `since_seconds`."""
    return _snapshot(paths, now, lambda db, prices, now: {
        "by_account": by_account(db, now - since_seconds, prices), "savings": savings(db, now - since_seconds, prices, now)},
        since_seconds)


def dashboard(paths, now: float | None = None) -> dict:
    """The dashboard's: per account over 24 h and 7 d, and the savings of 7 d (and this week)."""
    return _snapshot(paths, now, lambda db, prices, now: {
        "24h": by_account(db, now - 86400, prices), "7d": by_account(db, now - 7 * 86400, prices),
        "savings": savings(db, now - 7 * 86400, prices, now)}, 7 * 86400)


def _snapshot(paths, now: float | None, read_all, since_seconds: float) -> dict:
    """`read_all(db, prices, now)` over one read-only snapshot (an empty database before the first
    write); the price map is read only when there are tokens to price."""
    from ..gateway.keys.spend import price_map
    from ..gateway.usage import store
    from .aggregate import empty_db

    now = time.time() if now is None else now
    db = store.connect(paths.usage_db, readonly=True) if paths.usage_db.exists() else empty_db()
    try:
        db.execute("BEGIN")
        since = min(now - since_seconds, week_start(now))
        queued = _tables(db) and db.execute("SELECT 1 FROM account_tokens WHERE hour >= ? LIMIT 1",
                                            (int(since // 3600),)).fetchone()
        prices = price_map() if queued else {}  # ~3 MB of JSON: read only when there are tokens to price
        found = read_all(db, prices, now)
        db.execute("COMMIT")
        return found
    finally:
        db.close()

"""Usage per CLIProxyAPI account (issue 29), written into the usage database (schema 4:
tasks.gateway.usage.store.ACCOUNTS) by the steward every cycle.

Two sources, because the gateway never learns which account served a request:
- `note_counters`: the binary's own per-account totals (`success`, `failed` in GET auth-files).
  Reading them takes nothing from anyone, so any number of FlowGate readers may do it. What is
  recorded is the growth since the last reading, in the hour of the reading. The totals live in the
  binary's memory: a new binary process (pid and create time from its run record) starts them at 0
  again, and its totals are counted whole. Within one process a lower total than the one kept is a
  reading older than one another reader already recorded: it adds nothing (the kept total is the
  highest seen), so two readers never count a request twice.
- `drain_queue`: the binary's usage queue (GET usage-queue), one record per request with the
  account's auth_index, the model and the tokens. Popping is destructive: only when the user lets
  FlowGate be its one reader (`accounts.read_usage_queue: true`). Records are kept per request.
Accounts are named (file name, provider, label, OAuth or API key) when recorded, so a report still
names an account removed since. Nothing else of a record is kept: never its `api_key`, client IP
or headers.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from ..base.paths import Paths

QUEUE_ROUTE = "usage-queue"
MAX_COUNT = 10**12


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT else None


def instance(paths: Paths) -> str:
    """The running binary's process: its launcher (pid:create time, from the run record) and the
    launcher's current child (its state file: a crash restarted by the launcher is a new process);
    "" when unknown."""
    from ..stack.launch.launcher_files import read_json, state_path
    from ..stack.process.records import read_record

    record = read_record(paths.record("cliproxy"))
    if record is None:
        return ""
    state = read_json(state_path(paths, "cliproxy", record.pid)) or {}
    child = state.get("service_pid")
    return f"{record.pid}:{record.create_time}:{child if isinstance(child, int) else ''}"


def _account(entry: dict):
    from ..accounts.inventory import Account

    return Account.from_file(entry)


def _retention_days(paths: Paths) -> int:
    from ..config.usagespec import retention_days
    from ..gateway.handoff import read_json

    return retention_days(read_json(paths.stack_json))


def _writer(paths: Paths):
    from ..gateway.usage import store

    return store.connect(paths.usage_db)


def _name_accounts(db, accounts, now: float, oauth: int = 1) -> None:
    for a in accounts:
        if a.auth_index:
            db.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?)",
                       (a.auth_index, a.name, a.provider, a.label, oauth, now))


def growth(kept: tuple | None, current: str, success: int, failed: int) -> tuple[int, int, int, int]:
    """(success added, failed added, success kept, failed kept) for a reading of the totals, given
    the kept (instance, success, failed) of the account, or None on its first reading."""
    if kept is None:
        return success, failed, success, failed  # a new account starts at 0; older totals land in this hour
    instance_kept, s_kept, f_kept = kept
    restarted = instance_kept != current if current and instance_kept else (success < s_kept or failed < f_kept)
    if restarted:
        return success, failed, success, failed
    return max(0, success - s_kept), max(0, failed - f_kept), max(success, s_kept), max(failed, f_kept)


def note_counters(paths: Paths, files: list[dict], now: float | None = None) -> None:
    """Record each listed account's requests since the last reading (see the module's docstring)."""
    now = time.time() if now is None else now
    current = instance(paths)
    readings = []
    for entry in files:
        if not isinstance(entry, dict):
            continue
        success, failed = _count(entry.get("success")), _count(entry.get("failed"))
        account = _account(entry)
        if account.name and (success is not None or failed is not None):
            readings.append((account, success or 0, failed or 0))
    hour = int(now // 3600)
    db = _writer(paths)
    try:
        if not _changed(db, readings, current):  # an idle pool: a read, no write (the steward cycles often)
            return
        with db:
            db.execute("BEGIN IMMEDIATE")  # the reading and the kept totals change together: readers take turns
            _name_accounts(db, [r[0] for r in readings], now)
            for account, success, failed in readings:
                kept = db.execute("SELECT instance, success, failed FROM account_counters WHERE name = ?",
                                  (account.name,)).fetchone()
                added_s, added_f, keep_s, keep_f = growth(kept, current, success, failed)
                db.execute("INSERT OR REPLACE INTO account_counters VALUES (?, ?, ?, ?, ?)",
                           (account.name, current, keep_s, keep_f, now))
                if added_s or added_f:
                    db.execute("INSERT INTO account_hourly VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hour, name) DO UPDATE "
                               "SET success = success + excluded.success, failed = failed + excluded.failed, "
                               "provider = excluded.provider, label = excluded.label",
                               (hour, account.name, account.provider, account.label, added_s, added_f))
            _prune(db, _retention_days(paths), now)
    finally:
        db.close()


def _changed(db, readings: list, current: str) -> bool:
    """Whether a reading differs from what is kept (totals, process, or an account's name)."""
    kept = {name: (instance, s, f) for name, instance, s, f in
            db.execute("SELECT name, instance, success, failed FROM account_counters")}
    named = {row[0]: row[1:] for row in db.execute("SELECT auth_index, name, provider, label FROM accounts")}
    return any(kept.get(a.name) != (current, s, f) or (a.auth_index and named.get(a.auth_index) != (a.name, a.provider, a.label))
               for a, s, f in readings)


def _prune(db, retention_days: int, now: float) -> None:
    before = int((now - retention_days * 86400) // 3600)
    db.execute("DELETE FROM account_hourly WHERE hour < ?", (before,))
    db.execute("DELETE FROM account_tokens WHERE hour < ?", (before,))
    db.execute("DELETE FROM account_requests WHERE ts < ?", (before * 3600,))


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _timestamp(value, default: float) -> float:
    """RFC 3339 as Go writes it (nanoseconds, Z or an offset) -> epoch seconds."""
    if not isinstance(value, str) or len(value) > 64:
        return default
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00"))).timestamp()
    except ValueError:
        return default


def parse_record(record, now: float) -> dict | None:
    """What a usage-queue record tells (never its api_key, client address or headers)."""
    if not isinstance(record, dict):
        return None
    tokens = record.get("tokens") if isinstance(record.get("tokens"), dict) else {}
    cached = [_count(tokens.get(k)) for k in ("cache_read_tokens", "cached_tokens")]
    model = record.get("model") if isinstance(record.get("model"), str) else None
    alias = record.get("alias") if isinstance(record.get("alias"), str) else None
    return {"ts": _timestamp(record.get("timestamp"), now), "auth_index": str(record.get("auth_index") or "")[:100],
            "model": (model if model and model != "unknown" else alias or model or "")[:200],
            "tokens_in": _count(tokens.get("input_tokens")), "tokens_out": _count(tokens.get("output_tokens")),
            "tokens_cached": max([c for c in cached if c is not None], default=None),
            "failed": int(record.get("failed") is True),
            "provider": str(record.get("provider") or "")[:60] or None,
            "oauth": {"oauth": 1, "apikey": 0}.get(str(record.get("auth_type") or "").lower())}


def drain_queue(paths: Paths, client, limit: int = 500) -> int:
    """Pop up to `limit` records from the binary's usage queue and keep them per request; how many.
    Destructive for other readers of the queue: only with `accounts.read_usage_queue: true`."""
    now = time.time()
    records = [r for r in (parse_record(x, now) for x in client.get_list(QUEUE_ROUTE, count=max(1, int(limit))))
               if r is not None]
    if not records:
        return 0
    db = _writer(paths)
    try:
        known = dict(((i, (n, p, lb, o)) for i, n, p, lb, o in
                      db.execute("SELECT auth_index, name, provider, label, oauth FROM accounts")))
        missing = {r["auth_index"] for r in records if r["auth_index"] and r["auth_index"] not in known}
        if missing:  # an account this ledger has not named yet: the listing names it (API keys are not in it)
            listed = [_account(f) for f in client.get("auth-files").get("files") or [] if isinstance(f, dict)]
            known.update((a.auth_index, (a.name, a.provider, a.label, 1)) for a in listed if a.auth_index)
        with db:
            db.execute("BEGIN IMMEDIATE")
            if missing:
                _name_accounts(db, [a for a in listed if a.auth_index in missing], now)
            rows = [(r["ts"], r["auth_index"], *_named(known.get(r["auth_index"]), r), r["model"], r["tokens_in"],
                     r["tokens_out"], r["tokens_cached"], r["failed"]) for r in records]
            db.executemany(
                "INSERT INTO account_requests (ts, auth_index, name, provider, label, oauth, model, tokens_in, "
                "tokens_out, tokens_cached, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            _fold(db, rows)
    finally:
        db.close()
    return len(records)


def _fold(db, rows: list[tuple]) -> None:
    """The records into `account_tokens` (per UTC hour, account, model), in their transaction."""
    sums: dict[tuple, list] = {}
    for ts, _, name, provider, label, oauth, model, t_in, t_out, t_cached, failed in rows:
        key = (int(ts // 3600), name or "", provider or "", -1 if oauth is None else oauth, model or "")
        entry = sums.setdefault(key, [label or "", 0, 0, 0, 0, 0])
        for i, value in enumerate((1, failed, t_in, t_out, t_cached), 1):
            entry[i] += value or 0
    db.executemany("INSERT INTO account_tokens (hour, name, provider, oauth, model, label, requests, failed, tokens_in, "
                   "tokens_out, tokens_cached) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (hour, name, provider, oauth, model) DO UPDATE SET label = excluded.label, "
                   "requests = requests + excluded.requests, failed = failed + excluded.failed, "
                   "tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out, "
                   "tokens_cached = tokens_cached + excluded.tokens_cached", [(*k, *v) for k, v in sums.items()])


def _named(known: tuple | None, record: dict) -> tuple:
    """(name, provider, label, oauth) of a record's account. The record's auth_type says whether it
    was a subscription (an API key's account is not in the listing: it stays unnamed)."""
    name, provider, label, oauth = known if known is not None else (None, record["provider"], None, None)
    return name, provider, label, record["oauth"] if record["oauth"] is not None else oauth

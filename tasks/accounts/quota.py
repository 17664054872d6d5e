"""Quota per account: each provider's own windows, read through the binary's `api-call` route with the
account's `auth_index` (the binary puts the account's token in place of `$TOKEN$`).

Answers are kept in `.router/state/quota.json` for CACHE_SECONDS (60 s): `doit status` reads the
file while it is fresh and asks no one; when it is stale it asks again, every account at once, within
STATUS_WAIT seconds. A failure (401, timeout, the provider unreachable) is a note on its account.
"""

from __future__ import annotations

import json
import time
from collections import namedtuple

from ..base.errors import FlowgateError
from ..base.paths import Paths
from . import quota_parse
from .quota_parse import Window

CACHE_SECONDS = 60.0  # how long an answer is shown without asking again
STATUS_WAIT = 3.0  # `doit status`: the most it waits for the providers when its copy is stale
COMMAND_WAIT = 10.0  # `doit accounts` / the dashboard
MAX_CACHE = 1024 * 1024
MAX_ACCOUNT_FILE = 256 * 1024

CODEX_URL = "https://chatgpt.com/backend-api/wham/usage"
CLAUDE_URL = "https://api.anthropic.com/api/oauth/usage"
KNOWN = ("codex", "claude")  # providers with a known quota endpoint


class Quota(namedtuple("Quota", "account provider label plan windows note")):
    """One account's windows (list of Window), or a `note` saying why there are none."""

    __slots__ = ()

    def as_dict(self) -> dict:
        return {**self._asdict(), "windows": [w._asdict() for w in self.windows]}

    @classmethod
    def from_dict(cls, data: dict) -> "Quota | None":
        if not isinstance(data, dict):
            return None
        windows = []
        for w in data.get("windows") or []:
            if isinstance(w, dict) and isinstance(w.get("name"), str) and isinstance(w.get("used_percent"), (int, float)):
                resets = w.get("resets_at")
                windows.append(Window(w["name"], float(w["used_percent"]), resets if isinstance(resets, (int, float)) else None))
        text = {k: data.get(k) if isinstance(data.get(k), str) else "" for k in ("account", "provider", "label", "plan", "note")}
        return cls(text["account"], text["provider"], text["label"], text["plan"], windows, text["note"])

    @property
    def fullest(self) -> Window | None:
        return max(self.windows, key=lambda w: w.used_percent, default=None)


def _account_id(paths: Paths, name: str) -> str:
    """The codex account's ChatGPT account id, from its file in .router/auths (the listing lacks it)."""
    from ..base.fsutil import NotRegularFile, read_regular

    if not name or "/" in name or name.startswith("."):
        return ""
    try:
        raw, _ = read_regular(paths.auths_dir / name, MAX_ACCOUNT_FILE)
        data = json.loads(raw) if len(raw) <= MAX_ACCOUNT_FILE else None
    except (OSError, NotRegularFile, ValueError):
        return ""
    value = data.get("account_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) < 200 else ""


def api_call_body(paths: Paths, account) -> dict | None:
    """The api-call request for one account's quota, or None when its provider has no known endpoint."""
    if account.provider == "codex":
        header = {"Authorization": "Bearer $TOKEN$", "Accept": "application/json"}
        account_id = _account_id(paths, account.name)
        if account_id:
            header["ChatGPT-Account-Id"] = account_id
        return {"auth_index": account.auth_index, "method": "GET", "url": CODEX_URL, "header": header, "data": ""}
    if account.provider == "claude":
        return {"auth_index": account.auth_index, "method": "GET", "url": CLAUDE_URL, "data": "",
                "header": {"Authorization": "Bearer $TOKEN$", "anthropic-beta": "oauth-2025-04-20",
                           "Accept": "application/json"}}
    return None


def read_one(client, paths: Paths, account, now: float | None = None) -> Quota:
    """One account's quota; never raises (a failure is the note)."""
    now = time.time() if now is None else now
    base = Quota(account.name, account.provider, account.label, "", [], "")
    if getattr(account, "source", "oauth") == "api-key":  # no subscription windows: the provider bills per token
        return base._replace(note="no quota windows: an API key is billed per token")
    body = api_call_body(paths, account)
    if body is None:
        return base._replace(note=f"quota not available for {account.provider}")
    if not account.auth_index:
        return base._replace(note="quota not available: this binary lists no auth_index (an older line)")
    try:
        answer = client.request("POST", "api-call", body=body)
    except FlowgateError as exc:
        return base._replace(note=quota_parse.short(exc.message))
    status, text = answer.get("status_code"), answer.get("body")
    if not isinstance(status, int) or isinstance(status, bool) or not isinstance(text, str):
        return base._replace(note="CLIProxyAPI's api-call answer has no status_code/body")
    if not 200 <= status < 300:
        said = quota_parse.upstream_message(text)
        return base._replace(note=f"{account.provider} answered {status}" + (f": {said}" if said else ""))
    if account.provider == "codex":
        parsed = quota_parse.codex(text, now)
        plan, windows = parsed if parsed else ("", None)
    else:
        plan, windows = "", quota_parse.claude(text)
    if not windows:
        return base._replace(note=f"{account.provider}'s answer holds no usage windows")
    return base._replace(plan=plan, windows=windows)


def read_all(client, paths: Paths, accounts, wait: float) -> list[Quota]:
    """Every account's quota, asked at once; an account still unanswered after `wait` s gets a note."""
    import threading

    client = client._replace(timeout=max(0.2, wait))
    results: dict[int, Quota] = {}

    def ask(i: int, account) -> None:
        results[i] = read_one(client, paths, account)

    threads = [threading.Thread(target=ask, args=(i, a), daemon=True) for i, a in enumerate(accounts)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + wait
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    late = f"no answer within {wait:g} s"
    return [results.get(i) or Quota(a.name, a.provider, a.label, "", [], late) for i, a in enumerate(accounts)]


# ------------------------------------------------------------------------------ the short-lived copy

def cached(paths: Paths, max_age: float = CACHE_SECONDS, now: float | None = None) -> list[Quota] | None:
    """The kept answers while younger than `max_age`, else None. A broken file counts as none."""
    from ..base.fsutil import NotRegularFile, read_regular

    try:
        raw, _ = read_regular(paths.quota_cache, MAX_CACHE)
        data = json.loads(raw) if len(raw) <= MAX_CACHE else None
    except (OSError, NotRegularFile, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("fetched_at"), (int, float)):
        return None
    age = (time.time() if now is None else now) - data["fetched_at"]
    if not 0 <= age < max_age or not isinstance(data.get("accounts"), list):
        return None
    return [q for q in (Quota.from_dict(d) for d in data["accounts"]) if q is not None]


def store(paths: Paths, quotas: list[Quota]) -> None:
    from ..base.fsutil import atomic_write

    text = json.dumps({"fetched_at": time.time(), "accounts": [q.as_dict() for q in quotas]})
    try:
        atomic_write(paths.quota_cache, text, mode=0o600, only_if_changed=False)
    except FlowgateError:
        pass  # a read-only .router/: the next command asks again


def current(paths: Paths, stack: dict, accounts=None, wait: float = COMMAND_WAIT, max_age: float = CACHE_SECONDS) -> list[Quota]:
    """Each enabled account's quota: the kept answer while fresh, else asked now (and kept).

    `accounts`: the list the caller already has; otherwise asked of the binary (which the fresh
    copy alone cannot tell: an account added or removed since)."""
    from .inventory import list_accounts
    from .management import Management

    client = Management.for_stack(paths, stack, timeout=wait)
    if accounts is None:
        accounts = list_accounts(client, stack)
    enabled = [a for a in accounts if not a.disabled]
    kept = by_name(cached(paths, max_age) or [])
    if all(a.name in kept for a in enabled):
        return [kept[a.name] for a in enabled]
    quotas = read_all(client, paths, enabled, wait)  # all of them: the copy has one age
    store(paths, quotas)
    return quotas


# ------------------------------------------------------------------------------ showing it

def until(resets_at: float | None, now: float | None = None) -> str:
    """`2h05m`, `3d04h`, `now`, or `-` when unknown."""
    if resets_at is None:
        return "-"
    left = int(resets_at - (time.time() if now is None else now))
    if left <= 0:
        return "now"
    days, rest = divmod(left, 86400)
    hours, minutes = rest // 3600, (rest % 3600) // 60
    return f"{days}d{hours:02d}h" if days else f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def window_text(w: Window, now: float | None = None) -> str:
    return f"{w.name} {w.used_percent:g}% used, resets in {until(w.resets_at, now)}"


def by_name(quotas: list[Quota]) -> dict[str, Quota]:
    return {q.account: q for q in quotas}


def provider_lines(quotas: list[Quota], now: float | None = None) -> list[str]:
    """`doit status`: one line per provider, its fullest window over all its accounts (text unescaped)."""
    lines = []
    for provider in dict.fromkeys(q.provider for q in quotas):
        mine = [q for q in quotas if q.provider == provider]
        if provider not in KNOWN:
            lines.append(f"quota not available for {provider}")
            continue
        full = [(q.fullest, q) for q in mine if q.fullest is not None]
        if not full:
            lines.append(f"quota {provider}: {mine[0].note or 'unknown'}")
            continue
        window, owner = max(full, key=lambda pair: pair[0].used_percent)
        noted = sum(1 for q in mine if q.note)
        lines.append(f"quota {provider}: fullest window {window_text(window, now)} ({owner.label or owner.account})"
                     + (f"; {noted} account(s) without an answer" if noted else ""))
    return lines


def status_quota(paths: Paths, stack: dict, accounts) -> dict:
    """For `doit status`: {"accounts": [...]} or {"error": ...}; never raises, waits at most STATUS_WAIT."""
    try:
        quotas = current(paths, stack, accounts, wait=STATUS_WAIT)
    except FlowgateError as exc:
        return {"error": exc.one_line()}
    return {"accounts": [q.as_dict() for q in quotas]}


def account_lines(quotas: list[Quota], now: float | None = None, full_at: dict | None = None) -> list[str]:
    """`doit accounts`: per account, each window's percent used and time to reset, or its note;
    `full_at`: {(account, window): epoch} the steward's forecast (tasks.pool.forecast)."""
    from ..base.terminal import printable

    lines = []
    for q in quotas:
        who = printable(q.label or q.account)
        if q.windows:
            plan = f" (plan {printable(q.plan)})" if q.plan else ""
            lines.append(f"  {q.provider} {who}{plan}: " + "; ".join(
                printable(window_text(w, now) + _full((full_at or {}).get((q.account, w.name)))) for w in q.windows))
        else:
            lines.append(f"  {q.provider} {who}: {printable(q.note)}")
    return lines


def _full(at) -> str:
    return f", full at ~{time.strftime('%H:%M', time.localtime(at))} at this pace" if isinstance(at, (int, float)) else ""


def from_pool(accounts, pool: dict | None, known: dict) -> dict:
    """{name: Quota} for the disabled accounts the steward took out (no fresh read asks them), from
    the windows its state file kept."""
    from .pool_state import account as pooled

    out = {}
    for a in accounts:
        entry = pooled(pool, a.name) if a.disabled and a.name not in known else None
        if entry and entry.get("state") == "out":
            got = Quota.from_dict({"account": a.name, "provider": a.provider, "label": a.label,
                                   "plan": entry.get("plan"), "windows": entry.get("windows"), "note": entry.get("note")})
            if got is not None and got.windows:
                out[a.name] = got
    return out


def forecasts(pool: dict | None) -> dict:
    """{(account, window): full_at} from the steward's state file (tasks.accounts.pool_state)."""
    out = {}
    for entry in (pool or {}).get("accounts") or []:
        for w in (entry.get("windows") or []) if isinstance(entry, dict) else []:
            if isinstance(w, dict) and isinstance(w.get("full_at"), (int, float)):
                out[(entry.get("name"), w.get("name"))] = w["full_at"]
    return out


def as_json(quota: Quota | None, now: float | None = None) -> dict | None:
    if quota is None:
        return None
    return {"plan": quota.plan, "note": quota.note,
            "windows": [{**w._asdict(), "resets_in": until(w.resets_at, now)} for w in quota.windows]}

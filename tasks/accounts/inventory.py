"""The accounts the running binary knows (its `auth-files` route), and changes to them.

Accounts are found by `type` and email from this list, never by a fixed file name: the lines name
files differently (mainline: `codex-<hash8>-<email>[-<plan>].json`).
"""

from __future__ import annotations

import json
import time
from collections import namedtuple

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..stack import events
from .management import Management
from .providers import Provider, configured_names, provider_for_type, resolve

UNUSABLE = ("error", "disabled")
NEW_ACCOUNT_WAIT = 3.0  # the binary lists a fresh account file after its auth-dir watch saw it


class Account(namedtuple("Account", "name provider type label status disabled last_refresh status_message unavailable "
                         "auth_index source success failed", defaults=("", False, "", "oauth", 0, 0))):
    """One account file as the binary lists it.

    name      the account file's name: what --enable/--disable/--remove take
    provider  FlowGate's provider name (codex, claude, copilot, ...)
    label     email, or the user name / label the binary shows
    auth_index  the binary's handle of the account for its api-call route (mainline; "" when not listed)
    source    "oauth" (an account file from a login) or "api-key" (cliproxy.api_keys: managed in the config)
    success / failed  the requests it served and failed since the binary started (its own counters)
    """

    __slots__ = ()

    @property
    def active(self) -> bool:
        return not self.disabled and not self.unavailable and self.status not in UNUSABLE

    @classmethod
    def from_file(cls, entry: dict, stack: dict | None = None) -> "Account":
        account_type = str(entry.get("type") or entry.get("provider") or "")
        disabled = entry.get("disabled") is True
        return cls(
            name=str(entry.get("name") or entry.get("id") or ""),
            provider=provider_for_type(account_type, stack),
            type=account_type,
            label=str(entry.get("email") or entry.get("label") or entry.get("account") or ""),
            status=str(entry.get("status") or ("disabled" if disabled else "unknown")),
            disabled=disabled,
            last_refresh=str(entry.get("last_refresh") or ""),
            status_message=str(entry.get("status_message") or ""),
            unavailable=entry.get("unavailable") is True,
            auth_index=str(entry.get("auth_index") or ""),
            success=_count(entry.get("success")),
            failed=_count(entry.get("failed")),
        )


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def list_accounts(client: Management, stack: dict | None = None) -> list[Account]:
    files = client.get("auth-files").get("files") or []
    found = [Account.from_file(f, stack) for f in files if isinstance(f, dict)]
    return sorted(found + api_key_accounts(client, stack), key=lambda a: (a.provider, a.source != "oauth", a.name))


def api_key_accounts(client: Management, stack: dict | None) -> list[Account]:
    """The `cliproxy.api_keys` entries as the binary lists them (one route per family: its
    `codex-api-key`, `claude-api-key`, `openai-compatibility`), in the order FlowGate rendered them,
    so each is labelled from its config entry. Never the key itself. Asked only when the config
    declares some: a stack without API keys pays no extra request."""
    from ..config.apikeys import CONFIG_KEYS, label
    from .management import RouteMissing

    entries = list(((stack or {}).get("cliproxy") or {}).get("api_keys") or [])
    out: list[Account] = []
    for provider, route in CONFIG_KEYS.items():
        mine = [e for e in entries if e["provider"] == provider]
        if not mine:
            continue
        try:
            listed = client.get(route).get(route)
        except RouteMissing:
            listed = None
        listed = listed if isinstance(listed, list) else []
        for i, entry in enumerate(mine):
            seen = listed[i] if i < len(listed) and isinstance(listed[i], dict) else None
            index = ""
            if seen is not None:
                keys = seen.get("api-key-entries") if provider == "openai" else [seen]
                index = str(seen.get("auth-index") or next((k.get("auth-index") for k in keys or []
                                                             if isinstance(k, dict) and k.get("auth-index")), "") or "")
            out.append(Account(name=f"{route}[{i}]", provider=entry["name"] if provider == "openai" else provider,
                               type=route, label=label(entry), status="active" if seen is not None else "unknown",
                               disabled=False, last_refresh="", status_message="" if seen is not None else
                               "not loaded by the binary yet", unavailable=seen is None, auth_index=index,
                               source="api-key"))
    return out


def wait_for(client: Management, stack: dict | None, match, wait: float) -> list[Account]:
    """The listed accounts for which `match` holds, polling up to `wait` s until there is one.

    The binary lists a new account file once its auth-dir watch has seen it.
    """
    deadline = time.monotonic() + wait
    while True:
        found = [a for a in list_accounts(client, stack) if match(a)]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def new_account(client: Management, stack: dict, provider: Provider, before: list[Account],
                wait: float = NEW_ACCOUNT_WAIT) -> Account | None:
    """The account this login added or refreshed, found by type in the binary's list."""
    old = {a.name: a.last_refresh for a in before}
    fresh = wait_for(client, stack, lambda a: a.type == provider.type and (a.name not in old or a.last_refresh != old[a.name]),
                     wait)
    return fresh[0] if fresh else None


def record_login(paths: Paths, provider: Provider, result: str, label: str, **extra) -> None:
    """The login event: provider, result, account label; never a token, code or key."""
    events.record(paths, "login", "cliproxy", result, label, provider=provider.name, **extra)


def find(accounts: list[Account], wanted: str) -> Account:
    """An account by file name, or by email/label when exactly one account has it."""
    for account in accounts:
        if account.name == wanted:
            return account
    matches = [a for a in accounts if a.label == wanted]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(a.name for a in accounts) or "there are no accounts"
    why = f"{len(matches)} accounts have the label {wanted!r}" if matches else f"no account is named {wanted!r}"
    raise FlowgateError(why, f"name one account file: {names}")


def change(paths: Paths, stack: dict, client: Management, wanted: str, what: str) -> Account:
    """enable / disable / remove one account through the management API; records an event."""
    account = find(list_accounts(client, stack), wanted)
    if account.source == "api-key":
        raise FlowgateError(f"{account.label} comes from cliproxy.api_keys in the config",
                            f"edit cliproxy.api_keys in config/local.yaml to {what} it, then run `uv run doit up`")
    from . import pool_state

    pool_state.note_user(paths, account.name, what)  # before: the steward must never undo this disable
    if what == "remove":
        client.request("DELETE", "auth-files", query={"name": account.name})
    else:
        set_disabled(client, account, what == "disable")
    events.record(paths, "account", "cliproxy", {"remove": "removed", "disable": "disabled", "enable": "enabled"}[what],
                  account.label or account.name, provider=account.provider, file=account.name)
    return account


def set_disabled(client: Management, account: Account, disabled: bool) -> None:
    """PATCH auth-files/status in both dialects: the Plus line finds the account by `name`, the
    mainline by `name` and, when listed, `auth_index` (one file may hold several accounts)."""
    body = {"name": account.name, "disabled": disabled}
    if account.auth_index:
        body["auth_index"] = account.auth_index
    client.request("PATCH", "auth-files/status", body=body)


# ------------------------------------------------------------------------------ showing them

def as_json(accounts: list[Account]) -> str:
    return json.dumps([{**a._asdict(), "active": a.active} for a in accounts], indent=2)


def table(accounts: list[Account], pool: dict | None = None, plans: dict | None = None) -> str:
    """One row per account: label, plan, state in the pool (in rotation / out until T / disabled by
    you; the steward's state file, `pool`), the requests it served (ok / failed), its file."""
    if not accounts:
        return "no accounts yet: log in with `uv run doit login:<provider>` (or `uv run doit import:codex`)"
    from ..base.terminal import printable
    from .pool_state import account as pooled

    headers = ["provider", "account", "plan", "state", "requests ok/failed", "status", "file"]
    rows = [[printable(c) for c in (a.provider, a.label or "-",  # peer text: escaped for the terminal
                                    (plans or {}).get(a.name) or "-", pool_text(a, pooled(pool, a.name)),
                                    f"{a.success}/{a.failed}",
                                    a.status + (f" ({a.status_message})" if a.status_message else ""), a.name)]
            for a in accounts]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows])


def pool_text(account: Account, entry: dict | None) -> str:
    """The account's state in the pool, in words."""
    state = (entry or {}).get("state")
    if state == "out":
        until = entry.get("until")
        when = time.strftime("%H:%M", time.localtime(until)) if isinstance(until, (int, float)) else "its reset"
        return f"out until {when} (FlowGate)"
    if account.disabled:
        return "disabled by you" if state in (None, "disabled-by-user") else "disabled"
    if account.source == "api-key":
        return "in rotation (API key)"
    return "in rotation" if account.active else "cooling down (CLIProxyAPI)"


def summary(accounts: list[Account], stack: dict, line: str | None = None, pool: dict | None = None) -> dict:
    """Per provider: how many accounts, how many active (and `out`: taken out by the steward, from
    its state file `pool`); configured providers without one get the fix. `line`: the installed
    binary's line; a provider it lacks gets the line's fix instead of a login command that would
    fail, and its accounts are marked unusable."""
    from .pool_state import account as pooled
    from .providers import TABLE, Unsupported, line_fix

    out: dict[str, dict] = {}
    for name in configured_names(stack):
        out[name] = {"accounts": 0, "active": 0}
    for account in accounts:
        entry = out.setdefault(account.provider, {"accounts": 0, "active": 0})
        entry["accounts"] += 1
        entry["active"] += account.active
        if account.disabled and (pooled(pool, account.name) or {}).get("state") == "out":
            entry["out"] = entry.get("out", 0) + 1  # back at its window's reset: no login to suggest
    for name, entry in out.items():
        known = TABLE.get(name)
        configured = name in configured_names(stack) and resolve(stack, name).configured
        if line and known and not configured and line not in known.lines:
            entry["unsupported"] = Unsupported(name, known.lines[0], line).problem
            entry["fix"] = line_fix(name, known.lines[0])
        elif name in configured_names(stack) and not entry["active"] and not entry.get("out"):
            entry["fix"] = f"uv run doit login:{name}"
    return out


def ask_early(paths: Paths, stack: dict) -> None:
    """`doit status` asks for the account list while doit loads; `status_summary` reads the answer."""
    try:
        Management.for_stack(paths, stack).send_early("auth-files")
    except FlowgateError:
        pass  # no key yet: status_summary reports it


def status_summary(paths: Paths, stack: dict, timeout: float = 1.0) -> dict:
    """For `doit status`: the summary, or {"error": ...}; never raises (status must not fail on it)."""
    return status_accounts(paths, stack, timeout)[0]


def status_accounts(paths: Paths, stack: dict, timeout: float = 1.0) -> tuple[dict, list[Account] | None]:
    """The summary (or {"error": ...}) and the accounts it was made of (None on error); never raises."""
    try:
        accounts = list_accounts(Management.for_stack(paths, stack, timeout), stack)
    except FlowgateError as exc:
        return {"error": exc.one_line()}, None
    from . import pool_state
    from .providers import installed_line

    return summary(accounts, stack, installed_line(paths), pool_state.read(paths)), accounts


def summary_lines(summary_data: dict) -> list[str]:
    if "error" in summary_data:
        return [f"accounts: cannot list them: {summary_data['error']}"]
    lines = []
    for name, entry in summary_data.items():
        count = entry["accounts"]
        text = f"{name}: {count} account{'s' if count != 1 else ''}, {entry['active']} active"
        if entry.get("out"):
            text += f", {entry['out']} out of rotation near a quota limit (FlowGate; back at the reset)"
        if entry.get("unsupported"):
            unusable = " (unusable here)" if count else ""
            text += f"{unusable}: {entry['unsupported']}: {entry['fix']}"
        elif entry.get("fix"):
            text += f": log in with `{entry['fix']}`"
        lines.append(text)
    return lines

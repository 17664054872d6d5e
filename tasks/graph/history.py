"""Tasks that read what went through the gateway: usage, dashboard (core: tasks/usage/, tasks/gateway/dashboard/, tasks/inspect/dashboard_data.py)."""

from __future__ import annotations

from .common import JSON_FLAG, PATHS, command, flag, option, read_stack_or_none


def show_usage(since: str, by: str, json_output: bool, csv_output: bool) -> None:
    from ..base.errors import FlowgateError
    from ..usage import report

    wanted = [b.strip() for b in by.split(",") if b.strip()] if by else ["model", "day"]
    unknown = [b for b in wanted if b not in (*report.BY, "key")]
    if unknown:
        raise FlowgateError(f"--by {unknown[0]!r} is not a grouping", f"use one of {', '.join(report.BY)}, key")
    if json_output and csv_output:
        raise FlowgateError("give --json or --csv, not both")
    seconds = report.parse_since(since)
    # summed in SQLite: bounded memory at any size; accounts and keys have their own tables
    found = report.query(PATHS, seconds, [b for b in wanted if b not in ("key", "account")])
    groups, totals = found["by"], found["totals"]
    if "key" in wanted:
        groups["key"] = _by_key(seconds)
    ledger = _ledger(seconds)
    if "account" in wanted:
        groups["account"] = ledger["by_account"]["accounts"]
    if json_output:
        import json

        print(json.dumps({"since": since, "totals": totals, "by": groups, "savings": ledger["savings"],
                          **({"account_note": ledger["by_account"]["note"]} if "account" in wanted else {})}, indent=2))
        return
    if csv_output:
        print("\n\n".join(report.as_csv(groups[b], b, *_fields(b)) for b in wanted))
        return
    if not totals["requests"] and not groups.get("account"):
        print(f"no requests in the last {since} (recorded in {PATHS.usage_db})")
        return
    print(f"last {since}: {totals['requests']} request(s), {totals['errors']} error(s), "
          f"{totals['tokens_in']} tokens in, {totals['tokens_out']} out ({totals['tokens_cached']} cached)")
    for b in wanted:
        print()
        if b == "account" and not groups[b]:
            print("no requests recorded per account (the steward records them while CLIProxyAPI runs)")
        else:
            print(report.table(groups[b], b, *_fields(b)) if groups[b] or b != "key" else "no requests with a member key")
        if b == "account" and ledger["by_account"]["note"]:
            print(ledger["by_account"]["note"])
    print()
    print("\n".join(report.savings_lines(ledger["savings"], since)))


def _ledger(seconds: float) -> dict:
    """Per account and savings (tasks.usage.accounts); a database it cannot read is the user's error."""
    import sqlite3

    from ..base.errors import FlowgateError
    from ..usage import accounts

    try:
        return accounts.read(PATHS, seconds)
    except sqlite3.Error as exc:
        raise FlowgateError(f"cannot read {PATHS.usage_db}: {exc}", "see `uv run doit doctor`") from None


def _fields(by: str) -> tuple:
    from ..usage import report

    return {"key": (report.KEY_FIELDS,), "account": (report.ACCOUNT_FIELDS,)}.get(by, ())


def _by_key(seconds: float) -> list[dict]:
    """Requests, tokens and USD per member key (tasks.gateway.keys.spend), most spent first; names only, never a secret."""
    import time

    from ..keys.manage import spend_since

    found = spend_since(PATHS, time.time() - seconds)
    rows = [{"key": name, **{k: v for k, v in entry.items() if k != "last_use"}, "usd": round(entry["usd"], 6)}
            for name, entry in found.items() if entry["requests"]]
    return sorted(rows, key=lambda r: (-r["usd"], -r["requests"], r["key"]))


def task_usage():
    """What went through the gateway: requests, errors, tokens, latency per model / day (--by, --since)."""
    return command(show_usage,
                   option("since", "how far back: 30m, 24h, 7d, 2w", default="7d"),
                   option("by", "model, day, hour, account or key (comma-separated; default model,day)"),
                   JSON_FLAG, flag("csv_output", "print CSV", long="csv"))


def open_dashboard(no_browser: bool) -> None:
    from ..accounts.login import browser_available
    from ..base.errors import FlowgateError
    from ..config.names import LITELLM
    from ..services.common import connect_host
    from ..stack.watch.readiness import is_ready
    from ..gateway.dashboard import token

    stack = read_stack_or_none()
    if stack is None or not is_ready(PATHS, stack, LITELLM):
        raise FlowgateError("the dashboard is served by LiteLLM, which is not running", "start it with `uv run doit up`")
    cfg = stack["litellm"]
    url = token.url(connect_host(cfg["host"]), cfg["port"], token.ensure(PATHS))
    print(f"dashboard: {url}")
    print(f"(the token is in {PATHS.dashboard_token}; without it the page answers 401/403)")
    if no_browser or not browser_available():
        return
    import webbrowser

    page = token.opener(PATHS, url)  # the browser's argv carries no token (other users can read argv)
    try:
        if webbrowser.open(page.as_uri()):
            print("(opened your browser)")
    except Exception:  # noqa: BLE001  (a broken browser setup must not fail the command: the URL is printed)
        pass


def task_dashboard():
    """Print the dashboard's URL (with its token) and open it in a browser (--no-browser: print only)."""
    return command(open_dashboard, flag("no_browser", "print the URL, never open a browser"))

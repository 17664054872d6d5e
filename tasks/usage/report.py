"""`doit usage`: what went through the gateway, grouped by model, day, hour or account.

Read-only on the database (WAL: LiteLLM's recorder keeps writing meanwhile). Model names are the
clients' text: escaped before a terminal sees them; CSV cells that a spreadsheet would run as a
formula are quoted.
"""

from __future__ import annotations

import re
import time

from ..base.errors import FlowgateError
from ..base.paths import Paths

BY = ("model", "day", "hour", "account")  # account: tasks.usage.accounts (the ledger), not the rows
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FIELDS = ("requests", "errors", "tokens_in", "tokens_out", "tokens_cached", "p50_ms", "p95_ms")


def parse_since(text: str) -> float:
    """`24h`, `7d`, `30m`, `2w` -> seconds; anything else is the user's error."""
    found = re.fullmatch(r"\s*(\d{1,6})\s*([mhdw])\s*", text or "")
    if not found or int(found.group(1)) == 0:
        raise FlowgateError(f"--since {text!r} is not a duration", "give a number and a unit: 30m, 24h, 7d or 2w")
    return int(found.group(1)) * UNITS[found.group(2)]


def query(paths: Paths, since: float, wanted: list[str]) -> dict:
    """{"totals", "by": {grouping: [group, ...]}} of the last `since` seconds, summed by SQLite
    (tasks.usage.aggregate): bounded memory whatever the number of rows."""
    import sqlite3

    from . import aggregate
    from ..gateway.usage import store

    if not paths.usage_db.exists():
        return aggregate.report(aggregate.empty_db(), 0, wanted)
    try:
        db = store.connect(paths.usage_db, readonly=True)
        try:
            return aggregate.report(db, time.time() - since, wanted)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise FlowgateError(f"cannot read {paths.usage_db}: {exc}", "see `uv run doit doctor`") from None


# `--by key` (issue 30): per member key, from the usage rollup's members (tasks.keys.spend)
KEY_FIELDS = ("requests", "tokens_in", "tokens_out", "tokens_cached", "usd", "unpriced_tokens")
# `--by account` (issue 29): per CLIProxyAPI account, from the ledger (tasks.usage.accounts)
ACCOUNT_FIELDS = ("provider", "requests", "errors", "tokens_in", "tokens_out", "tokens_cached", "usd", "unpriced_tokens")
LABELS = {"tokens_in": "tokens in", "tokens_out": "tokens out", "tokens_cached": "cached", "p50_ms": "p50 ms",
          "p95_ms": "p95 ms", "unpriced_tokens": "unpriced tokens", "usd": "USD"}


def table(groups: list[dict], by: str, fields: tuple = FIELDS) -> str:
    from ..base.terminal import printable

    headers = [by, *(LABELS.get(f, f) for f in fields)]
    rows = [[printable(str(g[by]))] + [_cell(g[f], f) for f in fields] for g in groups]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    text = "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
                      for row in [headers, *rows])
    from .aggregate import NO_MODEL

    if by == "model" and any(g[by] == NO_MODEL for g in groups):
        text += f"\n{NO_MODEL}: requests that name none, such as model lists and `HEAD /` probes"
    return text


def _cell(value, field: str) -> str:
    """A table cell: counts whole (never 6.7e+08), USD to the cent, latencies as measured."""
    from ..base.terminal import printable

    if value is None:
        return "-"
    if isinstance(value, str):
        return printable(value)
    if field == "usd":
        return "<0.01" if 0 < value < 0.005 else f"{value:.2f}"
    return str(value) if isinstance(value, int) else f"{value:g}"


def as_csv(groups: list[dict], by: str, fields: tuple = FIELDS) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([by, *fields])
    for g in groups:
        name = str(g[by])
        # a spreadsheet runs a cell starting with these as a formula (TAB and CR too): quote it as text
        writer.writerow(["'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") and len(name) > 1 else name,
                         *("" if g[f] is None else g[f] for f in fields)])
    return out.getvalue().rstrip("\n")


def usd(value: float) -> str:
    """Dollars to the cent; an amount that rounds to nothing but is not nothing says so."""
    return "<$0.01" if 0 < value < 0.005 else f"${value:.2f}"


def savings_lines(saved: dict, since: str) -> list[str]:
    """What the subscriptions served at API list price (tasks.usage.accounts.savings), as text."""
    from ..base.terminal import printable

    if not saved["known"]:
        return [f"what it saved: {saved['note']}"]
    lines = [f"your subscriptions served {usd(saved['week_usd'])} of API-priced tokens this week (since "
             f"{saved['week_start']}), {usd(saved['usd'])} in the last {since} (LiteLLM's list prices; see docs/usage.md)"]
    for m in saved["by_model"]:
        tokens = m["tokens_in"] + m["tokens_out"]
        lines.append(f"  {printable(m['model'])}: " + (usd(m["usd"]) if m["priced"] else "no price") +
                     f" ({m['requests']} requests, {tokens} tokens)")
    if saved["by_account"]:
        lines.append("  per account: " + ", ".join(f"{printable(a['account'])} ({a['provider']}) {usd(a['usd'])}"
                                                   for a in saved["by_account"]))
    if saved["by_day"]:
        lines.append("  per day: " + ", ".join(f"{d['day']} {usd(d['usd'])}" for d in saved["by_day"]))
    if len(saved["by_week"]) > 1:
        lines.append("  per week (from Monday): " + ", ".join(f"{w['week']} {usd(w['usd'])}" for w in saved["by_week"]))
    if saved["unpriced"]:
        lines.append("  not counted, LiteLLM's price map has no price for: " +
                     ", ".join(f"{printable(u['model'])} ({u['tokens']} tokens)" for u in saved["unpriced"]))
    return lines

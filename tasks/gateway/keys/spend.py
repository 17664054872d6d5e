"""Spend per member key (issue 30, item 3): tokens from the usage recorder's per-member rollup
(tasks.gateway.usage.rollup: `hourly_members`) priced by LiteLLM's offline price map; a model the
map does not price is counted in tokens alone.

Pricing: input tokens at `input_cost_per_token`, cached ones at `cache_read_input_token_cost` (Anthropic's
`input_tokens` exclude cache reads, OpenAI's `prompt_tokens` include them: the map's `litellm_provider`
tells which), output tokens at `output_cost_per_token`. The price map is read as JSON from LiteLLM's
package (no import of LiteLLM: `doit keys list` stays fast). Read by the gateway for budgets
(tasks.gateway.keys.budget) and by the control plane for `doit keys list` and `doit usage --by key`.
"""

from __future__ import annotations

import calendar
import json
import sqlite3
import time

from ...base.paths import Paths

PRICE_FILE = "model_prices_and_context_window_backup.json"


def price_map() -> dict:
    import importlib.util
    import os

    spec = importlib.util.find_spec("litellm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            with open(os.path.join(folder, PRICE_FILE), encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            continue
    return {}


# the model makers' own APIs, as LiteLLM's map names them: a name it keeps only under its maker's prefix
# (xai/grok-4.3, moonshot/kimi-k2.6, zai/glm-4.6) is priced at that API's list price, never a reseller's
MAKERS = ("openai", "anthropic", "gemini", "xai", "moonshot", "zai", "deepseek", "mistral")


def entry_for(prices: dict, model: str) -> dict | None:
    """The map's entry for `model`: as named, without a route prefix, or under its maker's prefix."""
    bare = model.rpartition("/")[2]
    for name in (model, bare, *(f"{maker}/{bare}" for maker in MAKERS)):
        entry = prices.get(name)
        if isinstance(entry, dict):
            return entry
    return None


def cost(prices: dict, model: str, tokens_in: int, tokens_out: int, tokens_cached: int) -> float | None:
    """USD for these tokens of `model`, or None when the map has no price for it."""
    entry = entry_for(prices, model)
    if entry is None:
        return None
    p_in, p_out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if not isinstance(p_in, (int, float)) or not isinstance(p_out, (int, float)):
        return None
    p_cached = entry.get("cache_read_input_token_cost")
    p_cached = p_cached if isinstance(p_cached, (int, float)) else p_in
    uncached = tokens_in if entry.get("litellm_provider") == "anthropic" else max(0, tokens_in - tokens_cached)
    return uncached * p_in + tokens_cached * p_cached + tokens_out * p_out


def period_start(period: str | None, now: float | None = None) -> float:
    """The start (UTC) of the current day, week (Monday) or month (the default)."""
    t = time.gmtime(time.time() if now is None else now)
    midnight = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
    if period == "day":
        return float(midnight)
    if period == "week":
        return float(midnight - t.tm_wday * 86400)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


def period_end(period: str | None, now: float | None = None) -> float:
    """When the current period ends (UTC): the next day, Monday or first of the month."""
    start = period_start(period, now)
    if period in ("day", "week"):
        return start + (86400 if period == "day" else 7 * 86400)
    t = time.gmtime(start)
    return float(calendar.timegm((t.tm_year + t.tm_mon // 12, t.tm_mon % 12 + 1, 1, 0, 0, 0)))


def _sums(db: sqlite3.Connection, since: float) -> list[tuple]:
    """(member, model, requests, tokens in, out, cached) from `since`: the rows of its partial first
    hour, the rollup's whole hours after it."""
    first_whole = -(-int(since) // 3600)
    raw = db.execute("SELECT member, COALESCE(NULLIF(model, ''), '(no model)'), count(*), total(tokens_in), "
                     "total(tokens_out), total(tokens_cached) FROM requests WHERE ts >= ? AND ts < ? "
                     "AND member IS NOT NULL GROUP BY 1, 2", (since, first_whole * 3600)).fetchall()
    return raw + db.execute("SELECT member, model, sum(requests), sum(tokens_in), sum(tokens_out), sum(tokens_cached) "
                            "FROM hourly_members WHERE hour >= ? GROUP BY 1, 2", (first_whole,)).fetchall()


def by_member(paths: Paths, since: float, prices: dict | None = None) -> dict[str, dict]:
    """{member: {requests, tokens_in, tokens_out, tokens_cached, usd, unpriced_tokens, last_use}}: the sums
    from `since`, for every member the rollup knows (0 requests: none since then; last_use: ever, as kept)."""
    from ..usage import store

    if not paths.usage_db.exists():
        return {}
    prices = price_map() if prices is None else prices
    db = store.connect(paths.usage_db, readonly=True)
    try:
        try:
            sums = _sums(db, since)
        except sqlite3.OperationalError as exc:
            if "no such" in str(exc):  # a database from before members were recorded: none yet
                return {}
            raise
        out: dict[str, dict] = {}
        for member, last_hour in db.execute("SELECT member, max(hour) FROM hourly_members GROUP BY member").fetchall():
            last = db.execute("SELECT max(ts) FROM requests WHERE ts >= ? AND member = ?", (last_hour * 3600, member))
            out[member] = {"requests": 0, "tokens_in": 0, "tokens_out": 0, "tokens_cached": 0, "usd": 0.0,
                           "unpriced_tokens": 0, "last_use": last.fetchone()[0]}
        for member, model, count, t_in, t_out, t_cached in sums:
            entry = out[member]
            t_in, t_out, t_cached = int(t_in or 0), int(t_out or 0), int(t_cached or 0)
            entry["requests"] += int(count)
            entry["tokens_in"] += t_in
            entry["tokens_out"] += t_out
            entry["tokens_cached"] += t_cached
            usd = cost(prices, model, t_in, t_out, t_cached)
            if usd is None:
                entry["unpriced_tokens"] += t_in + t_out
            else:
                entry["usd"] += usd
        return out
    finally:
        db.close()


def recent_tokens(paths: Paths, since: float) -> dict[str, tuple[int, float]]:
    """{member: (tokens in + out, the earliest request's ts)} of the requests from `since` (by the ts index)."""
    from ..usage import store

    if not paths.usage_db.exists():
        return {}
    db = store.connect(paths.usage_db, readonly=True)
    try:
        cur = db.execute("SELECT member, total(tokens_in) + total(tokens_out), min(ts) FROM requests "
                         "WHERE ts >= ? AND member IS NOT NULL GROUP BY member", (since,))
        return {member: (int(tokens), first) for member, tokens, first in cur}
    finally:
        db.close()

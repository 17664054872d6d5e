"""tasks.keys.spend: tokens per member from the usage rollup, priced by LiteLLM's offline map."""

from __future__ import annotations

import calendar

import pytest

from tasks.gateway.usage import store
from tasks.gateway.keys import spend

PRICES = {"gpt-5": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5, "cache_read_input_token_cost": 1e-7,
                    "litellm_provider": "openai"},
          "claude-x": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5, "cache_read_input_token_cost": 3e-7,
                       "litellm_provider": "anthropic"}}


def row(ts, member, model="gpt-5", t_in=100, t_out=10, cached=0):
    return {"ts": ts, "route": "/v1/chat/completions", "method": "POST", "model": model, "status": 200,
            "tokens_in": t_in, "tokens_out": t_out, "tokens_cached": cached, "member": member}


def test_spend_is_tokens_times_the_price_and_tokens_alone_without_one(paths):
    db = store.connect(paths.usage_db)
    hour = 500_000 * 3600
    store.insert(db, [row(hour + 10, "ana", t_in=1000, t_out=100, cached=400), row(hour + 20, "ana", "claude-x", 1000, 100, 400),
                      row(hour + 30, "ana", "no-price-model", 7, 3), row(hour + 40, None), row(hour - 5, "bo")])
    db.close()
    found = spend.by_member(paths, hour, PRICES)
    ana = found["ana"]
    assert ana["requests"] == 3 and ana["tokens_in"] == 2007 and ana["unpriced_tokens"] == 10
    openai_part = 600 * 1e-6 + 400 * 1e-7 + 100 * 1e-5  # prompt tokens include the cached ones
    anthropic_part = 1000 * 3e-6 + 400 * 3e-7 + 100 * 1.5e-5  # input tokens exclude them
    assert ana["usd"] == pytest.approx(openai_part + anthropic_part)
    assert ana["last_use"] == hour + 30
    assert found["bo"]["requests"] == 0 and found["bo"]["last_use"] == hour - 5  # used before `since` only
    assert spend.by_member(paths, hour + 25, PRICES)["ana"]["requests"] == 1  # a partial first hour from the rows


def test_a_database_from_before_members_holds_none(paths):
    import sqlite3

    paths.usage_db.parent.mkdir(parents=True)
    raw = sqlite3.connect(paths.usage_db)
    raw.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY, ts REAL)")
    raw.close()
    assert spend.by_member(paths, 0, PRICES) == {}


def test_periods_start_at_utc_boundaries():
    now = calendar.timegm((2026, 12, 9, 15, 30, 0))  # a Wednesday
    assert spend.period_start("day", now) == calendar.timegm((2026, 12, 9, 0, 0, 0))
    assert spend.period_start("week", now) == calendar.timegm((2026, 12, 7, 0, 0, 0))
    assert spend.period_start("month", now) == calendar.timegm((2026, 12, 1, 0, 0, 0))
    assert spend.period_end("month", now) == calendar.timegm((2027, 1, 1, 0, 0, 0))
    assert spend.period_end("week", now) == calendar.timegm((2026, 12, 14, 0, 0, 0))
    assert spend.period_end("day", now) == calendar.timegm((2026, 12, 10, 0, 0, 0))


def test_the_offline_price_map_is_litellms():
    prices = spend.price_map()
    assert spend.cost(prices, "gpt-5", 1000, 0, 0) > 0 and spend.cost(prices, "no-such-model-x", 1, 1, 0) is None


def test_a_model_the_map_keeps_under_its_makers_prefix_has_that_apis_price():
    """Issue 29: the subscriptions' models are named bare (grok-4.3); the map keeps some under their
    maker's API only (xai/grok-4.3). A reseller's entry (bedrock/…, azure_ai/…) is never taken."""
    prices = spend.price_map()
    xai = prices["xai/grok-4.3"]
    assert "grok-4.3" not in prices
    assert spend.cost(prices, "grok-4.3", 1000, 100, 0) == pytest.approx(
        1000 * xai["input_cost_per_token"] + 100 * xai["output_cost_per_token"])

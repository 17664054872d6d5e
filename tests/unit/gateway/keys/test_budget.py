"""tasks.gateway.keys.budget: a key whose spend this period reached its budget gets 429 naming the reset."""

from __future__ import annotations

import calendar

from tasks.gateway.keys.budget import Budgets
from tasks.gateway.keys.store import Member
from tasks.gateway.usage import store

NOW = calendar.timegm((2026, 12, 9, 15, 30, 0))


def member(name="ana", budget=1.0, period="day"):
    return Member(name, None, None, (), None, None, budget, period)


def spend_on(paths, name, ts, tokens_out):
    db = store.connect(paths.usage_db)
    store.insert(db, [{"ts": ts, "route": "/v1/chat/completions", "model": "gpt-5", "status": 200, "tokens_in": 0,
                       "tokens_out": tokens_out, "tokens_cached": 0, "member": name}])
    db.close()


def test_over_its_budget_a_key_gets_429_until_the_period_resets(paths):
    budgets = Budgets(paths, start_thread=False, clock=lambda: NOW)
    budgets.prices = {"gpt-5": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5}}
    assert budgets.refusal(member()) is None  # the period is now summed by the thread
    spend_on(paths, "ana", NOW - 86400, 200_000)  # $2 yesterday: another period
    spend_on(paths, "ana", NOW - 60, 50_000)  # $0.50 today
    budgets.refresh()
    assert budgets.refusal(member()) is None
    spend_on(paths, "ana", NOW - 30, 60_000)  # $1.10 today
    budgets.refresh()
    refused = budgets.refusal(member())
    assert refused.status == 429 and "budget of $1 per day ($1.10 spent)" in refused.message
    assert "resets at 2026-12-10 00:00 UTC" in refused.message
    assert dict(refused.headers)[b"retry-after"] == str(8 * 3600 + 30 * 60).encode()
    assert budgets.refusal(member(name="bo")) is None
    assert budgets.refusal(member(budget=None)) is None


def test_an_unreadable_usage_database_keeps_the_last_sums(paths, capsys):
    budgets = Budgets(paths, start_thread=False, clock=lambda: NOW)
    budgets.prices = {"gpt-5": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5}}
    budgets.refusal(member())
    spend_on(paths, "ana", NOW - 60, 200_000)
    budgets.refresh()
    for suffix in ("", "-wal", "-shm"):
        paths.usage_db.with_name(paths.usage_db.name + suffix).unlink(missing_ok=True)
    paths.usage_db.write_bytes(b"garbage" * 100)
    budgets.refresh()
    budgets.refresh()
    assert budgets.refusal(member()).status == 429
    assert capsys.readouterr().out.count("cannot be read") == 1


def test_over_its_tokens_per_minute_a_key_gets_429_until_they_leave_the_minute(paths):
    budgets = Budgets(paths, start_thread=False, clock=lambda: NOW)
    limited = Member("ana", None, None, (), None, 1000, None, None)
    assert budgets.refusal(limited) is None
    spend_on(paths, "ana", NOW - 90, 5000)  # before the minute
    spend_on(paths, "ana", NOW - 40, 600)
    budgets.refresh()
    assert budgets.refusal(limited) is None
    spend_on(paths, "ana", NOW - 10, 400)
    budgets.refresh()
    refused = budgets.refusal(limited)
    assert refused.status == 429 and "1000 tokens per minute (1000 in the last minute)" in refused.message
    assert dict(refused.headers)[b"retry-after"] == b"21"  # the oldest leaves the minute in 20 s
    both = Member("ana", None, None, (), None, 1000, 100.0, "day")
    assert "tokens per minute" in budgets.refusal(both).message  # under its budget, over its tpm

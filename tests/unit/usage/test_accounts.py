"""tasks.usage.accounts: requests per account from the counters, tokens and savings from the queue's
records, priced with LiteLLM's real price map; a model with no price is named, never guessed."""

from __future__ import annotations

import time

import pytest

from tasks.gateway.keys.spend import price_map
from tasks.gateway.usage import store
from tasks.usage import accounts, ledger, report


@pytest.fixture(scope="module")
def prices():
    found = price_map()
    assert found["gpt-5"]["litellm_provider"] == "openai"  # the entries the arithmetic below uses
    return found


def _seed(paths, now, monkeypatch):
    monkeypatch.setattr(ledger, "instance", lambda p: "1:1.0")
    files = [{"name": "codex-a.json", "type": "codex", "email": "a@example.com", "auth_index": "ia", "success": 0},
             {"name": "claude-b.json", "type": "claude", "email": "b@example.com", "auth_index": "ib", "success": 0}]
    ledger.note_counters(paths, files, now=now - 7200)
    files[0].update(success=3, failed=1)
    files[1].update(success=2)
    ledger.note_counters(paths, files, now=now - 60)
    db = store.connect(paths.usage_db)
    rows = [(now - 50, "ia", "codex-a.json", "codex", "a@example.com", 1, "gpt-5", 1000, 100, 400, 0),
            (now - 40, "ia", "codex-a.json", "codex", "a@example.com", 1, "gpt-5", 1000, 100, 0, 0),
            (now - 30, "ib", "claude-b.json", "claude", "b@example.com", 1, "claude-sonnet-4-5", 2000, 500, 1000, 0),
            (now - 20, "ib", "claude-b.json", "claude", "b@example.com", 1, "no-such-model-x", 70, 30, 0, 0),
            (now - 10, "k", None, "codex", None, 0, "gpt-5", 10**6, 10**6, 0, 0),  # an API key: not a saving
            (now - 30 * 86400, "ia", "codex-a.json", "codex", "a@example.com", 1, "gpt-5", 10**6, 0, 0, 0)]
    db.executemany("INSERT INTO account_requests (ts, auth_index, name, provider, label, oauth, model, tokens_in, "
                   "tokens_out, tokens_cached, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    ledger._fold(db, rows)
    db.close()


def test_savings_price_the_subscriptions_tokens_and_name_the_unpriced(paths, prices, monkeypatch):
    now = time.time()
    _seed(paths, now, monkeypatch)
    found = accounts.read(paths, 7 * 86400, now)
    saved = found["savings"]
    gpt, sonnet = prices["gpt-5"], prices["claude-sonnet-4-5"]
    # OpenAI counts cached tokens inside the input; Anthropic apart from it
    want_gpt = (1600 * gpt["input_cost_per_token"] + 400 * gpt["cache_read_input_token_cost"]
                + 200 * gpt["output_cost_per_token"])
    want_sonnet = (2000 * sonnet["input_cost_per_token"] + 1000 * sonnet["cache_read_input_token_cost"]
                   + 500 * sonnet["output_cost_per_token"])
    assert saved["known"] and saved["usd"] == pytest.approx(want_gpt + want_sonnet, abs=1e-6)
    by_model = {m["model"]: m for m in saved["by_model"]}
    assert by_model["gpt-5"]["usd"] == pytest.approx(want_gpt, abs=1e-6) and by_model["gpt-5"]["requests"] == 2
    assert not by_model["no-such-model-x"]["priced"] and saved["unpriced"] == [{"model": "no-such-model-x", "tokens": 100}]
    assert {a["account"]: a["usd"] for a in saved["by_account"]} == pytest.approx(
        {"a@example.com": want_gpt, "b@example.com": want_sonnet}, abs=1e-6)
    assert sum(d["usd"] for d in saved["by_day"]) == pytest.approx(saved["usd"])
    assert saved["week_usd"] <= saved["usd"] + 1e-9
    text = "\n".join(report.savings_lines(saved, "7d"))
    assert "this week" in text and "no-such-model-x (100 tokens)" in text and "a@example.com (codex)" in text
    assert report.usd(0.004) == "<$0.01" and report.usd(0) == "$0.00" and report.usd(12.345) == "$12.35"


def test_requests_per_account_come_from_the_counters_and_tokens_from_the_queue(paths, prices, monkeypatch):
    now = time.time()
    _seed(paths, now, monkeypatch)
    found = accounts.read(paths, 7 * 86400, now)["by_account"]
    rows = {a["account"]: a for a in found["accounts"]}
    assert found["tokens_known"] and found["note"] is None
    assert rows["a@example.com"]["requests"] == 4 and rows["a@example.com"]["errors"] == 1  # counters, not the 2 records
    assert rows["a@example.com"]["provider"] == "codex" and rows["a@example.com"]["tokens_in"] == 2000
    assert rows["b@example.com"]["unpriced_tokens"] == 100
    assert rows[accounts.API_KEY]["requests"] == 1 and rows[accounts.API_KEY]["tokens_in"] == 10**6
    text = report.table(found["accounts"], "account", report.ACCOUNT_FIELDS)
    assert "a@example.com" in text and "claude" in text


def test_without_queue_records_requests_only_and_the_setting_is_named(paths, monkeypatch):
    monkeypatch.setattr(ledger, "instance", lambda p: "1:1.0")
    ledger.note_counters(paths, [{"name": "codex-a.json", "type": "codex", "email": "a@example.com", "success": 5}])
    found = accounts.read(paths, 86400)
    assert [(a["account"], a["requests"], a["tokens_in"]) for a in found["by_account"]["accounts"]] == [
        ("a@example.com", 5, None)]
    assert "accounts.read_usage_queue: true" in found["by_account"]["note"]
    assert not found["savings"]["known"] and "read_usage_queue" in report.savings_lines(found["savings"], "1d")[0]


def test_an_old_or_missing_database_answers_empty(paths):
    assert accounts.read(paths, 86400)["by_account"]["accounts"] == []
    paths.usage_db.parent.mkdir(parents=True)
    db = store.connect(paths.usage_db)
    for table in ("accounts", "account_counters", "account_hourly", "account_requests", "account_tokens"):
        db.execute(f"DROP TABLE {table}")
    db.execute("PRAGMA user_version = 3")
    db.close()
    found = accounts.read(paths, 86400)  # read-only: a schema-3 database stays as it is
    assert found["by_account"]["accounts"] == [] and not found["savings"]["known"]


def test_the_week_starts_on_monday_local(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    try:
        start = accounts.week_start(time.mktime((2026, 12, 10, 12, 0, 0, 0, 0, -1)))  # a Thursday
        assert time.strftime("%Y-%m-%d %H:%M %a", time.localtime(start)) == "2026-12-07 00:00 Mon"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_savings_per_day_and_week_are_the_raw_records_in_every_time_zone(paths, prices, zone):
    """The hourly sums give each local day what the records themselves give, also where an hour
    straddles two days (30 and 45 minute offsets)."""
    import random

    from tasks.gateway.keys.spend import cost

    rand, now = random.Random(29), time.time()  # cached tokens within the input, as real records have them
    rows = [(now - rand.uniform(0, 9 * 86400), "ia", rand.choice(["a.json", "b.json"]), "codex", "a@x", rand.choice([1, 1, 0]),
             rand.choice(["gpt-5", "claude-sonnet-4-5", "no-such-model-x"]), rand.randint(100, 5000), rand.randint(0, 900),
             rand.randint(0, 100), 0) for _ in range(3000)]
    paths.usage_db.parent.mkdir(parents=True)
    db = store.connect(paths.usage_db)
    db.executemany("INSERT INTO account_requests (ts, auth_index, name, provider, label, oauth, model, tokens_in, "
                   "tokens_out, tokens_cached, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    ledger._fold(db, rows)
    since = now - 5 * 86400
    saved = accounts.savings(db, since, prices, now)
    db.close()
    first = int(since // 3600) * 3600  # whole hours: the span's first is counted whole
    want_days: dict[str, float] = {}
    week_label, want_week = time.strftime("%Y-%m-%d", time.localtime(accounts.week_start(now))), 0.0
    for ts, _, _, _, _, oauth, model, t_in, t_out, t_cached, _ in rows:
        usd = cost(prices, model, t_in, t_out, t_cached) or 0.0
        day = time.strftime("%Y-%m-%d", time.localtime(ts))
        if oauth != 1:
            continue
        if day >= week_label:
            want_week += usd
        if ts >= first:
            want_days[day] = want_days.get(day, 0.0) + usd
    assert {d["day"]: d["usd"] for d in saved["by_day"]} == pytest.approx(want_days, abs=1e-5)
    assert saved["week_usd"] == pytest.approx(want_week, abs=1e-5)
    assert sum(w["usd"] for w in saved["by_week"]) == pytest.approx(sum(want_days.values()), abs=1e-5)
    assert saved["by_week"][-1]["week"] == week_label
    assert [u["model"] for u in saved["unpriced"]] == ["no-such-model-x"]

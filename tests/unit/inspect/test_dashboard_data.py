"""tasks.inspect.dashboard_data: the charts' buckets and the usage block, over a real SQLite database."""

from __future__ import annotations

from tasks.base.paths import Paths
from tasks.gateway.usage import store
from tasks.inspect import dashboard_data as data
from tests.conftest import ROOT


def test_series_put_each_request_in_its_hour_per_model():
    from tasks.usage import aggregate

    now = 100 * 3600 + 1800.0  # half past an hour
    rows = [{"ts": now - 10, "route": "/v1/x", "model": "a", "tokens_in": 3, "tokens_out": 4},
            {"ts": now - 3600, "route": "/v1/x", "model": "a", "tokens_in": None, "tokens_out": 1},
            {"ts": now - 2 * 86400, "route": "/v1/x", "model": "b"}]  # outside 24 h
    db = aggregate.empty_db()
    store.insert(db, rows)
    got = data.series(db, 24, 3600, now)
    assert len(got["labels"]) == 24 and set(got["models"]) == {"a"}
    assert got["models"]["a"]["requests"][-2:] == [1, 1] and got["models"]["a"]["tokens"][-2:] == [1, 7]


def test_usage_block_totals_models_and_latest_failures(tmp_path):
    paths = Paths(root=ROOT, home=tmp_path)
    import time

    now = time.time()
    db = store.connect(paths.usage_db)
    store.insert(db, [{"ts": now - 60, "route": "/v1/messages", "model": "m", "status": 200, "latency_ms": 5.0},
                      {"ts": now - 30, "route": "/v1/messages", "model": "m", "status": 529, "error": "<b>busy</b>"},
                      {"ts": now - 3 * 86400, "route": "/v1/messages", "model": "old", "status": 200}])
    db.close()
    got = data.usage(paths, now)
    assert got["24h"]["totals"]["requests"] == 2 and got["7d"]["totals"]["requests"] == 3
    assert [m["model"] for m in got["7d"]["models"]] == ["m", "old"]
    assert [(f["model"], f["status"], f["error"]) for f in got["failures"]] == [("m", 529, "<b>busy</b>")]


def test_recent_stack_events_newest_first_without_the_noise(tmp_path):
    """Issue 31, item 25: the dashboard shows upgrades, rollbacks and the like from .router/events.jsonl,
    as text (the page escapes it), newest first; every `up`'s ready / start / stop lines stay out."""
    from tasks.stack import events

    paths = Paths(root=ROOT, home=tmp_path)
    events.record(paths, "upgrade", "cliproxy", "ok", "upgrade to v7.3.0", tag="v7.3.0")
    for _ in range(3000):  # a long log: only its tail is read
        events.record(paths, "ready", "litellm", "ok", "ready after 0.10 s")
    events.record(paths, "upgrade", "cliproxy", "rolled-back", "upgrade to v7.4.0: <b>no</b>\x1b[31m", tag="v7.4.0")
    events.record(paths, "start", "litellm", "ok", "")
    got = data.stack_events(paths)
    assert [(e["event"], e["result"]) for e in got] == [("upgrade", "rolled-back")]
    assert got[0]["detail"] == "upgrade to v7.4.0: <b>no</b>\x1b[31m" and got[0]["service"] == "cliproxy"
    assert len(got[0]["time"]) == 19  # local time, as the failures table shows it


def test_member_keys_are_listed_by_name_never_a_secret(tmp_path):
    import json
    import time

    from tasks.keys import manage

    paths = Paths(root=ROOT, home=tmp_path)
    assert data.member_keys(paths) == {"keys": [], "error": None}
    key = manage.create(paths, "ana", budget=5.0, models=["gpt-*"])
    db = store.connect(paths.usage_db)
    store.insert(db, [{"ts": time.time() - 5, "route": "/v1/chat/completions", "model": "gpt-5", "status": 200,
                       "tokens_in": 1000, "tokens_out": 100, "member": "ana"}])
    db.close()
    found = data.member_keys(paths)
    (ana,) = found["keys"]
    assert ana["name"] == "ana" and ana["requests_this_period"] == 1 and ana["spend_usd"] > 0
    text = json.dumps(found)
    assert key not in text and key[:10] not in text and "fg-" not in text
    paths.keys_db.unlink()
    paths.keys_db.symlink_to(tmp_path / "elsewhere")
    assert "symbolic link" in data.member_keys(paths)["error"]


def test_the_pool_state_is_read_as_the_page_reads_it_and_a_bad_file_is_none(tmp_path):
    """Issue 29: pool.json (the steward's) missing, invalid or oversized is no forecast, never an error."""
    import json

    paths = Paths(root=ROOT, home=tmp_path)
    assert data.pool(paths) is None
    target = paths.state_dir / "pool.json"
    target.parent.mkdir(parents=True)
    for bad in ("{", "[]", '{"accounts": 3}', "x" * 10_000_000):
        target.write_text(bad)
        assert data.pool(paths) is None
    target.write_text(json.dumps({"updated": 5, "accounts": [
        "junk", {"name": 3}, {"name": "a.json", "provider": "codex", "label": "a@x", "state": "out", "until": 9,
                              "windows": [{"name": "5h", "used_percent": 78, "full_at": 100}, {"name": "7d"}, "w"]}]}))
    assert data.pool(paths) == {"updated": 5.0, "accounts": [
        {"name": "a.json", "provider": "codex", "label": "a@x", "state": "out", "reason": "", "until": 9.0,
         "windows": [{"name": "5h", "used_percent": 78.0, "resets_at": None, "full_at": 100.0}]}]}

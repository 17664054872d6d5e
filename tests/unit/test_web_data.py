"""tasks.web.data: the charts' buckets and the usage block, over a real SQLite database."""

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

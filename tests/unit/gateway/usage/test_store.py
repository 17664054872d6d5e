"""tasks.gateway.usage.store: the schema a writer keeps (a database from before members were recorded
gains the column and its rollup), and a database it must not write."""

from __future__ import annotations

import sqlite3

import pytest

from tasks.base.paths import Paths
from tasks.gateway.usage import rollup, store
from tests.conftest import ROOT


def test_a_database_of_a_newer_flowgate_is_not_written(tmp_path):
    paths = Paths(root=ROOT, home=tmp_path)
    store.connect(paths.usage_db).close()
    raw = sqlite3.connect(paths.usage_db)
    raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(sqlite3.DatabaseError, match="newer FlowGate"):
        store.connect(paths.usage_db)
    raw = sqlite3.connect(paths.usage_db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION + 1  # left as it was
    raw.close()


def test_a_batch_larger_than_a_chunk_leaves_the_rest_to_the_next_and_reads_stay_whole(tmp_path, monkeypatch):
    paths = Paths(root=ROOT, home=tmp_path)
    monkeypatch.setattr(rollup, "CHUNK", 0)
    db = store.connect(paths.usage_db)
    store.insert(db, [{"ts": 3600.0 * 10, "route": "/v1/chat/completions", "model": "m"}] * 3)
    assert rollup.mark(db) == 3 and rollup.covers(db)  # a batch folds as many rows as it adds, and a chunk more
    raw = sqlite3.connect(paths.usage_db)
    raw.executemany("INSERT INTO requests (ts, route) VALUES (?, ?)", [(3600.0 * 11, "/old")] * 4)
    raw.commit()
    raw.close()
    assert not rollup.covers(db)
    store.insert(db, [{"ts": 3600.0 * 12, "route": "/v1/chat/completions", "model": "m"}])
    assert rollup.mark(db) == 4 and not rollup.covers(db)  # folded in order from the mark: still behind
    monkeypatch.setattr(rollup, "CHUNK", 10)
    store.catch_up(db)
    assert rollup.covers(db) and sum(r[3] for r in rollup.rows(db, 0)) == 8
    db.close()


def test_a_schema_2_database_gains_the_member_column_and_rollup(paths):
    from tasks.gateway.usage import rollup

    paths.usage_db.parent.mkdir(parents=True)
    raw = sqlite3.connect(paths.usage_db)
    columns = ", ".join(c for c in store.COLUMNS if c != "member")
    raw.executescript(f"CREATE TABLE requests (id INTEGER PRIMARY KEY, {columns}); {rollup.TABLE} PRAGMA user_version = 2;")
    raw.execute("INSERT INTO requests (ts, route, model, status) VALUES (3600, '/v1/messages', 'm', 200)")
    raw.commit()
    raw.close()
    db = store.connect(paths.usage_db)
    assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    store.insert(db, [{"ts": 3700.0, "route": "/v1/messages", "model": "m", "status": 200, "tokens_in": 5, "member": "ana"},
                      {"ts": 3800.0, "route": "/v1/messages", "model": "m", "status": 200, "tokens_in": 7, "member": "ana"}])
    assert db.execute("SELECT member, requests, tokens_in FROM hourly_members").fetchall() == [("ana", 2, 12)]
    assert [r["member"] for r in store.rows_since(db, 0)] == [None, "ana", "ana"]
    store.prune(db, 1, now=10 * 86400)  # a day's retention: the members' rollup stays 32 days (a month's budget)
    assert db.execute("SELECT count(*) FROM requests").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM hourly_members").fetchone()[0] == 1
    store.prune(db, 1, now=40 * 86400)
    assert db.execute("SELECT count(*) FROM hourly_members").fetchone()[0] == 0

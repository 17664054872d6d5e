"""tasks.gateway.usage.store: a database from before members were recorded gains the column and its rollup."""

from __future__ import annotations

import sqlite3

from tasks.gateway.usage import store


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

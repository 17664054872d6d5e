"""tasks.usage.ledger: the binary's per-account totals become requests per account and hour (growth
only, a restart counted from 0, two readers never counting twice), and usage-queue records become
rows per request naming their account."""

from __future__ import annotations

import sqlite3

from tasks.gateway.usage import store
from tasks.usage import ledger

HOUR = 3600.0 * 500_000


def _file(name, success, failed=0, index=None, email=None, kind="codex"):
    return {"name": name, "type": kind, "email": email or f"{name}@example.com", "auth_index": index or f"idx-{name}",
            "success": success, "failed": failed}


def _hourly(paths):
    db = store.connect(paths.usage_db, readonly=True)
    try:
        return db.execute("SELECT hour, name, provider, label, success, failed FROM account_hourly ORDER BY 1, 2").fetchall()
    finally:
        db.close()


def test_growth_is_recorded_per_hour_and_account(paths, monkeypatch):
    monkeypatch.setattr(ledger, "instance", lambda p: "100:1.0")
    ledger.note_counters(paths, [_file("a", 3), _file("b", 0)], now=HOUR + 10)  # first reading: counted whole
    ledger.note_counters(paths, [_file("a", 5, 1), _file("b", 2)], now=HOUR + 20)
    ledger.note_counters(paths, [_file("a", 5, 1), _file("b", 4)], now=HOUR + 3600)  # the next hour
    ledger.note_counters(paths, [{"name": "no-counters", "type": "codex"}, "junk", _file("a", True)], now=HOUR + 3700)
    h = int(HOUR // 3600)
    assert _hourly(paths) == [(h, "a", "codex", "a@example.com", 5, 1), (h, "b", "codex", "b@example.com", 2, 0),
                              (h + 1, "b", "codex", "b@example.com", 2, 0)]


def test_a_restart_counts_the_new_totals_from_zero_and_a_stale_reading_adds_nothing(paths, monkeypatch):
    process = {"id": "100:1.0"}
    monkeypatch.setattr(ledger, "instance", lambda p: process["id"])
    ledger.note_counters(paths, [_file("a", 10)], now=HOUR)
    ledger.note_counters(paths, [_file("a", 8)], now=HOUR + 1)  # another reader's older listing: nothing
    ledger.note_counters(paths, [_file("a", 12)], now=HOUR + 2)  # +2 over the highest kept (10), not +4
    process["id"] = "200:2.0"  # a new binary process: its totals start at 0
    ledger.note_counters(paths, [_file("a", 15)], now=HOUR + 3)  # even above the old total: all 15 are new
    ledger.note_counters(paths, [_file("a", 16)], now=HOUR + 4)
    assert [r[4] for r in _hourly(paths)] == [10 + 2 + 15 + 1]


def test_without_a_run_record_a_lower_total_is_a_restart(paths):
    ledger.note_counters(paths, [_file("a", 10)], now=HOUR)
    ledger.note_counters(paths, [_file("a", 3)], now=HOUR + 1)
    assert [r[4] for r in _hourly(paths)] == [13]


def test_two_readers_with_the_same_listing_count_it_once(paths, monkeypatch):
    monkeypatch.setattr(ledger, "instance", lambda p: "100:1.0")
    ledger.note_counters(paths, [_file("a", 0)], now=HOUR)
    for _ in range(2):  # the steward of two gateway instances during a swap
        ledger.note_counters(paths, [_file("a", 7, 2)], now=HOUR + 5)
    assert [r[4:] for r in _hourly(paths)] == [(7, 2)]


def test_growth_rules():
    assert ledger.growth(None, "p", 4, 1) == (4, 1, 4, 1)
    assert ledger.growth(("p", 4, 1), "p", 6, 1) == (2, 0, 6, 1)
    assert ledger.growth(("p", 4, 1), "p", 3, 1) == (0, 0, 4, 1)
    assert ledger.growth(("p", 4, 1), "q", 3, 0) == (3, 0, 3, 0)
    assert ledger.growth(("", 4, 1), "", 3, 1) == (3, 1, 3, 1)


class Client:
    def __init__(self, records, files):
        self.records, self.files, self.asked = records, files, []

    def get_list(self, route, count):
        self.asked.append((route, count))
        out, self.records = self.records[:count], self.records[count:]
        return out

    def get(self, route):
        assert route == "auth-files"
        return {"files": self.files}


def _record(index, model="gpt-5", tokens_in=100, out=10, cached=0, failed=False, auth_type="oauth"):
    return {"timestamp": "2026-12-07T18:24:22.123456789Z", "auth_index": index, "model": model, "alias": model,
            "provider": "codex" if model == "gpt-5" else "claude",
            "auth_type": auth_type, "api_key": "sk-secret", "client_ip": "127.0.0.1", "failed": failed,
            "tokens": {"input_tokens": tokens_in, "output_tokens": out, "cached_tokens": cached, "cache_read_tokens": cached}}


def test_queue_records_are_kept_per_request_with_their_account_named(paths):
    client = Client([_record("idx-a"), _record("idx-b", "claude-sonnet-4-5", cached=40), _record("k1", auth_type="apikey"),
                     "junk", _record("idx-a", failed=True, tokens_in=0, out=0)],
                    [_file("a", 0), _file("b", 0, kind="claude")])
    assert ledger.drain_queue(paths, client, limit=3) == 3
    assert ledger.drain_queue(paths, client, limit=3) == 1  # the junk record is skipped
    assert ledger.drain_queue(paths, client) == 0
    assert client.asked[0] == ("usage-queue", 3)
    db = store.connect(paths.usage_db, readonly=True)
    rows = db.execute("SELECT ts, name, provider, label, oauth, model, tokens_in, tokens_out, tokens_cached, failed "
                      "FROM account_requests ORDER BY id").fetchall()
    dump = "\n".join(str(r) for r in db.iterdump())
    db.close()
    assert rows[0] == (1796667862.123456, "a", "codex", "a@example.com", 1, "gpt-5", 100, 10, 0, 0)
    assert rows[1][1:4] == ("b", "claude", "b@example.com") and rows[1][8] == 40
    assert rows[2][1:5] == (None, "codex", None, 0)  # an API key: not in the listing, not a subscription
    assert rows[3][-1] == 1
    assert "sk-secret" not in dump and "127.0.0.1" not in dump


def test_a_schema_3_database_keeps_its_rows_and_gains_the_account_tables(paths):
    paths.usage_db.parent.mkdir(parents=True)
    db = store.connect(paths.usage_db)
    store.insert(db, [{"ts": HOUR, "route": "/v1/messages", "model": "m", "status": 200}])
    for table in ("accounts", "account_counters", "account_hourly", "account_requests", "account_tokens"):
        db.execute(f"DROP TABLE {table}")
    db.execute("PRAGMA user_version = 3")
    db.close()
    ledger.note_counters(paths, [_file("a", 2)], now=HOUR)
    raw = sqlite3.connect(paths.usage_db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 4
    assert raw.execute("SELECT count(*) FROM requests").fetchone()[0] == 1
    assert raw.execute("SELECT sum(success) FROM account_hourly").fetchone()[0] == 2
    raw.close()


def test_the_binary_process_is_its_launcher_and_the_launchers_current_child(paths):
    """A crash the launcher restarts is a new process: its totals start at 0 again."""
    import json
    import os

    from tasks.stack.launch.launcher_files import state_path
    from tasks.stack.process.records import ProcessRecord, write_record

    assert ledger.instance(paths) == ""
    paths.run_dir.mkdir(parents=True)
    write_record(paths.record("cliproxy"), ProcessRecord("cliproxy", os.getpid(), os.getpid(), 123.5, ["x"], "/", "h",
                                                         "now", "log", {}))
    assert ledger.instance(paths) == f"{os.getpid()}:123.5:"
    state_path(paths, "cliproxy", os.getpid()).write_text(json.dumps({"service_pid": 4242}))
    assert ledger.instance(paths) == f"{os.getpid()}:123.5:4242"


def test_an_unchanged_reading_writes_nothing(paths, monkeypatch):
    """The steward reads every cycle: an idle pool costs a read, never a write lock."""
    monkeypatch.setattr(ledger, "instance", lambda p: "100:1.0:7")
    ledger.note_counters(paths, [_file("a", 3)], now=HOUR)
    seen = []
    real = ledger._writer

    def traced(p):
        db = real(p)
        db.set_trace_callback(seen.append)
        return db

    monkeypatch.setattr(ledger, "_writer", traced)
    ledger.note_counters(paths, [_file("a", 3)], now=HOUR + 60)
    assert not [s for s in seen if s.lstrip().upper().startswith(("BEGIN IMMEDIATE", "INSERT", "DELETE"))], seen
    ledger.note_counters(paths, [_file("a", 4)], now=HOUR + 120)
    assert [r[4] for r in _hourly(paths)] == [4]

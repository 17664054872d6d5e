"""tasks.gateway.usage.recorder around a small ASGI app, writing to a real SQLite database: what is recorded
for JSON answers, streams (OpenAI, Responses, Anthropic) and failures; a locked or corrupt database
never breaks serving."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from tasks.base.paths import Paths
from tasks.gateway.usage import recorder, store
from tests import usage_reference as reference
from tests.conftest import ROOT
from tests.support import wait_for


def _app(status: int, chunks: list[bytes], ctype: bytes):
    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})
    return app


def _call(app, path: str, body: dict, split: int = 7) -> int:
    raw = json.dumps(body).encode()
    parts = [raw[i:i + split] for i in range(0, len(raw), split)]
    sent: list[dict] = []

    async def receive():
        chunk = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(parts)}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "path": path, "method": "POST"}, receive, send))
    return sent[0]["status"]


def _paths(tmp_path) -> Paths:
    paths = Paths(root=ROOT, home=tmp_path)
    paths.state_dir.mkdir(parents=True)
    return paths


def _rows(paths: Paths, count: int) -> list[dict]:
    def enough():
        if not paths.usage_db.exists():
            return None
        db = store.connect(paths.usage_db, readonly=True)
        try:
            rows = store.rows_since(db, 0)
        except sqlite3.OperationalError:  # created, the schema not yet in place
            return None
        finally:
            db.close()
        return rows if len(rows) >= count else None
    return wait_for(enough, what=f"{count} row(s) in the usage database")


def sse(*events: dict) -> list[bytes]:
    return [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def test_json_streams_and_failures_are_recorded_with_model_and_tokens(tmp_path):
    paths = _paths(tmp_path)
    chat = {"id": "x", "usage": {"prompt_tokens": 11, "completion_tokens": 5,
                                 "prompt_tokens_details": {"cached_tokens": 3}}}
    cases = [
        ("/v1/chat/completions", {"model": "gpt-5"}, _app(200, [json.dumps(chat).encode()], b"application/json")),
        ("/v1/chat/completions", {"model": "gpt-5", "stream": True},
         _app(200, sse({"choices": []}, {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}),
              b"text/event-stream")),
        ("/v1/responses", {"model": "gpt-5-codex", "stream": True},
         _app(200, sse({"type": "response.created"}, {"type": "response.completed", "response": {
             "usage": {"input_tokens": 20, "output_tokens": 4, "input_tokens_details": {"cached_tokens": 8}}}}),
             b"text/event-stream")),
        ("/v1/messages", {"model": "claude-sonnet-4-5", "stream": True},
         _app(200, sse({"type": "message_start", "message": {"usage": {"input_tokens": 30, "output_tokens": 1,
                                                                       "cache_read_input_tokens": 9}}},
                       {"type": "message_delta", "usage": {"output_tokens": 12}}) + [b"x" * 200_000], b"text/event-stream")),
        ("/v1/chat/completions", {"model": "double-fail"},
         _app(500, [b'{"error": {"message": "upstream <b>broke</b>"}}'], b"application/json")),
    ]
    for path, body, app in cases:
        wrapped = recorder.record_usage(app, paths)
        assert _call(wrapped, path, body) in (200, 500)
    rows = _rows(paths, len(cases))
    got = [(r["route"], r["model"], r["status"], r["tokens_in"], r["tokens_out"], r["tokens_cached"], r["stream"])
           for r in rows]
    assert got == [("/v1/chat/completions", "gpt-5", 200, 11, 5, 3, 0), ("/v1/chat/completions", "gpt-5", 200, 7, 2, None, 1),
                   ("/v1/responses", "gpt-5-codex", 200, 20, 4, 8, 1), ("/v1/messages", "claude-sonnet-4-5", 200, 30, 12, 9, 1),
                   ("/v1/chat/completions", "double-fail", 500, None, None, None, 0)]
    assert rows[-1]["error"] == "upstream <b>broke</b>"
    assert rows[1]["ttfb_ms"] is not None and rows[0]["ttfb_ms"] is None
    assert all(r["latency_ms"] >= 0 for r in rows)
    db = sqlite3.connect(paths.usage_db)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (paths.usage_db.stat().st_mode & 0o777) == 0o600
    assert store.check(paths)[0]


def test_a_stream_cut_off_before_its_end_is_recorded_as_an_error(tmp_path):
    paths = _paths(tmp_path)
    events = sse({"choices": [{"delta": {"content": "half"}}]})[:1]

    async def cut(scope, receive, send):  # as the lean path leaves a stream its upstream broke off
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": events[0], "more_body": True})

    assert _call(recorder.record_usage(cut, paths), "/v1/chat/completions", {"model": "gpt-5", "stream": True}) == 200
    [row] = _rows(paths, 1)
    assert (row["status"], row["error"], row["stream"]) == (200, recorder.CUT_OFF, 1)


def test_an_error_event_in_a_stream_is_recorded_as_its_error(tmp_path):
    paths = _paths(tmp_path)
    cases = [({"error": {"message": "litellm.APIConnectionError: upstream went away", "code": "500"}},
              "litellm.APIConnectionError: upstream went away"),  # LiteLLM's path, an upstream that cut off
             ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "Overloaded"),
             ({"type": "error", "code": "server_error", "message": "responses failed"}, "responses failed")]
    for event, _ in cases:
        app = _app(200, sse({"choices": [{"delta": {"content": "half"}}]}, event), b"text/event-stream")
        _call(recorder.record_usage(app, paths), "/v1/chat/completions", {"model": "gpt-5", "stream": True})
    rows = _rows(paths, len(cases))
    assert [(r["status"], r["error"]) for r in rows] == [(200, message) for _, message in cases]
    from tasks.usage import report

    assert all(reference.failed(r) for r in rows) and not reference.failed({**rows[0], "error": None})
    # and so does `doit usage`, which sums inside SQLite
    assert report.query(paths, 86400, [])["totals"]["errors"] == len(cases)


def test_probes_and_the_dashboard_are_not_traffic(tmp_path):
    paths = _paths(tmp_path)
    wrapped = recorder.record_usage(_app(200, [b"{}"], b"application/json"), paths)
    for path in ("/health/liveliness", "/flowgate/dashboard", "/v1/models"):
        _call(wrapped, path, {})
    assert [r["route"] for r in _rows(paths, 1)] == ["/v1/models"]


def test_a_corrupt_database_degrades_recording_not_serving(tmp_path):
    paths = _paths(tmp_path)
    paths.usage_db.write_bytes(b"this is not a database" * 100)
    logged: list[str] = []
    writer = recorder.Writer(paths, 30, log=logged.append)
    writer.write([{"ts": 1.0, "route": "/v1/x"}])
    writer.write([{"ts": 2.0, "route": "/v1/x"}])  # within RETRY_S: dropped without another try
    assert len(logged) == 1 and "requests are not recorded" in logged[0] and "not a database" in logged[0]
    assert writer.dropped == 2
    ok, what = store.check(paths)
    assert not ok and "cannot be read" in what
    paths.usage_db.unlink()
    writer.next_try = 0
    writer.write([{"ts": 3.0, "route": "/v1/x"}])
    assert logged[-1] == "flowgate usage: recording works again" and store.check(paths)[0]


def test_a_locked_database_is_one_log_line_and_a_doctor_finding(tmp_path, monkeypatch):
    paths = _paths(tmp_path)
    monkeypatch.setattr(store, "BUSY_MS", 50)
    store.connect(paths.usage_db).close()
    holder = sqlite3.connect(paths.usage_db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    logged: list[str] = []
    writer = recorder.Writer(paths, 30, log=logged.append)
    writer.write([{"ts": 1.0, "route": "/v1/x"}])
    holder.execute("ROLLBACK")
    assert len(logged) == 1 and "locked" in logged[0]
    ok, what = store.check(paths)
    assert not ok and "locked" in what


def test_a_linked_database_is_never_written_through(tmp_path):
    """Issue 31, item 12: a dangling link created files outside .router/, a link to another app's
    database got a `requests` table and WAL mode, and doctor said ok."""
    paths = _paths(tmp_path)
    paths.usage_db.parent.mkdir(parents=True, exist_ok=True)
    other = tmp_path / "other-app.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE mine (x)").connection.close()
    for target in (other, tmp_path / "elsewhere" / "dangling.sqlite3"):
        paths.usage_db.unlink(missing_ok=True)
        paths.usage_db.symlink_to(target)
        logged: list[str] = []
        writer = recorder.Writer(paths, 30, log=logged.append)
        writer.write([{"ts": 1.0, "route": "/v1/x"}])
        assert writer.dropped == 1 and "symbolic link" in logged[0]
        ok, what = store.check(paths)
        assert not ok and "symbolic link" in what
    tables = [r[0] for r in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")]
    assert tables == ["mine"] and not (tmp_path / "elsewhere").exists()
    assert sqlite3.connect(other).execute("PRAGMA journal_mode").fetchone()[0] != "wal"


def test_retention_deletes_old_rows(tmp_path):
    paths = _paths(tmp_path)
    db = store.connect(paths.usage_db)
    store.insert(db, [{"ts": 1000.0, "route": "/old"}, {"ts": 1000.0 + 40 * 86400, "route": "/new"}])
    assert store.prune(db, 30, now=1000.0 + 45 * 86400) == 1
    assert [r["route"] for r in store.rows_since(db, 0)] == ["/new"]


def test_the_apps_shutdown_writes_what_is_pending(tmp_path, monkeypatch):
    paths = _paths(tmp_path)
    monkeypatch.setattr(recorder, "BATCH_WAIT", 3600)  # the thread would wait an hour: only the shutdown writes
    wrapped = recorder.record_usage(_app(200, [b"{}"], b"application/json"), paths)
    _call(wrapped, "/v1/chat/completions", {"model": "m"})  # pending: its thread waits an hour
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def lifespan(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async def receive():
        return next(messages)

    sent = []

    async def send_kept(message):
        sent.append(message["type"])

    app = recorder.record_usage(lifespan, paths)
    app.writer.put(wrapped.writer.pending.popleft())  # as if this app had served it
    asyncio.run(app({"type": "lifespan"}, receive, send_kept))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [r["model"] for r in _rows(paths, 1)] == ["m"]


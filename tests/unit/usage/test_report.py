"""tasks.usage.report over a real SQLite database: groups, percentiles, durations, CSV and escapes."""

from __future__ import annotations

import time

import pytest

from tasks.base.errors import FlowgateError
from tasks.base.paths import Paths
from tasks.gateway.usage import recorder, store
from tasks.usage import report
from tests import usage_reference as reference
from tests.conftest import ROOT


def test_groups_count_errors_tokens_and_percentiles(tmp_path):
    paths = Paths(root=ROOT, home=tmp_path)
    now = time.time()
    rows = [{"ts": now - 60, "route": "/v1/chat/completions", "model": "gpt-5", "status": 200, "latency_ms": float(i),
             "tokens_in": 10, "tokens_out": 2, "tokens_cached": 1} for i in range(1, 21)]
    rows += [{"ts": now - 30, "route": "/v1/messages", "model": "\x1b[31mevil", "status": 500, "latency_ms": 5.0},
             {"ts": now - 9 * 86400, "route": "/v1/messages", "model": "old", "status": 200, "latency_ms": 1.0}]
    db = store.connect(paths.usage_db)
    store.insert(db, rows)
    db.close()
    got = reference.group(reference.load(paths, report.parse_since("7d")), "model")
    assert got[0] == {"model": "gpt-5", "requests": 20, "errors": 0, "tokens_in": 200, "tokens_out": 40,
                      "tokens_cached": 20, "p50_ms": 10.0, "p95_ms": 19.0}
    assert got[1]["model"] == "\x1b[31mevil" and got[1]["errors"] == 1 and len(got) == 2
    text = report.table(got, "model")
    assert "\x1b" not in text and "\\x1b[31mevil" in text
    assert reference.group(reference.load(paths, 30 * 86400), "day")[0]["requests"] == 1  # the old day first
    assert report.as_csv([{"model": "=cmd()", **{f: 1 for f in report.FIELDS}}], "model").splitlines()[1].startswith("'=cmd()")
    for lead in ("\tcmd", "\rcmd", "+1", "@x"):  # a tab or carriage return starts a formula too
        text = report.as_csv([{"model": lead, **{f: 1 for f in report.FIELDS}}], "model")
        assert text.split("\n", 1)[1].lstrip('"').startswith("'" + lead[0]), text


def test_durations_and_an_empty_history():
    assert report.parse_since("24h") == 86400 and report.parse_since("30m") == 1800 and report.parse_since("2w") == 14 * 86400
    for bad in ("", "7", "0d", "1y", "-1d"):
        with pytest.raises(FlowgateError):
            report.parse_since(bad)
    assert reference.percentile([], 50) is None and reference.percentile([3.0], 95) == 3.0
    assert reference.summary([])["requests"] == 0


def _random_rows(rand, now: float, n: int) -> list[dict]:
    return [{"ts": now - rand.uniform(0, 6 * 86400), "route": "/v1/chat/completions",
             "model": rand.choice(["gpt-5.5", "claude-opus-5", "", None]), "account": rand.choice(["a@x", "", None]),
             "status": rand.choice([200, 200, 200, 429, 500, 0, None]),
             "latency_ms": rand.choice([None, round(rand.uniform(0.1, 99.9), 1)]),  # exact below 100 ms
             "tokens_in": rand.randint(0, 500), "tokens_out": rand.choice([None, rand.randint(0, 900)]),
             "tokens_cached": rand.randint(0, 10),
             # a 200 that broke off or carried an error event fails; an unparsed row does not
             "error": rand.choice([None, None, "", recorder.CUT_OFF, "upstream said no", recorder.UNPARSED + "x"])}
            for _ in range(n)]


def test_sums_in_sqlite_equal_the_rows_summed_in_python(tmp_path, zone):
    """tasks.usage.aggregate against the reference over the rows themselves, every grouping: from the
    hourly rollup (written batch by batch), from the rows alone (a database from before the rollup,
    read-only), and after a writer has rolled that database up."""
    import random

    from tasks.usage import aggregate

    paths = Paths(root=ROOT, home=tmp_path)
    rand, now = random.Random(7), time.time()
    db = store.connect(paths.usage_db)
    for _ in range(4):  # batches landing in the same hours: the rollup's rows are added to
        store.insert(db, _random_rows(rand, now, 500))
    db.close()
    kept = reference.load(paths, 7 * 86400)
    since = 3 * 86400 + 1234.5  # the span starts inside an hour that holds rows
    part = [r for r in kept if r["ts"] >= now - since]

    def same_answers(rolled: bool) -> None:
        readonly = store.connect(paths.usage_db, readonly=True)
        assert aggregate.rollup_covers(readonly) is rolled
        start = (int(now) // 3600 + 1) * 3600 - 24 * 3600
        series = aggregate.series(readonly, start, 24, 3600)
        readonly.close()
        found = report.query(paths, 7 * 86400, list(report.BY))
        assert found["totals"] == reference.summary(kept)
        for by in report.BY:
            assert found["by"][by] == reference.group(kept, by), by
        assert report.query(paths, since, ["model", "day"])["by"]["day"] == reference.group(part, "day")
        hours = [r for r in kept if start <= r["ts"] < start + 24 * 3600]
        assert sum(sum(m["requests"]) for m in series.values()) == len(hours)
        for model, entry in series.items():
            mine = [r for r in hours if (r["model"] or aggregate.NO_MODEL) == model]
            assert sum(entry["requests"]) == len(mine) and sum(entry["tokens"]) == sum(
                (r["tokens_in"] or 0) + (r["tokens_out"] or 0) for r in mine), model

    same_answers(rolled=True)
    import sqlite3

    raw = sqlite3.connect(paths.usage_db)  # as a database written before the rollup existed
    raw.executescript("DROP TABLE hourly; DROP TABLE rollup_mark; PRAGMA user_version = 1;")
    raw.close()
    same_answers(rolled=False)
    db = store.connect(paths.usage_db)  # a writer of today: schema 2 at once, the rows rolled up a chunk at a time
    same_answers(rolled=False)
    store.catch_up(db)
    same_answers(rolled=True)
    # an instance still running schema-1 code (draining during the upgrade's swap) adds rows the rollup
    # does not see: read from the rows until the next batch of a writer of today folds them in
    old = [(r["ts"], r["route"], r["model"], r["status"], r["latency_ms"]) for r in _random_rows(rand, now, 50)]
    raw = sqlite3.connect(paths.usage_db)
    raw.executemany("INSERT INTO requests (ts, route, model, status, latency_ms) VALUES (?, ?, ?, ?, ?)", old)
    raw.commit()
    raw.close()
    kept = reference.load(paths, 7 * 86400)
    part = [r for r in kept if r["ts"] >= now - since]
    same_answers(rolled=False)
    store.insert(db, _random_rows(rand, now, 5))
    db.close()
    kept = reference.load(paths, 7 * 86400)
    part = [r for r in kept if r["ts"] >= now - since]
    same_answers(rolled=True)
    db = store.connect(paths.usage_db, readonly=True)
    latest = aggregate.failures(db, now - 7 * 86400, 10)
    db.close()
    assert [r["ts"] for r in latest] == sorted((r["ts"] for r in kept if reference.failed(r)), reverse=True)[:10]


def test_requests_without_a_model_are_labelled_and_explained(tmp_path):
    """Issue 31, item 25: model lists and `HEAD /` name no model: their row says so, under the table."""
    from tasks.usage import aggregate

    paths = Paths(root=ROOT, home=tmp_path)
    now = time.time()
    db = store.connect(paths.usage_db)
    store.insert(db, [{"ts": now - 5, "route": "/v1/models", "model": None, "status": 200, "latency_ms": 1.0},
                      {"ts": now - 4, "route": "/", "model": "", "status": 200, "latency_ms": 1.0}])
    db.close()
    groups = report.query(paths, 3600, ["model"])["by"]["model"]
    assert [g["model"] for g in groups] == [aggregate.NO_MODEL]
    text = report.table(groups, "model")
    assert text.splitlines()[1].startswith("(no model)  ")
    assert text.splitlines()[-1] == "(no model): requests that name none, such as model lists and `HEAD /` probes"
    assert reference.group(reference.load(paths, 3600), "model")[0]["model"] == aggregate.NO_MODEL

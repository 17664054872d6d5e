import time

from tasks.accounts import pool_state
from tasks.pool import show
from tasks.stack import events


def data(**extra):
    base = {"steering": True, "threshold": 90.0, "pid": 123, "fresh": True, "accounts": [], "steered": {}, "events": []}
    return {**base, **extra}


def test_the_steering_line_names_the_accounts_out_and_their_fullest_window():
    until = time.mktime((2026, 12, 7, 15, 40, 0, 0, 0, -1))
    lines = show.lines(data(accounts=[
        {"name": "a.json", "provider": "codex", "label": "a@x", "state": "out", "until": until,
         "windows": [{"name": "5h", "used_percent": 92.0}, {"name": "weekly", "used_percent": 30.0}]},
        {"name": "b.json", "provider": "codex", "label": "b@x", "state": "in", "windows": []}]))
    assert lines == ["steering: on, threshold 90 %; codex a@x out until 15:40 (5h 92 %)"]


def test_exhausted_providers_stale_state_and_a_steward_that_is_not_running():
    until = time.mktime((2026, 12, 7, 15, 40, 0, 0, 0, -1))
    lines = show.lines(data(fresh=False, steered={"gpt-5.5": {"provider": "codex", "resets_at": until, "fallback": "claude-x"},
                                                  "gpt-5.4": {"provider": "codex", "resets_at": until, "fallback": None}}))
    assert "steering: every codex account is out until 15:40: gpt-5.4 answers 429, gpt-5.5 -> claude-x" in lines
    assert any("has not written its state" in line for line in lines)
    assert show.lines(data(pid=None)) == ["steering: the steward is not running: `uv run doit up` starts it"]
    assert show.lines(None) == [] and show.lines(data(steering=False))[0] == "steering: off"


def test_status_reads_the_state_file_and_the_latest_steer_events(paths):
    stack = {"cliproxy": {"enabled": True}, "accounts": {"threshold": 80}}
    pool_state.write(paths, {"updated": time.time(), "accounts": [{"name": "a", "state": "out"}], "steered": {}})
    events.record(paths, "steer", "steward", "out", "codex a@x out of rotation: 5h window 92 % >= 80 %")
    events.record(paths, "start", "litellm", "ok")
    got = show.status(paths, stack)
    assert got["threshold"] == 80.0 and got["pid"] is None and got["accounts"] == [{"name": "a", "state": "out"}]
    assert [e["result"] for e in got["events"]] == ["out"]
    assert show.status(paths, {"cliproxy": {"enabled": False}}) is None
    assert show.status(paths, {"cliproxy": {"enabled": True}, "accounts": {"steering": False}}) is None

"""tasks.inspect.status: what `doit status` reports, from records, probes and the double as a real process."""

from __future__ import annotations

import json
import sys

import pytest

from tasks.inspect import status
from tasks.config.load import load_stack
from tasks.stack.watch import health
from tasks.stack import process
from tests.conftest import ROOT
from tests.support import free_port, wait_for

DOUBLE = ROOT / "tests" / "fakes" / "cliproxy_double.py"


def by_service(report) -> dict:
    return {s["service"]: s for s in report["services"]}


def test_nothing_running_is_stopped_and_not_ready(paths):
    report = status.collect(paths, load_stack(paths))
    services = by_service(report)
    assert report["ready"] is False and report["profile"] == "default" and report["accounts"] is None
    assert {s["state"] for s in services.values()} == {"stopped"}
    assert services["litellm"]["address"] == "http://127.0.0.1:4000"
    text = status.table(report)
    assert text.splitlines()[0].split() == ["service", "state", "pid", "uptime", "address", "ready", "restarts", "version",
                                           "drift"]
    assert "profile: default" in text


def test_it_says_which_path_serves_which_models_and_why(paths):
    assert "lean path: every CLIProxyAPI model in its own protocol" in status.table(status.collect(paths, load_stack(paths)))
    paths.local_config.write_text(json.dumps({
        "models": [{"name": "fast", "model": "gpt-5.4-mini"}],
        "router_settings": {"fallbacks": [{"gpt-5.5": ["claude-sonnet-4-6"]}]}}))
    assert ("lean path: CLIProxyAPI models in their own protocol; LiteLLM's path: fast (alias of gpt-5.4-mini); "
            "gpt-5.5 (fallbacks)") in status.table(status.collect(paths, load_stack(paths))).splitlines()
    paths.local_config.write_text(json.dumps({"litellm_settings": {"callbacks": ["detect_prompt_injection"]}}))
    assert ("lean path: off (litellm_settings.callbacks): LiteLLM's path serves every model"
            in status.table(status.collect(paths, load_stack(paths))).splitlines())
    paths.local_config.write_text(json.dumps({"litellm": {"lean_path": False}}))
    report = status.collect(paths, load_stack(paths))
    assert report["lean_path"] == "lean path: off (litellm.lean_path: false): LiteLLM's path serves every model"


def test_without_a_config_it_still_reports_and_says_so(paths):
    report = status.collect(paths, None)
    assert report["profile"] is None and len(report["services"]) == 2
    assert "profile: unknown (config not loaded)" in status.table(report)


@pytest.fixture
def plus_double(paths, tmp_path):
    """The Plus double running as the recorded cliproxy: (stack, record)."""
    port = free_port()
    paths.local_config.write_text(json.dumps({"cliproxy": {"port": port}}))
    stack = load_stack(paths)
    config = tmp_path / "config.yaml"
    config.write_text(f"host: 127.0.0.1\nport: {port}\nauth-dir: {tmp_path / 'auths'}\napi-keys: [k]\n")
    record = process.spawn([sys.executable, str(DOUBLE), "-config", str(config)], env=None, cwd=tmp_path,
                           log_path=paths.log("cliproxy"), record_path=paths.record("cliproxy"), service="cliproxy",
                           inputs_hash="x", meta={"host": "127.0.0.1", "port": port, "line": "plus"})
    try:
        yield stack, record
    finally:
        process.stop(paths.record("cliproxy"), timeout=5)


def ready_entry(paths, stack) -> dict:
    return wait_for(lambda: (e := by_service(status.collect(paths, stack))["cliproxy"])["ready"] and e,
                    what="cliproxy to be ready")


def test_a_running_double_is_ready_with_version_line_and_uptime(paths, plus_double):
    stack, record = plus_double
    entry = ready_entry(paths, stack)
    assert (entry["state"], entry["pid"], entry["line"]) == ("running", record.pid, "plus")
    assert entry["version"] == "6.8.16-0-plus"  # from its banner: the binary has no -version flag
    assert entry["uptime_s"] is not None and entry["uptime_s"] >= 0
    row = next(r for r in status.table(status.collect(paths, stack)).splitlines() if r.startswith("cliproxy"))
    assert "running" in row and "6.8.16-0-plus (plus)" in row
    process.stop(paths.record("cliproxy"), timeout=5)
    after = by_service(status.collect(paths, stack))["cliproxy"]
    assert after["state"] == "stopped" and after["ready"] is False


def test_the_version_is_kept_once_the_banner_scrolled_out_of_the_log(paths, plus_double):
    stack, _ = plus_double
    ready_entry(paths, stack)
    health.mark_ready(paths, "cliproxy")  # what `doit up` does once it answers
    with paths.log("cliproxy").open("a") as log:  # a day of probes later: the banner is far above the tail
        log.write('[info] 200 |   0.2ms | 127.0.0.1 | GET "/"\n' * 1000)
    assert by_service(status.collect(paths, stack))["cliproxy"]["version"] == "6.8.16-0-plus"


def test_uptime_reads_like_a_person_would_say_it():
    assert [status._uptime(s) for s in (None, 5, 119, 120, 7199, 7200, 7260)] == ["-", "5s", "119s", "2m", "119m",
                                                                                "2h00m", "2h01m"]


def test_an_invalid_config_is_never_said_to_be_applied_by_up():
    """Issue 31, item 25: with the config invalid, `up` would stop at it: the hint says to fix it."""
    ready = [{"service": "litellm", "enabled": True, "ready": True}]
    blocked = status.verdict({"ready": True, "services": ready, "pending": [
        "config is invalid, `doit up` would stop at it: the config is invalid (1 problem) (`uv run doit check` lists the problems)"]})
    assert "applies them" not in blocked.hint and "uv run doit check" in blocked.hint
    assert blocked.message == "the config is invalid: `uv run doit up` would stop at it"
    edited = status.verdict({"ready": True, "services": ready, "pending": ["apply the edited config"]})
    assert "`uv run doit up` applies them" in edited.hint
    assert status.verdict({"ready": True, "services": ready, "pending": []}) is None

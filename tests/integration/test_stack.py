"""The main job, end to end: `doit fetch/up/status/down` with the real LiteLLM proxy in front of the
CLIProxyAPI double, once per line (the mainline as shipped, the Plus line from a fork). Tests run in
file order on one shared stack per line (LiteLLM boots ~12 s)."""

from __future__ import annotations

import json
import os
import signal
import stat

import httpx

from tests.conftest import ROOT
from tests.fakes import today
from tests.support import down_and_check, group_gone, wait_for

# line -> (repo, tag, banner version) the stack must end up running
EXPECTED = {"mainline": (today.MAINLINE_REPO, today.MAINLINE_TAGS[-1], "7.2.140"),
            "plus": (today.PLUS_FORK, today.PLUS_TAG, today.PLUS_TAG[1:] + "-plus")}  # each build reports its tag


def executed(result) -> list[str]:
    return [line[3:] for line in result.stdout.splitlines() if line.startswith(".  ")]


def status_json(st) -> tuple[int, dict]:
    result = st.doit("status", "--json")
    return result.returncode, json.loads(result.stdout)


def by_service(data) -> dict:
    return {s["service"]: s for s in data["services"]}


# ------------------------------------------------------------------------------------------ fetch

def test_fetch_installs_verified_binary_and_warm_fetch_is_offline(stack):
    repo, tag, _ = EXPECTED[stack.line.name]
    assert stack.first_fetch.returncode == 0, stack.first_fetch.output
    assert f"installed {stack.line.title} {tag[1:]} ({stack.line.name}" in stack.first_fetch.stdout
    binary = stack.paths.bin_dir / stack.line.binary
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    assert sorted(p.name for p in stack.paths.bin_dir.iterdir()) == sorted([binary.name, "manifest.json", "releases"])
    [kept] = (stack.paths.bin_dir / "releases").iterdir()  # the way back for `doit rollback`
    assert (kept / binary.name).read_bytes() == binary.read_bytes()
    manifest = json.loads(stack.paths.manifest.read_text())
    assert manifest["repo"] == repo and manifest["tag"] == tag and manifest["verified_by"]
    assert manifest["line"] == stack.line.name and manifest["binary"] == stack.line.binary
    if stack.line.name == "mainline":  # a fresh clone: the shipped release settings, untouched
        assert stack.paths.base_config.read_bytes() == (ROOT / "config" / "flowgate.yaml").read_bytes()
        assert "release" not in stack.paths.local_config.read_text()
        assert manifest["build"] == "glibc build"  # these machines have a current glibc
    assert stack.warm_fetch.returncode == 0
    assert "fetch" not in executed(stack.warm_fetch)
    assert stack.warm_fetch_requests == 0


# ------------------------------------------------------------------------------------- bring-up

def test_concurrent_up_starts_each_service_once(stack):
    for code, out, err in stack.concurrent:
        assert code == 0, out + err
        assert "Traceback" not in out + err
    assert len(stack.events("start", "litellm")) == 1
    assert len(stack.events("start", "cliproxy")) == 1
    code, data = status_json(stack)
    assert code == 0 and data["ready"] is True


def test_requests_through_litellm(stack):
    headers = {"Authorization": f"Bearer {stack.master_key}"}
    with httpx.Client(base_url=stack.litellm_url, headers=headers, timeout=60) as client:
        chat = client.post("/v1/chat/completions",
                           json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "ping one"}]})
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"] == "double(gpt-5.5): ping one"

        with client.stream("POST", "/v1/chat/completions",
                           json={"model": "gpt-5.4-mini", "stream": True,
                                 "messages": [{"role": "user", "content": "stream two"}]}) as resp:
            assert resp.status_code == 200
            text = ""
            for line in resp.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for choice in json.loads(line[6:]).get("choices", []):
                        text += choice.get("delta", {}).get("content") or ""
        assert text == "double(gpt-5.4-mini): stream two"

        responses = client.post("/v1/responses", json={"model": "gpt-5.6-sol", "input": "codex three"})
        assert responses.status_code == 200, responses.text
        assert "double(gpt-5.6-sol): codex three" in responses.text

        messages = client.post("/v1/messages", headers={"x-api-key": stack.master_key, "anthropic-version": "2023-06-01"},
                               json={"model": "claude-sonnet-4-5-20250929", "max_tokens": 64,
                                     "messages": [{"role": "user", "content": "claude four"}]})
        assert messages.status_code == 200, messages.text
        assert messages.json()["content"][0]["text"] == "double(claude-sonnet-4-5-20250929): claude four"

        wrong = httpx.post(f"{stack.litellm_url}/v1/chat/completions", headers={"Authorization": "Bearer sk-wrong"},
                           json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "x"}]}, timeout=30)
        assert wrong.status_code in (400, 401)


def test_noop_up_restarts_nothing(stack):
    assert stack.doit("up").returncode == 0  # whatever the tests before left to do
    pids = {s: stack.pid(s) for s in ("litellm", "cliproxy")}
    db = stack.paths.doit_db.stat().st_mtime_ns
    result = stack.doit("up")
    assert result.returncode == 0, result.output
    assert stack.paths.doit_db.stat().st_mtime_ns == db  # nothing changed, nothing written (or fsynced)
    assert not [t for t in executed(result) if t.startswith(("start:", "render:", "fetch", "config", "secrets"))]
    assert {s: stack.pid(s) for s in ("litellm", "cliproxy")} == pids
    assert "litellm: unchanged" in result.stdout and "cliproxy: unchanged" in result.stdout


def cliproxy_asked(stack) -> dict:
    """How often the running cliproxy was asked for its probe route and for its accounts (its log)."""
    text = stack.paths.log("cliproxy").read_text()
    return {"probe": text.count(f'"{stack.line.health_path}"'), "accounts": text.count('"/v0/management/auth-files"')}


def test_up_and_status_ask_cliproxy_once_each(stack):
    """`up` and `status` send their questions while doit loads (tasks.graph.early): each is still
    asked once, and a command that asks nothing (logs) sends nothing."""
    before = cliproxy_asked(stack)
    assert stack.doit("up").returncode == 0
    assert stack.doit("status").returncode == 0
    assert stack.doit("logs", "cliproxy", "-n", "1").returncode == 0
    expected = {"probe": before["probe"] + 2, "accounts": before["accounts"] + 1}
    wait_for(lambda: cliproxy_asked(stack) == expected, what=f"cliproxy's log to show {expected}", timeout=5)
    assert stack.doit("logs", "cliproxy", "-n", "1").returncode == 0  # time for a late duplicate to show
    assert cliproxy_asked(stack) == expected


def test_up_keeps_a_running_service_log_bounded(stack):
    log = stack.paths.log("cliproxy")
    with log.open("ab") as fh:  # weeks of requests since its start
        fh.write(b"[info] 200 | filler\n" * (11 * 1024 * 1024 // 20))
    assert stack.doit("up").returncode == 0
    kept = log.with_name(log.name + ".1")
    assert kept.stat().st_size > 10 * 1024 * 1024 and log.stat().st_size < 1024 * 1024
    httpx.get(f"http://127.0.0.1:{stack.cliproxy_port}{stack.line.health_path}", timeout=5)
    wait_for(lambda: stack.line.health_path in log.read_text(), what="the service to log into its emptied log")
    assert "\0" not in log.read_text()


def test_config_rewritten_by_binary_is_not_drift(stack):
    running = stack.paths.cliproxy_config.read_text()
    assert "secret-key: $2a$" in running or "secret-key: '$2a$" in running or '"$2a$' in running
    code, data = status_json(stack)
    assert code == 0
    assert by_service(data)["cliproxy"]["drift"] is False
    result = stack.doit("up")
    assert "start:cliproxy" not in executed(result)


def test_status_tells_the_truth(stack):
    code, data = status_json(stack)
    assert code == 0 and data["profile"] == "default"
    svc = by_service(data)
    assert svc["litellm"]["state"] == "running" and svc["litellm"]["ready"] is True
    assert svc["litellm"]["version"] == "1.108.14"
    assert svc["cliproxy"]["version"] == EXPECTED[stack.line.name][2]
    assert svc["cliproxy"]["line"] == stack.line.name
    assert svc["litellm"]["address"] == stack.litellm_url
    assert svc["cliproxy"]["pid"] == stack.pid("cliproxy")
    table = stack.doit("status")
    assert table.returncode == 0 and "litellm" in table.stdout and "running" in table.stdout


def test_cliproxy_setting_reaches_it_by_hot_reload(stack):
    pids = {s: stack.pid(s) for s in ("litellm", "cliproxy")}
    stack.write_local("  settings:\n    request-retry: 7\n")
    result = stack.doit("up")
    assert result.returncode == 0, result.output
    assert "cliproxy: reloaded" in result.stdout
    assert "render:litellm" not in executed(result) and "start:litellm" not in executed(result)
    assert {s: stack.pid(s) for s in ("litellm", "cliproxy")} == pids
    mgmt = stack.paths.secret("cliproxy_management_key").read_text().strip()

    def reloaded():
        resp = httpx.get(f"http://127.0.0.1:{stack.cliproxy_port}/v0/management/config",
                         headers={"Authorization": f"Bearer {mgmt}"}, timeout=5)
        return resp.status_code == 200 and "7" == str(resp.json().get("request-retry"))
    wait_for(reloaded)
    assert stack.events("reload", "cliproxy")


def test_restart_one_service(stack):
    old = {s: stack.pid(s) for s in ("litellm", "cliproxy")}
    result = stack.doit("restart", "cliproxy")
    assert result.returncode == 0, result.output
    # LiteLLM in front: the new CLIProxyAPI takes over through a bridge (LiteLLM swapped to it and back)
    assert "cliproxy: switched" in result.stdout and "ready: cliproxy" in result.stdout
    assert stack.pid("cliproxy") != old["cliproxy"] and stack.record("cliproxy")["meta"]["port"] == stack.cliproxy_port
    assert stack.record("cliproxy#bridge") is None and stack.pid("litellm") != old["litellm"]
    bad = stack.doit("restart", "nginx")
    assert bad.returncode == 1 and "unknown service 'nginx'" in bad.stderr


def test_kill9_cliproxy_then_up_restarts_only_it(stack):
    litellm_pid, old = stack.pid("litellm"), stack.record("cliproxy")
    os.killpg(old["pgid"], signal.SIGKILL)
    wait_for(lambda: status_json(stack)[1]["services"][1]["state"] == "crashed")
    result = stack.doit("up")
    assert result.returncode == 0, result.output
    assert "cliproxy: restarted" in result.stdout and "its process was gone" in result.stdout
    assert stack.pid("litellm") == litellm_pid and stack.pid("cliproxy") != old["pid"]
    assert stack.events("crash", "cliproxy")


def test_litellm_setting_restarts_only_litellm(stack):
    old = {s: stack.pid(s) for s in ("litellm", "cliproxy")}
    stack.paths.local_config.write_text(stack.paths.local_config.read_text() + "litellm_settings:\n  num_retries: 2\n")
    result = stack.doit("up")
    assert result.returncode == 0, result.output
    # a new instance took over the address without downtime (test_profiles.py hammers it meanwhile)
    assert "litellm: swapped" in result.stdout and "config changed" in result.stdout
    assert executed(result)[:2] == ["config", "render:litellm"]
    assert "start:cliproxy" not in executed(result) and "render:cliproxy" not in executed(result)
    assert stack.pid("cliproxy") == old["cliproxy"] and stack.pid("litellm") != old["litellm"]
    assert group_gone(old["litellm"])


def test_kill9_litellm_then_up_restarts_only_it(stack):
    cliproxy_pid, old = stack.pid("cliproxy"), stack.record("litellm")
    os.killpg(old["pgid"], signal.SIGKILL)
    result = stack.doit("up")
    assert result.returncode == 0, result.output
    assert "litellm: restarted" in result.stdout
    assert stack.pid("cliproxy") == cliproxy_pid
    headers = {"Authorization": f"Bearer {stack.master_key}"}
    resp = httpx.post(f"{stack.litellm_url}/v1/chat/completions", headers=headers, timeout=60,
                      json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "back"}]})
    assert resp.json()["choices"][0]["message"]["content"] == "double(gpt-5.5): back"


def test_logs_show_both_services(stack):
    result = stack.doit("logs", "-n", "5")
    assert result.returncode == 0
    assert "litellm.log" in result.stdout and "cliproxy.log" in result.stdout
    assert stack.master_key not in result.stdout


def test_down_is_idempotent_and_complete(stack):
    down_and_check(stack)
    assert stack.record("litellm") is None and stack.record("cliproxy") is None
    again = stack.doit("down")
    assert again.returncode == 0 and "not running" in again.stdout
    code, data = status_json(stack)
    assert code == 1 and {s["state"] for s in data["services"]} == {"stopped"}
    events_text = stack.paths.events.read_text()
    for name in ("litellm_master_key", "cliproxy_api_key", "cliproxy_management_key"):
        assert stack.paths.secret(name).read_text().strip() not in events_text

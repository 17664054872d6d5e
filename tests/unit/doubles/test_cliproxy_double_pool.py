"""The double's pools of accounts (issue 29, contract A): rotation, quota windows that fill as it
serves, the provider's refusal at 100 % and what the v7 binary then does, the counters in
auth-files and the usage queue's records. Each test runs the double as a subprocess on a free port;
the real binary's side of the same scenario is tests/integration/test_real_pool.py."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from tests.support import wait_for, write_account
from tests.unit.doubles.test_cliproxy_double import CLIENT_KEY, start_double  # noqa: F401  (fixture)

CODEX_MODEL, CLAUDE_MODEL = "gpt-5.5", "claude-sonnet-4-6"
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


def pool_double(start_double, step: float = 0, reset: float = 30, **env):  # noqa: F811
    d = start_double(env={"CLIPROXY_DOUBLE_QUOTA_STEP": str(step), "CLIPROXY_DOUBLE_QUOTA_RESET": str(reset),
                          "CLIPROXY_DOUBLE_EDITION": "mainline", **env})
    d.config.write_text(d.config.read_text() + "usage-statistics-enabled: true\n")
    wait_for(lambda: d.mgmt("GET", "/config").json().get("usage-statistics-enabled") is True, what="the reload")
    return d


def accounts(d) -> dict[str, dict]:
    return {f["name"]: f for f in d.mgmt("GET", "/auth-files").json()["files"]}


def chat(d, model: str = CODEX_MODEL):
    return d.http.post("/v1/chat/completions", headers=AUTH,
                       json={"model": model, "messages": [{"role": "user", "content": "hello pool"}]})


def messages(d, model: str = CLAUDE_MODEL):
    return d.http.post("/v1/messages", headers=AUTH, json={"model": model, "max_tokens": 16,
                                                            "messages": [{"role": "user", "content": "hello pool"}]})


def quota(d, name: str) -> dict:
    data = json.loads((d.auth_dir / name).read_text())
    if data["type"] == "codex":
        url, header = "https://chatgpt.com/backend-api/wham/usage", {"ChatGPT-Account-Id": data["account_id"]}
    else:
        url, header = "https://api.anthropic.com/api/oauth/usage", {"anthropic-beta": "oauth-2025-04-20"}
    answer = d.mgmt("POST", "/api-call", json={"auth_index": accounts(d)[name]["auth_index"], "method": "GET", "url": url,
                                               "header": {"Authorization": "Bearer $TOKEN$", **header}}).json()
    assert answer["status_code"] == 200, answer
    return json.loads(answer["body"])


def test_requests_rotate_over_the_accounts_and_are_counted_per_account(start_double):  # noqa: F811
    d = pool_double(start_double)
    a = write_account(d.auth_dir, "codex", "a@example.com")
    b = write_account(d.auth_dir, "codex", "b@example.com")
    off = write_account(d.auth_dir, "codex", "off@example.com", disabled=True)
    wait_for(lambda: len(accounts(d)) == 3, what="three accounts")
    for _ in range(4):
        assert chat(d).status_code == 200
    files = accounts(d)
    assert [files[n]["success"] for n in (a, b, off)] == [2, 2, 0]
    assert all(files[n]["failed"] == 0 and files[n]["status"] == "active" for n in (a, b))
    assert files[off]["status"] == "disabled"
    recent = files[a]["recent_requests"]
    assert len(recent) == 20 and recent[-1]["success"] == 2 and recent[-1]["failed"] == 0
    assert all(len(bucket["time"]) == 11 and bucket["time"][2] == ":" for bucket in recent)  # "HH:MM-HH:MM"
    records = d.mgmt("GET", "/usage-queue", params={"count": 10}).json()
    assert sorted(r["auth_index"] for r in records) == sorted([files[a]["auth_index"], files[b]["auth_index"]] * 2)
    record = records[0]
    assert record["failed"] is False and record["provider"] == "codex" and record["model"] == CODEX_MODEL
    assert record["endpoint"] == "POST /v1/chat/completions" and record["source"] in ("a@example.com", "b@example.com")
    assert record["tokens"]["total_tokens"] == record["tokens"]["input_tokens"] + record["tokens"]["output_tokens"] > 0
    assert record["token_breakdown"]["total_tokens"] == record["tokens"]["total_tokens"]
    assert d.mgmt("GET", "/usage-queue").json() == []  # popped: one reader only
    assert d.mgmt("GET", "/usage-queue", params={"count": "0"}).status_code == 400


def test_windows_fill_as_the_account_serves_and_reset(start_double):  # noqa: F811
    d = pool_double(start_double, step=10, reset=3)
    name = write_account(d.auth_dir, "claude", "c@example.com")
    wait_for(lambda: name in accounts(d), what="the account")
    assert quota(d, name)["five_hour"]["utilization"] == 0
    for _ in range(3):
        assert messages(d).status_code == 200
    windows = quota(d, name)
    assert windows["five_hour"]["utilization"] == windows["seven_day"]["utilization"] == 30
    assert d.http.post("/v1/messages/count_tokens", headers=AUTH, json={
        "model": CLAUDE_MODEL, "messages": [{"role": "user", "content": "x"}]}).status_code == 200
    assert quota(d, name)["five_hour"]["utilization"] == 30  # count_tokens is not metered
    wait_for(lambda: quota(d, name)["five_hour"]["utilization"] == 0, timeout=10, what="the window's reset")


def test_a_used_up_codex_account_answers_429_and_the_next_one_serves(start_double):  # noqa: F811
    d = pool_double(start_double, step=50, reset=60)
    a = write_account(d.auth_dir, "codex", "a@example.com")
    b = write_account(d.auth_dir, "codex", "b@example.com")
    wait_for(lambda: len(accounts(d)) == 2, what="two accounts")
    first, second = sorted([a, b])
    for _ in range(4):  # each account served twice: both at 100 %
        assert chat(d).status_code == 200
    assert quota(d, first)["rate_limit"]["primary_window"]["used_percent"] == 100
    assert quota(d, first)["rate_limit"]["limit_reached"] is True
    # the next request: the first account answers usage_limit_reached, the second one too; the client
    # gets the last upstream 429 as it came
    refused = chat(d)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "usage_limit_reached" and 0 < error["resets_in_seconds"] <= 61
    files = accounts(d)
    for n in (first, second):
        entry = files[n]
        assert (entry["success"], entry["failed"], entry["status"], entry["unavailable"]) == (2, 1, "error", True)
        assert json.loads(entry["status_message"])["error"]["type"] == "usage_limit_reached"
        assert entry["next_retry_after"].endswith("Z")
    # every account cooling down now: the selector's own 429, no upstream attempt
    cooling = chat(d)
    assert cooling.status_code == 429 and cooling.json()["error"]["code"] == "model_cooldown"
    assert 0 < int(cooling.headers["Retry-After"]) <= 61
    assert accounts(d)[first]["failed"] == 1
    records = d.mgmt("GET", "/usage-queue", params={"count": 100}).json()
    failed = [r for r in records if r["failed"]]
    assert sorted(r["auth_index"] for r in failed) == sorted([files[first]["auth_index"], files[second]["auth_index"]])
    assert all(r["fail"]["status_code"] == 429 for r in failed)


def test_one_account_out_is_invisible_to_the_client_and_comes_back_after_its_reset(start_double):  # noqa: F811
    d = pool_double(start_double, step=100, reset=2)
    a = write_account(d.auth_dir, "codex", "a@example.com")
    wait_for(lambda: a in accounts(d), what="the first account")
    assert chat(d).status_code == 200  # a: 100 %
    b = write_account(d.auth_dir, "codex", "b@example.com")
    wait_for(lambda: b in accounts(d), what="the second account")
    assert chat(d).status_code == 200  # whichever the cursor points at, b serves (a refuses first if asked)
    files = accounts(d)
    assert files[b]["success"] == 1 and files[a]["success"] == 1
    # both at 100 % now: refused until the windows reset, then served again
    assert chat(d).status_code == 429
    wait_for(lambda: chat(d).status_code == 200, timeout=15, what="an account back after its reset")


def test_a_claude_refusal_cools_every_model_of_the_account(start_double):  # noqa: F811
    d = pool_double(start_double, step=100, reset=60)
    name = write_account(d.auth_dir, "claude", "c@example.com")
    wait_for(lambda: name in accounts(d), what="the account")
    assert messages(d).status_code == 200
    refused = messages(d)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    entry = accounts(d)[name]
    assert entry["unavailable"] is True and entry["status"] == "error"
    assert json.loads(entry["status_message"])["error"]["type"] == "rate_limit_error"
    until = datetime.fromisoformat(entry["next_retry_after"].replace("000Z", "+00:00")).timestamp()
    assert until >= time.time() + 59  # the window's reset plus the binary's 1-30 s grace
    # another model of the same account: credential-scoped, so cooling down without an attempt
    other = messages(d, "claude-haiku-4-5-20251001")
    assert other.status_code == 429 and "Retry-After" not in other.headers
    assert other.json() == {"type": "error", "error": {"type": "rate_limit_error", "message":
                            "All credentials for model claude-haiku-4-5-20251001 are cooling down via provider claude"}}
    assert accounts(d)[name]["failed"] == 1


@pytest.mark.parametrize("strategy", ["fill-first"])
def test_fill_first_uses_the_first_ready_account(start_double, strategy):  # noqa: F811
    d = pool_double(start_double)
    d.config.write_text(d.config.read_text().replace("strategy: round-robin", f"strategy: {strategy}"))
    wait_for(lambda: d.mgmt("GET", "/config").json()["routing"]["strategy"] == strategy, what="the reload")
    names = sorted([write_account(d.auth_dir, "codex", "a@example.com"), write_account(d.auth_dir, "codex", "b@example.com")])
    wait_for(lambda: len(accounts(d)) == 2, what="two accounts")
    for _ in range(3):
        assert chat(d).status_code == 200
    assert [accounts(d)[n]["success"] for n in names] == [3, 0]


def test_a_changed_account_file_ends_every_model_cooldown(start_double):  # noqa: F811
    d = pool_double(start_double, step=100, reset=60)
    codex = write_account(d.auth_dir, "codex", "a@example.com")
    claude = write_account(d.auth_dir, "claude", "c@example.com")
    wait_for(lambda: len(accounts(d)) == 2, what="two accounts")
    assert chat(d).status_code == 200 and messages(d).status_code == 200
    assert chat(d).json()["error"]["type"] == "usage_limit_reached"
    assert messages(d).json()["error"]["type"] == "rate_limit_error"
    assert chat(d).json()["error"]["code"] == "model_cooldown"
    # a third account's file arrives: every model cooldown ends (the codex account is asked again and
    # refuses again), claude's credential-wide one stays
    write_account(d.auth_dir, "claude", "other@example.com", disabled=True)
    wait_for(lambda: accounts(d)[codex]["status"] == "active", what="the codex account's cooldown ended")
    assert accounts(d)[codex]["unavailable"] is False and accounts(d)[claude]["unavailable"] is True
    assert chat(d).json()["error"]["type"] == "usage_limit_reached"
    assert accounts(d)[codex]["failed"] == 2
    assert "cooling down" in messages(d).json()["error"]["message"]

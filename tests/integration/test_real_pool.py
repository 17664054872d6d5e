"""Pools of OAuth accounts on the double and on the real CLIProxyAPI, with the same assertions.

Two codex and two claude accounts (tests.support.write_account), quota windows that fill by 50 % a
served request and reset after 60 s: on the double through its knobs, on the real v7.2.140 through
tests/fakes/provider.py's subscriptions, reached through tests/fakes/mitm.py (the accounts'
`proxy_url` and the global `proxy-url`, which the api-call route uses; SSL_CERT_FILE trusts the
MITM's test CA). Each binary is installed by `doit fetch` and started by `doit start:cliproxy`
(no LiteLLM): requests go to the binary itself. The real half skips where Go is missing.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.conftest import serve
from tests.integration.pool_harness import pool_stack
from tests.support import wait_for, write_account

STEP, RESET = 50, 60
CODEX_MODEL, CLAUDE_MODEL = "gpt-5.5", "claude-sonnet-4-6"


@pytest.fixture(scope="module", params=["double", "real"])
def pool(request, tmp_path_factory, github):
    """A FlowGate home running one CLIProxyAPI alone, with two accounts per provider."""
    closers = []
    st, proxy = pool_stack(request.param, tmp_path_factory, github, f"pool-{request.param}", STEP, RESET, closers)
    st.write_local("  settings:\n    usage-statistics-enabled: true\n" + (st.proxy_settings if proxy else ""))
    st.kind = request.param
    st.names = {"codex": [write_account(st.paths.auths_dir, "codex", f"{x}@example.com", proxy_url=proxy) for x in "ab"],
                "claude": [write_account(st.paths.auths_dir, "claude", f"{x}@example.com", proxy_url=proxy) for x in "cd"]}
    started = st.doit("start:cliproxy")
    assert started.returncode == 0, started.output
    st.base = f"http://127.0.0.1:{st.cliproxy_port}"
    wait_for(lambda: _answers(st.base + "/healthz"), timeout=30, what="the binary listening")
    st.client_key = st.paths.secret("cliproxy_api_key").read_text().strip()
    st.mgmt_key = st.paths.secret("cliproxy_management_key").read_text().strip()
    wait_for(lambda: len(files(st)) == 4, timeout=15, what="the four accounts loaded")
    try:
        yield from serve(st)
    finally:
        for close in reversed(closers):
            close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def files(st) -> dict[str, dict]:
    answer = httpx.get(f"{st.base}/v0/management/auth-files", headers={"Authorization": f"Bearer {st.mgmt_key}"}, timeout=10)
    return {f["name"]: f for f in answer.json()["files"]}


def ask(st, provider: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {st.client_key}"}
    if provider == "codex":
        return httpx.post(f"{st.base}/v1/chat/completions", headers=headers, timeout=60,
                          json={"model": CODEX_MODEL, "messages": [{"role": "user", "content": "pool"}]})
    return httpx.post(f"{st.base}/v1/messages", headers=headers, timeout=60,
                      json={"model": CLAUDE_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "pool"}]})


def test_two_accounts_per_provider_rotate_fill_and_are_refused_at_100_percent(pool):
    # rotation: each account serves two requests, which fills its windows (50 % a request)
    for provider in ("codex", "claude"):
        for _ in range(4):
            answer = ask(pool, provider)
            assert answer.status_code == 200, answer.text
        listed = files(pool)
        assert [listed[n]["success"] for n in pool.names[provider]] == [2, 2], listed
    # the live windows, as FlowGate reads them through api-call
    result = pool.doit("accounts", "--json")
    assert result.returncode == 0, result.output
    accounts = json.loads(result.stdout)
    for provider in ("codex", "claude"):
        for name in pool.names[provider]:
            entry = next(a for a in accounts if a.get("auth_index") == listed[name]["auth_index"])
            used = [w["used_percent"] for w in entry["quota"]["windows"]]
            assert used and max(used) == 100, entry
    # at 100 %: each account refuses once (the binary tries both in one round), the client gets the
    # provider's refusal; then every account cools down and the selector answers without an attempt
    codex = ask(pool, "codex")
    assert codex.status_code == 429 and codex.json()["error"]["type"] == "usage_limit_reached", codex.text
    cooling = ask(pool, "codex")
    assert cooling.status_code == 429 and cooling.json()["error"]["code"] == "model_cooldown", cooling.text
    claude = ask(pool, "claude")
    assert claude.status_code == 429 and claude.json()["error"]["type"] == "rate_limit_error", claude.text
    cooling = ask(pool, "claude")
    assert cooling.status_code == 429 and "cooling down via provider claude" in cooling.json()["error"]["message"]
    listed = files(pool)
    for provider, refusal in (("codex", "usage_limit_reached"), ("claude", "rate_limit_error")):
        for name in pool.names[provider]:
            entry = listed[name]
            assert (entry["success"], entry["failed"], entry["status"], entry["unavailable"]) == (2, 1, "error", True), entry
            assert json.loads(entry["status_message"])["error"]["type"] == refusal
            assert entry["next_retry_after"]
    # one usage-queue record per attempt, each naming its account
    records = httpx.get(f"{pool.base}/v0/management/usage-queue", params={"count": 100}, timeout=10,
                        headers={"Authorization": f"Bearer {pool.mgmt_key}"}).json()
    every = {listed[n]["auth_index"] for names in pool.names.values() for n in names}
    assert {r["auth_index"] for r in records} == every
    assert sum(r["failed"] for r in records) == 4 and len(records) == 12


def test_a_new_account_file_ends_the_other_accounts_model_cooldowns(pool):
    """Right after the refusals above (the windows reset 60 s after they opened): a third account's file
    makes the binary register every account's models again, which ends their model cooldowns; claude's
    credential-wide cooldown stays."""
    codex = pool.names["codex"][0]
    assert files(pool)[codex]["unavailable"] is True, "run after the test above"
    added = write_account(pool.paths.auths_dir, "claude", "late@example.com", disabled=True)
    wait_for(lambda: added in files(pool) and files(pool)[codex]["status"] == "active", timeout=15,
             what="the codex account's cooldown ended")
    listed = files(pool)
    assert [listed[n]["unavailable"] for n in pool.names["codex"]] == [False, False], listed
    assert [listed[n]["unavailable"] for n in pool.names["claude"]] == [True, True], listed
    again = ask(pool, "codex")  # asked upstream again, refused again: not the selector's model_cooldown
    assert again.status_code == 429 and again.json()["error"]["type"] == "usage_limit_reached", again.text
    assert [files(pool)[n]["failed"] for n in pool.names["codex"]] == [2, 2]
    claude = ask(pool, "claude")
    assert claude.status_code == 429 and "cooling down via provider claude" in claude.json()["error"]["message"]

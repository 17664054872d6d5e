"""Pools of OAuth accounts on the double and on the real CLIProxyAPI, with the same assertions.

Two codex and two claude accounts (tests.support.write_account), quota windows that fill by 50 % a
served request and reset after 120 s: on the double through its knobs, on the real v7.2.140 through
tests/fakes/provider.py's subscriptions, reached through tests/fakes/mitm.py (the accounts'
`proxy_url`, which the executors and the api-call route both use; SSL_CERT_FILE trusts the MITM's
test CA). Each binary is installed by `doit fetch` and FlowGate is brought up (`doit up`, the
real LiteLLM included): the rotation is driven through the gateway with the official SDKs, the
refusals straight at the binary (what the gateway makes of an exhausted provider is the steward's,
issue 29). The real half skips where Go is missing.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import serve
from tests.integration.pool_harness import pool_stack
from tests.support import wait_for, write_account

STEP, RESET = 50, 120  # no test here waits for a reset: long enough for slow machines
CODEX_MODEL, CLAUDE_MODEL = "gpt-5.5", "claude-sonnet-4-6"


@pytest.fixture(scope="module", params=["double", "real"])
def pool(request, tmp_path_factory, github):
    """A FlowGate home running one CLIProxyAPI alone, with two accounts per provider."""
    closers = []
    st, proxy = pool_stack(request.param, tmp_path_factory, github, f"pool-{request.param}", STEP, RESET, closers)
    # no steward: these accounts are filled to 100 % on purpose (steering has test_pool_steering.py)
    st.write_local("  settings:\n    usage-statistics-enabled: true\naccounts:\n  steering: false\n")
    st.kind = request.param
    st.names = {"codex": [write_account(st.paths.auths_dir, "codex", f"{x}@example.com", proxy_url=proxy) for x in "ab"],
                "claude": [write_account(st.paths.auths_dir, "claude", f"{x}@example.com", proxy_url=proxy) for x in "cd"]}
    up = st.doit("up")
    assert up.returncode == 0, up.output
    st.base = f"http://127.0.0.1:{st.cliproxy_port}"
    st.client_key = st.paths.secret("cliproxy_api_key").read_text().strip()
    st.mgmt_key = st.paths.secret("cliproxy_management_key").read_text().strip()
    wait_for(lambda: len(files(st)) == 4, timeout=15, what="the four accounts loaded")
    try:
        yield from serve(st)
    finally:
        for close in reversed(closers):
            close()


def files(st) -> dict[str, dict]:
    answer = httpx.get(f"{st.base}/v0/management/auth-files", headers={"Authorization": f"Bearer {st.mgmt_key}"}, timeout=10)
    return {f["name"]: f for f in answer.json()["files"]}


def ask(st, provider: str, stream: bool = False) -> httpx.Response:
    headers = {"Authorization": f"Bearer {st.client_key}"}
    if provider == "codex" and stream:
        return httpx.post(f"{st.base}/v1/responses", headers=headers, timeout=60,
                          json={"model": CODEX_MODEL, "input": "pool", "stream": True})
    if provider == "claude" and stream:
        return httpx.post(f"{st.base}/v1/messages", headers=headers, timeout=60, json={
            "model": CLAUDE_MODEL, "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "pool"}]})
    if provider == "codex":
        return httpx.post(f"{st.base}/v1/chat/completions", headers=headers, timeout=60,
                          json={"model": CODEX_MODEL, "messages": [{"role": "user", "content": "pool"}]})
    return httpx.post(f"{st.base}/v1/messages", headers=headers, timeout=60,
                      json={"model": CLAUDE_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "pool"}]})


def test_two_accounts_per_provider_rotate_fill_and_are_refused_at_100_percent(pool):
    # rotation through the gateway: each account serves two requests, which fills its windows (50 % each)
    openai_client = openai.OpenAI(base_url=f"{pool.litellm_url}/v1", api_key=pool.master_key, max_retries=0)
    anthropic_client = anthropic.Anthropic(base_url=pool.litellm_url, api_key=pool.master_key, max_retries=0)
    for provider in ("codex", "claude"):
        for _ in range(4):
            if provider == "codex":
                reply = openai_client.chat.completions.create(
                    model=CODEX_MODEL, messages=[{"role": "user", "content": "pool"}]).choices[0].message.content
            else:
                reply = anthropic_client.messages.create(
                    model=CLAUDE_MODEL, max_tokens=16, messages=[{"role": "user", "content": "pool"}]).content[0].text
            assert "pool" in reply, reply
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
    """Right after the refusals above (the windows reset 120 s after they opened): a third account's file
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


# ---------------------------------------------------------------- back after the window's reset

SHORT_RESET = 6


@pytest.fixture(scope="module", params=["double", "real"])
def short(request, tmp_path_factory, github):
    """One codex and one claude account whose windows fill in one request and reset after 6 s; the
    binary alone (`doit start:cliproxy`, no LiteLLM)."""
    closers = []
    st, proxy = pool_stack(request.param, tmp_path_factory, github, f"short-{request.param}", 100, SHORT_RESET, closers)
    st.names = {p: [write_account(st.paths.auths_dir, p, f"{p}@example.com", proxy_url=proxy)] for p in ("codex", "claude")}
    started = st.doit("start:cliproxy")
    assert started.returncode == 0, started.output
    st.base = f"http://127.0.0.1:{st.cliproxy_port}"
    st.client_key = st.paths.secret("cliproxy_api_key").read_text().strip()
    st.mgmt_key = st.paths.secret("cliproxy_management_key").read_text().strip()
    wait_for(lambda: _listed(st) == 2, timeout=30, what="the binary listening with both accounts")
    # the accounts are listed a moment before their models are registered (a 400 meanwhile, on the real binary)
    wait_for(lambda: _serves(st, CODEX_MODEL, CLAUDE_MODEL), timeout=30, what="both accounts' models registered")
    try:
        yield from serve(st)
    finally:
        for close in reversed(closers):
            close()


def _listed(st) -> int:
    try:
        return len(files(st))
    except (httpx.HTTPError, ValueError, KeyError):
        return 0


def _serves(st, *models: str) -> bool:
    try:
        answer = httpx.get(f"{st.base}/v1/models", headers={"Authorization": f"Bearer {st.client_key}"}, timeout=10)
        return set(models) <= {m.get("id") for m in answer.json()["data"]}
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
        return False


def test_a_used_up_account_serves_again_after_its_reset(short):
    """codex: back once `resets_at` has passed; claude: once the reset plus the binary's 1-30 s grace has."""
    for provider, refusal, back_within in (("codex", "usage_limit_reached", SHORT_RESET + 15),
                                           ("claude", "rate_limit_error", SHORT_RESET + 30 + 15)):
        served = ask(short, provider)
        assert served.status_code == 200, served.text
        refused = ask(short, provider, stream=True)
        assert refused.status_code == 429 and refused.json()["error"]["type"] == refusal, refused.text
        if provider == "codex":  # a streamed Responses request gets the error cut down to type and message
            assert refused.json() == {"error": {"type": refusal, "message": "The usage limit has been reached"}}
        wait_for(lambda: ask(short, provider).status_code == 200, timeout=back_within, interval=1,
                 what=f"the {provider} account back after its reset")
        entry = files(short)[short.names[provider][0]]
        assert (entry["status"], entry["unavailable"], entry["failed"]) == ("active", False, 1), entry

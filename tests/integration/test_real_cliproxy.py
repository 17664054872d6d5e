"""The real CLIProxyAPI (built from the Go module proxy by tests/real_cliproxy.py) under FlowGate.

One stack for the module: the real binary published as the mainline's pinned release on a fake
GitHub and installed by `doit fetch`, the real LiteLLM in front of it, and API-key accounts
(`cliproxy.api_keys`) whose `base_url` points at tests/fakes/provider.py, so the binary's registry,
routing, translation, management API, hot reload and errors are all its own. Skipped, with the
reason, where Go is missing (tests/real_cliproxy.py says how to get them).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess

import anthropic
import httpx
import openai
import pytest

from tests import real_cliproxy
from tests.fakes.archives import build_archive, release_files
from tests.fakes.github import FakeGitHub
from tests.fakes.provider import ProviderStandIn
from tests.fakes.today import MAINLINE_REPO
from tests.integration.conftest import make_stack, serve, start_login
from tests.integration.test_real_clients import client_env, npm_clients  # noqa: F401  (a fixture)
from tests.support import wait_for

KEY = "sk-stand-in-7f3a"  # the provider stand-in's key, handed to FlowGate through the environment
API_KEYS = """  api_keys:
    - {{provider: codex, key_env: STANDIN_KEY, base_url: "{openai}"}}
    - {{provider: claude, key_file: {key_file}, base_url: "{anthropic}"}}
"""


def publish_real(gh: FakeGitHub, dist, binary, tag: str) -> None:
    """The real binary as the mainline release `tag`: the default and the static build for linux."""
    files = release_files(binary.read_bytes(), "linux", "mainline")
    archives = [build_archive(dist / tag, tag, files, "linux", "amd64", line="mainline", static=static)
                for static in (False, True)]
    gh.add_release(MAINLINE_REPO, tag, archives)


@pytest.fixture(scope="module")
def provider():
    with ProviderStandIn(key=KEY) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def real(tmp_path_factory, provider):
    binary = real_cliproxy.binary("v7")
    tag = real_cliproxy.pinned_tag()
    with FakeGitHub() as gh:
        publish_real(gh, tmp_path_factory.mktemp("real-dist"), binary, tag)
        st = make_stack(tmp_path_factory, gh, "real-v7", env={"STANDIN_KEY": KEY})
        key_file = st.home / "claude.key"
        key_file.write_text(KEY + "\n")
        key_file.chmod(0o600)
        st.api_keys = API_KEYS.format(openai=provider.openai_url, anthropic=provider.anthropic_url, key_file=key_file)
        st.write_local(st.api_keys)
        st.tag = tag
        up = st.doit("up")
        assert up.returncode == 0, up.output
        yield from serve(st)


def doit_ok(st, *args, **kw):
    result = st.doit(*args, **kw)
    assert result.returncode == 0 and "Traceback" not in result.output, result.output
    return result


def mgmt(st, method, route, **kw) -> httpx.Response:
    key = st.paths.secret("cliproxy_management_key").read_text().strip()
    return httpx.request(method, f"http://127.0.0.1:{st.cliproxy_port}/v0/management/{route}",
                         headers={"Authorization": f"Bearer {key}"}, timeout=10, **kw)


# ----------------------------------------------------------------------------------- the binary

def test_the_rendered_config_loads_and_status_shows_the_real_version(real):
    status = doit_ok(real, "status", "--json")
    data = json.loads(status.stdout)
    services = {s["service"]: s for s in data["services"]}
    assert services["cliproxy"]["ready"] and services["litellm"]["ready"]
    assert real.tag.lstrip("v") in json.dumps(services["cliproxy"])
    # The binary answers with its own build's headers: it is the real one, not the double.
    answer = mgmt(real, "GET", "auth-files")
    assert answer.status_code == 200 and answer.headers["x-cpa-version"] == real.tag.lstrip("v")
    # It replaced the management key in its copy of the config by a bcrypt hash, as the reference says.
    assert "$2a$" in real.paths.cliproxy_config.read_text()


def test_a_second_up_changes_nothing_after_the_binary_rewrote_its_config(real):
    pid = real.pid("cliproxy")
    again = doit_ok(real, "up")
    assert real.pid("cliproxy") == pid, again.output
    assert "drift" not in again.output.lower()
    pending = json.loads(doit_ok(real, "status", "--json").stdout).get("pending")
    assert not pending, pending


def test_api_key_accounts_are_listed_like_any_account(real):
    listed = json.loads(doit_ok(real, "accounts", "--json").stdout)
    by_provider = {a["provider"]: a for a in listed}
    assert set(by_provider) >= {"codex", "claude"}, listed
    assert by_provider["codex"]["label"] == "codex key ($STANDIN_KEY)"
    assert by_provider["codex"]["auth_index"] and by_provider["codex"]["active"]
    text = doit_ok(real, "accounts").stdout
    assert "codex key ($STANDIN_KEY)" in text and KEY not in text


# ---------------------------------------------------------------------------------- the catalog

def test_the_live_catalog_comes_from_the_real_registry(real):
    served = httpx.get(f"http://127.0.0.1:{real.cliproxy_port}/v1/models", timeout=10,
                       headers={"Authorization": f"Bearer {real.paths.secret('cliproxy_api_key').read_text().strip()}"})
    ids = {m["id"] for m in served.json()["data"]}
    assert {"gpt-5.5", "claude-sonnet-4-6"} <= ids
    gateway = httpx.get(f"{real.litellm_url}/v1/models", headers={"Authorization": f"Bearer {real.master_key}"},
                        timeout=10).json()
    assert {m["id"] for m in gateway["data"]} == ids
    models = doit_ok(real, "models").stdout
    assert "gpt-5.5" in models and "claude-sonnet-4-6" in models


def test_an_unserved_id_gets_the_real_registrys_400_and_the_gateways_hint(real):
    direct = httpx.post(f"http://127.0.0.1:{real.cliproxy_port}/v1/chat/completions", timeout=10,
                        headers={"Authorization": f"Bearer {real.paths.secret('cliproxy_api_key').read_text().strip()}"},
                        json={"model": "gpt-4-unserved", "messages": [{"role": "user", "content": "x"}]})
    assert direct.status_code == 400 and direct.json()["error"]["code"] == "model_not_found"
    client = openai.OpenAI(base_url=f"{real.litellm_url}/v1", api_key=real.master_key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4-unserved", messages=[{"role": "user", "content": "x"}])
    assert "is not served" in str(caught.value)


# ------------------------------------------------------------------------------------ requests

def test_openai_sdk_chat_and_responses_streamed_and_not(real, provider):
    client = openai.OpenAI(base_url=f"{real.litellm_url}/v1", api_key=real.master_key, max_retries=0)
    chat = client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hello chat"}])
    assert chat.choices[0].message.content == "stand-in reply to gpt-5.5: hello chat"
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="gpt-5.5", stream=True, messages=[{"role": "user", "content": "hello stream"}]) if c.choices)
    assert streamed == "stand-in reply to gpt-5.5: hello stream"
    plain = client.responses.create(model="gpt-5.5", input="hello responses")
    assert plain.output_text == "stand-in reply to gpt-5.5: hello responses"
    events = list(client.responses.create(model="gpt-5.5", input="hello events", stream=True))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == \
        "stand-in reply to gpt-5.5: hello events"
    # What reached the provider: its Responses route with the key FlowGate read from the environment.
    assert provider.received[-1].path == "/v1/responses"
    assert provider.received[-1].headers["authorization"] == f"Bearer {KEY}"


def test_anthropic_sdk_messages_streamed_and_not_and_count_tokens(real, provider):
    client = anthropic.Anthropic(base_url=real.litellm_url, api_key=real.master_key, max_retries=0)
    reply = client.messages.create(model="claude-sonnet-4-6", max_tokens=64,
                                   messages=[{"role": "user", "content": "hello claude"}])
    assert reply.content[0].text == "stand-in reply to claude-sonnet-4-6: hello claude"
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64,
                                messages=[{"role": "user", "content": "hello stream"}]) as stream:
        text = "".join(stream.text_stream)
    assert text == "stand-in reply to claude-sonnet-4-6: hello stream"
    # With a base-url the real binary sends the key as a Bearer token (x-api-key only for Anthropic's own host).
    assert provider.received[-1].path == "/v1/messages"
    assert provider.received[-1].headers.get("authorization") == f"Bearer {KEY}"
    counted = client.messages.count_tokens(model="claude-sonnet-4-6",
                                           messages=[{"role": "user", "content": "one two three four"}])
    assert counted.input_tokens > 0


def test_provider_errors_reach_the_client_in_its_protocol(real, provider):
    client = anthropic.Anthropic(base_url=real.litellm_url, api_key=real.master_key, max_retries=0)
    provider.fail(529, times=10)  # every attempt of the binary and of the gateway
    try:
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "x"}])
    finally:
        provider._failures.clear()
    assert caught.value.status_code in (500, 503, 529)


def test_smoke_passes_and_usage_records_the_tokens(real):
    smoke = doit_ok(real, "smoke")
    assert re.search(r"^(\d+) passed, 0 failed$", smoke.stdout, re.M), smoke.stdout
    client = openai.OpenAI(base_url=f"{real.litellm_url}/v1", api_key=real.master_key, max_retries=0)
    client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "count my five words"}])

    def recorded():
        data = json.loads(doit_ok(real, "usage", "--json", "--since", "1h").stdout)
        return {g["model"]: g for g in data["by"]["model"]}.get("gpt-5.4-mini")

    row = wait_for(recorded, timeout=30, what="the gpt-5.4-mini request in usage")
    # the stand-in counts words: 4 in; "stand-in reply to gpt-5.4-mini: count my five words" is 8 out
    assert row["requests"] == 1 and row["tokens_in"] == 4 and row["tokens_out"] == 8, row


# ----------------------------------------------------------------------------- the management API

def test_login_starts_with_the_real_authorization_url_and_ctrl_c_cancels_it(real):
    run, state = start_login(real, "codex")
    url = next(line for line in run.seen if "state=" in line)
    assert "https://auth.openai.com/oauth/authorize?" in url and f"state={state}" in url
    status = mgmt(real, "GET", "get-auth-status", params={"state": state}).json()
    assert status["status"] == "wait"
    run.proc.send_signal(signal.SIGINT)
    code, _, err = run.finish()
    assert code != 0 and "the codex login was cancelled (Ctrl-C)" in err
    after = mgmt(real, "GET", "get-auth-status", params={"state": state}).json()
    assert after["status"] == "error", after  # the session is gone from the real binary


def test_claude_login_times_out_cleanly(real):
    result = real.doit("login:claude", "--no-browser", "--timeout", "1")
    assert result.returncode == 1 and "Traceback" not in result.output
    assert "the claude login did not finish within 1 s" in result.stderr


def test_api_call_refusal_and_quota_for_api_key_accounts(real):
    refused = mgmt(real, "POST", "api-call", json={"auth_index": "no-such-account", "method": "GET",
                                                   "url": "http://127.0.0.1:9/", "header": {}})
    assert refused.status_code >= 400
    quota = doit_ok(real, "accounts", "--json")
    for account in json.loads(quota.stdout):
        assert account["provider"] in ("codex", "claude")
    text = doit_ok(real, "accounts").stdout
    assert "API key" in text or "api key" in text.lower()


def test_the_usage_queue_answers_records(real):
    client = openai.OpenAI(base_url=f"{real.litellm_url}/v1", api_key=real.master_key, max_retries=0)
    client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "queued"}])
    records = mgmt(real, "GET", "usage-queue", params={"count": 100})
    assert records.status_code == 200 and isinstance(records.json(), list)


def test_the_usage_queue_records_become_usage_per_account(real):
    """Issue 29, item 3, on the real binary's record shape (Go's nanosecond timestamps, its token
    fields, auth_type): an API-key account's request is kept with its tokens, under `(API key)`, and
    is not counted as saved (only OAuth accounts are subscriptions). The OAuth pools' scenario runs on
    the double (test_usage_cli.py)."""
    from tasks.accounts.management import Management
    from tasks.usage import accounts, ledger

    real.write_local(real.api_keys + "  settings: {usage-statistics-enabled: true}\n")
    try:
        doit_ok(real, "up")
        manage = Management.for_stack(real.paths, json.loads(real.paths.stack_json.read_text()))
        while ledger.drain_queue(real.paths, manage):  # what the tests before queued
            pass
        client = openai.OpenAI(base_url=f"{real.litellm_url}/v1", api_key=real.master_key, max_retries=0)
        wait_for(lambda: _try_chat(client, "gpt-5.4-mini") and ledger.drain_queue(real.paths, manage), timeout=30,
                 what="a usage-queue record of the real binary")
        found = accounts.read(real.paths, 3600)
        row = next(a for a in found["by_account"]["accounts"] if a["account"] == accounts.API_KEY)
        assert row["requests"] >= 1 and row["tokens_in"] > 0 and row["tokens_out"] > 0, row
        assert found["savings"]["known"] and found["savings"]["usd"] == 0 and not found["savings"]["by_model"]
    finally:
        real.write_local(real.api_keys)
        doit_ok(real, "up")


def test_a_config_change_reaches_the_running_binary_without_a_restart(real, provider):
    pid = real.pid("cliproxy")
    real.write_local(real.api_keys + f"""    - {{provider: openai, name: acme, base_url: "{provider.openai_url}", key_env: STANDIN_KEY, models: [acme-large]}}
""")
    try:
        doit_ok(real, "up")
        assert real.pid("cliproxy") == pid  # hot reload, as FlowGate decides for everything but host/port/binary
        client = openai.OpenAI(base_url=f"{real.litellm_url}/v1", api_key=real.master_key, max_retries=0)
        reply = wait_for(lambda: _try_chat(client, "acme-large"), timeout=30, what="acme-large served")
        assert reply == "stand-in reply to acme-large: via acme"
        assert provider.received[-1].path == "/v1/chat/completions"
    finally:
        real.write_local(real.api_keys)
        doit_ok(real, "up")


def _try_chat(client, model):
    try:
        return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "via acme"}]
                                              ).choices[0].message.content
    except openai.APIError:
        return None


# ------------------------------------------------------------------------------ the real clients

def test_codex_exec_and_claude_print_through_the_real_binary(real, provider, npm_clients, tmp_path):
    env = client_env(tmp_path)
    for client in ("codex", "claude"):
        applied = real.doit(f"integrate:{client}", "--apply", env=env)
        assert applied.returncode == 0, applied.output
    codex = subprocess.run([str(npm_clients / "codex"), "exec", "--skip-git-repo-check", "ping from codex"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert codex.returncode == 0, codex.stdout + codex.stderr
    assert re.search(r"stand-in reply to gpt-[\w.-]+: .*ping from codex", codex.stdout), codex.stdout
    assert any(r.path == "/v1/responses" and "ping from codex" in json.dumps(r.body) for r in provider.received)
    claude = subprocess.run([str(npm_clients / "claude"), "-p", "ping from claude"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert claude.returncode == 0, claude.stdout + claude.stderr
    assert re.search(r"stand-in reply to claude-[\w.-]+: .*ping from claude", claude.stdout, re.S), claude.stdout


def test_codex_gets_its_model_list_in_its_own_shape_from_the_real_registry(real):
    """The gateway's Codex list is built from the real binary's own answer to Codex's request."""
    direct = httpx.get(f"http://127.0.0.1:{real.cliproxy_port}/v1/models", params={"client_version": "0.171.0"},
                       headers={"Authorization": f"Bearer {real.paths.secret('cliproxy_api_key').read_text().strip()}"},
                       timeout=10).json()
    assert isinstance(direct.get("models"), list) and direct["models"], direct  # the mainline answers Codex itself
    gateway = httpx.get(f"{real.litellm_url}/v1/models", params={"client_version": "0.171.0"},
                        headers={"Authorization": f"Bearer {real.master_key}"}, timeout=10).json()
    slugs = [m["slug"] for m in gateway["models"]]
    assert "gpt-5.5" in slugs and not any(s.startswith("claude") for s in slugs)
    served = {m["slug"] for m in direct["models"]}
    assert set(slugs) <= served | {"gpt-5.5"}, (slugs, served)

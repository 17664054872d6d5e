"""Models follow the accounts (issue 17), on the shared stack of each line, logged in to codex and
claude by real `doit login` runs: what the gateway lists and routes is what the double's registry
serves for those accounts, an id the catalog gains works at once, an unserved id is a clear 400,
and an account removed under load fails no request."""

from __future__ import annotations

import json
import secrets
import threading

import httpx

from tests.catalog_support import registry
from tests.support import wait_for

CODEX, CLAUDE = ({m["id"] for m in registry()[ch]} for ch in ("codex-plus", "claude"))  # the double's default plan


def gateway(stack) -> httpx.Client:
    key = stack.master_key
    return httpx.Client(base_url=stack.litellm_url, timeout=60, headers={
        "Authorization": f"Bearer {key}", "x-api-key": key, "anthropic-version": "2023-06-01"})


def listed(stack) -> set[str]:
    with gateway(stack) as client:
        answer = client.get("/v1/models")
    assert answer.status_code == 200, answer.text
    return {m["id"] for m in answer.json()["data"]}


def test_logins_say_what_became_routable_and_the_gateway_lists_exactly_it(stack):
    assert "models: " in stack.logins["codex"] and "gpt-5.5" not in stack.logins["claude"]
    assert listed(stack) == CODEX | CLAUDE  # no price-map ids, no hand-kept names
    result = stack.doit("models", "--json")
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)
    rows = {r["id"]: r for r in data["models"]}
    assert set(rows) == CODEX | CLAUDE and data["read_at"]
    assert rows["claude-sonnet-4-6"]["protocol"] == "anthropic" and rows["gpt-5.5"]["protocol"] == "openai"
    assert rows["gpt-5.5"]["providers"] == ["codex"] and rows["gpt-5.5"]["accounts"] == ["dev@example.com"]
    assert data["clients"]["codex"]["model"] == "gpt-5.6-sol" and data["clients"]["claude"]["fast_model"] == "claude-haiku-4-5-20251001"
    assert "codex model (auto)" in rows["gpt-5.6-sol"]["used_by"] and "profile reliable" in rows["gpt-5.5"]["used_by"]
    table = stack.doit("models").stdout
    assert "claude-opus-4-8" in table and "catalog read:" in table


def test_every_served_id_answers_on_its_native_protocol(stack):
    with gateway(stack) as client:
        for model in ("gpt-5.3-codex-spark", "codex-auto-review"):
            chat = client.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "c"}]})
            assert chat.json()["choices"][0]["message"]["content"] == f"double({model}): c"
            resp = client.post("/v1/responses", json={"model": model, "input": "r"})
            assert resp.status_code == 200 and f"double({model}): r" in resp.text
        for model in ("claude-opus-4-8", "claude-3-5-haiku-20241022"):
            msg = client.post("/v1/messages?beta=true", json={"model": model, "max_tokens": 9,
                                                              "messages": [{"role": "user", "content": "m"}]})
            assert msg.json()["content"][0]["text"] == f"double({model}): m"
            count = client.post("/v1/messages/count_tokens?beta=true", json={"model": model,
                                                                             "messages": [{"role": "user", "content": "one two"}]})
            assert count.status_code == 200 and count.json()["input_tokens"] == 2


def test_an_id_the_catalog_gains_works_without_a_config_edit(stack):
    litellm_pid = stack.pid("litellm")
    rendered = stack.paths.litellm_config.read_bytes()
    new_gpt, new_claude = f"gpt-9-{secrets.token_hex(3)}", f"claude-verse-{secrets.token_hex(3)}"  # named by no file
    original = stack.catalog_file.read_text()
    try:
        _the_catalog_gains(stack, new_gpt, new_claude, litellm_pid, rendered)
    finally:  # the shared stack serves the shipped catalog again: a later choice of "the newest" must not see these
        stack.catalog_file.write_text(original)
        wait_for(lambda: not ({new_gpt, new_claude} & listed(stack)), timeout=30, what="the added ids gone again")
        stack.doit("models")  # and the kept catalog (.router/state/catalog.json) follows


def _the_catalog_gains(stack, new_gpt: str, new_claude: str, litellm_pid: int, rendered: bytes) -> None:
    catalog = json.loads(stack.catalog_file.read_text())
    catalog["codex-plus"].append({"id": new_gpt, "created": 1790000000, "owned_by": "openai"})
    catalog["claude"].append({"id": new_claude, "created": 1790000000, "owned_by": "anthropic"})
    stack.catalog_file.write_text(json.dumps(catalog))  # as the binary's 3-hourly refresh would
    wait_for(lambda: {new_gpt, new_claude} <= listed(stack), timeout=30, what="the gateway to list the new ids")
    # Codex's own list gains the Codex id (CLIProxyAPI's entry for it), never the Claude one: its picker
    # follows at its next refresh, without `integrate`
    with gateway(stack) as client:
        codex = client.get("/v1/models", params={"client_version": "0.171.0"}).json()["models"]
    slugs = [m["slug"] for m in codex]
    assert new_gpt in slugs and new_claude not in slugs and not any(s.startswith("claude-") for s in slugs)
    with gateway(stack) as client:
        chat = client.post("/v1/chat/completions", json={"model": new_gpt, "messages": [{"role": "user", "content": "hi"}]})
        assert chat.json()["choices"][0]["message"]["content"] == f"double({new_gpt}): hi"
        resp = client.post("/v1/responses", json={"model": new_gpt, "input": "hi", "stream": True})
        assert resp.status_code == 200 and "response.completed" in resp.text
        msg = client.post("/v1/messages", json={"model": new_claude, "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]})
        assert msg.json()["content"][0]["text"] == f"double({new_claude}): hi"
        count = client.post("/v1/messages/count_tokens", json={"model": new_claude, "messages": [{"role": "user", "content": "a"}]})
        assert count.status_code == 200
    assert stack.pid("litellm") == litellm_pid and stack.paths.litellm_config.read_bytes() == rendered  # no swap, no render
    models = json.loads(stack.doit("models", "--json").stdout)  # on request: the kept catalog follows
    assert {new_gpt, new_claude} <= {r["id"] for r in models["models"]}


def test_an_unserved_id_is_a_clear_400_naming_the_nearest(stack):
    with gateway(stack) as client:
        chat = client.post("/v1/chat/completions", json={"model": "gpt-5-codex", "messages": [{"role": "user", "content": "x"}]})
        assert chat.status_code == 400, chat.text
        error = chat.json()["error"]
        assert error["code"] == "model_not_found" and error["param"] == "model"
        assert error["message"].startswith("model 'gpt-5-codex' is not served by any logged-in account (nearest: ")
        assert "gpt-5.3-codex-spark" in error["message"] and "uv run doit models" in error["message"]
        stream = client.post("/v1/chat/completions", json={"model": "gpt-5", "stream": True,
                                                           "messages": [{"role": "user", "content": "x"}]})
        assert stream.status_code == 400 and "'gpt-5' is not served" in stream.json()["error"]["message"]
        msg = client.post("/v1/messages?beta=true", json={"model": "claude-sonnet-4-5", "max_tokens": 9,
                                                          "messages": [{"role": "user", "content": "x"}]})
        assert msg.status_code == 400 and msg.json()["type"] == "error"
        assert "nearest: claude-sonnet-4-5-20250929" in msg.json()["error"]["message"]
        resp = client.post("/v1/responses", json={"model": "o1-nothing", "input": "x"})
        assert resp.status_code == 400 and "'o1-nothing' is not served" in resp.text


def test_status_and_smoke_follow_what_is_served(stack):
    data = json.loads(stack.doit("models", "--json").stdout)
    served, codex_model = data["models"], data["clients"]["codex"]["model"]
    status = stack.doit("status")
    assert f"models: {len(served)} served" in status.stdout, status.output
    smoke = stack.doit("smoke")
    assert smoke.returncode == 0, smoke.output
    lines = smoke.stdout.splitlines()
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
    assert any("count_tokens" in l and "claude-sonnet-5" in l for l in lines)
    assert any("responses (stream)" in l and codex_model in l for l in lines)  # the codex slot's choice


def test_an_account_removed_under_load_fails_no_request(stack):
    failures, sent, stop = [], [0], threading.Event()

    def load():
        with gateway(stack) as client:
            while not stop.is_set():
                answer = client.post("/v1/messages", json={"model": "claude-sonnet-4-6", "max_tokens": 9,
                                                           "messages": [{"role": "user", "content": "load"}]})
                sent[0] += 1
                if answer.status_code != 200:
                    failures.append(answer.text)
                stop.wait(0.05)

    litellm_pid = stack.pid("litellm")
    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_for(lambda: sent[0] >= 3, what="requests under way")
        accounts = json.loads(stack.doit("accounts", "--json").stdout)
        codex_file = next(a["name"] for a in accounts if a["provider"] == "codex")
        removed = stack.doit("accounts", "--remove", codex_file)
        assert removed.returncode == 0 and "no longer served: " in removed.stdout, removed.output
        wait_for(lambda: not listed(stack) & CODEX, what="the codex ids to leave the gateway's list")
        stack.log_in("codex")  # and back
        wait_for(lambda: CODEX <= listed(stack), what="the codex ids to come back")
        count = sent[0]
        wait_for(lambda: sent[0] >= count + 3, what="more requests after the changes")
    finally:
        stop.set()
        worker.join(timeout=60)
    assert failures == [] and sent[0] >= 6
    assert stack.pid("litellm") == litellm_pid  # an account change needs no LiteLLM swap

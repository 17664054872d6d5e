"""tasks.gateway.codex_list: Codex's `GET /v1/models?client_version=` answered in Codex's own shape,
with exactly the Codex models served, through the gateway's model-list layer (tasks.gateway.served_models)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tasks.gateway import codex_list, served_models

LIVE = [{"id": "gpt-5.5", "owned_by": "openai", "created": 1}, {"id": "gpt-5.4", "owned_by": "openai", "created": 1},
        {"id": "gpt-7-nova", "owned_by": "openai", "created": 1},
        {"id": "claude-sonnet-5", "owned_by": "anthropic", "created": 2}]
# CLIProxyAPI's own Codex catalog answer: every served id, Claude's too, gpt-5.4 upgrading to a model not served
UPSTREAM = {"models": [
    {"slug": "gpt-5.4", "priority": 16, "context_window": 272000, "upgrade": {"model": "gpt-5.6-terra"}},
    {"slug": "gpt-5.5", "priority": 7, "context_window": 272000, "upgrade": None,
     "supported_reasoning_levels": [{"effort": "low", "description": "l"}]},
    {"slug": "claude-sonnet-5", "priority": 143, "context_window": 272000},
]}


@pytest.fixture
def upstream(monkeypatch):
    asked = []
    codex_list._cache.clear()

    async def live():
        return LIVE

    async def ask(path):
        asked.append(path)
        return UPSTREAM

    monkeypatch.setattr(served_models, "served", live)
    monkeypatch.setattr(served_models, "ask", ask)
    return asked


def get(app, query: bytes = b"", agent: bytes = b"curl/8") -> tuple[int, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1/models", "query_string": query,
             "headers": [(b"user-agent", agent)]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def litellm_stand_in(seen: list):
    async def app(scope, receive, send):
        seen.append(scope["query_string"])
        body = b'{"object": "list", "data": [{"id": "openai/gpt-3.5-turbo"}]}'
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    return app


def test_codex_gets_exactly_the_served_codex_models_in_its_own_shape(upstream):
    seen: list = []
    status, body = get(served_models.wrap(litellm_stand_in(seen)), b"client_version=0.171.0&team_id=x")
    models = json.loads(body)["models"]
    assert status == 200 and seen == [b"team_id=x"]  # LiteLLM checks the key, never builds its own Codex list
    assert upstream == ["/models?client_version=0.171.0"]
    assert [m["slug"] for m in models] == ["gpt-5.5", "gpt-5.4", "gpt-7-nova"]  # by priority; no Claude id
    assert models[0]["supported_reasoning_levels"] == [{"effort": "low", "description": "l"}]  # CLIProxyAPI's metadata
    assert models[1]["upgrade"] is None  # its upgrade names a model no account serves: no "Try new model" dialog
    # an id the binary has no entry for: LiteLLM's (Codex's fallback metadata), after the others
    assert models[2]["display_name"] == "gpt-7-nova" and models[2]["priority"] > 16 and "base_instructions" in models[2]


def test_an_upgrade_to_a_served_model_stays():
    entries = codex_list.entries(["gpt-5.4", "gpt-5.6-terra"], [
        {"slug": "gpt-5.4", "priority": 2, "upgrade": {"model": "gpt-5.6-terra"}}, {"slug": "gpt-5.6-terra", "priority": 1}])
    assert [e["slug"] for e in entries] == ["gpt-5.6-terra", "gpt-5.4"] and entries[1]["upgrade"] == {"model": "gpt-5.6-terra"}


def test_recognised_by_its_query_or_its_user_agent():
    assert codex_list.asked_by_codex({"query_string": b"client_version=0.171.0"}) == "0.171.0"
    agent = [(b"User-Agent", b"codex_cli_rs/0.171.0 (Debian 12; x86_64) xterm")]
    assert codex_list.asked_by_codex({"query_string": b"", "headers": agent}) == "0.171.0"
    assert codex_list.asked_by_codex({"query_string": b"", "headers": [(b"user-agent", b"OpenAI/Python 1.2")]}) is None


def test_the_plain_list_is_untouched_by_codex_handling(upstream):
    status, body = get(served_models.wrap(litellm_stand_in([])))
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == [m["id"] for m in LIVE]


def test_the_body_stays_within_codexs_limit_lowest_priority_left_out(monkeypatch, capsys):
    monkeypatch.setattr(codex_list, "BODY_LIMIT", 250)
    monkeypatch.setitem(codex_list._said, "left_out", ())
    models = [{"slug": f"m{i}", "priority": i, "pad": "x" * 60} for i in range(4)]
    body = codex_list.body_of(models)
    assert len(body) <= 250 and [m["slug"] for m in json.loads(body)["models"]] == ["m0", "m1"]
    codex_list.body_of(models)  # said once per change, not per call
    assert capsys.readouterr().out.count("left out m2, m3") == 1

"""tasks.gateway.served_models: the gateway's model list and its answer for an unserved id, as an
ASGI layer around a stand-in app (LiteLLM's router replaced by its model list)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from tasks.gateway import served_models
from tasks.catalog.routes import pattern_entries

LIVE = [{"id": "gpt-5.5", "owned_by": "openai", "created": 1}, {"id": "claude-sonnet-4-6", "owned_by": "anthropic", "created": 2}]


@pytest.fixture
def router(monkeypatch):
    model_list = [{"model_name": "fast", "litellm_params": {"model": "openai/gpt-5.4-mini"}, "model_info": {}}]
    model_list += [{"model_name": e["name"], "litellm_params": e["litellm_params"], "model_info": e["model_info"]}
                   for e in pattern_entries("http://127.0.0.1:8317", "k")]
    monkeypatch.setattr(served_models, "_router", lambda: SimpleNamespace(model_list=model_list))
    served_models._cache.update(at=0.0, models=None)

    async def live():
        return LIVE

    monkeypatch.setattr(served_models, "served", live)
    return model_list


def call(app, method: str, path: str) -> tuple[int, dict, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "method": method, "path": path}, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def answering(status: int, body: bytes, chunks: int = 1):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        step = max(1, len(body) // chunks)
        for i in range(0, len(body), step):
            await send({"type": "http.response.body", "body": body[i:i + step], "more_body": i + step < len(body)})
    return app


def test_the_model_list_is_the_named_models_and_what_is_served(router):
    wrapped = served_models.wrap(answering(200, b'{"data": [{"id": "openai/gpt-3.5-turbo"}]}'))
    status, headers, body = call(wrapped, "GET", "/v1/models")
    data = json.loads(body)
    assert status == 200 and [m["id"] for m in data["data"]] == ["fast", "gpt-5.5", "claude-sonnet-4-6"]
    assert headers[b"content-length"] == str(len(body)).encode()
    assert data["data"][2] == {"id": "claude-sonnet-4-6", "object": "model", "created": 2, "owned_by": "anthropic",
                               "type": "model", "display_name": "claude-sonnet-4-6", "created_at": "1970-01-01T00:00:02Z"}
    assert data["has_more"] is False and data["first_id"] == "fast"


def test_a_refused_list_is_passed_on(router):
    wrapped = served_models.wrap(answering(401, b'{"error": "wrong gateway key"}'))
    assert call(wrapped, "GET", "/v1/models") == (401, {b"content-type": b"application/json", b"content-length": b"30"},
                                                  b'{"error": "wrong gateway key"}')


LITELLM_401 = json.dumps({"error": {"message": "wrong gateway key: send the key in .router/secrets/litellm_master_key",
                                    "type": "auth_error", "param": "api_key", "code": "401"}}).encode()


def test_every_error_on_messages_is_anthropic_shaped_401_included(router):
    status, headers, body = call(served_models.wrap(answering(401, LITELLM_401)), "POST", "/v1/messages")
    assert status == 401 and headers[b"content-type"] == b"application/json"
    assert headers[b"x-should-retry"] == b"false"  # a wrong key stays wrong: the SDKs stop at once
    assert json.loads(body) == {"type": "error", "error": {
        "type": "authentication_error", "message": "wrong gateway key: send the key in .router/secrets/litellm_master_key"}}
    status, _, body = call(served_models.wrap(answering(500, b"Internal Server Error")), "POST", "/v1/messages/count_tokens")
    assert json.loads(body) == {"type": "error", "error": {"type": "api_error", "message": "Internal Server Error"}}
    anthropic = b'{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}'
    assert call(served_models.wrap(answering(529, anthropic)), "POST", "/v1/messages")[2] == anthropic  # as it came


def test_every_error_on_openai_routes_is_openai_shaped(router):
    assert call(served_models.wrap(answering(401, LITELLM_401)), "POST", "/v1/responses")[2] == LITELLM_401
    anthropic = b'{"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}'
    status, _, body = call(served_models.wrap(answering(429, anthropic)), "POST", "/v1/chat/completions")
    assert status == 429 and json.loads(body) == {"error": {"message": "slow down", "type": "rate_limit_error",
                                                            "param": None, "code": "429"}}
    detail = b'{"detail": "Method Not Allowed"}'
    assert json.loads(call(served_models.wrap(answering(405, detail)), "POST", "/v1/responses")[2])["error"]["message"] \
        == "Method Not Allowed"


def test_unknown_provider_becomes_one_clear_error_per_protocol(router):
    litellm_body = json.dumps({"error": {"message": "litellm.BadRequestError: OpenAIException - unknown provider for "
                                                    "model gpt-5.5-pro\n\nLiteLLM: model group ...", "code": "400"}}).encode()
    status, headers, body = call(served_models.wrap(answering(400, litellm_body, chunks=3)), "POST", "/v1/chat/completions")
    error = json.loads(body)["error"]
    assert status == 400 and error["code"] == "model_not_found" and error["param"] == "model"
    assert error["message"] == ("model 'gpt-5.5-pro' is not served by any logged-in account (nearest: gpt-5.5; "
                                "served now: fast, gpt-5.5, claude-sonnet-4-6; see `uv run doit models`)")
    assert headers[b"content-length"] == str(len(body)).encode()
    status, _, body = call(served_models.wrap(answering(400, litellm_body)), "POST", "/v1/messages")
    assert json.loads(body)["type"] == "error" and json.loads(body)["error"]["type"] == "invalid_request_error"


def test_other_answers_keep_their_words(router):
    other = b'{"error": {"message": "max_tokens: must be positive"}}'
    assert call(served_models.wrap(answering(400, other)), "POST", "/v1/chat/completions")[2] == other
    assert json.loads(call(served_models.wrap(answering(400, other)), "POST", "/v1/messages")[2]) == {
        "type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: must be positive"}}
    ok = b'{"choices": []}'
    assert call(served_models.wrap(answering(200, ok, chunks=4)), "POST", "/v1/chat/completions")[2] == ok


def test_with_no_account_the_message_names_the_login():
    assert "no account is logged in" in served_models.unserved_message("gpt-5.5", [])
    assert "uv run doit login:codex" in served_models.unserved_message("gpt-5.5", [])


def test_one_bad_created_in_the_upstream_catalog_breaks_nothing(monkeypatch):
    """Issue 31, item 8: one `created: 1e20` made the gateway's GET /v1/models answer 500 to everyone."""
    async def ask(path):
        return {"data": [{"id": "gpt-5.5", "created": 1e20, "owned_by": "openai"},
                         {"id": "gpt-5.4", "created": "yesterday", "owned_by": "openai"},
                         {"id": "gpt-5.4-mini", "created": float("nan"), "owned_by": "openai"},
                         {"id": "claude-opus-5", "created": -7, "owned_by": "anthropic"},
                         {"id": "claude-sonnet-5", "created": 1784038800, "owned_by": "anthropic"}]}

    monkeypatch.setattr(served_models, "ask", ask)
    served_models._cache.update(at=0.0, models=None)
    live = asyncio.run(served_models.served())
    assert [m["created"] for m in live] == [0, 0, 0, 0, 1784038800]
    body = json.loads(served_models.model_list_body([], live))
    assert [m["id"] for m in body["data"]] == ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "claude-opus-5", "claude-sonnet-5"]


def test_a_members_model_list_holds_only_what_its_key_may_use(router, monkeypatch, paths):
    from tasks.gateway import codex_list, gate, leanrules
    from tasks.gateway.keys.book import KeyBook
    from tasks.keys import manage

    monkeypatch.setattr(gate, "_BOOK", [KeyBook(paths.keys_db)])
    monkeypatch.setattr(leanrules, "litellm_state", lambda: ("sk-master", None))
    limited, free = manage.create(paths, "ana", models=["gpt-*"]), manage.create(paths, "bo")
    wrapped = served_models.wrap(answering(200, b'{"data": []}'))

    def listed(key: str, path: str = "/v1/models", query: bytes = b"") -> list[str]:
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "query_string": query,
                 "headers": [(b"authorization", f"Bearer {key}".encode())]}
        asyncio.run(wrapped(scope, receive, send))
        data = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
        return [m["id"] for m in data["data"]] if "data" in data else [m["slug"] for m in data["models"]]

    everything = listed("sk-master")
    assert "claude-sonnet-4-6" in everything and "gpt-5.5" in everything
    assert listed(free) == everything
    assert listed(limited) == [m for m in everything if m.startswith("gpt-")]

    async def codex_answer(version, served, ask, cache_s):  # Codex's own list shape
        return json.dumps({"models": [{"slug": "gpt-5.5"}, {"slug": "o3"}]}).encode()

    monkeypatch.setattr(codex_list, "answer", codex_answer)
    monkeypatch.setattr(codex_list, "asked_by_codex", lambda scope: "0.171.0")
    assert listed(limited) == ["gpt-5.5"] and listed(free) == ["gpt-5.5", "o3"]

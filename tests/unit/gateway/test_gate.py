"""tasks.gateway.gate: the key rule held to LiteLLM's own reading, the 401 before any body, refused bodies."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from tasks.gateway import gate

KEY = "sk-gateway-key"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM is imported here: no remote price map


@pytest.mark.parametrize("value", ["Bearer k", "bearer k", "BEARER k", "Basic k", "Token k", "Bearer  k", "k", "",
                                   "Bearer k Bearer j", "basic k"])
def test_the_authorization_header_is_read_as_litellm_reads_it(value):
    from litellm.proxy.auth.user_api_key_auth import get_bearer_token

    assert gate._litellm_token(value) == get_bearer_token(value)


@pytest.mark.parametrize("headers,keys", [
    ({"authorization": "Bearer k"}, ("k",)), ({"authorization": "BEARER k"}, ("",)),
    ({"authorization": "Basic junk", "x-api-key": "k"}, ("junk",)), ({"authorization": "Token k", "x-api-key": "k"}, ("",)),
    ({"authorization": "Bearer other", "x-api-key": "k"}, ("other", "k")), ({"x-api-key": " k "}, ("k",)),
    ({"x-litellm-api-key": "Bearer k", "authorization": "Bearer other"}, ("k",)), ({"api-key": "k"}, ("k",)),
    ({}, ()), ({"authorization": "", "x-api-key": "k"}, ("k",)),
])
def test_one_rule_for_the_keys_a_request_offers(headers, keys):
    assert gate.sent_keys(headers.get) == keys


def run(app, path: str, headers: list, body: bytes = b"{}"):
    """(status, headers, body, how many times the app's receive was called)."""
    out = {"status": None, "body": b"", "received": 0}

    async def receive():
        out["received"] += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"], out["headers"] = message["status"], dict(message["headers"])
        else:
            out["body"] += message.get("body", b"")

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    asyncio.run(app(scope, receive, send))
    return out


async def inner(scope, receive, send):
    message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": message["body"]})


def door(rule=lambda path, data: None):
    return gate.Gate(inner, state=lambda: (KEY, object()), body_rule=rule)


@pytest.mark.parametrize("path,shape", [("/v1/messages", "anthropic"), ("/v1/chat/completions", "openai"),
                                        ("/v1/responses", "openai")])
def test_no_key_is_refused_from_the_headers_without_reading_the_body(path, shape):
    out = run(door(), path, [(b"authorization", b"BEARER " + KEY.encode())])
    assert out["status"] == 401 and out["received"] == 0
    assert out["headers"][b"connection"] == b"close"
    data = json.loads(out["body"])
    if shape == "anthropic":
        assert data["type"] == "error" and data["error"]["type"] == "authentication_error"
    else:
        assert data["error"]["type"] == "authentication_error" and data["error"]["code"] == "401"
    assert "no gateway key" in out["body"].decode()  # LiteLLM reads no key from `BEARER`


@pytest.mark.parametrize("raw,key", [(b'{"model":"a","messages":[],"model":"b"}', "model"),
                                     (b'{"model":"a","mod\\u0065l":"b"}', "model"),
                                     (b'{"model":"a","x":{"k":1,"k":2}}', None),
                                     (b'{"model":"a","stream":true}', None), (b"[1,1]", None), (b"not json", None)])
def test_a_repeated_top_level_key_is_found(raw, key):
    assert gate.repeated_key(raw) == key


def test_refused_bodies_get_400_in_the_protocol_shape_and_others_pass_as_they_came():
    headers = [(b"x-api-key", KEY.encode())]
    dup = run(door(), "/v1/messages", headers, b'{"model":"a","model":"b"}')
    assert dup["status"] == 400 and json.loads(dup["body"])["error"]["type"] == "invalid_request_error"
    refused = run(door(lambda path, data: "Rejected Request: api_base is not allowed" if "api_base" in data else None),
                  "/v1/chat/completions", headers, b'{"model":"a","api_base":"http://x"}')
    assert refused["status"] == 400 and "api_base" in json.loads(refused["body"])["error"]["message"]
    fine = run(door(), "/v1/chat/completions", headers, b'{"model":"a"}')
    assert fine["status"] == 200 and fine["body"] == b'{"model":"a"}'


@pytest.mark.parametrize("raw", [b'{"model":"a","model":"b"}', b'{"model": "a", "model": "b"}',
                                 b'{"n":123456789012345678901234567890,"model":"a","model":"b"}',
                                 b'{"model":"a","x":{"k":1},"model":"b"}'])
def test_repeated_keys_are_found_whatever_the_form(raw):
    """Compact bodies pass on a cheap comparison with orjson's own form; any other is checked exactly
    (one orjson cannot read, too)."""
    out = run(door(), "/v1/chat/completions", [(b"authorization", b"Bearer " + KEY.encode())], raw)
    assert out["status"] == 400 and "'model' more than once" in out["body"].decode()


def member_door(paths, rule=lambda path, data: None, shared=None):
    from tasks.gateway.keys.book import KeyBook

    return gate.Gate(inner, state=lambda: (KEY, object()), body_rule=rule, book=KeyBook(paths.keys_db), shared=shared)


def bearer(key: str) -> list:
    return [(b"authorization", b"Bearer " + key.encode())]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_a_member_key_passes_within_its_models_and_the_master_key_still_does(paths, path):
    from tasks.keys import manage

    key = manage.create(paths, "ana", models=["gpt-5*"])
    app = member_door(paths)
    assert run(app, path, bearer(key), b'{"model":"gpt-5-codex"}')["status"] == 200
    assert run(app, path, bearer(KEY), b'{"model":"claude-opus-4-1"}')["status"] == 200
    out = run(app, path, bearer(key), b'{"model":"claude-opus-4-1"}')
    assert out["status"] == 403 and "limited to gpt-5*" in out["body"].decode()
    data = json.loads(out["body"])
    assert (data["error"]["type"] == "permission_error") if path == "/v1/messages" else (data["error"]["code"] == "403")


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/messages"])
def test_an_unknown_revoked_or_expired_member_key_is_refused_before_the_body(paths, path):
    from tasks.keys import manage

    key = manage.create(paths, "ana")
    app = member_door(paths)
    out = run(app, path, bearer("fg-unknown"))
    assert out["status"] == 401 and out["received"] == 0 and "wrong gateway key" in out["body"].decode()
    manage.revoke(paths, "ana")
    app.book.refresh()
    out = run(app, path, bearer(key))
    assert out["status"] == 401 and out["received"] == 0 and "revoked" in out["body"].decode()
    assert out["headers"][b"connection"] == b"close"


def test_a_member_over_its_requests_per_minute_gets_429_with_retry_after(paths):
    from tasks.keys import manage

    key = manage.create(paths, "ana", rpm=2)
    app = member_door(paths)
    assert [run(app, "/v1/messages", bearer(key), b'{"model":"m"}')["status"] for _ in range(2)] == [200, 200]
    out = run(app, "/v1/messages", bearer(key), b'{"model":"m"}')
    assert out["status"] == 429 and int(out["headers"][b"retry-after"]) > 0
    assert json.loads(out["body"])["error"]["type"] == "rate_limit_error"
    assert run(app, "/v1/messages", bearer(KEY), b'{"model":"m"}')["status"] == 200  # the master key has no limit


def test_member_keys_are_refused_with_a_reason_when_the_database_cannot_be_read(paths):
    from tasks.keys import manage

    key = manage.create(paths, "ana")
    for suffix in ("", "-wal", "-shm"):
        paths.keys_db.with_name(paths.keys_db.name + suffix).unlink(missing_ok=True)
    paths.keys_db.write_bytes(b"not a database" * 100)
    app = member_door(paths)
    out = run(app, "/v1/chat/completions", bearer(key))
    assert out["status"] == 503 and "member keys are refused" in out["body"].decode() and out["received"] == 0
    assert run(app, "/v1/chat/completions", bearer(KEY))["status"] == 200  # the gateway stays up for the master key


def test_a_member_limited_to_models_has_its_model_checked_on_every_route_or_is_refused_where_none_shows(paths):
    from tasks.keys import manage

    limited, free = manage.create(paths, "ana", models=["text-embedding-*"]), manage.create(paths, "bo")
    app = member_door(paths)
    fine = run(app, "/v1/embeddings", bearer(limited), b'{"model":"text-embedding-3-small","input":"x"}')
    assert fine["status"] == 200 and fine["body"] == b'{"model":"text-embedding-3-small","input":"x"}'  # as it came
    out = run(app, "/embeddings", bearer(limited), b'{"model":"gpt-5","input":"x"}')
    assert out["status"] == 403 and "may not use gpt-5" in out["body"].decode()
    assert run(app, "/v1/embeddings", bearer(limited), b'{"input":"x"}')["status"] == 403  # no model named
    out = run(app, "/v1/files", bearer(limited), b"--multipart--")
    assert out["status"] == 403 and out["received"] == 0 and "cannot tell which model /v1/files uses" in out["body"].decode()
    for path in ("/v1/embeddings", "/v1/files"):
        assert run(app, path, bearer(free), b'{"model":"gpt-5"}')["status"] == 200
        assert run(app, path, bearer(KEY), b'{"model":"gpt-5"}')["status"] == 200


def test_a_member_over_its_budget_gets_429_naming_the_reset(paths):
    from tasks.gateway.keys.book import KeyBook
    from tasks.gateway.keys.budget import Budgets
    from tasks.keys import manage

    key = manage.create(paths, "ana", budget=1.0, period="month", rpm=1)
    spent = Budgets(paths, start_thread=False)
    spent.spent[("ana", "month")] = 1.5
    spent.periods.add("month")
    app = gate.Gate(inner, state=lambda: (KEY, object()), body_rule=lambda p, d: None, book=KeyBook(paths.keys_db),
                    spent=spent)
    out = run(app, "/v1/messages", bearer(key), b'{"model":"m"}')
    assert out["status"] == 429 and "budget of $1 per month" in out["body"].decode() and b"retry-after" in out["headers"]
    spent.spent.clear()
    assert run(app, "/v1/messages", bearer(key), b'{"model":"m"}')["status"] == 200  # the refusal took no rpm


class Shared:
    """Shared counters (tasks.gateway.keys.shared.Counters) as the gate sees them: an answer, or Down."""

    def __init__(self, answer=None, down=False):
        self.answer, self.down, self.asked = answer, down, 0

    async def take(self, member):
        from tasks.gateway.keys.resp import Down

        self.asked += 1
        if self.down:
            raise Down("stopped")
        return self.answer


def test_with_shared_counters_the_gate_asks_redis_and_counts_here_while_it_fails(paths):
    from tasks.gateway.keys.enforce import Refusal
    from tasks.keys import manage

    key, free = manage.create(paths, "ana", rpm=2), manage.create(paths, "bo")
    shared = Shared()
    app = member_door(paths, shared=shared)
    assert [run(app, "/v1/messages", bearer(key), b'{"model":"m"}')["status"] for _ in range(2)] == [200, 200]
    assert run(app, "/v1/messages", bearer(free), b'{"model":"m"}')["status"] == 200
    assert shared.asked == 2  # a key without rpm or tpm costs no round trip
    shared.answer = Refusal(429, "over in redis", [(b"retry-after", b"7")])
    out = run(app, "/v1/messages", bearer(key), b'{"model":"m"}')
    assert out["status"] == 429 and out["headers"][b"retry-after"] == b"7"
    shared.answer, shared.down = None, True  # Redis fails: this process counts, from what it admitted
    out = run(app, "/v1/messages", bearer(key), b'{"model":"m"}')
    assert out["status"] == 429 and "2 requests per minute" in out["body"].decode()

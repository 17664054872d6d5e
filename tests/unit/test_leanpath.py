"""tasks.stack.leanpath: what the lean path forwards itself and what it hands to LiteLLM's app, against
a real HTTP upstream (aiohttp's server, playing CLIProxyAPI) and a stand-in for LiteLLM's Router."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from tasks.stack import leanpath
from tests.support import free_port

KEY = "sk-gateway-key"
UPSTREAM_KEY = "sk-cliproxy-key"
DEADLINE = 30  # seconds: an awaited exchange that never completes fails the test instead of hanging it


def deployment(model: str, base: str, **params) -> dict:
    return {"model_name": "x", "model_info": {"id": model},
            "litellm_params": {"model": model, "api_base": base, "api_key": UPSTREAM_KEY,
                               "use_in_pass_through": False, **params}}


class Router:
    """LiteLLM's Router as the lean path uses it: a deployment per model name, the rpm pre-call check."""

    def __init__(self, root: str):
        self.deployments = {
            "gpt-5": deployment("openai/gpt-5-upstream", root + "/v1"),
            "claude-sonnet-4-5": deployment("anthropic/claude-sonnet-4-5", root),
            "double-fail-x": deployment("openai/double-fail-x", root + "/v1"),
            "limited": deployment("openai/gpt-5", root + "/v1", rpm=1),
            "direct": deployment("openai/gpt-4o", "https://api.example.com/v1"),
            "tuned": deployment("openai/gpt-5", root + "/v1", extra_headers={"x": "y"}),
            "counted": {**deployment("openai/gpt-5", root + "/v1"), "model_info": {"id": "c", "tpm": 100}},
            "down": deployment("openai/gpt-5", "http://127.0.0.1:%d/v1" % free_port()),
        }
        self.checked: list[str] = []

    async def async_get_available_deployment(self, model, request_kwargs, messages=None, input=None):
        if model not in self.deployments:
            raise ValueError(f"no deployment for {model}")
        return self.deployments[model]

    async def async_routing_strategy_pre_call_checks(self, deployment, parent_otel_span):
        self.checked.append(deployment["model_info"]["id"])
        if deployment["litellm_params"].get("rpm") and self.checked.count(deployment["model_info"]["id"]) > 1:
            raise RuntimeError("over the rpm limit")


class Upstream:
    """CLIProxyAPI's three APIs: echoes what it received; `double-fail*` answers 500, `bad*` 400, `busy*` 429;
    a stream sends its first event, then waits for `gate` before the rest."""

    def __init__(self):
        self.seen: list[dict] = []
        self.gate = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append({"path": request.path_qs, "body": body, "headers": dict(request.headers)})
        model = body["model"]
        if model.startswith("double-fail"):
            return web.json_response({"error": {"message": "upstream failure"}}, status=500)
        if model.startswith("busy"):
            return web.json_response({"error": {"message": "slow down"}}, status=429)
        if model.startswith("bad"):
            return web.json_response({"error": {"message": f"unknown provider for model {model}"}}, status=400)
        if not body.get("stream"):
            return web.json_response({"model": model, "path": request.path})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if model.startswith("cut"):  # the head, maybe an event, then the connection drops
            if model == "cut-late":
                await resp.write(b"data: first\n\n")
            request.transport.close()
            return resp
        await resp.write(b"data: first\n\n")
        await asyncio.wait_for(self.gate.wait(), DEADLINE)
        await resp.write(b"data: last\n\n")
        await resp.write_eof()
        return resp


class Inner:
    """LiteLLM's app: records what reached it (with the body it could read) and answers 299."""

    def __init__(self):
        self.got: list[tuple[str, bytes]] = []

    async def __call__(self, scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        self.got.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"litellm"})


async def call(app, path: str, body: dict, key: str | None = KEY, header: bytes = b"authorization", on_body=None):
    """One request through the ASGI app in two body parts; (status, headers, body parts)."""
    raw = json.dumps(body).encode()
    parts = [{"type": "http.request", "body": raw[:5], "more_body": True},
             {"type": "http.request", "body": raw[5:], "more_body": False}]
    headers = [(b"content-type", b"application/json"), (b"anthropic-version", b"2023-06-01")]
    if key is not None:
        headers.append((header, (f"Bearer {key}" if header == b"authorization" else key).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": headers}
    out = {"status": None, "headers": {}, "chunks": []}

    async def receive():
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"], out["headers"] = message["status"], dict(message["headers"])
        elif message.get("body"):
            out["chunks"].append(message["body"])
            if on_body:
                on_body(message["body"])

    await asyncio.wait_for(app(scope, receive, send), DEADLINE)
    return out["status"], out["headers"], out["chunks"]


@pytest.fixture
def world():
    """Runs a test coroutine with the upstream serving and a LeanPath around Inner."""

    def run(test):
        async def main():
            upstream, port = Upstream(), free_port()
            server = web.AppRunner(web.Application())
            server.app.router.add_post("/{tail:.*}", upstream.handle)
            await server.setup()
            await web.TCPSite(server, "127.0.0.1", port).start()
            root = f"http://127.0.0.1:{port}"
            router, inner = Router(root), Inner()
            lean = leanpath.LeanPath(inner, root, state=lambda: (KEY, router), request_timeout=DEADLINE)
            try:
                await test(lean, upstream, inner, router)
            finally:
                if lean.session:
                    await lean.session.close()
                await server.cleanup()

        asyncio.run(main())
    return run


CHAT = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("path,body,upstream_path,upstream_model", [
    ("/v1/chat/completions", CHAT, "/v1/chat/completions", "gpt-5-upstream"),
    ("/chat/completions", CHAT, "/v1/chat/completions", "gpt-5-upstream"),
    ("/v1/responses", {"model": "gpt-5", "input": "hi"}, "/v1/responses", "gpt-5-upstream"),
    ("/v1/messages", MESSAGES, "/v1/messages", "claude-sonnet-4-5"),
])
def test_forwards_in_the_requests_own_protocol_with_the_deployments_model_and_key(world, path, body, upstream_path,
                                                                                   upstream_model):
    async def test(lean, upstream, inner, router):
        status, headers, chunks = await call(lean, path, body)
        assert status == 200 and json.loads(b"".join(chunks)) == {"model": upstream_model, "path": upstream_path}
        assert headers[b"x-flowgate-path"] == b"lean" and not inner.got
        seen = upstream.seen[0]
        assert seen["body"] == {**body, "model": upstream_model}
        sent_key = seen["headers"].get("x-api-key") or seen["headers"]["Authorization"].removeprefix("Bearer ")
        assert sent_key == UPSTREAM_KEY and KEY not in json.dumps(seen["headers"])
        assert router.checked  # the Router's pre-call check ran
    world(test)


def test_the_key_in_x_api_key_works_too(world):
    async def test(lean, upstream, inner, router):
        status, _, _ = await call(lean, "/v1/messages", MESSAGES, header=b"x-api-key")
        assert status == 200 and not inner.got
    world(test)


@pytest.mark.parametrize("key", [None, "sk-wrong"], ids=["no key", "wrong key"])
def test_a_missing_or_wrong_key_goes_to_litellm_which_answers_401(world, key):
    async def test(lean, upstream, inner, router):
        status, _, _ = await call(lean, "/v1/chat/completions", CHAT, key=key)
        assert status == 299 and inner.got == [("/v1/chat/completions", json.dumps(CHAT).encode())]
        assert not upstream.seen
    world(test)


@pytest.mark.parametrize("path,body,why", [
    ("/v1/messages", {**MESSAGES, "model": "gpt-5"}, "needs translation (Messages to an OpenAI deployment)"),
    ("/v1/chat/completions", {**CHAT, "model": "claude-sonnet-4-5"}, "needs translation (chat to Anthropic)"),
    ("/v1/chat/completions", {**CHAT, "model": "direct"}, "not CLIProxyAPI (via: direct)"),
    ("/v1/chat/completions", {**CHAT, "model": "tuned"}, "deployment params the lean path does not apply"),
    ("/v1/chat/completions", {**CHAT, "model": "counted"}, "a tpm limit LiteLLM counts"),
    ("/v1/chat/completions", {**CHAT, "model": "nowhere"}, "no deployment"),
    ("/v1/chat/completions", {**CHAT, "fallbacks": ["gpt-5"]}, "a LiteLLM request key"),
    ("/v1/chat/completions", {**CHAT, "mock_response": "x"}, "a LiteLLM request key"),
    ("/v1/messages/count_tokens", MESSAGES, "a route the lean path does not serve"),
])
def test_what_the_lean_path_cannot_keep_goes_to_litellm_untouched(world, path, body, why):
    async def test(lean, upstream, inner, router):
        status, _, _ = await call(lean, path, body)
        assert status == 299, why
        assert inner.got == [(path, json.dumps(body).encode())] and not upstream.seen, why
    world(test)


@pytest.mark.parametrize("model", ["double-fail-x", "busy", "down"], ids=["500", "429", "no connection"])
def test_an_upstream_failure_before_any_byte_goes_to_litellm_for_retries_and_fallbacks(world, model):
    async def test(lean, upstream, inner, router):
        router.deployments.setdefault("busy", deployment("openai/busy", lean.root + "/v1"))
        status, _, _ = await call(lean, "/v1/chat/completions", {**CHAT, "model": model})
        assert status == 299 and inner.got == [("/v1/chat/completions", json.dumps({**CHAT, "model": model}).encode())]
    world(test)


def test_an_upstream_that_breaks_off_before_any_byte_goes_to_litellm_after_it_is_cut_short(world):
    async def test(lean, upstream, inner, router):
        for model in ("cut-early", "cut-late"):
            router.deployments[model] = deployment(f"openai/{model}", lean.root + "/v1")
        early = {**CHAT, "model": "cut-early", "stream": True}
        status, _, _ = await call(lean, "/v1/chat/completions", early)
        assert status == 299 and inner.got == [("/v1/chat/completions", json.dumps(early).encode())]
        status, headers, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": "cut-late", "stream": True})
        assert status == 200 and headers[b"x-flowgate-path"] == b"lean" and b"".join(chunks) == b"data: first\n\n"
        assert len(inner.got) == 1
    world(test)


def test_over_the_rpm_limit_goes_to_litellm_which_answers_429(world):
    async def test(lean, upstream, inner, router):
        first, _, _ = await call(lean, "/v1/chat/completions", {**CHAT, "model": "limited"})
        second, _, _ = await call(lean, "/v1/chat/completions", {**CHAT, "model": "limited"})
        assert (first, second) == (200, 299) and len(upstream.seen) == 1
    world(test)


def test_an_upstream_client_error_reaches_the_client_with_its_message(world):
    async def test(lean, upstream, inner, router):
        router.deployments["bad-model"] = deployment("openai/bad-model", lean.root + "/v1")
        status, headers, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": "bad-model"})
        assert status == 400 and not inner.got
        assert json.loads(b"".join(chunks))["error"]["message"] == "unknown provider for model bad-model"
    world(test)


def test_a_stream_arrives_unbuffered(world):
    async def test(lean, upstream, inner, router):
        # The upstream holds the rest of the stream until the client has the first event: a buffering
        # gateway would never deliver it (and the exchange would hit DEADLINE).
        def on_body(chunk):
            if b"first" in chunk:
                upstream.gate.set()
        status, headers, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "stream": True}, on_body=on_body)
        assert status == 200 and b"".join(chunks) == b"data: first\n\ndata: last\n\n"
        assert headers[b"content-type"] == b"text/event-stream"
    world(test)


def test_without_an_upstream_the_app_is_litellms_own(monkeypatch):
    sentinel = object()
    monkeypatch.delenv("FLOWGATE_LEAN_UPSTREAM", raising=False)
    assert leanpath.wrap(sentinel) is sentinel
    monkeypatch.setenv("FLOWGATE_LEAN_UPSTREAM", "http://127.0.0.1:8317/")
    wrapped = leanpath.wrap(sentinel)
    assert wrapped.app is sentinel and wrapped.root == "http://127.0.0.1:8317"

"""tasks.gateway.leanpath: what the lean path forwards itself and what it hands to LiteLLM's app, against
a real HTTP upstream (aiohttp's server, playing CLIProxyAPI) and a stand-in for LiteLLM's Router.
(The same requests through both real paths: tests/integration/test_lean_differential.py.)"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from aiohttp import web

from tasks.gateway import leanpath, leanpolicy
from tests.support import free_port

KEY = "sk-gateway-key"
UPSTREAM_KEY = "sk-cliproxy-key"
TRICKLE = 250  # events of a `trickle*` stream, 20 ms apart: 5 s unless its reader goes
DEADLINE = 30  # seconds: an awaited exchange that never completes fails the test instead of hanging it


def deployment(model: str, base: str, **params) -> dict:
    return {"model_name": "x", "model_info": {"id": model},
            "litellm_params": {"model": model, "api_base": base, "api_key": UPSTREAM_KEY,
                               "use_in_pass_through": False, **params}}


class Router:
    """LiteLLM's Router as the lean path uses it: a deployment per model name, the rpm pre-call check."""

    def __init__(self, root: str):
        self.deployments = {
            "gpt-5": deployment("openai/gpt-5", root + "/v1"),
            "trickle": deployment("openai/trickle", root + "/v1"),
            "fast": deployment("openai/gpt-5", root + "/v1"),  # an alias: LiteLLM answers with the client's name
            "claude-sonnet-4-5": deployment("anthropic/claude-sonnet-4-5", root),
            "double-fail-x": deployment("openai/double-fail-x", root + "/v1"),
            "limited": deployment("openai/limited", root + "/v1", rpm=1),
            "direct": deployment("openai/gpt-4o", "https://api.example.com/v1"),
            "tuned": deployment("openai/gpt-5", root + "/v1", extra_headers={"x": "y"}),
            "counted": {**deployment("openai/gpt-5", root + "/v1"), "model_info": {"id": "c", "tpm": 100}},
            "down": deployment("openai/gpt-5", "http://127.0.0.1:%d/v1" % free_port()),
        }
        self.checked: list[str] = []
        self.num_retries, self.retry_after = 0, 0
        self.timeout = DEADLINE

    def _get_timeout(self, kwargs, data):
        return data.get("timeout") or self.timeout

    async def async_get_available_deployment(self, model, request_kwargs, messages=None, input=None):
        if model not in self.deployments:
            raise ValueError(f"no deployment for {model}")
        return self.deployments[model]

    async def async_routing_strategy_pre_call_checks(self, deployment, parent_otel_span):
        self.checked.append(deployment["model_info"]["id"])
        if deployment["litellm_params"].get("rpm") and self.checked.count(deployment["model_info"]["id"]) > 1:
            raise RuntimeError("over the rpm limit")


class Upstream:
    """CLIProxyAPI's three APIs: echoes what it received; `double-fail*` answers 500, `bad*` 400, `busy*` 429
    (retry-after: 7), `late*` 408; a stream sends its first event, then waits for `gate` before the rest;
    `slow*` streams three events `pause` seconds apart, `mute*` its first event then nothing."""

    def __init__(self):
        self.seen: list[dict] = []
        self.gate = asyncio.Event()
        self.pause = 0.0
        self.closed, self.finished = asyncio.Event(), asyncio.Event()  # a `trickle*` stream's end

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append({"path": request.path_qs, "body": body, "headers": dict(request.headers)})
        model = body["model"]
        if model.startswith("double-fail"):
            return web.json_response({"error": {"message": "upstream failure"}}, status=500)
        if model.startswith("busy"):
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "7"})
        if model.startswith("drop"):  # the connection closes before any answer
            request.transport.close()
            return web.Response()
        if model.startswith("stall"):  # no answer at all until the test ends
            await asyncio.wait_for(self.gate.wait(), DEADLINE)
        if model.startswith("late"):
            return web.json_response({"error": {"message": "request timeout"}}, status=408)
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
        if model.startswith("slow"):
            for event in (b"data: second\n\n", b"data: last\n\n"):
                await asyncio.sleep(self.pause)
                await resp.write(event)
            await resp.write_eof()
            return resp
        if model.startswith("trickle"):  # TRICKLE events 20 ms apart, or until its connection closes
            try:
                for _ in range(TRICKLE):
                    await asyncio.sleep(0.02)
                    await resp.write(b"data: more\n\n")
            except (ConnectionError, RuntimeError):
                self.closed.set()
                return resp
            self.finished.set()
            await resp.write_eof()
            return resp
        if model.startswith("mute"):
            await asyncio.wait_for(self.gate.wait(), DEADLINE)  # silent until the test ends
            return resp
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


async def call(app, path: str, body: dict, key: str | None = KEY, header: bytes = b"authorization", on_body=None,
               extra_headers=(), ended: list | None = None, leave: asyncio.Event | None = None):
    """One request through the ASGI app in two body parts; (status, headers, body parts). `ended`
    collects whether the body was ended (a final message without more_body). As uvicorn does, the
    receive after the body waits until the answer ended or the client left (`leave`)."""
    raw = json.dumps(body).encode()
    parts = [{"type": "http.request", "body": raw[:5], "more_body": True},
             {"type": "http.request", "body": raw[5:], "more_body": False}]
    headers = [(b"content-type", b"application/json"), (b"anthropic-version", b"2023-06-01"), *extra_headers]
    if key is not None:
        headers.append((header, (f"Bearer {key}" if header == b"authorization" else key).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": headers}
    out = {"status": None, "headers": {}, "chunks": []}
    complete, leave = asyncio.Event(), leave or asyncio.Event()

    async def receive():
        if parts:
            return parts.pop(0)
        await asyncio.wait([asyncio.ensure_future(complete.wait()), asyncio.ensure_future(leave.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"], out["headers"] = message["status"], dict(message["headers"])
        else:
            if not message.get("more_body", False):
                complete.set()
            if ended is not None and not message.get("more_body", False):
                ended.append(True)
            if message.get("body"):
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
            lean = leanpath.LeanPath(inner, root, state=lambda: (KEY, router), policy=leanpolicy.Policy(None, {}),
                                     cors=False)
            lean.waits = []
            lean.backoff = lambda router, retries, headers: lean.waits.append(
                (retries, headers.get("retry-after") if headers else None)) or 0
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
    ("/v1/chat/completions", CHAT, "/v1/chat/completions", "gpt-5"),
    ("/chat/completions", CHAT, "/v1/chat/completions", "gpt-5"),
    ("/v1/responses", {"model": "gpt-5", "input": "hi"}, "/v1/responses", "gpt-5"),
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
    ("/v1/chat/completions", {**CHAT, "max_tokens": 5}, "a parameter LiteLLM renames for gpt-5 ids"),
    ("/v1/chat/completions", {**CHAT, "temperature": 0.2}, "a parameter LiteLLM drops for gpt-5 ids"),
    ("/v1/chat/completions", {**CHAT, "model": "fast"}, "an alias: LiteLLM answers with the client's name"),
    ("/v1/responses", {"model": "gpt-5", "input": "hi", "previous_response_id": "resp_" + base64.b64encode(
        b"litellm:custom_llm_provider:openai;model_id:abc;response_id:resp_1").decode()},
     "a Responses id LiteLLM encoded"),
    ("/v1/messages/count_tokens", MESSAGES, "a route the lean path does not serve"),
])
def test_what_the_lean_path_cannot_keep_goes_to_litellm_untouched(world, path, body, why):
    async def test(lean, upstream, inner, router):
        status, _, _ = await call(lean, path, body)
        assert status == 299, why
        assert inner.got == [(path, json.dumps(body).encode())] and not upstream.seen, why
    world(test)


@pytest.mark.parametrize("model,retry_after", [("double-fail-x", None), ("busy", "7"), ("late", None)],
                         ids=["500", "429 with retry-after", "408"])
def test_an_answer_litellm_retries_goes_to_litellm_with_one_retry_fewer_after_its_wait(world, model, retry_after):
    async def test(lean, upstream, inner, router):
        router.num_retries = 2
        router.deployments.setdefault(model, deployment(f"openai/{model}", lean.root + "/v1"))
        status, _, _ = await call(lean, "/v1/chat/completions", {**CHAT, "model": model})
        # this attempt was LiteLLM's first: its path makes the remaining ones, after LiteLLM's wait
        assert status == 299 and inner.got == [("/v1/chat/completions",
                                                json.dumps({**CHAT, "model": model, "num_retries": 1},
                                                           separators=(",", ":")).encode())]
        assert len(upstream.seen) == 1 and lean.waits == [(2, retry_after)]
    world(test)


@pytest.mark.parametrize("model,status", [("double-fail-x", 500), ("busy", 429), ("late", 408)])
def test_with_no_retry_left_the_failed_answer_is_relayed_and_the_upstream_not_asked_again(world, model, status):
    async def test(lean, upstream, inner, router):
        router.deployments.setdefault(model, deployment(f"openai/{model}", lean.root + "/v1"))
        got, headers, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": model})
        assert got == status and headers[b"x-flowgate-path"] == b"lean" and not inner.got
        assert len(upstream.seen) == 1 and not lean.waits and b"error" in b"".join(chunks)
    world(test)


def test_a_deployments_num_retries_wins_over_the_routers(world):
    async def test(lean, upstream, inner, router):
        router.num_retries = 3
        router.deployments["busy"] = deployment("openai/busy", lean.root + "/v1", num_retries=0)
        status, _, _ = await call(lean, "/v1/chat/completions", {**CHAT, "model": "busy"})
        assert status == 429 and not inner.got and len(upstream.seen) == 1
    world(test)


@pytest.mark.parametrize("retries", [0, 1])
def test_an_upstream_silent_past_the_timeout_before_its_head_is_a_timeout_litellm_retries(world, retries):
    async def test(lean, upstream, inner, router):
        router.timeout, router.num_retries = 0.2, retries
        router.deployments["stall"] = deployment("openai/stall", lean.root + "/v1")
        status, headers, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": "stall"})
        upstream.gate.set()
        if retries:  # LiteLLM's path makes the retry
            assert status == 299 and json.loads(inner.got[0][1])["num_retries"] == 0
        else:  # none left: a 408 in the request's protocol family, as LiteLLM's timeout answers
            assert status == 408 and not inner.got and json.loads(b"".join(chunks))["error"]["code"] == "408"
        assert len(upstream.seen) == 1
    world(test)


@pytest.mark.parametrize("retries", [0, 1])
def test_a_connection_closed_before_the_head_is_an_error_litellm_retries(world, retries):
    async def test(lean, upstream, inner, router):
        router.num_retries = retries
        router.deployments["drop"] = deployment("openai/drop", lean.root + "/v1")
        status, _, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": "drop"})
        if retries:
            assert status == 299 and json.loads(inner.got[0][1])["num_retries"] == 0
        else:  # no extra attempt: the failure answered as LiteLLM's connection error is (500)
            assert status == 500 and not inner.got and "closed the connection" in json.loads(b"".join(chunks))["error"]["message"]
        assert len(upstream.seen) == 1
    world(test)


def test_no_connection_goes_to_litellm_which_says_so(world):
    async def test(lean, upstream, inner, router):
        status, _, _ = await call(lean, "/v1/chat/completions", {**CHAT, "model": "down"})
        assert status == 299 and inner.got == [("/v1/chat/completions", json.dumps({**CHAT, "model": "down"}).encode())]
    world(test)


def test_an_upstream_that_breaks_off_is_left_incomplete_after_its_first_byte(world):
    async def test(lean, upstream, inner, router):
        for model in ("cut-early", "cut-late"):
            router.deployments[model] = deployment(f"openai/{model}", lean.root + "/v1")
        early = {**CHAT, "model": "cut-early", "stream": True}
        status, _, _ = await call(lean, "/v1/chat/completions", early)
        assert status == 299 and inner.got == [("/v1/chat/completions", json.dumps(early).encode())]
        ended: list = []
        status, headers, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": "cut-late", "stream": True},
                                             ended=ended)
        assert status == 200 and headers[b"x-flowgate-path"] == b"lean" and b"".join(chunks) == b"data: first\n\n"
        assert len(inner.got) == 1 and not ended  # no end of body: the server closes, the recorder sees a cut
    world(test)


def test_the_timeout_bounds_silence_between_events_not_the_whole_stream(world):
    async def test(lean, upstream, inner, router):
        # three events 0.3 s apart under a 0.5 s timeout: 0.6 s in all, never 0.5 s of silence
        router.timeout, upstream.pause = 0.5, 0.3
        router.deployments["slow"] = deployment("openai/slow", lean.root + "/v1")
        ended: list = []
        status, _, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": "slow", "stream": True},
                                       ended=ended)
        assert status == 200 and b"".join(chunks) == b"data: first\n\ndata: second\n\ndata: last\n\n" and ended
    world(test)


def test_silence_longer_than_the_timeout_ends_the_stream_incomplete(world):
    async def test(lean, upstream, inner, router):
        router.timeout = 0.2
        router.deployments["mute"] = deployment("openai/mute", lean.root + "/v1")
        ended: list = []
        status, _, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": "mute", "stream": True},
                                       ended=ended)
        upstream.gate.set()
        assert status == 200 and b"".join(chunks) == b"data: first\n\n" and not ended and not inner.got
    world(test)


def test_no_compression_is_asked_of_the_upstream_and_litellms_headers_are_on_the_answer(world):
    async def test(lean, upstream, inner, router):
        status, headers, _ = await call(lean, "/v1/chat/completions", CHAT,
                                        extra_headers=[(b"accept-encoding", b"gzip, deflate")])
        assert status == 200 and "Accept-Encoding" not in upstream.seen[0]["headers"]
        assert headers[b"x-litellm-model-id"] == b"openai/gpt-5"  # the deployment's model_info id
        assert headers[b"x-litellm-model-api-base"] == (lean.root + "/v1").encode()
        assert len(headers[b"x-litellm-call-id"]) == 36
    world(test)


def test_cors_headers_come_from_litellms_own_middleware_settings(world):
    from starlette.middleware.cors import CORSMiddleware

    async def test(lean, upstream, inner, router):
        lean.cors = CORSMiddleware(app=None, allow_origins=["*"], allow_credentials=True, allow_methods=["*"],
                                   allow_headers=["*"])
        status, headers, _ = await call(lean, "/v1/chat/completions", CHAT,
                                        extra_headers=[(b"origin", b"http://app.example")])
        assert status == 200 and headers[b"x-flowgate-path"] == b"lean"
        assert headers[b"access-control-allow-origin"] == b"http://app.example"
        assert headers[b"access-control-allow-credentials"] == b"true"
    world(test)


def test_a_responses_id_of_the_upstreams_own_stays_on_the_lean_path(world):
    async def test(lean, upstream, inner, router):
        body = {"model": "gpt-5", "input": "next", "previous_response_id": "resp_0123456789abcdef"}
        status, headers, _ = await call(lean, "/v1/responses", body)
        assert status == 200 and headers[b"x-flowgate-path"] == b"lean"
        assert upstream.seen[0]["body"]["previous_response_id"] == "resp_0123456789abcdef"
    world(test)


@pytest.mark.parametrize("policy", [leanpolicy.Policy("litellm_settings.callbacks", {}),
                                    leanpolicy.Policy(None, {"gpt-5": "fallbacks"})], ids=["all", "this model"])
def test_what_the_policy_sends_to_litellm_goes_there_untouched(world, policy):
    async def test(lean, upstream, inner, router):
        lean.policy = policy
        status, _, _ = await call(lean, "/v1/chat/completions", CHAT)
        assert status == 299 and inner.got == [("/v1/chat/completions", json.dumps(CHAT).encode())]
        assert not upstream.seen and not router.checked
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


def test_the_policy_is_the_booted_configs(tmp_path, monkeypatch):
    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\nlitellm_settings: {callbacks: [detect_prompt_injection]}\n")
    monkeypatch.setenv("CONFIG_FILE_PATH", str(config))
    assert leanpath.config_policy("http://127.0.0.1:8317").off == "litellm_settings.callbacks"
    config.write_text("model_list: []\nlitellm_settings: {num_retries: 1}\n")
    assert leanpath.config_policy("http://127.0.0.1:8317") == leanpolicy.Policy(None, {})
    for text in ("- a list\n", "key: [unclosed\n"):  # not a mapping, not YAML: LiteLLM's path for all
        config.write_text(text)
        assert leanpath.config_policy("http://127.0.0.1:8317").off.startswith("the config is")
    monkeypatch.setenv("CONFIG_FILE_PATH", str(tmp_path / "missing.yaml"))
    assert leanpath.config_policy("http://127.0.0.1:8317").off == "the config is unreadable: FileNotFoundError"


def test_without_an_upstream_the_app_is_litellms_own(monkeypatch):
    sentinel = object()
    monkeypatch.delenv("FLOWGATE_LEAN_UPSTREAM", raising=False)
    assert leanpath.wrap(sentinel) is sentinel
    monkeypatch.setenv("FLOWGATE_LEAN_UPSTREAM", "http://127.0.0.1:8317/")
    wrapped = leanpath.wrap(sentinel)
    assert wrapped.app is sentinel and wrapped.root == "http://127.0.0.1:8317"


def test_a_client_that_leaves_closes_the_upstream_stream(world):
    """Issue 31, item 1: the lean path read the whole stream after its client had gone."""

    async def test(lean, upstream, inner, router):
        leave = asyncio.Event()
        status, _, chunks = await call(lean, "/v1/chat/completions", {**CHAT, "model": "trickle", "stream": True},
                                       on_body=lambda chunk: leave.set(), leave=leave)
        assert status == 200 and chunks[0] == b"data: first\n\n"
        await asyncio.wait([asyncio.ensure_future(upstream.closed.wait()),
                            asyncio.ensure_future(upstream.finished.wait())], return_when=asyncio.FIRST_COMPLETED)
        assert upstream.closed.is_set() and not upstream.finished.is_set()
        assert len(b"".join(chunks)) < 100  # nothing more was read for the departed client
        assert inner.got == []

    world(test)

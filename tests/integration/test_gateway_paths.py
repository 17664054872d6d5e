"""The gateway's contract on both paths a request can take (issue 19), on one stack of this module's
own (mainline double, real LiteLLM): the lean path (a request in the protocol its CLIProxyAPI
deployment speaks; answers carry `x-flowgate-path: lean`) and LiteLLM's own path (here: a Messages
request to an OpenAI-protocol model, which LiteLLM translates, or anything the lean path hands over).
"""

from __future__ import annotations

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.integration.conftest import make_stack, running
from tests.support import free_port, wait_for

RPM = 3
MODELS = f"""models:
  - {{name: gpt-5-codex, model: double-fail-codex, protocol: openai}}
  - {{name: gpt-5.5}}
  - {{name: claude-sonnet-4-6}}
  - {{name: claude-haiku-4-5}}
  - {{name: claude-failing, model: double-fail-claude, protocol: anthropic}}
  - {{name: ghost, model: ghost-model, protocol: openai}}
  - {{name: gpt-5.4, params: {{rpm: {RPM}}}}}   # a served id with a limit: the lean path (an alias would not be)
  - {{name: limited-litellm, model: gpt-5.5, protocol: openai, params: {{rpm: {RPM}}}}}
  - {{name: gated, via: direct, model: openai/gated, api_base: "http://127.0.0.1:{{gated_port}}/v1", api_key_env: GATED_KEY}}
router_settings:
  routing_strategy: usage-based-routing-v2   # the strategy whose pre-call check enforces rpm
  num_retries: 0   # a rejection is final (a retry would wait for its retry-after: 60 s)
  fallbacks:
    - gpt-5-codex: [gpt-5.5]
    - claude-failing: [claude-sonnet-4-6]
"""
LEAN = "lean"
LITELLM = "litellm"
GATE_DEADLINE = 30  # seconds the gated upstream waits for the client's first event before giving up


class Gated(BaseHTTPRequestHandler):
    """An OpenAI upstream whose stream sends its first chunk, then waits until the test has seen that
    chunk through the gateway before it sends the rest: a buffering gateway never delivers it."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(self._event("first", None))
        self.server.gate.wait(GATE_DEADLINE)
        self.server.released.set()  # past the gate: opened by the test, or given up on
        self._chunk(self._event("last", "stop") + b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    @staticmethod
    def _event(text: str, finish: str | None) -> bytes:
        chunk = {"id": "chatcmpl-gated", "object": "chat.completion.chunk", "created": 1700000000, "model": "gated",
                 "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def gated():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Gated)
    server.gate, server.released = threading.Event(), threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.gate.set()
    server.shutdown()


@pytest.fixture(scope="module")
def st(tmp_path_factory, github, gated):
    stack = make_stack(tmp_path_factory, github, "gateway-paths", env={"GATED_KEY": "sk-gated-upstream"})
    stack.write_local(MODELS.replace("{gated_port}", str(gated.server_address[1])))
    stack.seed_accounts("codex", "claude")
    with running(stack):
        yield stack


def post(st, path: str, body: dict, key: str | None = None, header: str = "Authorization") -> httpx.Response:
    key = st.master_key if key is None else key
    headers = {"anthropic-version": "2023-06-01"}
    if key:
        headers[header] = f"Bearer {key}" if header == "Authorization" else key
    return httpx.post(f"{st.litellm_url}{path}", json=body, headers=headers, timeout=60)


def request(path_kind: str, model: str, text: str, stream: bool = False) -> tuple[str, dict]:
    """The lean path: chat completions (OpenAI models) or Messages (Claude models); LiteLLM's path:
    Messages to an OpenAI-protocol model."""
    messages = [{"role": "user", "content": text}]
    if path_kind == LEAN and not model.startswith("claude"):
        return "/v1/chat/completions", {"model": model, "messages": messages, "stream": stream}
    return "/v1/messages", {"model": model, "max_tokens": 64, "messages": messages, "stream": stream}


def answer_text(resp: httpx.Response) -> str:
    data = resp.json()
    if "choices" in data:
        return data["choices"][0]["message"]["content"]
    return "".join(block.get("text", "") for block in data["content"])


def served_by(resp: httpx.Response) -> str:
    return LEAN if resp.headers.get("x-flowgate-path") == "lean" else LITELLM


@pytest.mark.parametrize("path_kind,model", [(LEAN, "gpt-5.5"), (LEAN, "claude-sonnet-4-6"), (LITELLM, "gpt-5.5")])
def test_each_request_takes_the_path_its_deployment_allows(st, path_kind, model):
    path, body = request(path_kind, model, "which path")
    resp = post(st, path, body)
    assert resp.status_code == 200, resp.text
    assert served_by(resp) == path_kind
    assert answer_text(resp) == f"double({model}): which path"
    assert resp.headers["x-flowgate-instance"].isdigit()


def test_responses_take_the_lean_path(st):
    resp = post(st, "/v1/responses", {"model": "gpt-5.5", "input": "codex turn"})
    assert resp.status_code == 200 and served_by(resp) == LEAN, resp.text
    assert resp.json()["output"][0]["content"][0]["text"] == "double(gpt-5.5): codex turn"


@pytest.mark.parametrize("path_kind", [LEAN, LITELLM])
@pytest.mark.parametrize("key,header", [("", "Authorization"), ("sk-wrong-key-0123456789", "Authorization"),
                                        ("sk-wrong-key-0123456789", "x-api-key")],
                         ids=["no key", "wrong bearer", "wrong x-api-key"])
def test_a_wrong_or_missing_key_is_401_naming_the_key_file(st, path_kind, key, header):
    """In the route's own protocol shape: Anthropic's on /v1/messages, OpenAI's elsewhere."""
    for model in ("gpt-5.5", "claude-sonnet-4-6"):
        path, body = request(path_kind, model, "key")
        resp = post(st, path, body, key=key, header=header)
        assert resp.status_code == 401, resp.text
        assert str(st.paths.secret("litellm_master_key")) in resp.json()["error"]["message"]
        if path.startswith("/v1/messages"):
            assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == "authentication_error"
        else:
            assert set(resp.json()) == {"error"} and resp.json()["error"]["code"] == "401"


@pytest.mark.parametrize("path_kind", [LEAN, LITELLM])
def test_the_key_in_x_api_key_is_accepted(st, path_kind):
    path, body = request(path_kind, "gpt-5.5", "x-api-key")
    resp = post(st, path, body, header="x-api-key")
    assert resp.status_code == 200 and served_by(resp) == path_kind, resp.text


@pytest.mark.parametrize("path_kind,model,fallback", [(LEAN, "gpt-5-codex", "gpt-5.5"),
                                                      (LEAN, "claude-failing", "claude-sonnet-4-6"),
                                                      (LITELLM, "gpt-5-codex", "gpt-5.5")])
def test_a_failing_upstream_falls_back_as_the_profile_says(st, path_kind, model, fallback):
    path, body = request(path_kind, model, "fall back")
    resp = post(st, path, body)
    assert resp.status_code == 200, resp.text
    assert answer_text(resp) == f"double({fallback}): fall back"
    assert served_by(resp) == LITELLM  # the lean path handed the failed request to LiteLLM's retries and fallbacks


@pytest.mark.parametrize("path_kind", [LEAN, LITELLM])
def test_an_upstream_error_reaches_the_client_with_its_message(st, path_kind):
    path, body = request(path_kind, "ghost", "nobody serves this")
    resp = post(st, path, body)
    assert resp.status_code == 400, resp.text
    # CLIProxyAPI's "unknown provider for model ghost-model", named with the served ids (tasks.catalog)
    assert "model 'ghost-model' is not served by any logged-in account" in resp.text


@pytest.mark.parametrize("path_kind", [LEAN, LITELLM])
def test_the_rpm_limit_holds(st, path_kind):
    # The router counts per minute ("%H-%M" keys): do not straddle a minute boundary.
    wait_for(lambda: datetime.datetime.now(datetime.timezone.utc).second < 40, timeout=40, interval=0.5,
             what="the start of a minute")
    model = {LEAN: "gpt-5.4", LITELLM: "limited-litellm"}[path_kind]
    answers = [post(st, *request(path_kind, model, f"hi {i}")) for i in range(RPM + 2)]
    # LiteLLM's usage-based-routing-v2 admits a request while usage + 1 < rpm: RPM - 1 of them.
    assert [r.status_code for r in answers] == [200] * (RPM - 1) + [429] * 3, [r.text for r in answers]
    assert [served_by(r) for r in answers] == [path_kind] * (RPM - 1) + [LITELLM] * 3
    assert "rpm" in answers[-1].text


@pytest.mark.parametrize("path,body,events", [
    ("/v1/chat/completions", {"model": "gpt-5.5", "messages": [{"role": "user", "content": "stream it"}]}, "[DONE]"),
    ("/v1/responses", {"model": "gpt-5.5", "input": "stream it"}, "response.completed"),
    ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 64,
                      "messages": [{"role": "user", "content": "stream it"}]}, "message_stop"),
], ids=["chat", "responses", "messages"])
def test_streams_take_the_lean_path_whole(st, path, body, events):
    with httpx.stream("POST", f"{st.litellm_url}{path}", json={**body, "stream": True}, timeout=60,
                      headers={"Authorization": f"Bearer {st.master_key}", "anthropic-version": "2023-06-01"}) as resp:
        text = "".join(resp.iter_text())
    assert resp.status_code == 200 and served_by(resp) == LEAN
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert events in text and "stream" in text and "it" in text


def test_a_stream_on_litellms_path_arrives_unbuffered(st, gated):
    body = {"model": "gated", "stream": True, "messages": [{"role": "user", "content": "stream it"}]}
    with httpx.stream("POST", f"{st.litellm_url}/v1/chat/completions", json=body, timeout=GATE_DEADLINE + 30,
                      headers={"Authorization": f"Bearer {st.master_key}"}) as resp:
        assert resp.status_code == 200 and served_by(resp) == LITELLM
        seen = ""
        lines = resp.iter_lines()
        for line in lines:  # the gated upstream holds "last" until this loop has seen "first"
            seen += line
            if "first" in seen:
                break
        assert "first" in seen and "last" not in seen and not gated.released.is_set()
        gated.gate.set()
        rest = "".join(lines)
    assert "last" in rest and "[DONE]" in rest


def test_the_key_in_either_header_is_enough(st):
    """Claude Code with an ANTHROPIC_AUTH_TOKEN exported sends that token as the bearer and the key
    helper's key as x-api-key: the gateway's key in either header is accepted."""
    path, body = request(LEAN, "claude-sonnet-4-6", "either header")
    resp = httpx.post(f"{st.litellm_url}{path}", json=body, timeout=60,
                      headers={"anthropic-version": "2023-06-01", "Authorization": "Bearer sk-elsewhere-0123456789",
                               "x-api-key": st.master_key})
    assert resp.status_code == 200 and answer_text(resp) == "double(claude-sonnet-4-6): either header", resp.text



KEY_FORMATS = [  # (headers, status on every path): LiteLLM's reading of the key (tasks.gateway.gate.sent_keys)
    ({"Authorization": "BEARER {key}"}, 401), ({"Authorization": "Basic junk", "x-api-key": "{key}"}, 401),
    ({"Authorization": "Token {key}", "x-api-key": "{key}"}, 401), ({"Authorization": "bearer {key}"}, 200),
    ({"Authorization": "Basic {key}"}, 200), ({"x-litellm-api-key": "{key}"}, 200), ({"api-key": "{key}"}, 200),
    ({"Authorization": "Bearer sk-other", "x-api-key": "{key}"}, 200)]


@pytest.mark.parametrize("headers,status", KEY_FORMATS, ids=["BEARER", "Basic junk + x-api-key", "Token + x-api-key",
                                                             "bearer", "Basic key", "x-litellm-api-key", "api-key",
                                                             "other bearer + x-api-key"])
def test_one_key_rule_for_both_paths(st, headers, status):
    """Issue 31, item 14: the lean path accepted key formats LiteLLM's own reading refuses."""
    for path_kind in (LEAN, LITELLM):
        path, body = request(path_kind, "gpt-5.5", "key rule")
        resp = httpx.post(f"{st.litellm_url}{path}", json=body, timeout=60,
                          headers={"anthropic-version": "2023-06-01",
                                   **{k: v.format(key=st.master_key) for k, v in headers.items()}})
        assert resp.status_code == status, (path_kind, resp.text)
        if status == 200:
            assert served_by(resp) == path_kind


def raw_exchange(st, head: bytes, deadline: float = 20) -> bytes:
    """What the gateway answers to `head` (a request's head, no body sent), until it closes."""
    import socket

    with socket.create_connection(("127.0.0.1", st.litellm_port), timeout=deadline) as sock:
        sock.sendall(head)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings",
                                  "/v1/audio/transcriptions"])
def test_no_key_is_answered_before_the_body_is_read(st, path):
    """Issue 31, item 6: a 31 MiB body without a key was buffered before the key check."""
    answer = raw_exchange(st, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              f"Content-Length: {31 << 20}\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401") and b"connection: close" in head.lower(), answer[:500]
    data = json.loads(body)
    if path == "/v1/messages":
        assert data["type"] == "error" and data["error"]["type"] == "authentication_error"
    else:
        assert data["error"]["code"] == "401"
    assert "no gateway key" in body.decode()


def post_raw(st, path: str, raw: str) -> httpx.Response:
    return httpx.post(f"{st.litellm_url}{path}", content=raw.encode(), timeout=60,
                      headers={"Authorization": f"Bearer {st.master_key}", "content-type": "application/json",
                               "anthropic-version": "2023-06-01"})


def assert_protocol_error(resp: httpx.Response, path: str, status: int, words: str) -> None:
    assert resp.status_code == status, resp.text
    data = resp.json()
    if path.startswith("/v1/messages"):
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error", data
    else:
        assert set(data) == {"error"} and data["error"]["type"] == "invalid_request_error", data
    assert words in data["error"]["message"], data


@pytest.mark.parametrize("path_kind,path,rest", [
    (LEAN, "/v1/chat/completions", '"messages":[{"role":"user","content":"dup"}]'),
    (LEAN, "/v1/responses", '"input":"dup"'),
    (LITELLM, "/v1/messages", '"max_tokens":8,"messages":[{"role":"user","content":"dup"}]'),
])
def test_a_body_repeating_a_key_is_refused_on_both_paths(st, path_kind, path, rest):
    """Issue 31, item 5: LiteLLM read the last `model`, CLIProxyAPI the first."""
    resp = post_raw(st, path, '{"model":"gpt-5.5",%s,"model":"limited-litellm"}' % rest)
    assert_protocol_error(resp, path, 400, "'model' more than once")
    escaped = post_raw(st, path, '{"model":"gpt-5.5",%s,"mod\\u0065l":"gpt-5.4"}' % rest)
    assert_protocol_error(escaped, path, 400, "'model' more than once")
    nested = post_raw(st, path, '{"model":"gpt-5.5",%s,"user":"a","metadata":{"k":1,"k":2}}' % rest
                      if path_kind == LITELLM else '{"model":"gpt-5.5",%s}' % rest)
    assert nested.status_code == 200 if path_kind == LEAN else nested.status_code != 500, nested.text


@pytest.mark.parametrize("path_kind", [LEAN, LITELLM])
@pytest.mark.parametrize("key,value", [("api_base", "http://127.0.0.1:9/v1"), ("base_url", "http://127.0.0.1:9"),
                                       ("user_config", {"model_list": []}), ("api_key", "sk-client"),
                                       ("extra_headers", {"Authorization": "Bearer junk"}),
                                       ("headers", {"Authorization": "Bearer junk"}),
                                       ("custom_llm_provider", "anthropic")])
def test_a_body_that_redirects_the_upstream_is_refused(st, path_kind, key, value):
    """Issue 31, item 15: LiteLLM's path answered a plain-text 500 and logged ~14 KB of tracebacks."""
    before = st.paths.log("litellm").stat().st_size
    path, body = request(path_kind, "gpt-5.5", "redirect")
    resp = post(st, path, {**body, key: value})
    assert_protocol_error(resp, path, 400, f"{key} is not allowed in request body")
    with open(st.paths.log("litellm"), "rb") as fh:
        fh.seek(before)
        logged = fh.read().decode()
    assert "Traceback" not in logged and "prisma" not in logged, logged
    after = post(st, path, body)  # nothing cooled the model's deployment down for the other clients
    assert after.status_code == 200, after.text

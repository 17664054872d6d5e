"""A stand-in for the providers behind CLIProxyAPI's API-key accounts, on 127.0.0.1.

The real CLIProxyAPI reaches it through `codex-api-key` (OpenAI Responses at `<base-url>/responses`,
always streamed upstream), `claude-api-key` (Anthropic Messages at `<base-url>/v1/messages?beta=true`
and `/v1/messages/count_tokens`) and `openai-compatibility` (`<base-url>/chat/completions`):

    with ProviderStandIn(key="sk-test") as provider:
        codex-api-key: [{api-key: sk-test, base-url: provider.openai_url}]
        claude-api-key: [{api-key: sk-test, base-url: provider.anthropic_url}]
        provider.fail(429, times=1, retry_after=2)   # the next answer is a 429, then normal ones
        provider.received[-1]                         # what the last request carried (path, body, headers)

Answers are shaped like the real providers' (event names and order, usage fields, error bodies):
the reply is `stand-in reply to <model>: <the user's last words>`, and usage counts words, so a test
can predict the tokens a request records. Errors: 400, 401 (a wrong key), 429 with `retry-after`,
500, 529 (Anthropic's overloaded), each in the provider's own error shape; set with `fail()`, or by
a user message `stand-in-fail <status>`. `stream_gap`: seconds of silence between streamed events.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.fakes.provider_quota import OAuthQuota
from tests.fakes.serving import ServedFake

ERROR_TYPES = {  # status -> (OpenAI error type, Anthropic error type)
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "authentication_error"),
    429: ("rate_limit_exceeded", "rate_limit_error"),
    500: ("server_error", "api_error"),
    529: ("server_error", "overloaded_error"),
}


@dataclass
class Received:
    path: str
    body: dict
    headers: dict = field(default_factory=dict)


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(part.get("text", part.get("content", ""))) if isinstance(part, dict) else str(part)
                        for part in content)
    return ""


def last_user_text(body: dict) -> str:
    """The last user turn of a Responses `input`, a chat `messages` list or an Anthropic `messages` list."""
    turns = body.get("input", body.get("messages", []))
    if isinstance(turns, str):
        return turns
    for turn in reversed(turns if isinstance(turns, list) else []):
        if isinstance(turn, dict) and turn.get("role", "user") == "user":
            return _text(turn.get("content", ""))
    return ""


def words(text: str) -> int:
    return max(1, len(text.split()))


class ProviderStandIn(ServedFake):
    def __init__(self, key: str = "sk-stand-in", quota_step: float = 0.0, quota_reset: float = 30.0) -> None:
        super().__init__()
        self.key = key
        self.oauth = OAuthQuota(quota_step, quota_reset)  # OAuth accounts' subscriptions, per access token
        self.received: list[Received] = []
        self.stream_gap = 0.0
        self._failures: list[tuple[int, float | None]] = []

    # -- set-up ---------------------------------------------------------------------------------
    def _make_servers(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        return [self._server]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    anthropic_url = url

    def fail(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        with self._lock:
            self._failures.extend([(status, retry_after)] * times)

    def next_failure(self, text: str) -> tuple[int, float | None] | None:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
        parts = text.split()
        if len(parts) >= 2 and parts[0] == "stand-in-fail" and parts[1].isdigit():
            return int(parts[1]), 1.0
        return None

    def record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.received]


def _handler(provider: ProviderStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002  (quiet)
            pass

        def do_GET(self):
            path = provider.arrive(self)
            if path is None:
                return
            if path.rstrip("/").endswith("/models"):
                return self._json(200, {"object": "list", "data": []})
            bearer = self.headers.get("authorization", "").removeprefix("Bearer ").strip()
            kind = provider.oauth.kind(path, bearer)
            if kind and path.endswith("/usage"):
                return self._json(200, provider.oauth.usage_answer(bearer, kind, time.time()))
            if path == "/api/oauth/profile" and bearer.startswith("sk-ant-oat"):  # claude's executor asks once
                account = str(uuid.uuid5(uuid.NAMESPACE_URL, bearer))
                return self._json(200, {"account": {"uuid": account, "email": ""},
                                        "organization": {"uuid": account, "name": "stand-in"}})
            self._json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})

        def do_POST(self):
            path = provider.arrive(self)
            if path is None:
                return
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            provider.record(Received(path, body if isinstance(body, dict) else {},
                                     {k.lower(): v for k, v in self.headers.items()}))
            anthropic = "/messages" in path
            bearer = self.headers.get("authorization", "").removeprefix("Bearer ").strip()
            kind = provider.oauth.kind(path, bearer)
            if kind and not path.endswith("/count_tokens"):  # an OAuth account's subscription: metered
                now = time.time()
                reset = provider.oauth.take(bearer, kind, now)
                if reset is not None:
                    status, refusal, headers = provider.oauth.refusal(kind, reset, now)
                    return self._json(status, refusal, headers)
            if not kind and not self._authorised():
                return self._error(401, "invalid x-api-key" if anthropic else "Incorrect API key provided", anthropic)
            text = last_user_text(body)
            failure = provider.next_failure(text)
            if failure:
                return self._error(failure[0], f"stand-in failure {failure[0]}", anthropic, failure[1])
            if path.endswith("/messages/count_tokens"):
                return self._json(200, {"input_tokens": words(text)})
            if path.endswith("/messages"):
                return self._messages(body, text)
            if path.endswith("/responses"):  # codex OAuth included: /backend-api/codex/responses
                return self._responses(body, text)
            if path.endswith("/chat/completions"):
                return self._chat(body, text)
            self._error(404, f"no route {path}", anthropic)

        # -- plumbing ---------------------------------------------------------------------------
        def _authorised(self) -> bool:
            bearer = self.headers.get("authorization", "")
            return provider.key in (self.headers.get("x-api-key"), bearer.removeprefix("Bearer ").strip())

        def _json(self, status: int, obj, headers: dict | None = None) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, anthropic: bool, retry_after: float | None = None) -> None:
            openai_type, anthropic_type = ERROR_TYPES.get(status, ("server_error", "api_error"))
            headers = {"retry-after": f"{retry_after:g}"} if status == 429 and retry_after is not None else {}
            if anthropic:
                body = {"type": "error", "error": {"type": anthropic_type, "message": message}}
            else:
                body = {"error": {"message": message, "type": openai_type, "param": None, "code": None}}
            self._json(status, body, headers)

        def _start_stream(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True

        def _event(self, name: str | None, obj) -> None:
            if provider.stream_gap:
                time.sleep(provider.stream_gap)
            head = f"event: {name}\n" if name else ""
            self.wfile.write(f"{head}data: {json.dumps(obj) if not isinstance(obj, str) else obj}\n\n".encode())
            self.wfile.flush()

        # -- OpenAI Responses -------------------------------------------------------------------
        def _responses(self, body: dict, text: str) -> None:
            model = body.get("model", "")
            reply = f"stand-in reply to {model}: {text}"
            rid, mid = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
            usage = {"input_tokens": words(text), "input_tokens_details": {"cached_tokens": 0},
                     "output_tokens": words(reply), "output_tokens_details": {"reasoning_tokens": 0},
                     "total_tokens": words(text) + words(reply)}
            message = {"id": mid, "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": reply, "annotations": []}]}
            done = {"id": rid, "object": "response", "created_at": int(time.time()), "status": "completed",
                    "model": model, "output": [message], "usage": usage}
            if not body.get("stream"):
                return self._json(200, done)
            self._start_stream()
            started = {**done, "status": "in_progress", "output": [], "usage": None}
            seq = iter(range(1000))
            self._event("response.created", {"type": "response.created", "sequence_number": next(seq), "response": started})
            self._event("response.in_progress", {"type": "response.in_progress", "sequence_number": next(seq),
                                                 "response": started})
            item = {**message, "status": "in_progress", "content": []}
            self._event("response.output_item.added", {"type": "response.output_item.added", "sequence_number": next(seq),
                                                       "output_index": 0, "item": item})
            part = {"type": "output_text", "text": "", "annotations": []}
            self._event("response.content_part.added", {"type": "response.content_part.added", "sequence_number": next(seq),
                                                        "item_id": mid, "output_index": 0, "content_index": 0, "part": part})
            for piece in _pieces(reply):
                self._event("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": next(seq),
                                                           "item_id": mid, "output_index": 0, "content_index": 0,
                                                           "delta": piece})
            self._event("response.output_text.done", {"type": "response.output_text.done", "sequence_number": next(seq),
                                                      "item_id": mid, "output_index": 0, "content_index": 0, "text": reply})
            self._event("response.content_part.done", {"type": "response.content_part.done", "sequence_number": next(seq),
                                                       "item_id": mid, "output_index": 0, "content_index": 0,
                                                       "part": {**part, "text": reply}})
            self._event("response.output_item.done", {"type": "response.output_item.done", "sequence_number": next(seq),
                                                      "output_index": 0, "item": message})
            self._event("response.completed", {"type": "response.completed", "sequence_number": next(seq), "response": done})

        # -- OpenAI chat completions ------------------------------------------------------------
        def _chat(self, body: dict, text: str) -> None:
            model = body.get("model", "")
            reply = f"stand-in reply to {model}: {text}"
            cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
            usage = {"prompt_tokens": words(text), "completion_tokens": words(reply),
                     "total_tokens": words(text) + words(reply)}
            if not body.get("stream"):
                return self._json(200, {"id": cid, "object": "chat.completion", "created": created, "model": model,
                                        "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": reply}}],
                                        "usage": usage})
            self._start_stream()
            base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
            self._event(None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                    "finish_reason": None}]})
            for piece in _pieces(reply):
                self._event(None, {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            self._event(None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            self._event(None, {**base, "choices": [], "usage": usage})
            self._event(None, "[DONE]")

        # -- Anthropic Messages -----------------------------------------------------------------
        def _messages(self, body: dict, text: str) -> None:
            model = body.get("model", "")
            reply = f"stand-in reply to {model}: {text}"
            mid = f"msg_{uuid.uuid4().hex[:24]}"
            usage = {"input_tokens": words(text), "output_tokens": words(reply),
                     "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
            message = {"id": mid, "type": "message", "role": "assistant", "model": model,
                       "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn",
                       "stop_sequence": None, "usage": usage}
            if not body.get("stream"):
                return self._json(200, message)
            self._start_stream()
            self._event("message_start", {"type": "message_start",
                                          "message": {**message, "content": [], "stop_reason": None,
                                                      "usage": {**usage, "output_tokens": 1}}})
            self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                                "content_block": {"type": "text", "text": ""}})
            self._event("ping", {"type": "ping"})
            for piece in _pieces(reply):
                self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                    "delta": {"type": "text_delta", "text": piece}})
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
            self._event("message_delta", {"type": "message_delta",
                                          "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                          "usage": {"output_tokens": words(reply)}})
            self._event("message_stop", {"type": "message_stop"})

    return Handler


def _pieces(text: str) -> list[str]:
    """The reply in a few deltas, as providers stream it (spaces kept with the word before)."""
    out = text.split(" ")
    return [w + (" " if i < len(out) - 1 else "") for i, w in enumerate(out)]


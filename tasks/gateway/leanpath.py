"""The lean path: requests LiteLLM would only forward to CLIProxyAPI, forwarded without LiteLLM's
per-request work (~10 ms of CPU here: its middleware stack, auth dependencies, request and response
models, success logging), around LiteLLM's ASGI app.

An optimisation, never a feature: which requests may take it is decided once per config, from the
rendered LiteLLM config, by tasks.gateway.leanpolicy (an allow-list: any callback, guardrail, cache,
alias map, header forwarding, 4xx fallback rule or setting it does not know sends the affected
requests, or all of them, to LiteLLM's path; `litellm.lean_path: false` turns it off). A request it
takes is one LiteLLM would forward unchanged: CLIProxyAPI speaks chat completions, Responses and
Messages natively, so the raw body (less what LiteLLM leaves out: leanpolicy.DROPPED) goes out on a
pooled connection and the answer streams back unbuffered.
LiteLLM's Router still makes every decision: which deployment (explicit or pattern routes), its
cooldowns, and its rpm check and count (the pre-call check, which shares counts through Redis with
replicas). What it keeps as LiteLLM's path does:
- timeouts: the Router's own (deployment `timeout`, router `timeout`, `request_timeout`), applied as
  LiteLLM's HTTP client applies them: to connecting and to each read, never to a whole stream;
- attempts: the first attempt is this one; an answer LiteLLM retries (408, 409, 429, 5xx, no
  connection, a timeout) before the first byte waits as LiteLLM would (`retry-after` honoured) and
  goes to LiteLLM's path with one retry fewer (`num_retries`), so the upstream sees LiteLLM's count;
  with no retry left the answer is relayed as it came;
- headers: `x-litellm-call-id`, `-model-id`, `-model-name`, `-model-api-base`, `-version`,
  `-model-group`, `-attempted-retries`, `-attempted-fallbacks`, the security headers and a stream's
  `x-accel-buffering` as LiteLLM sends them, CORS from LiteLLM's own middleware settings, no
  compression requested upstream;
- Responses ids: a `previous_response_id` LiteLLM issued (a turn it served: encoded, or encrypted
  by its proxy) takes LiteLLM's path, which decodes it; the lean path's ids are the upstream's,
  which LiteLLM forwards as they are.
Anything else goes to LiteLLM's normal path with the body replayed: a route or body key the lean
path does not forward as it is, no deployment or one over its rpm limit (a missing or wrong gateway
key never gets here: tasks.gateway.gate answers it, and marks a member's key it admitted (MEMBER);
without the gate, LiteLLM's path and its hook do).
A client that leaves cancels the exchange, which closes the upstream connection. An upstream 4xx it does not retry reaches the
client as the upstream sent it. A stream the upstream cuts off after its first byte is left
incomplete (no end of body: the recorder writes it as an error).

The upstream receives what LiteLLM's path would send (tests/integration/test_lean_differential.py
compares them): the same body (a key LiteLLM would change takes its path: leanpolicy.BODY_KEYS), no
query string, Anthropic's headers on Messages only, with the `anthropic-beta` LiteLLM's own rule
makes of them. Known differences, none a client acts on: LiteLLM asks the upstream for a
chat stream's usage chunk (for its cost tracking) and strips it when the client did not ask, where
the lean path does not ask; a usage chunk the client asked for keeps the upstream's `choices: []`
(LiteLLM's has one empty choice); a failed lean attempt does not count towards the deployment's
cooldown (LiteLLM's retries after it do; FlowGate's model groups have one deployment each, which
LiteLLM does not cool down for the errors it retries); no `x-litellm-response-cost` (it needs the
answer's usage before its head).

Enabled when FLOWGATE_LEAN_UPSTREAM names CLIProxyAPI's root URL (set by FlowGate's launch unless
`litellm.lean_path: false`).
"""

from __future__ import annotations

import asyncio
import os
import uuid

from . import leanpolicy
from .gate import BODY, MEMBER, Replay, accepted, scope_header, sent_keys
from .handoff import LEAN_UPSTREAM_ENV
from .leanrules import (_header, _json, anthropic_betas, config_policy, forwardable, litellm_backoff,  # noqa: F401
                        litellm_encoded, litellm_state)

# path -> (the provider whose deployments take the request as it is, its path under CLIProxyAPI's
# root, the body keys it forwards: leanpolicy.BODY_KEYS)
ROUTES = {
    "/v1/chat/completions": ("openai", "/v1/chat/completions", "chat"),
    "/chat/completions": ("openai", "/v1/chat/completions", "chat"),
    "/v1/responses": ("openai", "/v1/responses", "responses"),
    "/responses": ("openai", "/v1/responses", "responses"),
    "/v1/messages": ("anthropic", "/v1/messages", "messages"),
}
# passed on to the upstream, per protocol (LiteLLM's path passes Anthropic's own headers on Messages only)
CLIENT_HEADERS = {"anthropic": (b"anthropic-version", b"anthropic-beta", b"accept"), "openai": (b"accept",)}
PATH_HEADER = (b"x-flowgate-path", b"lean")  # on answers the lean path served: which path answered
# on every answer, as LiteLLM's path sends them (its retry and fallback counts; its security middleware's)
STATIC_HEADERS = ((b"x-litellm-attempted-retries", b"0"), (b"x-litellm-attempted-fallbacks", b"0"),
                  (b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"),
                  (b"x-content-type-options", b"nosniff"), PATH_HEADER)
HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "server", "date"})
BODY_LIMIT = 32 * 2**20  # bytes: a larger body goes to LiteLLM's path (and its own limit)
CONNECT_TIMEOUT = 10  # seconds at most to connect (a refused connection goes to LiteLLM's path at once)
TIMED_OUT = b'{"error":{"message":"the upstream did not answer in time","type":"timeout","code":"408"}}'
DISCONNECTED = (b'{"error":{"message":"the upstream closed the connection before answering",'
                b'"type":"api_connection_error","code":"500"}}')
RETRIED = frozenset({408, 409, 429})  # and every 5xx: litellm.should_retry


class Retry(Exception):
    """An attempt LiteLLM would retry, before any byte reached the client."""

    def __init__(self, headers=None, answer: tuple | None = None):
        super().__init__("retry")
        self.headers, self.answer = headers, answer  # answer: (status, headers, body) to relay when none is left


class LeanPath:
    def __init__(self, app, root: str, state=litellm_state, policy: leanpolicy.Policy | None = None, cors=None):
        self.app, self.root, self.state = app, root.rstrip("/"), state
        self.policy = policy  # default: decided from the booted config on the first request
        self.cors = cors  # default: LiteLLM's CORSMiddleware settings, read on the first request
        self.loads, self.dumps = _json()
        self.backoff = litellm_backoff  # seconds before a retry (tests pass their own)
        self.session = None
        self.version = None

    async def __call__(self, scope, receive, send):
        route = ROUTES.get(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None or self._policy().off:  # LiteLLM's path reads the body itself
            return await self.app(scope, receive, send)
        body, more, size = [], True, 0
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            body.append(message.get("body", b""))
            size += len(body[-1])
            more = message.get("more_body", False)
            if size > BODY_LIMIT:
                return await self.app(scope, Replay(b"".join(body), receive), send)
        raw = b"".join(body)
        handover = await self._unless_gone(self._forward(scope, raw, route, send), receive)
        if handover is not None:
            await self.app(scope, Replay(handover, receive), send)

    @staticmethod
    async def _unless_gone(forward, receive):
        """`forward`'s result; cancelled as soon as the client leaves (the server's `http.disconnect`),
        which closes the upstream connection at once instead of reading a stream nobody reads
        (issue 31, item 1: 500 departed clients held 500 upstream connections). None then."""
        async def gone():
            while (await receive())["type"] != "http.disconnect":
                pass

        task, watch = asyncio.ensure_future(forward), asyncio.ensure_future(gone())
        try:
            await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            if not task.done():  # the client left, or this request itself is being cancelled
                task.cancel()
                await asyncio.wait((task,))
        return None if task.cancelled() else task.result()

    def _policy(self) -> leanpolicy.Policy:
        if self.policy is None:
            self.policy = config_policy(self.root)
            print(f"flowgate: {leanpolicy.summary(self.policy)}", flush=True)
        return self.policy

    async def _forward(self, scope, raw: bytes, route, send) -> bytes | None:
        """Serve the request on the lean path (None); or the body LiteLLM's path is to serve (nothing sent)."""
        policy = self.policy
        master, router = self.state()
        # the one key rule (gate): the master key, or a member's key the gate admitted (its models and rpm checked)
        if not (router and (MEMBER in scope or accepted(sent_keys(scope_header(scope)), master))):
            return raw
        parsed = scope.get(BODY)  # the gate's parse of this body
        try:
            data = parsed[1] if parsed is not None and parsed[0] == raw else self.loads(raw)
        except ValueError:
            return raw
        model = data.get("model") if isinstance(data, dict) else None
        protocol, path, kind = route
        if not isinstance(model, str) or model in policy.models:
            return raw
        dropped = leanpolicy.DROPPED[kind].intersection(data)
        if not leanpolicy.BODY_KEYS[kind].union(dropped).issuperset(data):
            return raw
        if litellm_encoded(data.get("previous_response_id")):  # a turn LiteLLM served: it decodes the id
            return raw
        try:
            deployment = await router.async_get_available_deployment(
                model=model, request_kwargs={}, messages=data.get("messages"),
                input=data.get("input") if kind == "responses" else None)
        except Exception:  # no deployment, all cooling down: LiteLLM's path says so (or falls back)
            return raw
        target = forwardable(deployment, protocol, self.root, model) if isinstance(deployment, dict) else None
        if target is None:
            return raw
        try:  # the rpm check and count LiteLLM does before a call (shared through Redis with replicas)
            await router.async_routing_strategy_pre_call_checks(deployment=deployment, parent_otel_span=None)
        except Exception:
            return raw
        headers = {"content-type": "application/json"}
        for name in CLIENT_HEADERS[protocol]:
            value = _header(scope, name)
            if value is not None:
                headers[name.decode()] = value.decode("latin-1")
        if protocol == "anthropic":
            headers = anthropic_betas(headers, data)
            if headers is None:
                return raw
            headers["x-api-key"] = target[1]
            headers.setdefault("anthropic-version", "2023-06-01")
        else:
            headers["authorization"] = f"Bearer {target[1]}"
        url = self.root + path  # no query string: LiteLLM's path sends none (Claude Code's `?beta=true`)
        if _header(scope, b"origin") is not None:
            send = self._with_cors(scope, send)
        if dropped:  # what LiteLLM's path leaves out (Codex's client_metadata)
            raw = self._replace({k: v for k, v in data.items() if k not in dropped})
        params = deployment["litellm_params"]
        stream = bool(data.get("stream"))
        try:
            await self._relay(url, raw, headers, send, self._answer_headers(protocol, model, params, deployment),
                              self._timeouts(router, params, stream))
            return None
        except Retry as failed:
            retries = self._retries(router, params)
            if retries < 1:  # no retry left: the answer as it came (LiteLLM's path would not try again)
                if failed.answer is None:
                    return raw  # no connection: nothing reached the upstream; LiteLLM's path says so
                await self._send_answer(send, *failed.answer)
                return None
            await asyncio.sleep(self.backoff(router, retries, failed.headers))
            return self._replace(data, num_retries=retries - 1)

    # ------------------------------------------------------------------ LiteLLM's numbers

    @staticmethod
    def _timeouts(router, params: dict, stream: bool) -> tuple[float, float]:
        """(connect, read) in seconds: the Router's timeout for this call, applied per phase."""
        try:
            timeout = router._get_timeout(kwargs={"stream": stream}, data=params)
        except Exception:  # noqa: BLE001  (a Router without it: the deployment's, else LiteLLM's default)
            import litellm

            timeout = params.get("timeout") or litellm.request_timeout or 600
        read = getattr(timeout, "read", timeout)
        connect = getattr(timeout, "connect", timeout)
        read = float(read) if read else None
        return min(float(connect or CONNECT_TIMEOUT), CONNECT_TIMEOUT), read

    @staticmethod
    def _retries(router, params: dict) -> int:
        value = params.get("num_retries")
        if not isinstance(value, int):
            value = getattr(router, "num_retries", 0)
        return value if isinstance(value, int) and value > 0 else 0

    def _replace(self, data: dict, **changes) -> bytes:
        return self.dumps({**data, **changes})

    def _answer_headers(self, protocol: str, model: str, params: dict, deployment: dict) -> list:
        """The headers LiteLLM's path puts on an answer, those that need no answer to know (not its
        cost and durations, nor the upstream's headers again as `llm_provider-*`)."""
        if self.version is None:
            try:
                from litellm._version import version
            except ImportError:
                version = ""
            self.version = str(version).encode()
        out = [(b"x-litellm-call-id", str(uuid.uuid4()).encode()),
               (b"x-litellm-model-id", str((deployment.get("model_info") or {}).get("id") or "").encode("latin-1")),
               (b"x-litellm-model-name", f"{protocol}/{model}".encode("latin-1")),
               (b"x-litellm-model-api-base", str(params.get("api_base") or "").encode("latin-1")),
               (b"x-litellm-version", self.version), (b"x-litellm-model-group", model.encode("latin-1")),
               *STATIC_HEADERS]
        return [h for h in out if h[1]]

    def _with_cors(self, scope, send):
        """`send` adding the CORS headers LiteLLM's own CORSMiddleware would (its settings, read once)."""
        if self.cors is None:
            from starlette.middleware.cors import CORSMiddleware

            options = next((m.kwargs for m in getattr(self.app, "user_middleware", ())
                            if getattr(m, "cls", None) is CORSMiddleware), None)
            self.cors = CORSMiddleware(app=None, **options) if options is not None else False
        if not self.cors:
            return send
        import functools

        from starlette.datastructures import Headers

        return functools.partial(self.cors.send, send=send, request_headers=Headers(scope=scope))

    # ------------------------------------------------------------------ the exchange

    def _client(self):
        if self.session is None:
            import aiohttp

            # No Accept-Encoding of its own: the upstream answers uncompressed, as LiteLLM's path does
            # for a client that asked for no compression (and the recorder can read every answer).
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, keepalive_timeout=30),
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self.session

    @staticmethod
    async def _send_answer(send, status: int, headers: list, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _relay(self, url: str, raw: bytes, headers: dict, send, extra: list, timeouts) -> None:
        """The exchange; raises Retry when LiteLLM would try again (nothing sent to the client)."""
        import aiohttp

        connect, read = timeouts
        try:
            resp = await self._client().post(url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=connect, sock_read=read))
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError):
            raise Retry() from None  # no connection: nothing reached the upstream
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError):  # sent, then silence past the timeout
            raise Retry(answer=(408, [(b"content-type", b"application/json"), *extra], TIMED_OUT)) from None
        except (aiohttp.ClientConnectionError, OSError):  # sent, then the connection closed or reset
            raise Retry(answer=(500, [(b"content-type", b"application/json"), *extra], DISCONNECTED)) from None
        try:
            out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()
                   if k.lower() not in HOP_HEADERS]
            out += extra
            if resp.content_type == "text/event-stream":
                out.append((b"x-accel-buffering", b"no"))  # as LiteLLM's path: no proxy buffers a stream
            if resp.status >= 500 or resp.status in RETRIED:
                try:
                    body = await resp.read()
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    body = b""
                raise Retry(resp.headers, (resp.status, [h for h in out if h[0] != b"content-length"]
                                           + [(b"content-length", str(len(body)).encode())], body))
            # The head goes out with the first body bytes: a stream's first event then reaches the
            # client sooner (measured: -0.2 ms), and an upstream that breaks off before sending any
            # can still go to LiteLLM's path.
            start = {"type": "http.response.start", "status": resp.status, "headers": out}
            try:
                async for chunk in resp.content.iter_any():
                    if start:
                        await send(start)
                        start = None
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                if start is not None:  # broken off before the first byte: LiteLLM's path
                    raise Retry() from None
                return  # after it: left incomplete (the server closes the connection; recorded as an error)
            if start:
                await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            resp.release()


def wrap(app):
    """`app` with the lean path in front when FlowGate says where CLIProxyAPI is; else `app` itself."""
    root = os.environ.get(LEAN_UPSTREAM_ENV)
    return LeanPath(app, root) if root else app

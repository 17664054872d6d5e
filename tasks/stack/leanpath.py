"""The lean path: requests LiteLLM would only forward to CLIProxyAPI, forwarded without LiteLLM's
per-request work (~10 ms of CPU here: its middleware stack, auth dependencies, request and response
models, success logging), around LiteLLM's ASGI app.

CLIProxyAPI speaks chat completions, Responses and Messages natively, so a request whose deployment
is CLIProxyAPI in the request's own protocol needs no translation: the raw body (model id replaced
by the deployment's) goes out on a pooled connection and the answer streams back unbuffered.
LiteLLM's Router still makes every decision: which deployment (explicit or pattern routes), its
cooldowns, and its rpm check and count (the pre-call check, which shares counts through Redis with
replicas). Anything else goes to LiteLLM's normal path with the body replayed, so the contract is
LiteLLM's own:
- a missing or wrong gateway key (LiteLLM answers 401 through FlowGate's hook);
- a route, parameter or deployment the lean path does not handle (translation, `via: direct`
  models, LiteLLM's own request keys, a tpm limit it would have to count);
- no deployment available, or over its rpm limit (LiteLLM's retries, fallbacks and 429);
- the upstream failing before its first byte (5xx, 429, no connection): LiteLLM retries, falls back
  per the active profile and cools the deployment down.
An upstream 4xx other than 429 reaches the client as the upstream sent it. A request the upstream
failed counts twice against an rpm limit (here, then on LiteLLM's path): a limit errs on the safe side.

Enabled when FLOWGATE_LEAN_UPSTREAM names CLIProxyAPI's root URL (set by FlowGate's launch).
"""

from __future__ import annotations

import asyncio
import hmac
import os

from .launcher_files import LEAN_UPSTREAM_ENV

# path -> (the provider whose deployments take the request as it is, its path under CLIProxyAPI's root)
ROUTES = {
    "/v1/chat/completions": ("openai", "/v1/chat/completions"),
    "/chat/completions": ("openai", "/v1/chat/completions"),
    "/v1/responses": ("openai", "/v1/responses"),
    "/responses": ("openai", "/v1/responses"),
    "/v1/messages": ("anthropic", "/v1/messages"),
}
# Request keys LiteLLM acts on itself rather than forwarding: such a request takes its path.
LITELLM_KEYS = frozenset({"fallbacks", "context_window_fallbacks", "num_retries", "max_retries", "timeout",
                          "request_timeout", "caching", "cache", "tags", "guardrails", "api_key", "api_base",
                          "base_url", "api_version", "user_config", "model_list", "metadata_params"})
# litellm_params a deployment may carry with the lean path still forwarding it as LiteLLM would
# (the Router fills in the flags, all false by default).
DEPLOYMENT_KEYS = frozenset({"model", "api_base", "api_key", "rpm", "timeout", "num_retries",
                             "max_retries", "weight", "order"})
CLIENT_HEADERS = (b"anthropic-version", b"anthropic-beta", b"accept")  # passed on to the upstream
PATH_HEADER = (b"x-flowgate-path", b"lean")  # on answers the lean path served: which path answered
HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "server", "date"})
BODY_LIMIT = 32 * 2**20  # bytes: a larger body goes to LiteLLM's path (and its own limit)
CONNECT_TIMEOUT = 10  # seconds


def _loads():
    try:
        import orjson

        return orjson.loads, orjson.dumps
    except ImportError:  # orjson comes with LiteLLM; plain json when it does not
        import json

        return json.loads, lambda v: json.dumps(v, separators=(",", ":")).encode()


class Replay:
    """`receive` for the app after the body was read: the body once, then what the client sends."""

    def __init__(self, body: bytes, receive):
        self.body, self.receive = body, receive

    async def __call__(self):
        if self.body is None:
            return await self.receive()
        body, self.body = self.body, None
        return {"type": "http.request", "body": body, "more_body": False}


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def sent_key(scope) -> str:
    """The gateway key as LiteLLM reads it: `Authorization: Bearer <key>`, else `x-api-key`."""
    auth = (_header(scope, b"authorization") or b"").decode("latin-1").strip()
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return (_header(scope, b"x-api-key") or b"").decode("latin-1").strip()


def forwardable(deployment: dict, protocol: str, root: str) -> tuple[str, str] | None:
    """(upstream model id, key) when `deployment` is CLIProxyAPI in the request's protocol, else None."""
    params = deployment.get("litellm_params") or {}
    if any(v for k, v in params.items() if k not in DEPLOYMENT_KEYS) or (deployment.get("model_info") or {}).get("tpm"):
        return None
    provider, _, model = str(params.get("model") or "").partition("/")
    base = str(params.get("api_base") or "").rstrip("/")
    key = params.get("api_key")
    if provider != protocol or not model or not isinstance(key, str) or key.startswith("os.environ/"):
        return None
    if base != (root + "/v1" if protocol == "openai" else root):
        return None
    return model, key


def litellm_state():
    """(master key, Router) of LiteLLM's proxy in this process, once its startup has set them."""
    from litellm.proxy import proxy_server

    return proxy_server.master_key, proxy_server.llm_router


class LeanPath:
    def __init__(self, app, root: str, state=litellm_state, request_timeout: float | None = None):
        self.app, self.root, self.state = app, root.rstrip("/"), state
        self.request_timeout = request_timeout  # default: LiteLLM's request_timeout
        self.loads, self.dumps = _loads()
        self.session = None

    async def __call__(self, scope, receive, send):
        route = ROUTES.get(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
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
        if not await self._forward(scope, raw, route, send):
            await self.app(scope, Replay(raw, receive), send)

    async def _forward(self, scope, raw: bytes, route, send) -> bool:
        """Serve the request on the lean path; False (nothing sent) hands it to LiteLLM."""
        master, router = self.state()
        key = sent_key(scope)
        if not (master and router and key and hmac.compare_digest(key.encode(), master.encode())):
            return False
        try:
            data = self.loads(raw)
        except ValueError:
            return False
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, str) or any(k in LITELLM_KEYS or k.startswith(("litellm", "mock_")) for k in data):
            return False
        protocol, path = route
        try:
            deployment = await router.async_get_available_deployment(
                model=model, request_kwargs={}, messages=data.get("messages"),
                input=data.get("input") if path == "/v1/responses" else None)
        except Exception:  # no deployment, all cooling down: LiteLLM's path says so (or falls back)
            return False
        target = forwardable(deployment, protocol, self.root) if isinstance(deployment, dict) else None
        if target is None:
            return False
        upstream_model, upstream_key = target
        if upstream_model != model:
            raw = self.dumps({**data, "model": upstream_model})
        try:  # the rpm check and count LiteLLM does before a call (shared through Redis with replicas)
            await router.async_routing_strategy_pre_call_checks(deployment=deployment, parent_otel_span=None)
        except Exception:
            return False
        headers = {"content-type": "application/json"}
        for name in CLIENT_HEADERS:
            value = _header(scope, name)
            if value is not None:
                headers[name.decode()] = value.decode("latin-1")
        if protocol == "anthropic":
            headers["x-api-key"] = upstream_key
            headers.setdefault("anthropic-version", "2023-06-01")
        else:
            headers["authorization"] = f"Bearer {upstream_key}"
        query = scope.get("query_string") or b""
        url = self.root + path + (f"?{query.decode('latin-1')}" if query else "")
        return await self._relay(url, raw, headers, send, deployment)

    def _request_timeout(self) -> float:
        if self.request_timeout is None:
            import litellm

            self.request_timeout = float(litellm.request_timeout or 600)
        return self.request_timeout

    def _client(self):
        if self.session is None:
            import aiohttp

            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, keepalive_timeout=30),
                auto_decompress=False, skip_auto_headers=("User-Agent",))
        return self.session

    async def _relay(self, url: str, raw: bytes, headers: dict, send, deployment: dict) -> bool:
        import aiohttp

        deadline = float(deployment["litellm_params"].get("timeout") or self._request_timeout())
        try:
            resp = await self._client().post(url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(
                total=deadline, connect=CONNECT_TIMEOUT))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False  # no connection, or no answer in time: LiteLLM's path retries and falls back
        try:
            if resp.status >= 500 or resp.status == 429:
                return False
            out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()
                   if k.lower() not in HOP_HEADERS]
            out.append(PATH_HEADER)
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
                # broken off before the first byte: LiteLLM's path; after it: left incomplete (the
                # server closes the connection)
                return start is None
            if start:
                await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        finally:
            resp.release()


def wrap(app):
    """`app` with the lean path in front when FlowGate says where CLIProxyAPI is; else `app` itself."""
    root = os.environ.get(LEAN_UPSTREAM_ENV)
    return LeanPath(app, root) if root else app

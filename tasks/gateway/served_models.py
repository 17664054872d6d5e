"""Inside LiteLLM's process: the gateway's model list and its answer for an unserved id.

With pattern routes LiteLLM's own `GET /v1/models` lists its price map's ids, not what the accounts
serve. This ASGI layer lets LiteLLM answer (so its key check holds), then replaces a 200 body with
the config's named models plus what CLIProxyAPI serves right now (asked live, kept CACHE_S); Codex's
request for its catalog gets Codex's own shape (tasks.gateway.codex_list). Every error of a model
route leaves in that route's protocol shape (Anthropic's on /v1/messages, OpenAI's elsewhere; the key
check's 401 too, from the lean path and LiteLLM's alike), and a 400 "unknown provider for model X"
(CLIProxyAPI's refusal) becomes one clear error naming X, the nearest served ids and `doit models`.
Successes, streams included, are never buffered or touched.
"""

from __future__ import annotations

import difflib
import json
import re
import time

from .gate import MODEL_ROUTES
from . import codex_list

MARK = "flowgate-catalog"  # model_info.flowgate of the catalog's pattern routes (tasks.catalog.routes): how they are told apart

CACHE_S = 5.0  # how long a live answer stands in for the next /v1/models or error
DEADLINE_S = 2.0  # the whole exchange with CLIProxyAPI
LIST_ROUTES = ("/v1/models", "/models")
_UNKNOWN = re.compile(rb"unknown provider for model ([^\"\\\s]*)")
_MAX_ERROR = 256 * 1024  # an error body larger than this is passed on as it is

_cache: dict = {"at": 0.0, "models": None}


def _router():
    from litellm.proxy import proxy_server

    return proxy_server.llm_router


def _upstream() -> tuple[str, str] | None:
    """CLIProxyAPI's /v1 URL and client key, from FlowGate's OpenAI pattern route."""
    router = _router()
    for d in (router.model_list if router else []):
        params = d.get("litellm_params") or {}
        if (d.get("model_info") or {}).get("flowgate") == MARK and str(params.get("model", "")).startswith("openai/"):
            return str(params.get("api_base")), str(params.get("api_key"))
    return None


def named_models() -> list[str]:
    router = _router()
    names = [d.get("model_name") for d in (router.model_list if router else [])
             if (d.get("model_info") or {}).get("flowgate") != MARK]
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and "*" not in n))


async def ask(path: str):
    """CLIProxyAPI's JSON answer to `GET /v1<path>` with FlowGate's client key, or None (logged)."""
    upstream = _upstream()
    if upstream is None:
        return None
    import asyncio

    import httpx

    try:
        async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
            answer = await asyncio.wait_for(
                client.get(upstream[0] + path, headers={"Authorization": f"Bearer {upstream[1]}"}), DEADLINE_S)
        return answer.json() if answer.status_code == 200 and len(answer.content) < 4 << 20 else None
    except Exception as exc:  # the caller degrades (named models only, no Codex entries); the log says why
        print(f"flowgate: cannot ask CLIProxyAPI for {path}: {type(exc).__name__}: {exc}", flush=True)
        return None


MAX_CREATED = 253402300799  # 9999-12-31: later dates (1e20 was seen) cannot be formatted, and made /v1/models a 500


def clean_created(value) -> int:
    """A catalog entry's `created`, as the binary sent it when it is a plausible epoch second, else 0:
    one bad entry in the upstream's list must not break the list for everyone."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0
    return int(value) if 0 <= value <= MAX_CREATED else 0


async def served() -> list[dict] | None:
    """What CLIProxyAPI serves now ([{id, owned_by, created}]), or None when it cannot tell."""
    if _cache["models"] is not None and time.monotonic() - _cache["at"] < CACHE_S:
        return _cache["models"]
    answer = await ask("/models")
    data = answer.get("data") if isinstance(answer, dict) else None
    models = [{"id": str(m["id"]), "owned_by": str(m.get("owned_by") or ""), "created": clean_created(m.get("created"))}
              for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)] if isinstance(data, list) else None
    _cache.update(at=time.monotonic(), models=models)
    return models


def model_list_body(named: list[str], live: list[dict] | None) -> bytes:
    """OpenAI's list shape, with the fields Anthropic's clients read (type, display_name, created_at)."""
    now = int(time.time())
    entries = [{"id": n, "owned_by": "flowgate", "created": now} for n in named]
    entries += [m for m in live or [] if m["id"] not in set(named)]
    data = [{"id": m["id"], "object": "model", "created": m["created"], "owned_by": m["owned_by"],
             "type": "model", "display_name": m["id"],
             "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m["created"]))} for m in entries]
    return json.dumps({"object": "list", "data": data, "has_more": False,
                       "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}).encode()


def unserved_message(model: str, routable: list[str]) -> str:
    if not routable:
        return (f"model {model!r} is not served: no account is logged in "
                "(run `uv run doit login:codex` or `uv run doit login:claude`, then `uv run doit models`)")
    # a dated snapshot of the id first (claude-sonnet-4-5 -> claude-sonnet-4-5-20250929), then look-alikes
    snapshots = [r for r in routable if r.startswith(model + "-")]
    nearest = list(dict.fromkeys(snapshots + difflib.get_close_matches(model, routable, n=3, cutoff=0.5)))[:3]
    hint = f"nearest: {', '.join(nearest)}; " if nearest else ""
    shown = ", ".join(routable[:20]) + (", ..." if len(routable) > 20 else "")
    return f"model {model!r} is not served by any logged-in account ({hint}served now: {shown}; see `uv run doit models`)"


def error_body(path: str, message: str) -> bytes:
    if path.startswith("/v1/messages"):
        return json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": message}}).encode()
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": "model",
                                 "code": "model_not_found"}}).encode()


# A wrong key stays wrong: `x-should-retry: false` stops the SDKs' retries (Claude Code retried a 401
# with backoff for over a minute before saying anything).
NO_RETRY = (401, 403)
ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}
OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error"}


def _message_of(data, body: bytes) -> str:
    """The error's own words, whatever shape it came in (OpenAI's, Anthropic's, FastAPI's `detail`)."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str) and error:
        return error
    if isinstance(data, dict) and data.get("detail"):
        detail = data["detail"]
        return str(detail.get("error") or detail) if isinstance(detail, dict) else str(detail)
    return body.decode("utf-8", "replace").strip()[:2000] or "error"


def shaped(path: str, status: int, body: bytes) -> bytes:
    """An error body in the protocol of `path`: Anthropic's on /v1/messages, OpenAI's elsewhere.
    A body already in that shape is returned as it is."""
    try:
        data = json.loads(body) if len(body) <= _MAX_ERROR else None
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if path.startswith("/v1/messages"):
        if isinstance(data, dict) and data.get("type") == "error" and isinstance(error, dict) and "type" in error:
            return body
        kind = ANTHROPIC_TYPES.get(status, "api_error")
        return json.dumps({"type": "error", "error": {"type": kind, "message": _message_of(data, body)}}).encode()
    if isinstance(error, dict) and "message" in error and data.get("type") != "error":
        return body
    kind = OPENAI_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json.dumps({"error": {"message": _message_of(data, body), "type": kind, "param": None,
                                 "code": str(status)}}).encode()


def _with_length(start: dict, size: int) -> dict:
    drop = (b"content-length", b"content-type")
    headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() not in drop]
    return {**start, "headers": [*headers, (b"content-type", b"application/json"), (b"content-length", str(size).encode())]}


def wrap(app):
    """`app` with FlowGate's model list and unserved-id answers (see the module's doc)."""

    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if method == "GET" and path in LIST_ROUTES:
            version = codex_list.asked_by_codex(scope)
            rewrite = _list_body
            if version is not None:  # Codex's catalog request: its own shape (tasks.gateway.codex_list)
                scope = {**scope, "query_string": codex_list.without_client_version(scope.get("query_string", b""))}
                rewrite = lambda p, b, s: _codex_body(version)  # noqa: E731
            member = await member_of(scope)
            if member is not None and member.models:  # a member's list: only the models its key may use
                return await _buffered(app, scope, receive, send, _OK, _for_member(rewrite, member))
            return await _buffered(app, scope, receive, send, _OK, rewrite)
        if method == "POST" and path in MODEL_ROUTES:
            return await _buffered(app, scope, receive, send, _ERROR, _error_answer)
        return await app(scope, receive, send)

    return asgi


async def member_of(scope):
    """The member whose key a request offers (tasks.gateway.keys), or None: the master key, no key, or a
    key LiteLLM's key check refuses anyway (its answer is then no list)."""
    from .gate import accepted, fresh_book, scope_header, sent_keys
    from .keys.book import Unavailable
    from .leanrules import litellm_state

    keys = sent_keys(scope_header({"headers": scope.get("headers") or []}))
    if not any(keys) or accepted(keys, litellm_state()[0]):
        return None
    try:
        book = await fresh_book(keys)
        found = [m for m in (book.find(k) for k in keys if k) if m is not None]
    except Unavailable:
        return None
    return found[0] if found else None


def _for_member(rewrite, member):
    """`rewrite`'s list (OpenAI's `data` by id, Codex's `models` by slug) without the models the key may not use."""
    from .keys.enforce import allows

    async def only_allowed(path: str, body: bytes, status: int) -> bytes:
        data = json.loads(await rewrite(path, body, status))
        if isinstance(data.get("data"), list):
            data["data"] = [m for m in data["data"] if allows(member, m.get("id"))]
            data["first_id"] = data["data"][0]["id"] if data["data"] else None
            data["last_id"] = data["data"][-1]["id"] if data["data"] else None
        if isinstance(data.get("models"), list):
            data["models"] = [m for m in data["models"] if allows(member, m.get("slug"))]
        return json.dumps(data).encode()

    return only_allowed


async def _codex_body(version: str) -> bytes:
    return await codex_list.answer(version, served, ask, CACHE_S)


async def _list_body(path: str, body: bytes, status: int) -> bytes:
    return model_list_body(named_models(), await served())


def _OK(status: int) -> bool:
    return status == 200


def _ERROR(status: int) -> bool:
    return status >= 400


async def _error_answer(path: str, body: bytes, status: int) -> bytes:
    """Every error of a model route in the route's own protocol shape (401 included, from either
    path); CLIProxyAPI's "unknown provider" 400 as one clear message naming what is served."""
    found = _UNKNOWN.search(body) if status == 400 and len(body) <= _MAX_ERROR else None
    if not found:
        return shaped(path, status, body)
    model = found.group(1).decode("utf-8", "replace")
    named, live = named_models(), await served() or []
    routable = named + [m["id"] for m in live if m["id"] not in named]
    return error_body(path, unserved_message(model, routable))


async def _buffered(app, scope, receive, send, held_when, rewrite):
    """Run `app`; when its status passes `held_when`, hold the body and send
    `rewrite(path, body, status)` instead. Any other answer (every success of a model route, streams
    included) passes through untouched."""
    held: dict = {}

    async def send_or_hold(message):
        if message["type"] == "http.response.start" and held_when(message["status"]):
            held.update(start=message, chunks=[])
            return
        if "start" not in held:
            return await send(message)
        held["chunks"].append(message.get("body", b""))
        if not message.get("more_body"):
            body = await rewrite(scope["path"], b"".join(held["chunks"]), held["start"]["status"])
            start = _with_length(held["start"], len(body))
            if start["status"] in NO_RETRY:
                start["headers"].append((b"x-should-retry", b"false"))
            await send(start)
            await send({"type": "http.response.body", "body": body})

    return await app(scope, receive, send_or_hold)

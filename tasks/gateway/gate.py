"""The gateway's door, in front of both paths (the lean path and LiteLLM's), on the model routes:

1. the gateway key (on KEY_ROUTES: these and LiteLLM's other large-body POST routes), read from
   the headers by one rule (`sent_keys`: LiteLLM's own reading, plus `x-api-key` beside a bearer
   for Claude Code), which FlowGate's key hook and the lean path use too.
   A request without it is answered 401 before its body is read, and its connection closed: a
   client without the key can make the gateway hold no body (issue 31, item 6);
2. a JSON body whose top-level object repeats a key is refused (400): LiteLLM's Router and the
   usage recorder read the last `model`, CLIProxyAPI (Go) the first (item 5);
3. a body LiteLLM's own safety rule refuses (`api_base`, `base_url`, `user_config` and the rest of
   its list: `is_request_body_safe`) is refused with a 400, where LiteLLM's path answered a plain
   500 and logged ~14 KB of tracebacks (item 15).
A key other than the master key is a member's (tasks.gateway.keys, issue 30): known, live (401),
the body's model among its patterns (403), under its budget this period, its tokens and requests
per minute (429: counted in Redis when the replicas share one, tasks.gateway.keys.shared, else in
this process), the key database readable (503: fail closed).
Refusals leave in the route's protocol shape (Anthropic's on /v1/messages, OpenAI's elsewhere).
The body read for 2 and 3 is handed on as it came; the lean path reuses its parse (BODY).
"""

from __future__ import annotations

import asyncio
import json
import os

from .keys import MEMBER_SCOPE
from .keys.enforce import Refusal, Window, admit, model_refusal
from .keys.resp import Down
from .keys.shared import counters
from .leanrules import _json, litellm_state
from .steered import Steered, answer as steered_answer

# POST routes whose body is a model request in JSON (tasks.catalog.served_models shapes their errors)
MODEL_ROUTES = ("/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions", "/v1/responses",
                "/responses", "/v1/messages", "/v1/messages/count_tokens")
# Other POST routes of LiteLLM's that take a large body and need the key: checked from the headers too
KEY_ROUTES = frozenset({*MODEL_ROUTES, *(p + r for p in ("", "/v1") for r in (
    "/embeddings", "/images/generations", "/images/edits", "/audio/transcriptions", "/audio/speech",
    "/moderations", "/files", "/batches", "/rerank"))})
# KEY_ROUTES whose JSON body names a model, though not a chat one: a key limited to models has its
# body read there and the model checked; on the rest (files, batches, multipart uploads) the gate can
# tell no model, and such a key is refused (403, saying so)
JSON_MODEL_ROUTES = frozenset(p + r for p in ("", "/v1") for r in (
    "/embeddings", "/images/generations", "/audio/speech", "/moderations", "/rerank"))
BODY = "flowgate.body"  # scope key: (raw body, parsed object) for the lean path, parsed once here
MEMBER = MEMBER_SCOPE  # scope key: the member's name when a member key was admitted (the lean path, the recorder)
KEY_FILE_ENV = "FLOWGATE_GATEWAY_KEY_FILE"
# LiteLLM's headers for the key, in its order of precedence (user_api_key_auth.get_api_key)
KEY_HEADERS = ("x-litellm-api-key", "authorization", "api-key", "x-api-key", "x-goog-api-key",
               "ocp-apim-subscription-key")
_PREFIXES = ("Bearer ", "Basic ", "bearer ")  # what LiteLLM strips (get_bearer_token), in its order


def _litellm_token(value: str) -> str:
    """LiteLLM's get_bearer_token, without its AWS SigV4 form (no FlowGate client sends it): the
    value after a known prefix (case as written), else nothing. tests/unit/gateway/test_gate.py holds it to LiteLLM's."""
    for prefix in _PREFIXES:
        if value.startswith(prefix):
            return value.replace(prefix, "")
    return ""


def sent_keys(header) -> tuple[str, ...]:
    """The keys a request offers, by the one rule every path applies. `header(name)` returns a
    header's value (str) or None. LiteLLM's reading: the first of KEY_HEADERS present, a prefixed
    token in `Authorization` / `x-litellm-api-key`; beside it `x-api-key` when `Authorization` is a
    bearer (Claude Code with ANTHROPIC_AUTH_TOKEN sends that token as the bearer, the key as x-api-key)."""
    for name in KEY_HEADERS:
        value = header(name)
        if value is None or (name == "authorization" and not value):
            continue
        if name == "x-litellm-api-key":
            key = _litellm_token(value) or value
        elif name == "authorization":
            key = _litellm_token(value)
            other = header("x-api-key")
            if other and value.startswith(("Bearer ", "bearer ")):
                return key.strip(), other.strip()
        else:
            key = value
        return (key.strip(),)
    return ()


def accepted(keys, master: str | None) -> bool:
    import hmac

    return bool(master) and any(k and hmac.compare_digest(k.encode(), master.encode()) for k in keys)


def refusal(sent: bool) -> str:
    """The 401's message: where the key lives, how to send it."""
    key_file = os.environ.get(KEY_FILE_ENV) or ".router/secrets/litellm_master_key"
    what = "wrong gateway key" if sent else "no gateway key"
    return (f"{what}: send the key in {key_file} as `Authorization: Bearer <key>` or `x-api-key: <key>` "
            "(`uv run doit integrate:codex` / `integrate:claude` wire the clients)")


def scope_header(scope):
    """`header(name)` over an ASGI scope's headers (latin-1, as HTTP carries them)."""
    headers = scope["headers"]

    def header(name: str):
        wanted = name.encode()
        for key, value in headers:
            if key == wanted:
                return value.decode("latin-1")
        return None

    return header


ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   429: "rate_limit_error", 503: "overloaded_error"}
OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error", 503: "api_error"}
_BOOK, _BUDGETS = [], []
_FIND = object()  # Gate(shared=): this process's shared counters, if its config names a Redis


async def fresh_book(keys, book=None):
    """The member-key book, first read afresh (off the event loop) when a key it does not know may be a
    new one: only PostgreSQL's book (tasks.gateway.keys.pgbook) asks; the SQLite book rereads itself."""
    book = book or key_book()
    if any(keys) and getattr(book, "needs_read", None) and book.needs_read(keys):
        await asyncio.to_thread(book.wait_fresh)
    return book


def key_book():
    """This process's member-key book, made at first use: PostgreSQL's (tasks.gateway.keys.pgbook) when
    the launch selected it (keys.store: postgres), else the SQLite file's (tasks.gateway.keys.book)."""
    if not _BOOK:
        from .keys import pgstore

        if pgstore.selected():
            from .keys.pgbook import PgKeyBook

            _BOOK.append(PgKeyBook())
        else:
            from ..base.paths import Paths
            from .keys.book import KeyBook

            _BOOK.append(KeyBook(Paths.from_env().keys_db))
    return _BOOK[0]


def budgets():
    """This process's budget sums (tasks.gateway.keys.budget), made at first use."""
    if not _BUDGETS:
        from ..base.paths import Paths
        from .keys.budget import Budgets

        _BUDGETS.append(Budgets(Paths.from_env()))
    return _BUDGETS[0]


def error_answer(path: str, status: int, message: str, param: str | None = None) -> tuple[list, bytes]:
    """(headers, body) of an error in the protocol of `path`."""
    if path.startswith("/v1/messages"):
        data = {"type": "error", "error": {"type": ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}
    else:
        kind = OPENAI_TYPES.get(status, "invalid_request_error")
        data = {"error": {"message": message, "type": kind, "param": param, "code": str(status)}}
    body = json.dumps(data).encode()
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())], body


def repeated_key(raw: bytes) -> str | None:
    """A key the body's top-level object holds twice, or None. Python's C decoder with a pairs hook
    that is a C builtin (`list`): every object becomes its list of pairs, the top level included, at
    C speed (~5 µs per KB here); keys are compared as decoded (`"mod\\u0065l"` is `model`)."""
    if raw.lstrip()[:1] != b"{":
        return None
    try:
        pairs = json.loads(raw, object_pairs_hook=list)
    except (ValueError, RecursionError):
        return None
    if len({k for k, _ in pairs}) == len(pairs):
        return None
    seen = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None  # pragma: no cover


# Keys LiteLLM's rule lets through that change how the upstream is reached: with any of them
# CLIProxyAPI refuses the call (401 for a client's `api_key` or an `Authorization` in
# `extra_headers` / `headers`, 404 for another `custom_llm_provider`), LiteLLM logs ~5 KB of
# traceback and cools the model's deployment down: 429 for every client for 5 s. Measured on 1.108.14.
REFUSED_KEYS = ("api_key", "extra_headers", "headers", "custom_llm_provider")


def litellm_body_rule(path: str, data: dict) -> str | None:
    """Why LiteLLM's own safety rule refuses this body (its message), or None."""
    try:
        from litellm.proxy import proxy_server
        from litellm.proxy.auth.auth_utils import is_request_body_safe

        is_request_body_safe(request_body=data, general_settings=proxy_server.general_settings or {},
                             llm_router=proxy_server.llm_router, model=str(data.get("model") or ""), route=path)
    except ValueError as exc:
        return str(exc)
    except Exception:  # noqa: BLE001  (cannot tell: LiteLLM's path decides)
        return None
    return None


class Replay:
    """`receive` for the app after the body was read: the body once, then what the client sends."""

    def __init__(self, body: bytes, receive):
        self.body, self.receive = body, receive

    async def __call__(self):
        if self.body is None:
            return await self.receive()
        body, self.body = self.body, None
        return {"type": "http.request", "body": body, "more_body": False}


class Gate:
    def __init__(self, app, state=litellm_state, body_rule=litellm_body_rule, book=None, spent=None, shared=_FIND,
                 steered=None):
        self.app, self.state, self.body_rule = app, state, body_rule
        self.book, self.window, self.spent, self.shared = book, Window(), spent, shared
        self.steered = steered or Steered()
        self.loads, self.dumps = _json()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in KEY_ROUTES:
            return await self.app(scope, receive, send)
        path = scope["path"]
        master, member = self.state()[0], None
        if master:  # before LiteLLM's startup set it, LiteLLM's path answers
            keys = sent_keys(scope_header(scope))
            if not accepted(keys, master):  # a member's key, or refused before the body is read
                book = await fresh_book(keys, self.book)
                member = admit(book, keys) if any(keys) else Refusal(401, "")
                if isinstance(member, Refusal):  # the body is never read: the connection closes after the answer
                    return await self._refuse(send, path, member.status, member.message or refusal(any(keys)),
                                              [*member.headers, (b"connection", b"close")])
                scope[MEMBER] = member.name
        if path not in MODEL_ROUTES:  # not a model request in JSON: LiteLLM reads it
            if member is not None and member.models and path in JSON_MODEL_ROUTES:
                return await self._checked_model(scope, receive, send, member)
            why = member and ((model_refusal(member, None, path) if member.models else None) or await self._limits(member))
            if why:
                return await self._refuse(send, path, why.status, why.message, [*why.headers, (b"connection", b"close")])
            return await self.app(scope, receive, send)
        raw = await self._body(receive)
        if raw is None:  # the client left
            return
        problem = self._problem(path, raw, scope)
        if problem is not None:
            return await self._refuse(send, path, 400, *problem)
        if member is not None:
            parsed = scope.get(BODY)
            why = model_refusal(member, parsed[1].get("model") if parsed else None) or await self._limits(member)
            if why is not None:
                return await self._refuse(send, path, why.status, why.message, why.headers)
        parsed = scope.get(BODY)
        entry = self.steered.lookup(parsed[1].get("model")) if parsed and path != "/v1/messages/count_tokens" else None
        if entry is not None:  # every account of its provider is out of rotation (tasks.gateway.steered)
            fallback = entry["fallback"]
            if fallback is None or (member is not None and model_refusal(member, fallback) is not None):
                message, wait = steered_answer(parsed[1]["model"], entry)
                return await self._refuse(send, path, 429, message, [(b"retry-after", str(wait).encode())])
            data = {**parsed[1], "model": fallback}
            raw = self.dumps(data)
            scope[BODY] = (raw, data)
        await self.app(scope, Replay(raw, receive), send)

    @staticmethod
    async def _body(receive) -> bytes | None:
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _checked_model(self, scope, receive, send, member) -> None:
        """A key limited to models on a route whose JSON body names one (embeddings, images, ...): the
        body read, its model checked, then handed on as it came (LiteLLM reads it)."""
        raw = await self._body(receive)
        if raw is None:
            return
        try:
            data = self.loads(raw)
        except ValueError:
            data = None
        model = data.get("model") if isinstance(data, dict) else None
        why = model_refusal(member, model) or await self._limits(member)
        if why is not None:
            return await self._refuse(send, scope["path"], why.status, why.message, why.headers)
        await self.app(scope, Replay(raw, receive), send)

    async def _limits(self, member) -> Refusal | None:
        """The member's budget (its spend this period), then its tokens and requests per minute (a refused
        request takes none): in Redis when the replicas share one (tasks.gateway.keys.shared), else in this
        process, and in this process while Redis fails."""
        shared = counters() if self.shared is _FIND else self.shared
        if shared is not None and (member.rpm or member.tpm):
            if member.budget:
                why = (self.spent or budgets()).refusal(member, tokens=False)
                if why is not None:
                    return why
            try:
                why = await shared.take(member)
            except Down:
                pass  # counted here below, as without Redis
            else:
                if why is None:
                    self.window.note(member)  # what this process admitted, should Redis fail within the minute
                return why
        if member.budget or member.tpm:
            why = (self.spent or budgets()).refusal(member)
            if why is not None:
                return why
        return self.window.take(member)

    def _problem(self, path: str, raw: bytes, scope) -> tuple[str, list] | None:
        try:
            data = self.loads(raw)
        except ValueError:  # not JSON for orjson (a NaN, a 20-digit integer): Python's decoder may still read it
            data = None
        if data is None or not self._canonical(data, raw):
            key = repeated_key(raw)
            if key is not None:
                return (f"the request body holds the key {key!r} more than once: the gateway and the upstream "
                        "would read different values; send each key once"), []
        if not isinstance(data, dict):
            return None  # LiteLLM's path answers
        why = self.body_rule(path, data)
        if why is not None:
            return why, []
        for key in REFUSED_KEYS:
            if key in data:
                return (f"{key} is not allowed in request body: the gateway reaches the upstream with its own "
                        "credentials and protocol"), []
        scope[BODY] = (raw, data)
        return None

    def _canonical(self, data, raw: bytes) -> bool:
        """Whether `raw` is exactly orjson's compact form of `data`: then no object in it repeats a key
        (a dict has none to write twice). Codex (serde_json), Claude Code (JSON.stringify) and the
        OpenAI SDKs send compact JSON: this costs ~1 µs per KB, the exact check ~5 (bench/gateway.py)."""
        try:
            return self.dumps(data) == raw
        except (TypeError, ValueError):
            return False

    @staticmethod
    async def _refuse(send, path: str, status: int, message: str, extra: list) -> None:
        headers, body = error_answer(path, status, message)
        await send({"type": "http.response.start", "status": status, "headers": headers + extra})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def wrap(app):
    return Gate(app)

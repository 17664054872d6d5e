"""The dashboard's routes, an ASGI wrapper around LiteLLM's app (composed in tasks/stack/litellm_server.py):

    GET /flowgate/dashboard?token=T        the page (tasks.web.page), its first data embedded
    GET /flowgate/dashboard/data?token=T   the data as JSON (the page refreshes from it)

Served by the gateway's own process and port: no other port to open, no other process to
supervise, it is there whenever the gateway is, and it swaps with it. A request without the token
is refused with 401, with a wrong one 403 (compared in constant time). The data is built in a
worker thread (it probes services and reads SQLite), never on LiteLLM's event loop. Everything else
passes to LiteLLM untouched.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs

from ..base.paths import Paths

PREFIX = "/flowgate/dashboard"
REFUSED = {401: "the dashboard needs its token: `uv run doit dashboard` prints the URL that carries it",
           403: "wrong dashboard token: `uv run doit dashboard` prints the URL that carries the right one"}


def _headers(ctype: str, nonce: str | None = None) -> list[tuple[bytes, bytes]]:
    csp = ("default-src 'none'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'" + (f"; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'" if nonce else ""))
    return [(b"content-type", ctype.encode()), (b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer"),
            (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
            (b"content-security-policy", csp.encode())]


async def _answer(send, status: int, body: bytes, headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _presented(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    for name, value in scope.get("headers", ()):
        if name == b"x-flowgate-token":
            return value.decode("latin-1")
    return None


def with_dashboard(app, paths: Paths | None = None):
    import asyncio

    from .token import Checker

    paths = paths or Paths.from_env()
    checker = Checker(paths)

    async def dashboard(scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            return await app(scope, receive, send)
        verdict = checker.verdict(_presented(scope))
        if verdict != 200:
            return await _answer(send, verdict, json.dumps({"error": REFUSED[verdict]}).encode(),
                                 _headers("application/json"))
        if scope.get("method") not in ("GET", "HEAD"):
            return await _answer(send, 405, b'{"error": "GET only"}', _headers("application/json"))
        from . import data, page

        if path.rstrip("/") == PREFIX:
            nonce = secrets.token_urlsafe(16)
            body = page.render(await asyncio.to_thread(data.collect, paths), nonce).encode("utf-8")
            return await _answer(send, 200, body, _headers("text/html; charset=utf-8", nonce))
        if path == PREFIX + "/data":
            body = json.dumps(await asyncio.to_thread(data.collect, paths)).encode("utf-8")
            return await _answer(send, 200, body, _headers("application/json"))
        return await _answer(send, 404, b'{"error": "no such dashboard route"}', _headers("application/json"))

    return dashboard

"""The dashboard's routes, an ASGI wrapper around LiteLLM's app (composed in tasks/gateway/litellm_server.py):

    GET /flowgate/dashboard?token=T        the page (tasks.gateway.dashboard.page), its first data embedded
    GET /flowgate/dashboard/data?token=T   the data as JSON (the page refreshes from it)

Served by the gateway's own process and port: no other port to open, no other process to
supervise, it is there whenever the gateway is, and it swaps with it. A request without the token
is refused with 401, with a wrong one 403 (compared in constant time). The data is gathered by a
short-lived child process (tasks.inspect.dashboard_data: it probes services, asks for quota and
reads SQLite), whose JSON is read with a deadline and a size cap: the control plane's code never
loads into the gateway, and a heavy read never competes with the request path for its CPU or
memory. Everything else passes to LiteLLM untouched.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs

from ...base.paths import Paths

PREFIX = "/flowgate/dashboard"
GATHER_DEADLINE_S = 40.0  # the child's whole run: status probes (bounded) and quota (at most 10 s) included
GATHER_MAX = 16 * 1024 * 1024  # bytes of JSON read from it at most
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


async def gather(paths: Paths) -> dict:
    """The dashboard's data from its child process, or the page's shape with the reason it is missing."""
    import asyncio
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tasks.inspect.dashboard_data", "--home", str(paths.home), cwd=str(paths.root),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GATHER_DEADLINE_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return unavailable(f"gathering the data took longer than {GATHER_DEADLINE_S:g} s")
    if proc.returncode != 0:
        last = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return unavailable(f"gathering the data failed: {last[0][:300]}")
    if len(out) > GATHER_MAX:
        return unavailable(f"the data was larger than {GATHER_MAX} bytes")
    try:
        data = json.loads(out)
    except (ValueError, RecursionError):
        data = None
    return data if isinstance(data, dict) else unavailable("the data was not a JSON object")


def unavailable(why: str) -> dict:
    """What the page draws when the data could not be gathered: every section says why."""
    import time

    return {"generated_at": time.strftime("%Y-%m-%d %H:%M:%S"), "ready": False, "profile": None, "pending": [],
            "services": [], "accounts": [], "quota": {"accounts": [], "error": why}, "usage": {"error": why},
            "events": []}


def with_dashboard(app, paths: Paths | None = None, gathered=gather):
    """`gathered(paths)`: an awaitable of the data (tests give their own)."""
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
        from . import page

        if path.rstrip("/") == PREFIX:
            nonce = secrets.token_urlsafe(16)
            body = page.render(await gathered(paths), nonce).encode("utf-8")
            return await _answer(send, 200, body, _headers("text/html; charset=utf-8", nonce))
        if path == PREFIX + "/data":
            body = json.dumps(await gathered(paths)).encode("utf-8")
            return await _answer(send, 200, body, _headers("application/json"))
        return await _answer(send, 404, b'{"error": "no such dashboard route"}', _headers("application/json"))

    return dashboard

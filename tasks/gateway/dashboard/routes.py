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


_gathering: dict = {}  # home -> the gather in flight: pages and tabs refreshing together share one child


async def gather(paths: Paths) -> dict:
    """The dashboard's data from its child process, or the page's shape with the reason it is missing.
    One child at a time per home: a request arriving while one runs waits for its answer."""
    import asyncio

    key = str(paths.home)
    task = _gathering.get(key)
    if task is None or task.done():
        task = _gathering[key] = asyncio.ensure_future(_gather(paths))
    return await asyncio.shield(task)  # a request that goes away leaves the shared gather to the others


async def _gather(paths: Paths) -> dict:
    import asyncio
    import sys

    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tasks.inspect.dashboard_data", "--home", str(paths.home), cwd=str(paths.root),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:  # out of processes, files or memory: the page says so
        return unavailable(f"could not start gathering the data: {exc.strerror or exc}")
    err_task = asyncio.ensure_future(_capped(proc.stderr, 65536))
    try:
        async with asyncio.timeout(GATHER_DEADLINE_S):
            out = await _capped(proc.stdout, GATHER_MAX)
            if len(out) > GATHER_MAX:
                return unavailable(f"the data was larger than {GATHER_MAX} bytes")
            err = await err_task
            await proc.wait()
    except TimeoutError:
        return unavailable(f"gathering the data took longer than {GATHER_DEADLINE_S:g} s")
    finally:
        err_task.cancel()
        await asyncio.gather(err_task, return_exceptions=True)
        if proc.returncode is None:  # late, too large, or this task cancelled: the child goes too
            proc.kill()
            # wait() returns only once both pipes reached their end: read what the child left in them
            await asyncio.gather(_capped(proc.stdout, -1), _capped(proc.stderr, -1))
            await proc.wait()
    if proc.returncode != 0:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return unavailable(f"gathering the data failed: {last[0][:300]}")
    try:
        data = json.loads(out)
    except (ValueError, RecursionError):
        data = None
    return data if isinstance(data, dict) else unavailable("the data was not a JSON object")


async def _capped(stream, limit: int) -> bytes:
    """What the child writes, up to limit + 1 bytes (more means too large): never more in memory.
    A negative limit reads to the end and keeps nothing (a killed child's leftovers)."""
    out = bytearray()
    while len(out) <= limit or limit < 0:
        chunk = await stream.read(65536 if limit < 0 else min(65536, limit + 1 - len(out)))
        if not chunk:
            break
        if limit >= 0:
            out += chunk
    return bytes(out)


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

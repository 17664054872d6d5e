"""A JSON answer from a server FlowGate does not run (GitHub, a PyPI index): bounded in size and in
time, and its transport errors in FlowGate's words.

A peer's answer is read in chunks up to a limit (a huge or endless body is refused, never held
whole), every request gets the client's own timeouts cut to what is left of an overall deadline,
and a body that is not JSON (or nested absurdly deep) is one clear error. httpx is imported inside
functions only: every doit command imports the `tasks` package.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..base.errors import FlowgateError

CHUNK = 64 * 1024
ERROR_BODY_LIMIT = 64 * 1024  # an error's JSON message is a few hundred bytes


def make_client(user_agent: str):
    import httpx

    return httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), headers={"User-Agent": user_agent})


class Deadline:
    """An overall budget of `seconds` for a command's network part, from now (time.monotonic)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def error(self, url: str, hint: str | None = None) -> FlowgateError:
        return FlowgateError(f"no complete answer from {url} within {self.seconds:g} s", hint)


def timeout_text(client) -> str:
    """' after 30s' from the client's read/connect timeouts, for a timeout's message."""
    try:
        t = client.timeout
        vals = [v for v in (t.connect, t.read) if v is not None]
        return f" after {max(vals):g}s" if vals else ""
    except Exception:  # a duck-typed client without .timeout
        return ""


def request_timeout(client, deadline: Deadline | None, url: str, hint: str | None = None):
    """The client's own timeouts, each cut to what is left of `deadline` (a FlowgateError when nothing is)."""
    import httpx

    if deadline is None:
        return httpx.USE_CLIENT_DEFAULT
    left = deadline.left()
    if left <= 0:
        raise deadline.error(url, hint)
    own = getattr(client, "timeout", None) or httpx.Timeout(left)

    def cut(value):
        return left if value is None else min(value, left)
    return httpx.Timeout(connect=cut(own.connect), read=cut(own.read), write=cut(own.write), pool=cut(own.pool))


def transport_error(exc: Exception, url: str, client, hint: str, timeout_hint: str | None = None,
                    deadline: Deadline | None = None) -> FlowgateError:
    """An httpx transport failure (offline, DNS, refused, timeout, broken connection) as one clear
    error; a timeout cut short by `deadline` says so."""
    import httpx

    if isinstance(exc, httpx.TimeoutException) and deadline is not None and deadline.left() < 0.5:
        return deadline.error(url, timeout_hint or hint)
    if isinstance(exc, httpx.TimeoutException):
        return FlowgateError(f"timed out{timeout_text(client)} waiting for {url}", timeout_hint or hint)
    if isinstance(exc, httpx.ConnectError):
        return FlowgateError(f"cannot connect to {url} ({exc or 'connection failed'})", hint)
    if isinstance(exc, httpx.TooManyRedirects):
        return FlowgateError(f"too many redirects from {url}", hint)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return FlowgateError(f"the connection to {url} broke ({exc})", "try again; " + hint)
    return FlowgateError(f"network error talking to {url} ({exc})", hint)


def read_body(response, url: str, limit: int, deadline: Deadline | None = None, hint: str | None = None) -> bytes:
    """A streamed response's body, at most `limit` bytes and within `deadline`; FlowgateError past either."""
    try:
        declared = int(response.headers.get("content-length", ""))
    except ValueError:
        declared = None
    too_large = FlowgateError(f"{url} answered more than {limit >> 10} KiB: refused, that is not the answer asked for",
                              hint)
    if declared is not None and declared > limit:
        raise too_large
    body = bytearray()
    for chunk in response.iter_bytes(CHUNK):
        body += chunk
        if len(body) > limit:
            raise too_large
        if deadline is not None and deadline.left() <= 0:
            raise deadline.error(url, hint)
    return bytes(body)


def parse(body: bytes, url: str, what: str, hint: str | None = None) -> Any:
    """`body` as JSON; FlowgateError naming `what` was expected when it is not JSON or nested too deeply."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise FlowgateError(f"{url} did not answer with JSON ({what} expected)", hint) from None


def message_of(body: bytes) -> str:
    """The `message` of a JSON error body (GitHub's and PyPI's shape), or ''."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return message[:300] if isinstance(message, str) else ""

"""What a member key may do, decided in the gate (tasks.gateway.gate) for both paths.

`admit` (from the headers, before any body is read): the key is known, not revoked, not expired
(else 401), and the book readable (else 503: fail closed). `model_refusal` (once the body's model is
known): the model matches one of the key's fnmatch patterns (else 403). `Window.take`: under the
key's requests per minute (else 429 with `retry-after`): a sliding window in this process, used
when no Redis is shared by replicas and while it fails (tasks.gateway.keys.shared counts in Redis).
"""

from __future__ import annotations

import collections
import fnmatch
import math
import time

from .book import KeyBook, Unavailable
from .store import Member


class Refusal:
    __slots__ = ("status", "message", "headers")

    def __init__(self, status: int, message: str, headers: list | None = None):
        self.status, self.message, self.headers = status, message, headers or []


def shown(name: str) -> str:
    """A member's name as a message may carry it: printable, bounded (names are checked at create too)."""
    return "".join(c if c.isprintable() else "?" for c in name[:64])


def admit(book: KeyBook, keys, now: float | None = None) -> Member | Refusal:
    """The member of the first key offered that the book knows, or why the request is refused."""
    try:
        found = [m for m in (book.find(k) for k in keys if k) if m is not None]
    except Unavailable as exc:
        return Refusal(503, str(exc))
    if not found:
        return Refusal(401, "")  # the gate's own message: no key, or a wrong one
    member = found[0]
    if member.revoked is not None:
        return Refusal(401, f"the key of {shown(member.name)} was revoked: ask for a new one (`uv run doit keys create`)")
    if member.expires is not None and (time.time() if now is None else now) >= member.expires:
        return Refusal(401, f"the key of {shown(member.name)} expired: ask for a new one (`uv run doit keys rotate`)")
    return member


def allows(member: Member, model) -> bool:
    """Whether the key may use `model` (a key without patterns may use every model)."""
    return not member.models or (isinstance(model, str) and any(fnmatch.fnmatchcase(model, p) for p in member.models))


def model_refusal(member: Member, model, route: str | None = None) -> Refusal | None:
    """403 for a model outside the key's patterns; `route`: a route whose model the gate cannot tell."""
    if allows(member, model):
        return None
    limited = ", ".join(shown(p) for p in member.models)
    if route is not None:
        return Refusal(403, f"the key of {shown(member.name)} is limited to {limited}, and the gateway cannot tell "
                            f"which model {shown(route)} uses: use the master key for it")
    asked = shown(model) if isinstance(model, str) else "no model"
    return Refusal(403, f"the key of {shown(member.name)} may not use {asked}: it is limited to {limited}")


class Window:
    """Requests per minute per key name, over the last 60 s, in this process."""

    SPAN = 60.0

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.seen: dict[str, collections.deque] = {}

    def take(self, member: Member) -> Refusal | None:
        if not member.rpm or member.rpm <= 0:
            return None
        now = self.clock()
        times = self.seen.setdefault(member.name, collections.deque())
        while times and times[0] <= now - self.SPAN:
            times.popleft()
        if len(times) >= member.rpm:
            wait = max(1, math.ceil(times[0] + self.SPAN - now))
            return Refusal(429, f"the key of {shown(member.name)} is over its limit of {member.rpm} requests "
                                f"per minute: retry in {wait} s", [(b"retry-after", str(wait).encode())])
        times.append(now)
        return None

    def note(self, member: Member) -> None:
        """A request Redis admitted: kept here too, so that counting here (Redis failing) starts from
        what this process admitted in the last minute."""
        if member.rpm and member.rpm > 0:
            now = self.clock()
            times = self.seen.setdefault(member.name, collections.deque())
            while times and times[0] <= now - self.SPAN:
                times.popleft()
            times.append(now)

"""Append-only event log: .router/events.jsonl, one JSON object per line.

Each line: ts (UTC ISO), event (fetch/start/stop/restart/reload/crash/ready/...), service, result,
detail. Callers pass no secrets; `record` refuses values that look like FlowGate's keys anyway.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone

from ..base.paths import Paths

_SECRET_LIKE = r"\b(sk-[A-Za-z0-9_-]{16,}|mgmt-[A-Za-z0-9_-]{16,})"  # compiled on first use


def record(paths: Paths, event: str, service: str | None = None, result: str = "ok", detail: str = "", **extra) -> dict:
    entry = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "event": event,
        "service": service,
        "result": result,
        "detail": re.sub(_SECRET_LIKE, "[redacted]", detail),
        **extra,
    }
    line = (json.dumps(entry, sort_keys=False) + "\n").encode("utf-8")
    from ..base.fsutil import refuse_link, write_error

    try:
        paths.router.mkdir(parents=True, exist_ok=True)
        # One write() on an O_APPEND fd: lines from concurrent runs never interleave. Never through a link.
        fd = os.open(paths.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        refuse_link(paths.events)
        raise write_error(paths.events, exc) from None
    return entry


def read(paths: Paths, limit: int | None = None) -> list[dict]:
    try:
        lines = paths.events.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines[-limit:] if limit else lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn line from a crash: skip it
    return out


def tail(paths: Paths, max_bytes: int = 64 * 1024, having: bytes = b"") -> list[dict]:
    """The events in the last `max_bytes` of the log, oldest first: a page that refreshes every few
    seconds never reads a log that only grows. Never through a link, never blocking on a FIFO.
    `having`: only the lines holding these bytes are parsed (e.g. b'"event": "steer"')."""
    out = []
    for line in tail_lines(paths, max_bytes):
        if having not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def tail_lines(paths: Paths, max_bytes: int = 64 * 1024) -> list[bytes]:
    import stat

    try:
        fd = os.open(paths.events, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return []
        size = info.st_size
        fh.seek(max(0, size - max_bytes))
        chunk = fh.read(max_bytes)
    lines = chunk.split(b"\n")
    return lines[1:] if size > max_bytes else lines  # the first is cut

"""The providers' quota answers, read defensively: the body is a peer's text.

Every value is type-checked (a number that is not a finite number is dropped, a percentage is
clamped to 0..100), every string is cut short; nothing here escapes for a terminal or a page (the
printers do). Shapes (../shared/reference/cliproxyapiplus.md, "Quota and usage"):

    codex  `wham/usage`:  plan_type, rate_limit.primary_window (5 h) / secondary_window (weekly):
                          {used_percent, limit_window_seconds, reset_after_seconds, reset_at}
    claude `oauth/usage`: five_hour, seven_day, seven_day_opus, seven_day_sonnet:
                          {utilization (percent), resets_at (ISO 8601)} or null
"""

from __future__ import annotations

import json
import math
from collections import namedtuple

MAX_BODY = 64 * 1024  # a quota answer is ~1 kB: anything past this is not one
MAX_TEXT = 160  # a plan name or an upstream message, as shown


class Window(namedtuple("Window", "name used_percent resets_at")):
    """One quota window: `name` (5h, weekly, 7d, 7d-opus, ...), percent used, reset time (epoch s or None)."""

    __slots__ = ()


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _percent(value) -> float | None:
    number = _number(value)
    return None if number is None else round(min(100.0, max(0.0, number)), 1)


def short(value, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _object(text: str) -> dict | None:
    if not isinstance(text, str) or len(text) > MAX_BODY:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # a deeply nested answer is no answer
        return None
    return data if isinstance(data, dict) else None


def _epoch(value) -> float | None:
    number = _number(value)
    if number is None or number <= 0:
        return None
    return number / 1000 if number > 1e12 else number  # milliseconds, as some answers carry


def _iso(value) -> float | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    from datetime import datetime  # only when asking: `doit status` with a fresh copy never parses

    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None


def codex(text: str, now: float) -> tuple[str, list[Window]] | None:
    """(plan, windows) of a `wham/usage` body, or None when it is not one."""
    data = _object(text)
    if data is None:
        return None
    limits = data.get("rate_limit") if isinstance(data.get("rate_limit"), dict) else {}
    windows = []
    for key, name in (("primary_window", "5h"), ("secondary_window", "weekly")):
        window = limits.get(key)
        if not isinstance(window, dict):
            continue
        used = _percent(window.get("used_percent"))
        if used is None:
            continue
        resets = _epoch(window.get("reset_at"))
        after = _number(window.get("reset_after_seconds"))
        if resets is None and after is not None and after >= 0:
            resets = now + after
        windows.append(Window(name, used, resets))
    if not windows:
        return None
    return short(data.get("plan_type"), 40), windows


CLAUDE_WINDOWS = (("five_hour", "5h"), ("seven_day", "7d"), ("seven_day_opus", "7d-opus"), ("seven_day_sonnet", "7d-sonnet"))


def claude(text: str) -> list[Window] | None:
    """The windows of an `oauth/usage` body (null ones left out), or None when it is not one."""
    data = _object(text)
    if data is None:
        return None
    windows = []
    for key, name in CLAUDE_WINDOWS:
        window = data.get(key)
        if not isinstance(window, dict):
            continue
        used = _percent(window.get("utilization"))
        if used is not None:
            windows.append(Window(name, used, _iso(window.get("resets_at"))))
    return windows or None


def upstream_message(text: str) -> str:
    """What a failing upstream said, in a few words: its error message, else the start of its body."""
    data = _object(text)
    if data is not None:
        error = data.get("error")
        for candidate in ((error or {}).get("message") if isinstance(error, dict) else error, data.get("detail"),
                          data.get("message")):
            if isinstance(candidate, str) and candidate.strip():
                return short(candidate.strip())
    return short(text.strip() if isinstance(text, str) else "")

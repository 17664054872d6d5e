"""When the steward reads an account's quota again. Pure: the clock, the binary's counters and what
the last read said in; due or not out.

Never more often than `min_refresh` per account; at least every `refresh`; at once (past the
minimum) when the account served or failed a request since the last read (the binary's `success` /
`failed` counters in GET auth-files moved: a window only fills while the account serves), when the
binary marks it unavailable (a usage_limit_reached / 429 answer), at the reset it is out for, and
when the forecast says the threshold is near.
"""

from __future__ import annotations

from collections import namedtuple


class Read(namedtuple("Read", "at success failed unavailable")):
    __slots__ = ()


class Pacer:
    def __init__(self, refresh: float, min_refresh: float):
        self.refresh, self.min_refresh = refresh, min(min_refresh, refresh)
        self.reads: dict[str, Read] = {}
        self.hints: dict[str, float] = {}  # name -> epoch a read is due anyway (reset, forecast)

    def due(self, name: str, now: float, success: int, failed: int, unavailable: bool) -> str | None:
        """Why `name` is due for a read now, or None."""
        last = self.reads.get(name)
        if last is None:
            return "first read"
        if now - last.at < self.min_refresh:
            return None
        if failed != last.failed or (unavailable and not last.unavailable):
            return "a request failed"
        if success != last.success:
            return "it served requests"
        hint = self.hints.get(name)
        if hint is not None and now >= hint:
            return "forecast or reset"
        if now - last.at >= self.refresh:
            return "refresh"
        return None

    def read(self, name: str, now: float, success: int, failed: int, unavailable: bool) -> None:
        self.reads[name] = Read(now, success, failed, unavailable)
        self.hints.pop(name, None)

    def hint(self, name: str, at: float | None) -> None:
        """Read `name` again at `at` (the earliest hint wins)."""
        if at is not None:
            self.hints[name] = min(at, self.hints.get(name, at))

    def forget(self, keep) -> None:
        keep = set(keep)
        for table in (self.reads, self.hints):
            for name in [n for n in table if n not in keep]:
                del table[name]

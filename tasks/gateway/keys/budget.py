"""Budgets and tokens per minute of member keys (issue 30): a key whose spend this period
(tasks.gateway.keys.spend: the usage recorder's tokens, priced) reached its budget gets 429 naming
when the period resets; one whose requests of the last 60 s took its `tpm` tokens gets 429 until
the oldest of them leaves the minute.

Both are read off the request path: a thread of this process sums the usage database (which every
local replica writes: the limits hold across them) for every period in use and the last minute every
REFRESH_S, and the gate reads the last sums. So a limit holds to within what the recorder had
written (its batches: ~0.5 s) plus REFRESH_S, and a request already admitted is never cut off: a
member may end a period or a minute slightly over (the first request of a process to check a limit
starts the thread: it passes while the first sums are read). Tokens a price map does not price cost nothing.
"""

from __future__ import annotations

import threading
import time

from . import spend
from .enforce import Refusal, shown
from .store import Member

REFRESH_S = 2.0


class Budgets:
    def __init__(self, paths, start_thread: bool = True, clock=time.time):
        self.paths, self.clock = paths, clock
        self.spent: dict[tuple[str, str], float] = {}  # (member, period) -> USD this period
        self.minute: dict[str, tuple[int, float]] = {}  # member -> (tokens of the last 60 s, the oldest's ts)
        self.periods: set[str] = set()  # the periods in use, and "minute" once a key with tpm was seen
        self.lock = threading.RLock()
        self.failing = False
        self.thread = None
        self.start_thread = start_thread
        self.prices: dict | None = None

    def refusal(self, member: Member, tokens: bool = True) -> Refusal | None:
        """429 for a key over its budget this period, else (`tokens`: not counted in Redis) over its tokens
        per minute; None when within both."""
        over_budget = self._budget(member) if member.budget and member.budget > 0 else None
        return over_budget or (self._tokens(member) if tokens else None)

    def _want(self, period: str) -> None:
        if period not in self.periods:
            with self.lock:
                self.periods.add(period)
            self._ensure_running()

    def _tokens(self, member: Member) -> Refusal | None:
        if not member.tpm or member.tpm <= 0:
            return None
        self._want("minute")
        tokens, oldest = self.minute.get(member.name, (0, 0.0))
        if tokens < member.tpm:
            return None
        wait = max(1, int(oldest + 60 - self.clock()) + 1)
        return Refusal(429, f"the key of {shown(member.name)} is over its limit of {member.tpm} tokens per minute "
                            f"({tokens} in the last minute): retry in {wait} s", [(b"retry-after", str(wait).encode())])

    def _budget(self, member: Member) -> Refusal | None:
        period = member.period or "month"
        self._want(period)
        spent = self.spent.get((member.name, period), 0.0)
        if spent < member.budget:
            return None
        now = self.clock()
        reset = spend.period_end(period, now)
        wait = max(1, int(reset - now))
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(reset))
        return Refusal(429, f"the key of {shown(member.name)} reached its budget of ${member.budget:g} per {period} "
                            f"(${spent:.2f} spent): it resets at {when}", [(b"retry-after", str(wait).encode())])

    def refresh(self) -> None:
        """Sum every period in use (in the thread; tests call it directly)."""
        if self.prices is None:
            self.prices = spend.price_map()
        now, fresh = self.clock(), {}
        with self.lock:
            periods = sorted(self.periods)
        for period in periods:
            try:
                if period == "minute":
                    self.minute = spend.recent_tokens(self.paths, now - 60)
                    continue
                found = spend.by_member(self.paths, spend.period_start(period, now), self.prices)
            except Exception as exc:  # noqa: BLE001  (an unreadable usage database: the last sums stand, said once)
                if not self.failing:
                    print(f"flowgate keys: budgets hold to the last sums: the usage database cannot be read ({exc})",
                          flush=True)
                self.failing = True
                return
            for name, entry in found.items():
                fresh[(name, period)] = entry["usd"]
        self.failing = False
        self.spent = fresh

    def _ensure_running(self) -> None:
        if self.thread is not None or not self.start_thread:
            return
        with self.lock:
            if self.thread is None:  # the first sums come within a moment, never on the request path
                self.thread = threading.Thread(target=self._loop, daemon=True, name="flowgate-budgets")
                self.thread.start()

    def _loop(self) -> None:
        while True:
            self.refresh()
            time.sleep(REFRESH_S)

"""Budgets of member keys (issue 30): a key whose spend this period (tasks.gateway.keys.spend: the
usage recorder's tokens, priced) reached its budget gets 429 naming when the period resets.

The spend is read off the request path: a thread of this process sums the usage database for every
period in use every REFRESH_S, and the gate reads the last sums. So a budget holds to within what the
recorder had written (its batches: ~0.5 s) plus REFRESH_S, and a request already admitted is never cut
off: a member may end a period slightly over. Tokens a price map does not price count for nothing.
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
        self.periods: set[str] = set()
        self.lock = threading.RLock()
        self.failing = False
        self.thread = None
        self.start_thread = start_thread
        self.prices: dict | None = None

    def refusal(self, member: Member) -> Refusal | None:
        if not member.budget or member.budget <= 0:
            return None
        period = member.period or "month"
        if period not in self.periods:
            with self.lock:
                self.periods.add(period)
            self._ensure_running()
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
            if self.thread is None:
                self.refresh()  # the first check waits for real sums (once per process)
                self.thread = threading.Thread(target=self._loop, daemon=True, name="flowgate-budgets")
                self.thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(REFRESH_S)
            self.refresh()

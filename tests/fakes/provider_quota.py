"""The subscription side of tests/fakes/provider.py: what chatgpt.com and api.anthropic.com answer an
OAuth account (reached through tests/fakes/mitm.py), with quota windows per access token that fill
as the token is served and reset, as the CLIProxyAPI double models them (contract A of issue 29:
the same knobs, `quota_step` and `quota_reset`, and the same shapes).

Routes: POST /backend-api/codex/responses (codex, metered), POST /v1/messages with an `sk-ant-oat`
bearer (claude, metered; count_tokens is not), GET /backend-api/wham/usage and GET /api/oauth/usage
(the quota answers FlowGate reads through the binary's api-call). At 100 % a metered request gets
the provider's refusal: codex 429 `usage_limit_reached` with `resets_at` / `resets_in_seconds`;
claude 429 `rate_limit_error` with `anthropic-ratelimit-unified-5h-status: rejected` and its reset.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from datetime import datetime, timezone

from tests.fakes.cliproxy_double import CLAUDE_WINDOWS, CODEX_WINDOWS, Window, rfc3339

CODEX_PATH, CODEX_USAGE, CLAUDE_USAGE = "/backend-api/codex/responses", "/backend-api/wham/usage", "/api/oauth/usage"


class OAuthQuota:
    def __init__(self, quota_step: float = 0.0, quota_reset: float = 30.0):
        self.step, self.reset = quota_step, quota_reset
        self._windows: dict[str, dict[str, Window]] = {}
        self._lock = threading.Lock()
        self.served: Counter[str] = Counter()  # access token -> requests served
        self.refused: Counter[str] = Counter()  # access token -> 429s answered

    @staticmethod
    def kind(path: str, bearer: str) -> str | None:
        if path in (CODEX_PATH, CODEX_USAGE):
            return "codex"
        if path == CLAUDE_USAGE or (path.startswith("/v1/messages") and bearer.startswith("sk-ant-oat")):
            return "claude"
        return None

    def windows(self, token: str, kind: str, now: float) -> dict[str, tuple[float, float]]:
        names = ("primary_window", "secondary_window") if kind == "codex" else ("five_hour", "seven_day", "seven_day_opus")
        with self._lock:
            own = self._windows.setdefault(token, {})
            return {n: own.setdefault(n, Window(self.step, self.reset)).live(now) for n in names}

    def take(self, token: str, kind: str, now: float) -> float | None:
        """Counts a metered request for `token`; the reset epoch instead when a window is full."""
        if self.step > 0:
            full = [reset for used, reset in self.windows(token, kind, now).values() if used >= 100.0]
            if full:
                with self._lock:
                    self.refused[token] += 1
                return min(full)
        with self._lock:
            for window in self._windows.setdefault(token, {}).values():
                window.count(now)
            self.served[token] += 1
        return None

    @staticmethod
    def refusal(kind: str, reset_at: float, now: float, plan: str = "plus") -> tuple[int, dict, dict]:
        reset_at = math.ceil(reset_at)
        if kind == "codex":
            return 429, {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                   "plan_type": plan, "resets_at": reset_at, "eligible_promo": None,
                                   "resets_in_seconds": max(1, int(reset_at - now))}}, {}
        return 429, {"type": "error", "error": {"type": "rate_limit_error", "message":
                                                "This request would exceed your account's rate limit. Please try again later."}}, {
            "anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-5h-status": "rejected",
            "anthropic-ratelimit-unified-5h-reset": str(reset_at)}

    def usage_answer(self, token: str, kind: str, now: float) -> dict:
        live = self.windows(token, kind, now) if self.step > 0 else {}
        if kind == "codex":
            out = {}
            for name, (used, window, after) in CODEX_WINDOWS.items():
                used, reset = live.get(name, (used, now + after))
                out[name] = {"used_percent": round(used, 1), "limit_window_seconds": window,
                             "reset_after_seconds": max(0, int(reset - now)), "reset_at": int(reset)}
            full = any(w["used_percent"] >= 100 for w in out.values())
            return {"plan_type": "plus", "rate_limit": {"allowed": not full, "limit_reached": full, **out},
                    "credits": {"has_credits": False, "unlimited": False, "balance": "0"}}
        out = {}
        for name, spec in CLAUDE_WINDOWS.items():
            if spec is None:
                out[name] = None
                continue
            used, reset = live.get(name, (spec[0], now + spec[1]))
            out[name] = {"utilization": round(used, 1), "resets_at": rfc3339(datetime.fromtimestamp(reset, timezone.utc))}
        return out

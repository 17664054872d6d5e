"""The gateway's side of the account pool (issue 29): the models whose provider has no account left in
rotation, as the steward wrote them in `.router/state/pool.json` (tasks.pool; contract B).

A request for such a model is answered here, before either path reads it: with the active profile's
fallback for it, the request goes on with that model; without one, a 429 in the client's protocol
naming the earliest reset (tasks.gateway.gate). The file is looked at (stat) at most every
CHECK_SECONDS and read only when it changed; missing, damaged, oversized or stale (the steward
stopped writing it) means nothing is steered; an entry past its reset holds until the steward
rewrites the file. Never raises: a request must not fail on this file.
"""

from __future__ import annotations

import json
import math
import os
import time

CHECK_SECONDS = 0.25
MAX_BYTES = 1024 * 1024
STALE_SECONDS = 120.0  # the steward rewrites the file at least every 30 s while it runs
POOL_FILE_ENV = "FLOWGATE_POOL_FILE"  # tests and the bench point the gateway elsewhere


def default_path() -> str:
    from ..base.paths import Paths

    return os.environ.get(POOL_FILE_ENV) or str(Paths.from_env().pool_state)


class Steered:
    def __init__(self, path: str | None = None, clock=time.monotonic, wall=time.time):
        self.path, self.clock, self.wall = path, clock, wall
        self.checked, self.seen, self.updated = -math.inf, None, 0.0
        self.models: dict = {}

    def lookup(self, model) -> dict | None:
        """{"provider", "resets_at", "fallback"} for a steered model, else None."""
        now = self.clock()
        if now - self.checked >= CHECK_SECONDS:
            self.checked = now
            self._refresh()
        if not self.models or not isinstance(model, str):
            return None
        entry = self.models.get(model)
        if entry is None:
            return None
        if self.wall() - self.updated > STALE_SECONDS:
            return None  # the steward is gone: CLIProxyAPI decides
        # past its reset, the entry still holds until the steward has put an account back (a second
        # or so): CLIProxyAPI has no account for the model meanwhile and would answer a 400
        return entry

    def _refresh(self) -> None:
        try:
            if self.path is None:
                self.path = default_path()
            info = os.stat(self.path)
        except (OSError, ValueError):
            self.seen, self.models = None, {}
            return
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
        if key == self.seen:
            return
        self.seen = key
        self.models, self.updated = _parse(self.path, info.st_size)


def _parse(path: str, size: int) -> tuple[dict, float]:
    if size > MAX_BYTES:
        return {}, 0.0
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
        try:
            import stat

            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return {}, 0.0
            raw = os.read(fd, MAX_BYTES + 1)
        finally:
            os.close(fd)
        data = json.loads(raw) if len(raw) <= MAX_BYTES else None
    except (OSError, ValueError, RecursionError):
        return {}, 0.0
    if not isinstance(data, dict) or not isinstance(data.get("steered"), dict):
        return {}, 0.0
    updated = data.get("updated")
    models = {}
    for model, entry in data["steered"].items():
        if not isinstance(entry, dict):
            continue
        resets = entry.get("resets_at")
        fallback = entry.get("fallback")
        models[model] = {"provider": str(entry.get("provider") or "")[:64],
                         "resets_at": float(resets) if isinstance(resets, (int, float)) and not isinstance(resets, bool)
                         and math.isfinite(resets) else None,
                         "fallback": fallback if isinstance(fallback, str) and fallback and len(fallback) <= 256 else None}
    return models, float(updated) if isinstance(updated, (int, float)) and not isinstance(updated, bool) else 0.0


def answer(model: str, entry: dict, wall: float | None = None) -> tuple[str, int]:
    """(message, retry-after seconds) of the 429 for a steered model without a fallback."""
    now = time.time() if wall is None else wall
    provider = entry.get("provider") or "its provider"
    resets = entry.get("resets_at")
    if resets is None:
        return (f"every {provider} account is out of rotation near its quota limit, so {model} is not served "
                "now; the reset time is not known (`uv run doit accounts` shows the accounts)"), 60
    wait = max(1, math.ceil(resets - now))
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(resets))
    return (f"every {provider} account is out of rotation near its quota limit, so {model} is not served until "
            f"the earliest reset at {at} (in {_span(wait)}); `uv run doit accounts` shows the accounts"), wait


def _span(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s" if rest >= 60 else f"{rest}s"

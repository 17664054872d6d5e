"""A download progress bar on one terminal line (only on a TTY, never under CI).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable


def progress_enabled(stream=None, environ: dict | None = None) -> bool:
    """A bar only on an interactive terminal and never under CI."""
    env = os.environ if environ is None else environ
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class ProgressBar:
    """`label  42% [#####.....] 12.0 MiB/28.3 MiB  3.1 MiB/s  ETA 0:05` on one terminal line."""

    def __init__(self, label: str, stream=None, *, min_interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, width: int | None = None):
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.min_interval = min_interval
        self.clock = clock
        import shutil

        self.width = width or shutil.get_terminal_size((80, 24)).columns
        self.start = clock()
        self._last = -1.0
        self._shown = False
        self._done = 0
        self._total: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        self._done, self._total = done, total
        now = self.clock()
        if now - self._last < self.min_interval and not (total and done >= total):
            return
        self._last = now
        self.stream.write("\r" + self.render(now))
        self.stream.flush()
        self._shown = True

    def render(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-6)
        rate = self._done / elapsed
        total = self._total
        if total:
            frac = min(1.0, self._done / total)
            eta = (total - self._done) / rate if rate > 0 else None
            eta_txt = f"{int(eta) // 60}:{int(eta) % 60:02d}" if eta is not None else "?:??"
            tail = f" {frac * 100:3.0f}% {{bar}} {_human(self._done)}/{_human(total)}  {_human(rate)}/s  ETA {eta_txt}"
            room = max(10, min(30, self.width - len(tail) - 12))
            filled = int(room * frac)
            bar = "[" + "#" * filled + "." * (room - filled) + "]"
            tail = tail.replace("{bar}", bar)
        else:
            tail = f" {_human(self._done)}  {_human(rate)}/s"
        label = self.label
        max_label = max(8, self.width - len(tail) - 1)
        if len(label) > max_label:
            label = label[: max_label - 1] + "…"
        return (label + tail)[: self.width - 1].ljust(self.width - 1)

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r" + self.render() + "\n")
            self.stream.flush()

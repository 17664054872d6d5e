"""When does a quota window fill at the current pace? Pure: samples of (time, used percent) in, an
epoch out. "5h window 78 %, full at ~15:40 at this pace".

The pace is the slope from the first sample of the current run (no drop since: a drop is a reset)
to the newest, over at most HORIZON seconds; a window that did not move has no forecast.
"""

from __future__ import annotations

HORIZON = 3600.0  # seconds of samples the pace is taken over
MAX_SAMPLES = 64  # per window: a steward that runs for weeks keeps a bounded history


def add(samples: list[tuple[float, float]], at: float, used: float) -> list[tuple[float, float]]:
    """`samples` with (at, used) appended; older than HORIZON or past MAX_SAMPLES dropped; a drop in
    `used` (the window reset) starts the run again."""
    if samples and used < samples[-1][1]:
        samples = []
    kept = [s for s in samples if at - s[0] <= HORIZON and s[0] < at]
    return (kept + [(at, used)])[-MAX_SAMPLES:]


def pace(samples: list[tuple[float, float]]) -> float | None:
    """Percent per second over the samples, or None when there is no rise to measure."""
    if len(samples) < 2:
        return None
    (t0, u0), (t1, u1) = samples[0], samples[-1]
    if t1 <= t0 or u1 <= u0:
        return None
    return (u1 - u0) / (t1 - t0)


def reach_at(samples: list[tuple[float, float]], percent: float, resets_at: float | None = None) -> float | None:
    """When the window reaches `percent` at the current pace (epoch s); the newest sample's time when
    it is there already; None without a pace, or when the window resets first."""
    if not samples:
        return None
    at, used = samples[-1]
    if used >= percent:
        return at
    rate = pace(samples)
    if rate is None:
        return None
    when = at + (percent - used) / rate
    return None if resets_at is not None and when >= resets_at else when


def full_at(samples: list[tuple[float, float]], resets_at: float | None = None) -> float | None:
    return reach_at(samples, 100.0, resets_at)


def phrase(name: str, used: float, full: float | None, clock: str | None = None) -> str:
    """`5h window 78 %, full at ~15:40 at this pace` (clock: the local HH:MM of `full`, given by the caller)."""
    text = f"{name} window {used:g} %"
    if full is not None:
        if clock is None:
            import time

            clock = time.strftime("%H:%M", time.localtime(full))
        text += f", full at ~{clock} at this pace"
    return text

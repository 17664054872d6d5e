"""The `accounts:` section of the config: quota-aware steering of the account pool (tasks.pool reads it)."""

from __future__ import annotations

from collections import namedtuple

from .schema import Mapping, Scalar

ACCOUNTS = Mapping({
    "steering": Scalar(bool, default=True),
    "threshold": Scalar((int, float), default=90, min=1, max=100, what="a percent from 1 to 100"),
    "refresh_seconds": Scalar((int, float), default=60, min=5, max=3600, what="seconds from 5 to 3600"),
    "min_refresh_seconds": Scalar((int, float), default=2, min=0.5, max=600, what="seconds from 0.5 to 600"),
    "read_usage_queue": Scalar(bool, default=False),
})


class Steering(namedtuple("Steering", "steering threshold refresh_seconds min_refresh_seconds read_usage_queue")):
    """The section's values, defaults filled in (a stack.json older than the section has none)."""

    __slots__ = ()


DEFAULTS = Steering(True, 90.0, 60.0, 2.0, False)


def steering(stack: dict | None) -> Steering:
    section = (stack or {}).get("accounts")
    section = section if isinstance(section, dict) else {}
    values = []
    for key, default in DEFAULTS._asdict().items():
        value = section.get(key, default)
        ok = isinstance(value, type(default)) if isinstance(default, bool) else (
            isinstance(value, (int, float)) and not isinstance(value, bool))
        values.append(value if ok else default)
    out = Steering(*values)
    return out._replace(threshold=float(out.threshold), refresh_seconds=float(out.refresh_seconds),
                        min_refresh_seconds=min(float(out.min_refresh_seconds), float(out.refresh_seconds)))

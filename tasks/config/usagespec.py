"""The `usage:` section of the config: how long the usage history is kept (tasks.usage reads it)."""

from __future__ import annotations

from .schema import Mapping, Scalar

from ..gateway.handoff import RETENTION_DEFAULT as RETENTION_DAYS  # the recorder's own default

USAGE = Mapping({
    "retention_days": Scalar(int, default=RETENTION_DAYS, min=1, max=3650, what="a number of days from 1 to 3650"),
})


def retention_days(stack: dict | None) -> int:
    value = ((stack or {}).get("usage") or {}).get("retention_days")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else RETENTION_DAYS

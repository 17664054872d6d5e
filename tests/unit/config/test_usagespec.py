"""tasks.config.usagespec: the `usage:` config section, through the real config loader."""

from __future__ import annotations

import pytest

from tasks.config.load import load_stack
from tasks.base.errors import FlowgateError
from tasks.config.usagespec import RETENTION_DAYS, retention_days


def test_retention_defaults_to_30_days_and_takes_a_bounded_integer(paths):
    assert load_stack(paths)["usage"] == {"retention_days": RETENTION_DAYS} == {"retention_days": 30}
    paths.local_config.write_text("usage: {retention_days: 7}\n")
    assert retention_days(load_stack(paths)) == 7
    for bad in ("0", "true", "'7'", "100000"):
        paths.local_config.write_text(f"usage: {{retention_days: {bad}}}\n")
        with pytest.raises(FlowgateError) as err:
            load_stack(paths)
        assert "usage.retention_days" in "\n".join([err.value.message, *err.value.details])
    assert retention_days(None) == 30 and retention_days({"usage": {"retention_days": True}}) == 30

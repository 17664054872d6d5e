"""Fixtures of the usage tests: local time in zones where an hour may straddle two days."""

from __future__ import annotations

import time

import pytest


@pytest.fixture(params=["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"])
def zone(request, monkeypatch):
    """Local days and hours in zones offset by whole hours, 30 and 45 minutes (and with DST)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()

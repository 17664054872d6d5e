"""tasks.base.fsutil: atomic, change-only writes."""

from __future__ import annotations

import os
import stat

from tasks.base.fsutil import atomic_write


def test_writes_only_when_changed(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    assert atomic_write(target, "one", mode=0o600) is True
    os.utime(target, ns=(1, 1))
    assert atomic_write(target, "one", mode=0o600) is False
    assert target.stat().st_mtime_ns == 1
    assert atomic_write(target, "two", mode=0o600) is True
    assert target.read_text() == "two" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]  # no temp files left


def test_replaces_rather_than_overwrites(tmp_path):
    target = tmp_path / "f"
    atomic_write(target, "old")
    with open(target) as reader:  # a reader holding the old file keeps seeing it whole
        atomic_write(target, "new")
        assert reader.read() == "old"
    assert target.read_text() == "new"


def test_mode_corrected_when_content_same(tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    os.chmod(target, 0o644)
    assert atomic_write(target, "x", mode=0o600) is False
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

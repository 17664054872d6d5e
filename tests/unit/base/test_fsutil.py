"""tasks.base.fsutil: atomic, change-only writes."""

from __future__ import annotations

import os
import stat

from tasks.base.fsutil import atomic_write, write_in_place


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


def test_write_in_place_keeps_the_inode_a_watcher_holds(tmp_path):
    target = tmp_path / "config.yaml"
    target.write_text("a: 1\nlonger: line\n")
    inode = target.stat().st_ino
    assert write_in_place(target, "a: 2\n", mode=0o600) is True
    assert target.read_text() == "a: 2\n" and target.stat().st_ino == inode  # cut to the new length
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert write_in_place(target, "a: 2\n", mode=0o600) is False


def test_write_in_place_creates_a_missing_file_and_never_follows_a_link(tmp_path):
    fresh = tmp_path / "new.yaml"
    assert write_in_place(fresh, "x: 1\n") and fresh.read_text() == "x: 1\n"
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(outside)
    write_in_place(link, "y: 2\n")
    assert outside.read_text() == "keep me\n" and not link.is_symlink() and link.read_text() == "y: 2\n"

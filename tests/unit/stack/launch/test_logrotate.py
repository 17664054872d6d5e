"""tasks.stack.launch.logrotate: service logs are bounded across starts (issue 8, item 11)."""

from __future__ import annotations

import os

import pytest

import tasks.stack.launch.logrotate as logrotate
from tasks.stack.launch.logrotate import rotate_if_large, rotate_in_place, rotated
from tasks.stack.process.spawning import _open_log


def test_rotates_only_when_large_and_keeps_a_bounded_number(tmp_path):
    log = tmp_path / "litellm.log"
    assert rotate_if_large(log, max_bytes=10) is False  # missing: nothing to do
    log.write_text("small")
    assert rotate_if_large(log, max_bytes=10) is False and log.exists()
    for n in range(5):
        log.write_text(f"run {n} " + "x" * 20)
        assert rotate_if_large(log, max_bytes=10, keep=3) is True
    assert not log.exists()
    assert [rotated(log, n).read_text()[:5] for n in (1, 2, 3)] == ["run 4", "run 3", "run 2"]
    assert not rotated(log, 4).exists()


def test_a_service_start_opens_a_fresh_log_when_the_old_one_is_large(tmp_path, monkeypatch):

    monkeypatch.setattr(logrotate, "MAX_LOG_BYTES", 100)
    log = tmp_path / "litellm.log"
    log.write_text("x" * 200)
    os.close(_open_log(log))
    assert log.read_text().startswith("--- started") and rotated(log, 1).read_text() == "x" * 200


def test_a_running_service_log_is_rotated_in_place(tmp_path):
    """The service keeps its log open for appending: its next lines land in the emptied file."""
    log = tmp_path / "cliproxy.log"
    fd = _open_log(log)  # as spawn opens it for the service (O_APPEND)
    try:
        os.write(fd, b"old line\n" * 20)
        assert logrotate.rotate_in_place(log, max_bytes=50) is True
        os.write(fd, b"new line\n")  # the same descriptor the service writes through
    finally:
        os.close(fd)
    assert log.read_bytes() == b"new line\n"  # no hole of zeros where the old content was
    assert rotated(log, 1).read_text().endswith("old line\n" * 20)
    assert os.stat(rotated(log, 1)).st_mode & 0o777 == 0o600  # as private as the log
    assert logrotate.rotate_in_place(log, max_bytes=50) is False  # small again: left alone


@pytest.mark.parametrize("rotate", [rotate_if_large, rotate_in_place])
def test_a_symlinked_log_is_never_copied_renamed_or_truncated(tmp_path, rotate):
    from tasks.base.errors import FlowgateError

    outside = tmp_path / "outside.log"
    outside.write_bytes(b"x" * 200)
    log = tmp_path / "logs" / "litellm.log"
    log.parent.mkdir()
    log.symlink_to(outside)
    with pytest.raises(FlowgateError, match="is a symbolic link"):
        rotate(log, max_bytes=100)
    assert outside.read_bytes() == b"x" * 200 and log.is_symlink() and not (tmp_path / "logs" / "litellm.log.1").exists()

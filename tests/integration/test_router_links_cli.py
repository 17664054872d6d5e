"""Symbolic links in .router/ and config/ through the real `doit` command line (issue 21, item 8):
FlowGate never writes, truncates or chmods through a link in .router/, and a link to nothing is
named as such. No service is started."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_doit


def no_traceback(result):
    assert "Traceback" not in result.output, result.output


@pytest.mark.parametrize("target", ["missing.yaml", "loop"], ids=["dangling", "looping"])
def test_a_dangling_or_looping_local_yaml_is_an_error(home, target):
    local = home / "config" / "local.yaml"
    local.symlink_to(home / "config" / target if target != "loop" else local)
    result = run_doit(home, "check")
    assert result.returncode == 1, result.output
    no_traceback(result)
    said = "which does not exist" if target != "loop" else "a symbolic link that loops"
    assert f"config/local.yaml: " in result.stderr and said in result.stderr, result.stderr


def test_a_symlinked_secrets_dir_is_never_chmodded(home, tmp_path):
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir(mode=0o755)
    os.chmod(elsewhere, 0o755)
    (home / ".router").mkdir()
    (home / ".router" / "secrets").symlink_to(elsewhere)
    result = run_doit(home, "secrets")
    assert result.returncode == 1, result.output
    no_traceback(result)
    assert "is a symbolic link" in result.stderr and "never writes through a link" in result.stderr
    assert (elsewhere.stat().st_mode & 0o777) == 0o755 and list(elsewhere.iterdir()) == []


def test_a_dangling_secret_link_is_named_not_looped(home):
    assert run_doit(home, "secrets").returncode == 0
    key = home / ".router" / "secrets" / "litellm_master_key"
    key.unlink()
    key.symlink_to(home / "gone")
    for command in ("secrets", "check"):
        result = run_doit(home, command)
        no_traceback(result)
        if command == "secrets":
            assert result.returncode == 1, result.output
            assert "is a symbolic link to" in result.stderr and "which does not exist" in result.stderr, result.stderr
    assert key.is_symlink() and not (home / "gone").exists()


def test_a_symlinked_events_log_is_never_appended_to(home, tmp_path):
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text("")
    (home / ".router").mkdir()
    (home / ".router" / "events.jsonl").symlink_to(outside)
    result = run_doit(home, "profile", "reliable")  # a switch while down: rendered, and an event
    assert result.returncode == 1, result.output
    no_traceback(result)
    assert "events.jsonl is a symbolic link" in result.stderr
    assert outside.read_text() == ""

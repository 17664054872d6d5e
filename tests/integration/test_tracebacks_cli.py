"""Faults that once ended in a traceback, through the real `doit` command line (issue 21, item 12):
a full disk, `--out` naming a file, a settings file nested 100,000 levels deep, 2 GB state files.
No service is started."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.catalog_support import keep
from tests.conftest import make_home, run_doit


def clean_failure(result, *said):
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output and "bug in FlowGate" not in result.output, result.output
    for text in said:
        assert text in result.stderr, result.stderr


def test_export_out_naming_an_existing_file(home, tmp_path):
    target = tmp_path / "manifests.yaml"
    target.write_text("mine\n")
    for command in ("export:k8s", "export:compose"):
        clean_failure(run_doit(home, command, "--out", str(target)), "exists and is not a directory")
    assert target.read_text() == "mine\n"


def test_a_settings_file_nested_100000_levels_deep(home, paths, tmp_path):
    keep(paths, "claude")  # a claude account serves models: the settings file is what is wrong
    settings = tmp_path / "claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text("[" * 100_000 + "]" * 100_000)
    result = run_doit(home, "integrate:claude", env={"CLAUDE_CONFIG_DIR": str(settings.parent)})
    clean_failure(result, "cannot parse: nested too deeply")


def test_2_gb_state_files_are_not_read_whole(home):
    assert run_doit(home, "render").returncode == 0
    state = home / ".router" / "state"
    for path in (state / "stack.json", state / "config.sources.json", home / ".router" / "profile.json"):
        with open(path, "ab"):
            os.truncate(path, 2 << 30)  # sparse: costs no disk, would cost 2 GB of memory read whole
    result = run_doit(home, "status", timeout=60)
    assert "Traceback" not in result.output, result.output
    assert "profile.json is unreadable" in result.output, result.output


@pytest.fixture
def full_disk(tmp_path):
    """A home on a 2 MiB tmpfs (needs root to mount); filled up by the test."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield make_home(mount / "home")
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(home):
    with open(home / "fill", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_a_full_disk_is_one_line_not_a_traceback(full_disk):
    home = full_disk
    assert run_doit(home, "render").returncode == 0
    (home / "config" / "local.yaml").write_text("litellm:\n  port: 4100\n")  # work for `config` to do
    fill(home)
    for command in ("up", "status", "render"):
        result = run_doit(home, command)
        clean_failure(result)  # status writes nothing it needs: it may just say the stack is down
        assert "full" in result.stderr or command == "status", (command, result.stderr)

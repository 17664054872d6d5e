"""tasks.clients.files: backups, 0600 writes, apply twice, restore."""

from __future__ import annotations

import stat

from tasks.clients.files import FileChange, apply, backups, digest, restore


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backup_then_restore_round_trip(tmp_path):
    target = tmp_path / "config.toml"
    original = b"# mine\nmodel = 'o3'\n"
    target.write_bytes(original)
    target.chmod(0o644)
    [line] = apply([FileChange(target, original.decode(), "model = 'x'\n")])
    assert "written (0600)" in line
    [saved] = backups(target)
    assert saved.read_bytes() == original and mode(saved) == 0o600 and mode(target) == 0o600
    assert restore(target, original=saved.name).endswith(f"restored your version from before FlowGate ({saved.name}); "
                                                         "FlowGate's backups removed")
    assert target.read_bytes() == original and mode(target) == 0o600
    assert backups(target) == []  # nothing of FlowGate's is left behind


def test_apply_twice_writes_nothing_the_second_time(tmp_path):
    target = tmp_path / "settings.json"
    change = FileChange(target, None, "{}\n")
    assert apply([change]) == [f"{target}: written (0600), new file"]
    before = target.stat().st_mtime_ns
    again = FileChange(target, target.read_text(), "{}\n")
    assert apply([again]) == [f"{target}: already up to date"]
    assert target.stat().st_mtime_ns == before and backups(target) == []


def test_restore_brings_back_the_users_version_never_flowgates(tmp_path):
    target = tmp_path / "f"
    target.write_text("mine\n")
    first: dict = {}
    apply([FileChange(target, "mine\n", "flowgate one\n")], first)
    apply([FileChange(target, "flowgate one\n", "flowgate two\n")], {})  # other settings, applied again
    assert [b.read_text() for b in backups(target)] == ["mine\n", "flowgate one\n"]
    restore(target, original=first[str(target)])
    assert target.read_text() == "mine\n" and backups(target) == []
    # without a record of the first backup (an older FlowGate) the newest one is the best guess
    apply([FileChange(target, "mine\n", "flowgate\n")])
    restore(target)
    assert target.read_text() == "mine\n"


def test_a_created_file_goes_unless_it_holds_the_users_changes(tmp_path):
    fresh = tmp_path / "new"
    apply([FileChange(fresh, None, "x\n")])
    assert restore(fresh) == f"{fresh}: no FlowGate backup here, left as it is"
    assert restore(fresh, created=True, written=digest("x\n")) == f"{fresh}: removed (FlowGate created it)"
    assert not fresh.exists()
    apply([FileChange(fresh, None, "x\n")])
    fresh.write_text("x\nmine = 1\n")  # the user added their own keys since
    said = restore(fresh, created=True, written=digest("x\n"))
    [kept] = backups(fresh)
    assert said == f"{fresh}: removed (FlowGate created it); it held changes of yours, kept in {kept.name}"
    assert kept.read_text() == "x\nmine = 1\n" and not fresh.exists()


def test_diff_shows_the_change_against_the_file():
    diff = FileChange(__import__("pathlib").Path("/x/c.toml"), "a\n", "a\nb\n").diff()
    assert diff.splitlines()[:2] == ["--- /x/c.toml", "+++ /x/c.toml"] and "+b" in diff


# --- hardening round 3: files from outside FlowGate's control, links, read-only files -------------

import os  # noqa: E402

import pytest  # noqa: E402

from tasks.base.errors import FlowgateError  # noqa: E402
from tasks.clients.files import SETTINGS_LIMIT, read_text  # noqa: E402


def test_a_fifo_a_device_link_or_a_huge_file_is_refused_without_reading(tmp_path):
    fifo = tmp_path / "settings.json"
    os.mkfifo(fifo)  # would block a plain read forever
    with pytest.raises(FlowgateError, match="is a FIFO, not a regular file: refused without reading it"):
        read_text(fifo)
    zero = tmp_path / "config.toml"
    zero.symlink_to("/dev/zero")  # would never end
    with pytest.raises(FlowgateError, match="is a character device, not a regular file"):
        read_text(zero)
    huge = tmp_path / "big.json"
    with open(huge, "wb") as fh:
        fh.truncate(300 << 20)  # sparse: 300 MB that cost nothing to make
    with pytest.raises(FlowgateError, match=f"larger than {SETTINGS_LIMIT >> 10} KiB"):
        read_text(huge)
    assert read_text(tmp_path / "missing.toml") is None


def test_a_symlinked_settings_file_is_written_through_the_link(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "config.toml"
    real.write_text("model = 'o3'\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    [line] = apply([FileChange(link, "model = 'o3'\n", "model = 'x'\n")])
    assert link.is_symlink() and real.read_text() == "model = 'x'\n"  # the link stays a link
    assert f"written (0600) (through the link to {real})" in line
    assert restore(link).startswith(f"{link}: restored your version from before FlowGate") and link.is_symlink() and real.read_text() == "model = 'o3'\n"


def test_a_read_only_settings_file_is_respected(tmp_path):
    other, locked = tmp_path / "a.toml", tmp_path / "settings.json"
    other.write_text("a = 1\n")
    locked.write_text("{}\n")
    locked.chmod(0o444)
    with pytest.raises(FlowgateError) as info:
        apply([FileChange(other, "a = 1\n", "a = 2\n"), FileChange(locked, "{}\n", '{"x": 1}\n')])
    assert "is read-only: FlowGate leaves it as it is; nothing was written" in info.value.message
    assert "chmod u+w" in info.value.hint
    assert other.read_text() == "a = 1\n" and locked.read_text() == "{}\n" and mode(locked) == 0o444
    assert backups(other) == [] and backups(locked) == []

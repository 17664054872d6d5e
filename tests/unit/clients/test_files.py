"""tasks.clients.files: backups, 0600 writes, apply twice, restore."""

from __future__ import annotations

import stat

from tasks.clients.files import FileChange, apply, backups, digest, restore


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def nothing_of_flowgate(text: str, user: str) -> str | None:
    """An unmerge for these files: FlowGate's lines start with "flowgate"; the user's own come back."""
    kept = [line for line in text.splitlines(keepends=True) if not line.startswith("flowgate")]
    return "".join(kept) + user if kept or user else None


def test_backup_then_restore_round_trip(tmp_path):
    target = tmp_path / "config.toml"
    original = b"# mine\nmodel = 'o3'\n"
    target.write_bytes(original)
    target.chmod(0o644)
    written: dict = {}
    [line] = apply([FileChange(target, original.decode(), "flowgate = 'x'\n")], written)
    assert "written (0600)" in line
    [saved] = backups(target)
    assert saved.read_bytes() == original and mode(saved) == 0o600 and mode(target) == 0o600
    said = restore(target, nothing_of_flowgate, original=saved.name, written=digest("flowgate = 'x'\n"))
    [before] = tmp_path.glob("config.toml.flowgate-before-restore-*")
    assert said == f"{target}: restored (your version from before FlowGate); the file as it was is in {before.name}"
    assert target.read_bytes() == original and mode(target) == 0o600
    assert backups(target) == [] and before.read_text() == "flowgate = 'x'\n"


def test_apply_twice_writes_nothing_the_second_time(tmp_path):
    target = tmp_path / "settings.json"
    change = FileChange(target, None, "{}\n")
    assert apply([change]) == [f"{target}: written (0600), new file"]
    before = target.stat().st_mtime_ns
    again = FileChange(target, target.read_text(), "{}\n")
    assert apply([again]) == [f"{target}: already up to date"]
    assert target.stat().st_mtime_ns == before and backups(target) == []


def test_restore_keeps_every_line_the_user_added_between_applies(tmp_path):
    target = tmp_path / "f"
    target.write_text("mine\n")
    first: dict = {}
    apply([FileChange(target, "mine\n", "flowgate one\n")], first)
    target.write_text("flowgate one\nadded later\n")  # the user's edit after the first apply
    apply([FileChange(target, target.read_text(), "flowgate two\nadded later\n")], {})  # applied again
    restore(target, nothing_of_flowgate, original=first[str(target)], written=digest("flowgate two\nadded later\n"))
    assert target.read_text() == "added later\nmine\n"
    # without a record of the first backup (an older FlowGate) the oldest one is the user's version
    apply([FileChange(target, target.read_text(), "flowgate\n")])
    apply([FileChange(target, "flowgate\n", "flowgate 2\n")])
    restore(target, nothing_of_flowgate)
    assert target.read_text() == "added later\nmine\n"


def test_a_created_file_goes_unless_it_holds_the_users_lines(tmp_path):
    fresh = tmp_path / "new"
    apply([FileChange(fresh, None, "flowgate\n")])
    assert restore(fresh, nothing_of_flowgate, created=True, written=digest("flowgate\n")) == \
        f"{fresh}: removed (FlowGate created it)"
    assert not fresh.exists() and backups(fresh) == []
    apply([FileChange(fresh, None, "flowgate\n")])
    fresh.write_text("flowgate\nmine = 1\n")  # the user added their own keys since
    said = restore(fresh, nothing_of_flowgate, created=True, written=digest("flowgate\n"))
    assert said.startswith(f"{fresh}: restored (FlowGate's settings taken out, your own kept)")
    assert fresh.read_text() == "mine = 1\n"
    assert restore(fresh, nothing_of_flowgate) == f"{fresh}: no FlowGate settings here, left as it is"


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
    [line] = apply([FileChange(link, "model = 'o3'\n", "flowgate = 'x'\n")])
    assert link.is_symlink() and real.read_text() == "flowgate = 'x'\n"  # the link stays a link
    assert f"written (0600) (through the link to {real})" in line
    said = restore(link, nothing_of_flowgate, written=digest("flowgate = 'x'\n"))
    assert said.startswith(f"{link}: restored (your version from before FlowGate)") and link.is_symlink()
    assert real.read_text() == "model = 'o3'\n"


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

"""tasks.clients.files: backups, 0600 writes, apply twice, restore."""

from __future__ import annotations

import stat

from tasks.clients.files import FileChange, apply, backups, restore


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
    assert restore(target).endswith(f"restored from {saved.name}")
    assert target.read_bytes() == original and mode(target) == 0o600
    assert backups(target) == [saved]  # the backup stays


def test_apply_twice_writes_nothing_the_second_time(tmp_path):
    target = tmp_path / "settings.json"
    change = FileChange(target, None, "{}\n")
    assert apply([change]) == [f"{target}: written (0600), new file"]
    before = target.stat().st_mtime_ns
    again = FileChange(target, target.read_text(), "{}\n")
    assert apply([again]) == [f"{target}: already up to date"]
    assert target.stat().st_mtime_ns == before and backups(target) == []


def test_the_last_backup_wins_and_created_files_are_removed(tmp_path):
    target = tmp_path / "f"
    target.write_text("one\n")
    apply([FileChange(target, "one\n", "two\n")])
    apply([FileChange(target, "two\n", "three\n")])
    assert [b.read_text() for b in backups(target)] == ["one\n", "two\n"]
    restore(target)
    assert target.read_text() == "two\n"
    fresh = tmp_path / "new"
    apply([FileChange(fresh, None, "x\n")])
    assert restore(fresh) == f"{fresh}: no FlowGate backup here, left as it is"
    assert restore(fresh, created=True) == f"{fresh}: removed (FlowGate created it)" and not fresh.exists()


def test_diff_shows_the_change_against_the_file():
    diff = FileChange(__import__("pathlib").Path("/x/c.toml"), "a\n", "a\nb\n").diff()
    assert diff.splitlines()[:2] == ["--- /x/c.toml", "+++ /x/c.toml"] and "+b" in diff

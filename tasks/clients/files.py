"""How client settings files are changed: everything parsed before anything is written, a
timestamped 0600 backup beside each file before it changes, atomic 0600 writes, and a restore."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import PRIVATE_FILE_MODE, atomic_write

BACKUP_MARK = ".flowgate-backup-"
BEFORE_RESTORE_MARK = ".flowgate-before-restore-"  # not a backup of the user's version: never restored from


@dataclass
class FileChange:
    path: Path
    old: str | None  # None: the file does not exist yet
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        before = (self.old or "").splitlines(keepends=True)
        label = str(self.path)
        lines = difflib.unified_diff(before, self.new.splitlines(keepends=True),
                                     "/dev/null" if self.old is None else label, label)
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


SETTINGS_LIMIT = 1 << 20  # a client's settings file is a few KiB: 1 MiB is no settings file


def read_text(path: Path) -> str | None:
    """A client's settings file (or None): a regular file of at most 1 MiB, read as UTF-8."""
    from ..base.fsutil import read_foreign

    fix = "check the file (a regular UTF-8 file), or move it away; nothing was written"
    data = read_foreign(path, SETTINGS_LIMIT, fix)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlowgateError(f"cannot read {path}: {exc}", fix) from None


def parse_error(path: Path, line: int | None, reason: str) -> FlowgateError:
    where = f"{path}:{line}" if line else str(path)
    return FlowgateError(f"{where}: cannot parse: {reason}",
                         "fix that line (or move the file away), then run the command again; nothing was written")


def backups(path: Path) -> list[Path]:
    """Backups of `path`, oldest first (the timestamp sorts as text)."""
    return sorted(path.parent.glob(path.name + BACKUP_MARK + "*"))


def backup(path: Path, mark: str = BACKUP_MARK) -> Path:
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
    target = path.with_name(path.name + mark + stamp)
    atomic_write(target, path.read_bytes(), mode=PRIVATE_FILE_MODE, only_if_changed=False)
    return target


def writable_target(path: Path) -> Path:
    """Where a change to `path` is written: through a symbolic link to the file it names (dotfiles
    kept in a repository stay links), never replacing the link. Refuses a read-only file."""
    import os
    import stat

    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    if not mode & stat.S_IWUSR:
        raise FlowgateError(f"{path} is read-only: FlowGate leaves it as it is; nothing was written",
                            f"make it writable (`chmod u+w {target}`) to let FlowGate change it, or edit it by hand")
    return target


def apply(changes: list[FileChange], saved_as: dict | None = None) -> list[str]:
    """Write the changed files (backing each up first). Returns one line per file; `saved_as`
    receives each backup's name by path. Every target is checked before anything is written (a
    read-only file stops the whole apply)."""
    targets = {id(change): writable_target(change.path) for change in changes if change.changed}
    lines = []
    for change in changes:
        if not change.changed:
            lines.append(f"{change.path}: already up to date")
            continue
        target = targets[id(change)]
        saved = backup(change.path) if change.old is not None else None
        if saved is not None and saved_as is not None:
            saved_as[str(change.path)] = saved.name
        atomic_write(target, change.new, mode=PRIVATE_FILE_MODE, only_if_changed=False)
        where = f" (through the link to {target})" if target != change.path else ""
        lines.append(f"{change.path}: written (0600){where}" + (f", previous version in {saved.name}" if saved else ", new file"))
    return lines


def digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def restore(path: Path, unmerge, created: bool = False, original: str | None = None,
            written: str | None = None) -> str:
    """Take FlowGate's settings out of `path` and put the user's own values for them back; every
    other line stays as it is now (a user's edits after any number of applies survive).

    unmerge   (current text, the user's version or "") -> the text without FlowGate's settings (the
              user's version exactly when nothing else changed), or None when nothing is left
    original  the backup the first apply made (the user's version); without a record of it, the
              oldest backup here
    created   FlowGate made the file: it goes when nothing of the user's is left in it
    written   the digest of what FlowGate wrote last: a created file still exactly that goes
              without a copy
    The file as it was before the restore is kept beside it (`.flowgate-before-restore-<time>`, the
    last one only); FlowGate's backups go.
    """
    saved = backups(path)
    source = path.with_name(original) if original else (saved[0] if saved and not created else None)
    user = source.read_text(encoding="utf-8") if source is not None and source.exists() else None
    current = read_text(path)
    if current is None:
        return f"{path}: not there, left as it is"
    new = unmerge(current, user or "")
    if new is not None and not new.strip() and created:
        new = None
    if new == current:
        return f"{path}: no FlowGate settings here, left as it is"
    kept = backup(path, BEFORE_RESTORE_MARK) if new is not None or digest(current) != written else None
    if new is None:
        path.unlink()
    else:
        atomic_write(writable_target(path), new, mode=PRIVATE_FILE_MODE)
    for old in saved + sorted(path.parent.glob(path.name + BEFORE_RESTORE_MARK + "*")):
        if old != kept:
            old.unlink(missing_ok=True)
    if new is None:
        return f"{path}: removed (FlowGate created it)" + (f"; it as it was is in {kept.name}" if kept else "")
    how = "your version from before FlowGate" if new == user else "FlowGate's settings taken out, your own kept"
    return f"{path}: restored ({how}); the file as it was is in {kept.name}"

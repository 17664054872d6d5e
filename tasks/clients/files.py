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


def backup(path: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
    target = path.with_name(path.name + BACKUP_MARK + stamp)
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


def restore(path: Path, created: bool = False, original: str | None = None, written: str | None = None) -> str:
    """Put back what the user had before FlowGate first touched `path`, then clear FlowGate's backups.

    original  the backup the first apply made (the user's own version); without a record of it, the
              newest backup is the best guess
    created   FlowGate made the file: it goes, unless it holds changes FlowGate did not write (its
              content differs from `written`, the digest of what FlowGate wrote last): those are
              kept in a backup first, never deleted
    """
    saved = backups(path)
    source = path.with_name(original) if original else (saved[-1] if saved and not created else None)
    if source is not None and source.exists():
        atomic_write(writable_target(path), source.read_bytes(), mode=PRIVATE_FILE_MODE)
        for old in saved:
            old.unlink(missing_ok=True)
        return f"{path}: restored your version from before FlowGate ({source.name}); FlowGate's backups removed"
    if created and path.exists():
        current = read_text(path) or ""
        kept = backup(path) if written is not None and digest(current) != written else None
        path.unlink()
        for old in saved:
            if old != kept:
                old.unlink(missing_ok=True)
        if kept:
            return f"{path}: removed (FlowGate created it); it held changes of yours, kept in {kept.name}"
        return f"{path}: removed (FlowGate created it)"
    return f"{path}: no FlowGate backup here, left as it is"

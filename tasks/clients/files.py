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


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowgateError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                            "check the file's permissions and encoding (UTF-8); nothing was written") from None


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


def apply(changes: list[FileChange]) -> list[str]:
    """Write the changed files (backing each up first). Returns one line per file."""
    lines = []
    for change in changes:
        if not change.changed:
            lines.append(f"{change.path}: already up to date")
            continue
        saved = backup(change.path) if change.old is not None else None
        atomic_write(change.path, change.new, mode=PRIVATE_FILE_MODE, only_if_changed=False)
        lines.append(f"{change.path}: written (0600)" + (f", previous version in {saved.name}" if saved else ", new file"))
    return lines


def restore(path: Path, created: bool = False) -> str:
    """Put the last backup of `path` back (the backup itself stays); a file FlowGate `created` goes."""
    saved = backups(path)
    if not saved:
        if created and path.exists():
            path.unlink()
            return f"{path}: removed (FlowGate created it)"
        return f"{path}: no FlowGate backup here, left as it is"
    atomic_write(path, saved[-1].read_bytes(), mode=PRIVATE_FILE_MODE)
    return f"{path}: restored from {saved[-1].name}"

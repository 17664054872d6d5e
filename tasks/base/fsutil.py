"""Atomic, change-only file writes and private directories.

Every file FlowGate writes goes through here: temp file beside the target + fsync + rename, so a
reader (or a running binary) never sees half a file, and nothing is rewritten when the content is
the same (mtimes stay put, so downstream doit tasks stay up to date).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from .errors import FlowgateError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def refuse_link(path: Path) -> None:
    """FlowgateError when `path` is a symbolic link: FlowGate never writes, truncates or chmods
    through a link under .router/ (its target may be anything, anywhere)."""
    if os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        from .terminal import printable

        raise FlowgateError(f"{path} is a symbolic link (to {printable(target)}): FlowGate never writes through a "
                            "link in .router/", f"remove the link (`rm {path}`) and run the command again; "
                            "FlowGate creates its own file there")


def ensure_dir(path: Path, mode: int = 0o755, allow_link: bool = False) -> Path:
    """Create `path` (and parents) if missing; a private mode is enforced even if it existed.
    `allow_link`: `.router` itself may be a link the user made (to a larger disk, say)."""
    path = Path(path)
    if mode == PRIVATE_DIR_MODE and not allow_link:
        refuse_link(path)  # a chmod would follow it to a directory FlowGate does not own
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    if mode == PRIVATE_DIR_MODE and (path.stat().st_mode & 0o777) != mode:
        os.chmod(path, mode)
    return path


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644, only_if_changed: bool = True) -> bool:
    """Write `data` to `path` atomically with permission `mode` from the first byte.

    Returns True when the file was (re)written, False when it already held exactly `data`
    (its mode is still corrected). Raises FlowgateError on a full disk or permission problem.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if only_if_changed and path.is_file():
        try:
            if path.read_bytes() == data:
                if (path.stat().st_mode & 0o777) != mode:
                    os.chmod(path, mode)
                return False
        except OSError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600, so secrets are never readable by others, not even briefly.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise write_error(path, exc) from None
    return True


def write_in_place(path: Path, data: bytes | str, mode: int = 0o600) -> bool:
    """Rewrite a regular file's content keeping its inode; True when it changed.

    For a file a running process watches by itself (CLIProxyAPI puts an inotify watch on its config
    file, not on the directory): a rename would replace the watched inode, the watch would be lost
    and no later change would ever be reloaded. The content is written in one call from offset 0 and
    cut to length; if that fails, the previous content is put back before the error is raised. A
    missing file (or a symlink, which this never follows) is written with atomic_write instead."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if path.is_symlink() or not path.is_file():
        return atomic_write(path, data, mode=mode)
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        old = b""
        while chunk := os.read(fd, 1 << 20):
            old += chunk
        if (os.fstat(fd).st_mode & 0o777) != mode:
            os.fchmod(fd, mode)
        if old == data:
            return False
        try:
            _write_all(fd, data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                _write_all(fd, old)
            raise write_error(path, exc) from None
        return True
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view, done = memoryview(data), 0
    while done < len(data):
        done += os.pwrite(fd, view[done:], done)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def write_error(path: Path, exc: OSError) -> FlowgateError:
    """Translate an OSError from writing `path` into a user-facing error."""
    if exc.errno == errno.ENOSPC:
        return FlowgateError(f"disk full while writing {path}", "free some space and run the command again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return FlowgateError(f"cannot write {path}: {exc.strerror}", "check the permissions of that directory")
    return FlowgateError(f"cannot write {path}: {exc.strerror or exc}")


class NotRegularFile(Exception):
    """Raised by read_regular: the path is a FIFO, device, socket or directory (`kind` says which)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """Up to `limit + 1` bytes of a regular file, and its stat; never blocks on a FIFO, never reads
    a device. Raises OSError (FileNotFoundError included) or NotRegularFile."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then tells what it is.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(_kind(info.st_mode))
        return os.read(fd, limit + 1), info
    finally:
        os.close(fd)


STATE_FILE_LIMIT = 16 << 20  # FlowGate's own records and state (stack.json included): far less; more is damage


def read_small(path: Path, limit: int = STATE_FILE_LIMIT) -> bytes | None:
    """A regular file of at most `limit` bytes, or None: missing, unreadable, not a regular file or
    larger (a 2 GB sparse file is never read whole)."""
    try:
        data, _ = read_regular(path, limit)
    except (OSError, NotRegularFile):
        return None
    return data if len(data) <= limit else None


def read_foreign(path: Path, limit: int, fix: str) -> bytes | None:
    """A file FlowGate does not own (a client's settings, Codex CLI's auth.json): None when missing;
    a FlowgateError, before reading anything, when it is not a regular file (a FIFO would block, a
    link to /dev/zero never ends) or is larger than `limit` (never read whole)."""
    try:
        data, _ = read_regular(path, limit)
    except FileNotFoundError:
        return None
    except NotRegularFile as exc:
        raise FlowgateError(f"{path} is {exc.kind}, not a regular file: refused without reading it", fix) from None
    except OSError as exc:
        raise FlowgateError(f"cannot read {path}: {exc.strerror or exc}", fix) from None
    if len(data) > limit:
        raise FlowgateError(f"{path} is larger than {limit >> 10} KiB: too large for what it should be; refused", fix)
    return data


def load_json(path: Path, limit: int = STATE_FILE_LIMIT):
    """A JSON state file FlowGate wrote: FileNotFoundError when missing, ValueError when it is not a
    regular file, larger than `limit` (never read whole), nested absurdly deep or not JSON."""
    import json

    try:
        data, _ = read_regular(path, limit)
    except NotRegularFile as exc:
        raise ValueError(f"{path} is {exc.kind}") from None
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply") from None


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")

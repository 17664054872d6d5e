"""Service logs stay bounded: rotated when a service starts, and by `doit up` while it runs.

`<service>.log` beyond MAX_LOG_BYTES becomes `<service>.log.1` (the previous `.1` becomes `.2`,
and so on up to KEEP files; the oldest goes). Renaming is safe while nothing holds the file open:
the service about to start opens a fresh `<service>.log`. A running service holds its log open
(appending), so `rotate_in_place` copies it and then empties it: the service's next write lands
at the start of the emptied file. A line written between the copy and the truncation is lost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

MAX_LOG_BYTES = 10 * 1024 * 1024
KEEP = 3


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def _large(path: Path, max_bytes: int | None) -> bool:
    from ...base.fsutil import refuse_link

    refuse_link(path)  # never copy, rename or truncate a link's target
    try:
        return os.stat(path).st_size > (MAX_LOG_BYTES if max_bytes is None else max_bytes)
    except FileNotFoundError:
        return False


def _shift(path: Path, keep: int) -> None:
    """Make room for a new `.1`: `.1` becomes `.2` ... up to `keep`; the oldest goes."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(rotated(path, keep))
    for n in range(keep - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(rotated(path, n), rotated(path, n + 1))


def rotate_if_large(path: Path, max_bytes: int | None = None, keep: int = KEEP) -> bool:
    """Rotate `path` when it is larger than `max_bytes` (MAX_LOG_BYTES). Returns True when it did."""
    if not _large(path, max_bytes):
        return False
    _shift(path, keep)
    os.replace(path, rotated(path, 1))
    return True


def rotate_in_place(path: Path, max_bytes: int | None = None, keep: int = KEEP, mode: int = 0o600) -> bool:
    """The same for a log a running service holds open for appending: copy, then truncate."""
    if not _large(path, max_bytes):
        return False
    _shift(path, keep)
    copy = rotated(path, 1).with_name(f".{rotated(path, 1).name}.tmp")
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)  # private from the start, as the log
    with open(fd, "wb") as out, open(path, "rb") as src:
        shutil.copyfileobj(src, out)
    os.replace(copy, rotated(path, 1))
    os.truncate(path, 0)
    return True

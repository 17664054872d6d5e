"""Service logs are rotated when a service starts, so they cannot grow without bound across runs.

`<service>.log` beyond MAX_LOG_BYTES becomes `<service>.log.1` (the previous `.1` becomes `.2`,
and so on up to KEEP files; the oldest goes). Renaming is safe while nothing holds the file open:
the service about to start opens a fresh `<service>.log`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MAX_LOG_BYTES = 10 * 1024 * 1024
KEEP = 3


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotate_if_large(path: Path, max_bytes: int | None = None, keep: int = KEEP) -> bool:
    """Rotate `path` when it is larger than `max_bytes` (MAX_LOG_BYTES). Returns True when it did."""
    try:
        if os.stat(path).st_size <= (MAX_LOG_BYTES if max_bytes is None else max_bytes):
            return False
    except FileNotFoundError:
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(rotated(path, keep))
    for n in range(keep - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(rotated(path, n), rotated(path, n + 1))
    os.replace(path, rotated(path, 1))
    return True

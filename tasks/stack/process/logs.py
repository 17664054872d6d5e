"""Reading service logs.
"""

from __future__ import annotations

import os


def tail(path: str | os.PathLike, lines: int = 20, *, max_bytes: int = 256 * 1024) -> list[str]:
    """The last `lines` lines of `path` (without newlines); [] if it does not exist.

    Reads backwards from the end in blocks, never more than `max_bytes`.
    """
    if lines <= 0:
        return []
    try:
        fh = open(path, "rb")
    except OSError:
        return []
    with fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        data = b""
        block = 8192
        while pos > 0 and data.count(b"\n") <= lines and len(data) < max_bytes:
            step = min(block, pos, max_bytes - len(data))
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    out = data.decode("utf-8", errors="replace").splitlines()
    if pos > 0 and out:
        out = out[1:] if len(out) > lines else out  # the first line may be cut
    return out[-lines:]

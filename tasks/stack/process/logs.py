"""Reading service logs, as text fit for a terminal: colour codes and other escapes removed.

LiteLLM and uvicorn colour their output even into a file; shown raw, `\x1b[32m` litters the
lines (and an escape sequence from a log must never drive the user's terminal).
"""

from __future__ import annotations

import os
import re

# CSI (colours, cursor moves), OSC (titles, links), charset choices and two-byte escapes
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+][0-9A-Za-z]|\x1b[@-Z\\-_]")


def clean(line: str) -> str:
    """`line` without terminal escape sequences or other control characters (tabs stay)."""
    line = _ESCAPES.sub("", line)
    return "".join(c for c in line if c == "\t" or c.isprintable()) if not line.isprintable() else line


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
    out = [clean(line) for line in data.decode("utf-8", errors="replace").splitlines()]
    if pos > 0 and out:
        out = out[1:] if len(out) > lines else out  # the first line may be cut
    return out[-lines:]

"""Upstream key files (`models[].api_key_file`): a regular, single-line file the user owns.

A device (`/dev/zero`) would be read forever, a FIFO would block, a multi-line file would put its
second line into the rendered config, and a file someone else controls can swap the key under us.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import NotRegularFile, read_regular

MAX_KEY_FILE_BYTES = 16 * 1024


def key_file_problem(path: Path) -> str | None:
    """Why `path` cannot serve as a key file, or None when it can."""
    try:
        read_key_file(path)
    except FlowgateError as exc:
        return exc.message
    return None


def read_key_file(path: Path) -> str:
    """The key in `path` (surrounding whitespace stripped); FlowgateError when it is not usable."""
    try:
        data, info = read_regular(path, MAX_KEY_FILE_BYTES)
    except FileNotFoundError:
        raise FlowgateError(f"{path} does not exist") from None
    except NotRegularFile as exc:
        raise FlowgateError(f"{path} is not a regular file ({exc.kind})") from None
    except OSError as exc:
        raise FlowgateError(f"{path} is not readable ({exc.strerror})") from None
    if info.st_uid not in (os.getuid(), 0):
        raise FlowgateError(f"{path} belongs to another user (uid {info.st_uid})")
    if len(data) > MAX_KEY_FILE_BYTES:
        raise FlowgateError(f"{path} is larger than {MAX_KEY_FILE_BYTES // 1024} KiB; a key file holds one line")
    try:
        lines = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise FlowgateError(f"{path} is not UTF-8 text") from None
    if len(lines) != 1:
        raise FlowgateError(f"{path} holds {len(lines)} non-empty lines; a key file holds exactly one (the key)")
    if any(ord(c) < 32 or c == "\x7f" for c in lines[0]):
        raise FlowgateError(f"{path} holds control characters; a key file holds one line, the key")
    return lines[0]

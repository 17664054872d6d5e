"""The stack lock: one state-changing FlowGate command at a time.

doit keeps no lock of its own, so two `doit up` at once could both decide a service needs
starting. Actions that start or stop services hold this lock and re-check the state inside it.
A second command waits (saying so once) and fails clearly after the timeout. Re-entrant within
one process (`doit upgrade` rewrites stack.json as the `config` task does, which takes it too).
"""

from __future__ import annotations

import contextlib
import os
import sys

from ..base.errors import FlowgateError
from ..base.paths import Paths

DEFAULT_TIMEOUT = 300.0
_held: dict[str, int] = {}  # lock path -> depth held by this process


@contextlib.contextmanager
def stack_lock(paths: Paths, timeout: float | None = None, what: str = "this command"):
    import filelock

    key = str(paths.lock)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    if timeout is None:
        timeout = float(os.environ.get("FLOWGATE_LOCK_TIMEOUT", DEFAULT_TIMEOUT))
    paths.router.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(paths.lock))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        print(f"waiting for another FlowGate command to finish (lock {paths.lock}) ...", file=sys.stderr, flush=True)
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise FlowgateError(f"another FlowGate command has held {paths.lock} for over {timeout:.0f} s",
                                f"wait for it to finish, or check `uv run doit status`; {what} changed nothing") from None
    _held[key] = 1
    try:
        yield
    finally:
        _held[key] = 0
        lock.release()

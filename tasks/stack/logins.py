"""Logins waiting on CLIProxyAPI, so a switch of CLIProxyAPI can cancel them with a clear message.

A login's session lives in the memory of the CLIProxyAPI process that started it: once that process
is replaced, the browser's redirect or the device code can never complete there. `doit login`
registers itself here (`run/logins/<pid>.json`); tasks.stack.swaps.bluegreen marks every registration
cancelled, with the reason, before it stops the old process; the login's poll loop reads its mark.
"""

from __future__ import annotations

import contextlib
import json
import os

from ..base.fsutil import PRIVATE_DIR_MODE, atomic_write, ensure_dir, load_json
from ..base.paths import Paths


def _dir(paths: Paths):
    return paths.run_dir / "logins"


def _own(paths: Paths):
    return _dir(paths) / f"{os.getpid()}.json"


def register(paths: Paths, provider: str, state: str) -> None:
    ensure_dir(_dir(paths), PRIVATE_DIR_MODE)
    atomic_write(_own(paths), json.dumps({"provider": provider, "state": state, "pid": os.getpid()}), mode=0o600)


def unregister(paths: Paths) -> None:
    with contextlib.suppress(OSError):
        _own(paths).unlink()


def cancelled(paths: Paths) -> str | None:
    """Why this process's login was cancelled by a switch, or None."""
    try:
        data = load_json(_own(paths))
    except (OSError, ValueError):
        return None
    why = data.get("cancelled") if isinstance(data, dict) else None
    return why if isinstance(why, str) else None


def cancel_all(paths: Paths, why: str) -> list[dict]:
    """Mark every live registration cancelled; returns them (provider, state) so the caller can
    also cancel the sessions in the old CLIProxyAPI. Stale files (their process gone) are removed."""
    import psutil

    marked = []
    try:
        entries = sorted(_dir(paths).glob("*.json"))
    except OSError:
        return marked
    for path in entries:
        try:
            data = load_json(path)
        except (OSError, ValueError):
            data = None
        pid = data.get("pid") if isinstance(data, dict) else None
        if not isinstance(pid, int) or not psutil.pid_exists(pid):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        data["cancelled"] = why
        with contextlib.suppress(OSError):
            atomic_write(path, json.dumps(data), mode=0o600)
        marked.append(data)
    return marked

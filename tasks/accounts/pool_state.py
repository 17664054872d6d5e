"""The steward's state file, `.router/state/pool.json` (contract B of issue 29), for the control plane:
read it (`doit status`, `doit accounts`, usage and the dashboard), write it (the steward), and the
marks `doit accounts --disable/--enable` leave so the steward never undoes a user's own disable.

Stdlib only. A missing, damaged or oversized file reads as None: nothing steered, nothing known.
The gateway has its own reader (tasks.gateway.steered): the data plane imports no control plane.
"""

from __future__ import annotations

import json
import time

from ..base.paths import Paths

MAX_BYTES = 1024 * 1024  # a few hundred accounts and models; past this it is not ours


def read(paths: Paths) -> dict | None:
    from ..base.fsutil import load_json

    try:
        data = load_json(paths.pool_state, MAX_BYTES)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("accounts"), list) or not isinstance(data.get("steered"), dict):
        return None
    return data


def write(paths: Paths, data: dict) -> None:
    """Atomically, 0600; a read-only .router/ is the next cycle's problem (never raises)."""
    from ..base.errors import FlowgateError
    from ..base.fsutil import atomic_write

    try:
        atomic_write(paths.pool_state, json.dumps(data, separators=(",", ":")), mode=0o600, only_if_changed=False)
    except FlowgateError:
        pass


def marks(paths: Paths) -> dict:
    """{account name: "disable"} for the accounts the user disabled through FlowGate."""
    from ..base.fsutil import load_json

    try:
        data = load_json(paths.pool_marks, 256 * 1024)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and v == "disable"} if isinstance(data, dict) else {}


def note_user(paths: Paths, name: str, what: str) -> None:
    """`doit accounts --disable/--enable/--remove NAME`: the user's word, which the steward keeps to."""
    from ..base.errors import FlowgateError
    from ..base.fsutil import atomic_write

    kept = marks(paths)
    if what == "disable":
        kept[name] = "disable"
    else:
        kept.pop(name, None)
    try:
        atomic_write(paths.pool_marks, json.dumps(kept), mode=0o600, only_if_changed=False)
    except FlowgateError:
        pass


def fresh(data: dict | None, now: float | None = None, max_age: float = 120.0) -> bool:
    """Whether the steward wrote `data` recently (it rewrites it at least every refresh)."""
    updated = (data or {}).get("updated")
    return isinstance(updated, (int, float)) and 0 <= (time.time() if now is None else now) - updated < max_age


def account(data: dict | None, name: str) -> dict | None:
    for entry in (data or {}).get("accounts") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None

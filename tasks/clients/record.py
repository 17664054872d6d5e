"""What `integrate:<client> --apply` wrote, kept in .router/state/clients.json.

`doit status` compares it with the current config (JSON only, no network, no parsing of client
files) and says when the applied settings point at a gateway that moved.
"""

from __future__ import annotations

import json
import time

from ..base.fsutil import atomic_write
from ..base.paths import Paths

WORDS = {"url": "gateway address", "key_path": "key path", "fast_model": "fast model",
         "wiring": "what integrate writes (a newer FlowGate)"}


def record_path(paths: Paths):
    return paths.state_dir / "clients.json"


def read(paths: Paths) -> dict:
    try:
        data = json.loads(record_path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(paths: Paths, data: dict) -> None:
    atomic_write(record_path(paths), json.dumps(data, indent=2, sort_keys=True) + "\n")


def remember(paths: Paths, client: str, settings: dict, files: list[str], created: list[str],
             backups: dict | None = None, written: dict | None = None) -> None:
    """backups: path -> the backup this apply made; written: path -> digest of what it wrote."""
    data = read(paths)
    previous = data.get(client, {})
    was_created = set(previous.get("created", []))
    # The user's own version is the backup of the first apply that found the file: later applies
    # back up FlowGate's own versions, which --restore must never bring back.
    originals = {**{p: b for p, b in (backups or {}).items() if p not in was_created}, **previous.get("originals", {})}
    data[client] = {"settings": settings, "files": files, "applied_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    # a file FlowGate created stays "created" across re-applies, so restore removes it
                    "created": sorted(set(created) | was_created), "originals": originals,
                    "written": {**previous.get("written", {}), **(written or {})}}
    _write(paths, data)


def forget(paths: Paths, client: str) -> dict:
    data = read(paths)
    entry = data.pop(client, {})
    if entry:
        _write(paths, data)
    return entry


def current_settings(paths: Paths, stack: dict, client: str, member: str | None = None) -> dict:
    """The values a fresh apply would write for `client` (cheap: no client file is read); `member`:
    wired with that member's key (`integrate --key`)."""
    from ..catalog import choose, store
    from .gateway import gateway

    resolved = choose.slots(stack, store.read(paths), client)
    return {**gateway(paths, stack, member).fingerprint(), "model": resolved["model"],
            "fast_model": resolved["fast_model"]}


def stale(paths: Paths, stack: dict) -> list[dict]:
    """Applied client settings that no longer match the config: what changed, and the fix."""
    out = []
    for client, entry in sorted(read(paths).items()):
        if client not in stack.get("clients", {}):
            continue
        applied = entry.get("settings", {})
        member = applied.get("member") if isinstance(applied.get("member"), str) else None
        now = current_settings(paths, stack, client, member)
        changed = [WORDS.get(key, key) for key in now if applied.get(key) != now[key]]
        if changed:
            again = f"uv run doit integrate:{client} --apply" + (f" --key {member}" if member else "")
            out.append({"client": client, "changed": changed, "command": again})
    return out


def stale_line(entry: dict) -> str:
    """One entry of `stale` in words, with its fix (`status` and `up` say it alike)."""
    return f"{entry['client']} settings are stale ({', '.join(entry['changed'])} changed since applied): run `{entry['command']}`"


def after_up(paths: Paths, stack: dict) -> list[str]:
    """What `up` says about the clients once the stack serves: applied settings the config made stale
    (a port, a model), and ids the config's slots and profiles name that no account serves now."""
    from ..catalog import store
    from ..catalog.table import unserved_lines

    return [stale_line(entry) for entry in stale(paths, stack)] + unserved_lines(stack, store.read(paths))

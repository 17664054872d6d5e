"""Which release served before the last successful switch (`doit rollback` goes back to it).

`.router/state/upgrades.json`: {"current": {repo, tag, line}, "previous": {...}, "at": ISO time}.
"""

from __future__ import annotations

import json

from ..base.fsutil import atomic_write, load_json
from ..base.paths import Paths
from ..release.installed import now_iso
from ..release.settings import valid_repo, valid_tag


def _path(paths: Paths):
    return paths.state_dir / "upgrades.json"


def brief(manifest: dict) -> dict:
    return {"repo": str(manifest.get("repo") or ""), "tag": str(manifest.get("tag") or ""),
            "line": str(manifest.get("line") or "")}


def previous(paths: Paths) -> dict | None:
    """The release to roll back to, or None."""
    try:
        data = load_json(_path(paths))
    except (OSError, ValueError):
        return None
    prev = data.get("previous") if isinstance(data, dict) else None
    if not isinstance(prev, dict) or not valid_tag(prev.get("tag")) or not valid_repo(prev.get("repo")):
        return None
    return brief(prev)


def record(paths: Paths, before: dict, after: dict) -> None:
    atomic_write(_path(paths), json.dumps({"current": brief(after), "previous": brief(before), "at": now_iso()},
                                          indent=2) + "\n")

"""Releases an upgrade proved broken here and rolled back: `doit outdated` names them instead of
recommending them again (`.router/state/refused-releases.json`, the newest 50)."""

from __future__ import annotations

import json

from ..base.fsutil import atomic_write, load_json
from ..base.paths import Paths
from .installed import now_iso

KEEP = 50


def _path(paths: Paths):
    return paths.state_dir / "refused-releases.json"


def load(paths: Paths) -> dict[tuple[str, str], dict]:
    """(repo lower-cased, tag) -> {"reason", "at"}; {} when none or unreadable."""
    try:
        data = load_json(_path(paths))
    except (OSError, ValueError):
        return {}
    out = {}
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("repo", "tag", "reason", "at")):
            out[(entry["repo"].lower(), entry["tag"])] = {"reason": entry["reason"][:300], "at": entry["at"]}
    return out


def remember(paths: Paths, repo: str, tag: str, reason: str) -> None:
    _write(paths, _without(paths, repo, tag) + [{"repo": repo.lower(), "tag": tag, "reason": reason[:300],
                                                  "at": now_iso()}])


def forget(paths: Paths, repo: str, tag: str) -> None:
    """A release that later served fine (an upgrade to it succeeded) is no longer refused."""
    if (repo.lower(), tag) in load(paths):
        _write(paths, _without(paths, repo, tag))


def _without(paths: Paths, repo: str, tag: str) -> list[dict]:
    return [{"repo": r, "tag": t, **v} for (r, t), v in load(paths).items() if (r, t) != (repo.lower(), tag)]


def _write(paths: Paths, entries: list[dict]) -> None:
    atomic_write(_path(paths), json.dumps(entries[-KEEP:], indent=1) + "\n")

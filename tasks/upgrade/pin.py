"""Write the release pin (`cliproxy.release.version`, and `.repo` when it changes) into
config/local.yaml, keeping the user's comments, order, quoting and indentation (ruamel.yaml's
round trip); the file is replaced atomically, through a link if it is one, with its mode kept."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import atomic_write, read_foreign
from ..base.paths import Paths

LOCAL_LIMIT = 1024 * 1024  # the same cap the config loader applies


def check_pin(paths: Paths) -> None:
    """FlowgateError now when the pin could not be written later (a YAML ruamel refuses, a section
    that is not a mapping, a file or directory that is not writable); writes nothing."""
    write_pin(paths, "v0", dry_run=True)
    path = Path(os.path.realpath(paths.local_config))
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise FlowgateError(f"{path} cannot be written, so the new release could not be pinned there",
                            f"make it writable (chmod u+w {target}), then run the command again")


def write_pin(paths: Paths, tag: str, repo: str | None = None, dry_run: bool = False) -> bool:
    """Pin `tag` (and `repo` when given); True when the file changed. `dry_run`: check only."""
    from ruamel.yaml import YAML, YAMLError
    from ruamel.yaml.comments import CommentedMap

    path = Path(os.path.realpath(paths.local_config))  # a linked local.yaml is written where it lives
    fix = "fix config/local.yaml (`uv run doit check` says what is wrong), then run the command again"
    raw = read_foreign(path, LOCAL_LIMIT, fix)
    text = raw.decode("utf-8", "replace") if raw is not None else ""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a user's long line
    mapping, offset = _indentation(text)
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    try:
        doc = yaml.load(text) if text.strip() else None
    except YAMLError as exc:
        raise FlowgateError(f"{paths.local_config} is not valid YAML ({str(exc).splitlines()[0]})", fix) from None
    only_comments = doc is None and text.strip()
    doc = CommentedMap() if doc is None else doc
    if not isinstance(doc, dict):
        raise FlowgateError(f"{paths.local_config} does not hold a mapping", fix)
    section = _mapping(doc, "cliproxy", CommentedMap, paths)
    release = _mapping(section, "release", CommentedMap, paths)
    release["version"] = tag
    if repo is not None and str(release.get("repo") or "") != repo:
        release["repo"] = repo
    if dry_run:
        return False
    out = io.StringIO()
    yaml.dump(doc, out)
    new = (text.rstrip("\n") + "\n" + out.getvalue()) if only_comments else out.getvalue()
    if new == text:
        return False
    mode = os.stat(path).st_mode & 0o777 if raw is not None else 0o644
    return atomic_write(path, new, mode=mode)


def _mapping(parent: dict, key: str, make, paths: Paths) -> dict:
    value = parent.get(key)
    if value is None:
        parent[key] = value = make()
    if not isinstance(value, dict):
        raise FlowgateError(f"{paths.local_config}: `{key}` is not a mapping, so the release cannot be pinned there",
                            "fix config/local.yaml (`uv run doit check`), then run the command again")
    return value


def _indentation(text: str) -> tuple[int, int]:
    """(mapping indent, a sequence dash's offset under its key) as the file already uses them."""
    steps, offsets, previous = [], [], None
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        col = len(line) - len(stripped)
        if previous is not None and col > previous[0]:
            (offsets if stripped.startswith("- ") and previous[1].endswith(":") else steps).append(col - previous[0])
        previous = (col, stripped.split("#")[0].rstrip())
    mapping = min((s for s in steps if s > 0), default=2)
    return mapping, min(offsets, default=0)

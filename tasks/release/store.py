"""The releases kept beside the active binary, so a rollback or a switch between lines needs no network.

`.router/bin/releases/<owner>__<repo>@<tag>/` holds a verified binary and its manifest
(`release.json`, the fields `fetch` records). The active binary stays where it always was
(`.router/bin/<binary>`, described by `.router/bin/manifest.json`); activating a kept release
copies its binary there with a rename, so a running process keeps its old inode.

Kept: the active release and, per line, the two most recently active others.

`release.json` sits in the folder it describes, so whoever edits a kept binary can edit its hash too:
the reference hash of each kept binary is also recorded in `.router/state/kept-releases.json` (0600),
outside every release folder, and a kept release is used only when all three agree.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import atomic_write, load_json, write_error
from ..base.paths import Paths
from . import lines
from .installed import _sha256_file, binary_intact, fingerprint, now_iso, write_manifest
from .settings import valid_repo, valid_tag

KEEP_PER_LINE = 3  # the active one counts


def root(paths: Paths) -> Path:
    return paths.bin_dir / "releases"


def entry_dir(paths: Paths, repo: str, tag: str) -> Path:
    if not valid_tag(tag) or not valid_repo(repo):
        raise FlowgateError(f"{repo}@{tag!r} is not a release FlowGate can keep", "use a tag like v7.2.140")
    return root(paths) / f"{repo.lower().replace('/', '__')}@{tag}"


def _index_file(paths: Paths) -> Path:
    return paths.state_dir / "kept-releases.json"


def _index(paths: Paths) -> dict:
    try:
        data = load_json(_index_file(paths))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record(paths: Paths, where: Path, sha: str | None) -> None:
    """Remember (or, with None, forget) the reference hash of the kept release in `where`."""
    index = {k: v for k, v in _index(paths).items() if (root(paths) / k).is_dir() and k != where.name}
    if sha:
        index[where.name] = sha
    atomic_write(_index_file(paths), json.dumps(index, indent=2, sort_keys=True) + "\n", mode=0o600)


def keep(paths: Paths, manifest: dict) -> Path | None:
    """Copy the active, intact binary `manifest` describes into the store (once; cheap when kept)."""
    repo, tag = str(manifest.get("repo") or ""), str(manifest.get("tag") or "")
    if not binary_intact(paths, manifest) or not valid_tag(tag) or not valid_repo(repo):
        return None
    where = entry_dir(paths, repo, tag)
    existing = find(paths, repo, tag, refuse=False)  # verified: a kept copy that changed is replaced, never trusted
    if existing is not None and existing.get("binary_sha256") == manifest.get("binary_sha256"):
        _touch(where)
        return where
    source = paths.bin_dir / str(manifest["binary"])
    try:
        where.mkdir(parents=True, exist_ok=True)
        tmp = where / f".{manifest['binary']}.tmp"
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, where / str(manifest["binary"]))
        entry = {k: v for k, v in manifest.items() if k not in ("binary_stat", "etag", "checked_at", "requested")}
        entry["kept_at"] = entry["used_at"] = now_iso()
        entry["used"] = time.time()
        atomic_write(where / "release.json", json.dumps(entry, indent=2, sort_keys=True) + "\n")
        _record(paths, where, str(manifest.get("binary_sha256") or ""))
    except OSError as exc:
        raise write_error(where, exc) from None
    prune(paths, active=where)
    return where


def find(paths: Paths, repo: str, tag: str, *, verify: bool = True, refuse: bool = True) -> dict | None:
    """The kept release `repo`@`tag` (its manifest), or None. `verify`: its binary still hashes as
    recorded at download (~0.1 s for the real binary; done before it is activated), in its
    `release.json` and in the index outside the release folders. A copy whose `release.json` no
    longer agrees with the index was edited on purpose: FlowgateError when `refuse`, else None."""
    try:
        where = entry_dir(paths, repo, tag)
    except FlowgateError:
        return None
    try:
        entry = load_json(where / "release.json")
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("tag") != tag or lines.by_binary_name(str(entry.get("binary") or "")) is None:
        return None
    binary = where / entry["binary"]
    if not binary.is_file() or binary.is_symlink():
        return None
    if verify:
        reference = _index(paths).get(where.name)
        if reference is None:  # kept before the index existed, or the index is gone: downloaded again
            return None
        if reference != entry.get("binary_sha256"):
            if not refuse:
                return None
            raise FlowgateError(
                f"the kept release {repo}@{tag} in {where} was changed after FlowGate kept it: its release.json "
                f"records sha256 {str(entry.get('binary_sha256'))[:12]}…, FlowGate kept {str(reference)[:12]}…; "
                "not using it", f"remove {where} and run `uv run doit fetch` to download and verify the release again")
        try:
            if _sha256_file(binary) != reference:
                return None
        except OSError:
            return None
    return entry


def activate(paths: Paths, entry: dict) -> dict:
    """Make the kept release `entry` the active binary; returns the new active manifest."""
    where = entry_dir(paths, entry["repo"], entry["tag"])
    target = paths.bin_dir / entry["binary"]
    tmp = paths.bin_dir / f".{entry['binary']}.activate.tmp"
    try:
        shutil.copyfile(where / entry["binary"], tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)  # rename: a running binary keeps its inode (no ETXTBSY)
        for name in lines.BINARY_NAMES:  # the other line's active binary: its copy stays kept
            if name != target.name:
                with contextlib.suppress(OSError):
                    os.unlink(paths.bin_dir / name)
        manifest = {k: v for k, v in entry.items() if k not in ("kept_at", "used_at", "used")}
        manifest.update(binary_stat=fingerprint(target.stat()), requested=entry["tag"], activated_at=now_iso())
        write_manifest(paths, manifest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise write_error(target, exc) from None
    _touch(where)
    return manifest


def discard(paths: Paths, repo: str, tag: str) -> None:
    """Forget a kept release (one that failed its checks: it must not push a good one out)."""
    with contextlib.suppress(FlowgateError):
        where = entry_dir(paths, repo, tag)
        shutil.rmtree(where, ignore_errors=True)
        _record(paths, where, None)


def kept(paths: Paths) -> list[dict]:
    """Every kept release's manifest (unverified), most recently used first."""
    out = []
    with contextlib.suppress(OSError):
        for where in root(paths).iterdir():
            try:
                entry = load_json(where / "release.json")
            except (OSError, ValueError):
                continue
            if isinstance(entry, dict) and valid_tag(entry.get("tag")):
                out.append({**entry, "dir": str(where)})
    return sorted(out, key=lambda e: e.get("used") if isinstance(e.get("used"), (int, float)) else 0.0, reverse=True)


def prune(paths: Paths, active: Path | None = None) -> None:
    """Keep KEEP_PER_LINE releases per line (the active one always)."""
    per_line: dict[str, int] = {}
    for entry in kept(paths):
        where = Path(entry["dir"])
        line = str(entry.get("line") or "")
        per_line[line] = per_line.get(line, 0) + 1
        if per_line[line] > KEEP_PER_LINE and where != active:
            shutil.rmtree(where, ignore_errors=True)


def _touch(where: Path) -> None:
    """Mark `where` as used now (the pruning order)."""
    with contextlib.suppress(OSError, ValueError):
        entry = load_json(where / "release.json")
        if isinstance(entry, dict):
            entry["used_at"], entry["used"] = now_iso(), time.time()
            atomic_write(where / "release.json", json.dumps(entry, indent=2, sort_keys=True) + "\n")

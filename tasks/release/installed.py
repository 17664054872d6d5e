"""The installed binary and its manifest: where it is, which line, whether it is current.

The warm check (`is_current`) is free: no network, no httpx import, no rehash unless the binary's
stat changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from datetime import datetime, timezone
from collections import namedtuple
from pathlib import Path
from typing import Any

from ..base.errors import FlowgateError
from ..base.fsutil import atomic_write, load_json
from ..base.paths import Paths
from . import lines
from .settings import ReleaseSettings

MANIFEST_SCHEMA = 2  # 2: line, version, build, binary name
CHUNK = 256 * 1024


def installed_binary(paths: Paths, manifest: dict | None = None) -> Path:
    """Where `fetch` installed the binary; its file name is the line's (the manifest says which)."""
    manifest = read_manifest(paths) if manifest is None else manifest
    name = str((manifest or {}).get("binary") or "")
    if lines.by_binary_name(name) is None:
        name = next((n for n in lines.BINARY_NAMES if (paths.bin_dir / n).exists()), lines.MAINLINE.binary)
    return paths.bin_dir / name


def installed_line(paths: Paths, manifest: dict | None = None) -> lines.Line | None:
    """The line of the installed release: the manifest's `line`, else its binary's or asset's name."""
    manifest = read_manifest(paths) if manifest is None else manifest
    if not isinstance(manifest, dict):
        return None
    line = lines.LINES.get(str(manifest.get("line") or "")) or lines.by_binary_name(str(manifest.get("binary") or ""))
    if line is None:  # a manifest older than its `line` field
        from .assets import parse_asset

        asset = parse_asset(str(manifest.get("asset") or ""))
        line = asset.line if asset else None
    return line


class Binary(namedtuple("Binary", "path identity line user")):
    """The CLIProxyAPI executable FlowGate runs, and what identifies it.

    identity  changes when the binary does: the manifest's sha256, else the file's stat
    line      its lines.Line, None when unknown
    user      `cliproxy.binary`, not installed by fetch
    """

    __slots__ = ()


def locate_binary(paths: Paths, settings: ReleaseSettings | None, manifest: dict | None = None) -> Binary:
    """The one rule for "is there a binary to run": it exists, is a file, and is executable.

    `settings` None (an invalid config) looks in the default place. FlowgateError says what to do.
    """
    user = bool(settings and settings.binary)
    manifest = None if user else (read_manifest(paths) if manifest is None else manifest)
    path = paths.user_path(str(settings.binary)) if user else installed_binary(paths, manifest)
    if user:
        what, fix = "cliproxy.binary", ("install CLIProxyAPI there, fix cliproxy.binary in config/local.yaml, or "
                                        "remove it to let FlowGate download the release")
    else:
        what, fix = "the CLIProxyAPI binary", "run `uv run doit fetch`, or set cliproxy.binary to a binary you installed"
    try:
        st = path.stat()
    except OSError:
        raise FlowgateError(f"{what} {path} does not exist", fix) from None
    if not stat.S_ISREG(st.st_mode):
        raise FlowgateError(f"{what} {path} is not a file",
                            "point it at the cli-proxy-api (or cli-proxy-api-plus) executable itself" if user else fix)
    if not os.access(path, os.X_OK):
        raise FlowgateError(f"{what} {path} is not executable", f"chmod +x {path}")
    if manifest and manifest.get("binary_sha256"):
        identity = manifest["binary_sha256"]
    else:
        identity = f"stat:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    line = lines.by_binary_name(path.name) if user else installed_line(paths, manifest)
    return Binary(path, identity, line, user)


def read_manifest(paths: Paths) -> dict | None:
    """The install manifest, or None when missing or unreadable."""
    try:
        data = load_json(paths.manifest)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(paths: Paths, manifest: dict) -> None:
    atomic_write(paths.manifest, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def fingerprint(st: os.stat_result) -> dict:
    # ctime too: an in-place edit can keep size, inode and (via utime) mtime, but not ctime.
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "ctime_ns": st.st_ctime_ns}


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def binary_intact(paths: Paths, manifest: dict | None, *, refresh: bool = True) -> bool:
    """The installed binary is the one the manifest describes (rehash only if its stat changed)."""
    if not manifest or not manifest.get("binary_sha256"):
        return False
    target = installed_binary(paths, manifest)
    try:
        st = target.stat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or not os.access(target, os.X_OK):
        return False
    if manifest.get("binary_stat") == fingerprint(st):
        return True
    if st.st_size != (manifest.get("binary_stat") or {}).get("size", st.st_size):
        return False
    try:
        if _sha256_file(target) != manifest["binary_sha256"]:
            return False
    except OSError:
        return False
    if refresh:  # same content, new stat (touched/copied): remember it so the next check is cheap
        manifest["binary_stat"] = fingerprint(st)
        with contextlib.suppress(FlowgateError, OSError):
            write_manifest(paths, manifest)
    return True


def tamper_problem(paths: Paths, binary: str | os.PathLike, manifest: dict | None = None) -> str | None:
    """What is wrong when the installed `binary` no longer has the sha256 recorded at install.

    Hashes the file now (~0.1 s for the real binary): called when it is about to run or be replaced.
    None for a binary FlowGate did not install, or one that matches.
    """
    manifest = read_manifest(paths) if manifest is None else manifest
    if not manifest or not manifest.get("binary_sha256"):
        return None
    target = installed_binary(paths, manifest)
    if Path(binary) != target or not target.is_file():
        return None
    try:
        actual = _sha256_file(target)
    except OSError as exc:
        return f"{target} cannot be read ({exc.strerror or exc})"
    expected = manifest["binary_sha256"]
    if actual == expected:
        return None
    return (f"{target} was modified after it was installed: its sha256 is {actual[:12]}…, the release "
            f"{manifest.get('tag') or ''} installed {expected[:12]}…")


def parse_time(value: Any) -> float | None:
    """An ISO 8601 time (the manifest's `checked_at`, GitHub's `published_at`) as epoch seconds; None
    for anything else, or a time before 1970 or after 9998."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = datetime.fromisoformat(value)
        ts = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    except (ValueError, OverflowError):
        return None
    return ts if 0 <= ts < 253370764800 else None  # 9999-01-01


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def same_repo(manifest: dict, settings: ReleaseSettings) -> bool:
    return str(manifest.get("repo", "")).lower() == settings.repo.strip().lower()


def config_satisfied(manifest: dict, settings: ReleaseSettings, now: float | None = None) -> bool:
    """Repo and version match, and for `latest` the last check is younger than check_interval."""
    if not same_repo(manifest, settings):
        return False
    if not settings.is_latest:
        return manifest.get("tag") == settings.version.strip()
    if manifest.get("requested") != "latest":
        return False
    checked = parse_time(manifest.get("checked_at"))
    if checked is None:
        return False
    now = time.time() if now is None else now
    interval = max(0.0, float(settings.check_interval_hours)) * 3600
    return 0 <= now - checked < interval


def is_current(paths: Paths, settings: ReleaseSettings) -> bool:
    """True when nothing needs fetching. Cheap: no network, no httpx import.

    A user binary is current when it exists and is executable. Otherwise the manifest must match
    the configured repo and version (for `latest`: checked within `check_interval_hours`), and the
    installed binary must still be the one it describes.
    """
    if settings.binary:
        try:
            locate_binary(paths, settings)
        except FlowgateError:
            return False
        return True
    manifest = read_manifest(paths)
    if not manifest or not config_satisfied(manifest, settings):
        return False
    return binary_intact(paths, manifest)

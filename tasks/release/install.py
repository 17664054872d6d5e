"""`fetch`: resolve the release, download, verify, extract, and swap the binary in with a rename.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ..base.errors import FlowgateError
from ..base.fsutil import write_error
from ..base.paths import Paths
from . import lines
from .archive import extract_binary
from .assets import pick_asset
from .checksums import digest_of, expected_sha256
from .installed import (
    MANIFEST_SCHEMA,
    binary_intact,
    config_satisfied,
    fingerprint,
    installed_binary,
    locate_binary,
    now_iso,
    read_manifest,
    same_repo,
    write_manifest,
)
from .progress import ProgressBar, progress_enabled
from .settings import ReleaseSettings, validate


class FetchResult(NamedTuple):
    action: str  # "installed" | "restored" (a kept release, tasks.release.store) | "unchanged" | "user-binary"
    tag: str | None
    sha256: str | None  # of the release archive
    requests: int  # HTTP requests made (0 on a warm run)
    binary: Path | None = None
    asset: str | None = None
    verified_by: tuple[str, ...] = ()
    line: str | None = None  # "mainline" | "plus"
    build: str | None = None  # e.g. "glibc build" or "static no-plugin build"

    def describe(self) -> str:
        """`CLIProxyAPI 7.2.140 (mainline, glibc build)` for fetch's output."""
        line = lines.LINES.get(self.line or "")
        title = line.title if line else "CLIProxyAPI"
        version = self.tag[1:] if self.tag and self.tag[:1] in "vV" else self.tag
        about = ", ".join(x for x in (self.line, self.build) if x)
        return f"{title} {version}" + (f" ({about})" if about else "")


# A CLIProxyAPI archive is ~20-30 MB: a download past this (or past the size GitHub lists for the
# asset) is refused before it fills the disk.
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024


def archive_limit(asset: dict) -> int:
    size = asset.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and 0 < size < MAX_ARCHIVE_BYTES:
        return size
    return MAX_ARCHIVE_BYTES


def remove_partials(directory: Path) -> list[str]:
    """Temp files a killed download or extraction left (`.<name>.<random>.tmp`): fetch runs under the
    stack lock, so any such file in the binary's folder belongs to a process that is gone."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def _cleanup(*files: Path | None) -> None:
    for f in files:
        if f is not None:
            with contextlib.suppress(OSError):
                os.unlink(f)


def _make_progress(progress, label: str):
    if progress is False:
        return None
    if progress is None:
        return ProgressBar(label) if progress_enabled() else None
    if progress is True:
        return ProgressBar(label)
    return progress


def fetch(paths: Paths, settings: ReleaseSettings, *, progress=None,
          client_factory: Callable[[], Any] | None = None) -> FetchResult:
    """Make sure the configured CLIProxyAPI binary is installed.

    `progress`: None = a bar on stderr when it is a terminal (and CI is unset), False = quiet,
    True = always a bar, or a callable `(bytes_done, total_or_None)`.
    `client_factory`: zero-argument callable returning an httpx.Client (tests, proxies, timeouts).
    """
    import tempfile

    if settings.binary:
        p = locate_binary(paths, settings).path
        return FetchResult("user-binary", tag=None, sha256=None, requests=0, binary=p)
    validate(settings)
    remove_partials(paths.bin_dir)
    manifest = read_manifest(paths)
    intact = binary_intact(paths, manifest)
    if manifest and intact and config_satisfied(manifest, settings):
        return _unchanged(paths, manifest, 0)
    from . import store

    if intact:
        store.keep(paths, manifest)  # the way back (doit rollback), before another release replaces it
    if not settings.is_latest:
        entry = store.find(paths, settings.repo.strip(), settings.version.strip())
        if entry is not None:  # kept earlier: no download, works offline
            active = store.activate(paths, entry)
            return FetchResult("restored", active["tag"], active.get("sha256"), 0, installed_binary(paths, active),
                               active.get("asset"), tuple(active.get("verified_by") or ()), active.get("line"),
                               active.get("build"))

    from . import github

    api = github.api_base(settings.api_url)
    repo = settings.repo.strip()
    same_source = bool(manifest and intact and same_repo(manifest, settings))
    with github.GitHub(api, repo, client_factory) as gh:
        etag = None
        if settings.is_latest and same_source and manifest.get("requested") == "latest" \
                and manifest.get("api_url") == api:
            etag = manifest.get("etag") or None
        release, new_etag = gh.get_release(None if settings.is_latest else settings.version.strip(), etag)

        if release is None or (settings.is_latest and same_source and release["tag_name"] == manifest.get("tag")
                               and _digest_unchanged(release, manifest)):
            # 304, or `latest` still is the release we have: just remember that we checked.
            manifest.update(requested="latest", checked_at=now_iso(), etag=new_etag, api_url=api)
            write_manifest(paths, manifest)
            return _unchanged(paths, manifest, gh.requests)

        tag = release["tag_name"]
        asset, info = pick_asset(release)
        target = paths.bin_dir / info.binary
        expected = expected_sha256(gh, release, asset)
        if not expected and not settings.allow_unverified:
            raise FlowgateError(
                f"release {tag} of {repo} publishes no SHA-256 for {asset['name']} (no asset digest, "
                "no checksums.txt entry); refusing to install an unverified binary",
                "set `cliproxy.release.allow_unverified: true` if you trust this source, or set "
                "`cliproxy.binary` to a binary you verified yourself",
            )

        archive_tmp: Path | None = None
        binary_tmp: Path | None = None
        try:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(prefix=f".{asset['name']}.", suffix=".tmp", dir=target.parent)
                archive_tmp = Path(name)
                bar = _make_progress(progress, asset["name"])
                try:
                    with os.fdopen(fd, "wb") as out:
                        sha, size = gh.download(asset["browser_download_url"], out, bar, limit=archive_limit(asset),
                                                too_large="refusing a release archive that large (nothing installed)")
                        out.flush()
                        os.fsync(out.fileno())
                finally:
                    if bar is not None and hasattr(bar, "close"):
                        bar.close()
            except OSError as exc:
                raise write_error(target.parent / asset["name"], exc) from None

            for source, want in expected.items():
                if sha != want:
                    raise FlowgateError(
                        f"SHA-256 mismatch for {asset['name']}: downloaded {sha}, {source} says {want}",
                        "the download is corrupt or was tampered with; the installed binary was left "
                        "untouched. Run the command again; report it if it persists",
                    )

            binary_tmp, binary_sha = extract_binary(archive_tmp, target.parent, asset["name"], info.binary)
            try:
                # rename, never rewrite in place: a running binary keeps its old inode (no ETXTBSY)
                os.replace(binary_tmp, target)
                binary_tmp = None
                _fsync_dir(target.parent)
                st = target.stat()
                # The other line's binary, after a switch: gone (a running one keeps its inode).
                _cleanup(*(target.with_name(n) for n in lines.BINARY_NAMES if n != target.name))
            except OSError as exc:
                raise write_error(target, exc) from None
        finally:
            _cleanup(archive_tmp, binary_tmp)

        new_manifest = {
            "schema": MANIFEST_SCHEMA,
            "repo": repo,
            "requested": "latest" if settings.is_latest else tag,
            "tag": tag,
            "line": info.line.name,
            "version": info.version,
            "build": info.build,
            "asset": asset["name"],
            "size": size,
            "sha256": sha,
            "verified_by": sorted(expected),
            "binary": target.name,
            "binary_sha256": binary_sha,
            "binary_stat": fingerprint(st),
            "source_url": asset["browser_download_url"],
            "api_url": api,
            "installed_at": now_iso(),
        }
        if settings.is_latest:
            new_manifest.update(etag=new_etag, checked_at=now_iso())
        write_manifest(paths, new_manifest)
        store.keep(paths, new_manifest)
        return FetchResult("installed", tag, sha, gh.requests, target, asset["name"], tuple(sorted(expected)),
                           info.line.name, info.build)


def _unchanged(paths: Paths, manifest: dict, requests: int) -> FetchResult:
    return FetchResult("unchanged", manifest.get("tag"), manifest.get("sha256"), requests,
                       installed_binary(paths, manifest), manifest.get("asset"),
                       tuple(manifest.get("verified_by") or ()), manifest.get("line"), manifest.get("build"))


def _digest_unchanged(release: dict, manifest: dict) -> bool:
    """False when the release now publishes a digest for our asset that differs from what we have."""
    for asset in release.get("assets", []):
        if isinstance(asset, dict) and asset.get("name") == manifest.get("asset"):
            try:
                digest = digest_of(asset)
            except FlowgateError:
                return False
            return digest is None or digest == manifest.get("sha256")
    return False  # our asset vanished from the release: re-resolve


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

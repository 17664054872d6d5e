"""The plain-Python core of `doit fetch`: install the CLIProxyAPI binary from GitHub Releases.

Resolve repo + version (pinned tag or `latest`) through the GitHub REST API, pick this platform's
archive (either line: the asset names say which, see tasks.lines), verify its SHA-256 (the asset's
`digest` and the release's `checksums.txt`), extract only the line's executable from the archive
root, and swap it in with a rename (a running binary keeps its old inode: no "text file busy"). A manifest beside the binary makes the warm check
(`is_current`) free: no network, no httpx import, no rehash unless the binary's stat changed.

Module-level imports are stdlib only; the HTTP part lives in `tasks.github`, imported lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import stat
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from . import lines
from .errors import FlowgateError
from .fsutil import atomic_write, write_error
from .paths import Paths

MANIFEST_SCHEMA = 2  # 2: line, version, build, binary name
MAX_BINARY_SIZE = 1024 * 1024 * 1024  # a Go binary is ~30 MB; refuse archive bombs
CHUNK = 256 * 1024

OS_ALIASES = {"linux": "linux", "darwin": "darwin", "macos": "darwin", "windows": "windows", "win32": "windows"}
ARCH_ALIASES = {"amd64": "amd64", "x86_64": "amd64", "x64": "amd64", "arm64": "arm64", "aarch64": "arm64"}
# <prefix>_<version>_<os>_<arch>[_no-plugin].<ext>: the mainline spells arm64 `aarch64` and adds a
# static `_no-plugin` build; the Plus line has one build per platform.
_ASSET_RE = re.compile(r"^(?P<prefix>[A-Za-z]+)_(?P<version>[^_]+)_(?P<os>[a-z0-9]+)_"
                       r"(?P<arch>amd64|x86_64|arm64|aarch64)(?P<static>_no-plugin)?\.(?P<ext>tar\.gz|zip)$", re.I)
GLIBC_BASELINE = (2, 17)  # the mainline's default Linux build needs at least this glibc
CHECKSUM_ASSETS = ("checksums.txt", "sha256sums", "sha256sums.txt")
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


# ------------------------------------------------------------------------------------------------
# settings and results


@dataclass(frozen=True)
class ReleaseSettings:
    """Built by the config loader from `cliproxy.release.*` and `cliproxy.binary`."""

    repo: str = lines.MAINLINE_REPO
    version: str = "latest"  # a tag like "v6.8.16-0", or "latest"
    api_url: str | None = None  # None: env GITHUB_API_URL, else https://api.github.com
    check_interval_hours: float = 24
    allow_unverified: bool = False
    binary: str | Path | None = None  # a user-installed binary: skips fetching entirely

    @property
    def is_latest(self) -> bool:
        return self.version.strip().lower() == "latest"


def settings_from_stack(stack: dict) -> ReleaseSettings:
    """ReleaseSettings from the resolved stack config (`cliproxy.release.*`, `cliproxy.binary`)."""
    rel = stack["cliproxy"]["release"]
    return ReleaseSettings(repo=rel["repo"], version=rel["version"], api_url=rel["api_url"],
                           check_interval_hours=rel["check_interval_hours"],
                           allow_unverified=rel["allow_unverified"], binary=stack["cliproxy"]["binary"])


@dataclass(frozen=True)
class FetchResult:
    action: str  # "installed" | "unchanged" | "user-binary"
    tag: str | None
    sha256: str | None  # of the release archive
    requests: int  # HTTP requests made (0 on a warm run)
    binary: Path | None = None
    asset: str | None = None
    verified_by: tuple[str, ...] = field(default_factory=tuple)
    line: str | None = None  # "mainline" | "plus"
    build: str | None = None  # e.g. "glibc build" or "static no-plugin build"

    def describe(self) -> str:
        """`CLIProxyAPI 7.2.140 (mainline, glibc build)` for fetch's output."""
        line = lines.LINES.get(self.line or "")
        title = line.title if line else "CLIProxyAPI"
        version = self.tag[1:] if self.tag and self.tag[:1] in "vV" else self.tag
        about = ", ".join(x for x in (self.line, self.build) if x)
        return f"{title} {version}" + (f" ({about})" if about else "")


# ------------------------------------------------------------------------------------------------
# platform and asset names


def host_platform() -> tuple[str, str]:
    """(os, arch) of this machine in release spelling, e.g. ("linux", "amd64")."""
    system = platform.system().lower()
    os_name = OS_ALIASES.get(system, system)
    machine = platform.machine().lower()
    return os_name, ARCH_ALIASES.get(machine, machine)


def host_libc() -> tuple[str | None, tuple[int, ...] | None]:
    """("glibc", (2, 36)), ("musl", None), or (None, None) where unknown (not Linux)."""
    if platform.system().lower() != "linux":
        return None, None
    name, version = platform.libc_ver()
    if name == "glibc":
        try:
            return "glibc", tuple(int(p) for p in version.split(".")[:2])
        except ValueError:
            return "glibc", None
    return "musl", None  # libc_ver() names glibc only; anything else needs the static build


def needs_static_build(libc: tuple[str | None, tuple[int, ...] | None]) -> bool:
    name, version = libc
    if name is None:
        return False  # not Linux: one build per platform
    return name != "glibc" or version is None or version < GLIBC_BASELINE


@dataclass(frozen=True)
class Asset:
    """A release archive, understood from its name."""

    name: str
    line: lines.Line
    version: str
    os: str
    arch: str  # normalised: amd64 | arm64
    static: bool  # the mainline's `_no-plugin` build

    @property
    def build(self) -> str:
        if self.static:
            return "static no-plugin build"
        return "glibc build" if self.line is lines.MAINLINE and self.os == "linux" else "standard build"

    @property
    def binary(self) -> str:
        return self.line.binary + (".exe" if self.os == "windows" else "")


def parse_asset(name: str) -> Asset | None:
    match = _ASSET_RE.match(name)
    line = lines.by_asset_prefix(match["prefix"]) if match else None
    if line is None:
        return None
    os_name = OS_ALIASES.get(match["os"].lower(), match["os"].lower())
    return Asset(name, line, match["version"], os_name, ARCH_ALIASES[match["arch"].lower()], bool(match["static"]))


def pick_asset(release: dict, os: str | None = None, arch: str | None = None, libc=None) -> tuple[dict, Asset]:
    """This platform's archive from a release of either line; FlowgateError listing what exists.

    On Linux the mainline offers a glibc build and a static `_no-plugin` one: the static build is
    chosen where the C library is musl or a glibc older than the build's baseline.
    """
    host_os, host_arch = host_platform()
    want_os = OS_ALIASES.get((os or host_os).lower(), (os or host_os).lower())
    want_arch = ARCH_ALIASES.get((arch or host_arch).lower(), (arch or host_arch).lower())
    tag = release["tag_name"]
    bare = tag[1:] if tag[:1] in ("v", "V") else tag
    assets = [a for a in release.get("assets", []) if isinstance(a, dict) and isinstance(a.get("name"), str)]
    candidates = []
    for raw in assets:
        info = parse_asset(raw["name"])
        if info and info.version.lower() == bare.lower() and info.os == want_os and info.arch == want_arch:
            candidates.append((raw, info))
    static = needs_static_build(host_libc() if libc is None else libc) if want_os == "linux" else False
    # Preferred first: the build this machine needs, then the other one (static runs everywhere).
    candidates.sort(key=lambda c: (c[1].static != static, c[1].line.name, c[1].name))
    if candidates and (candidates[0][1].static or not static):
        raw, info = candidates[0]
        if not isinstance(raw.get("browser_download_url"), str):
            raise FlowgateError(f"release asset {raw['name']} has no download URL")
        return raw, info
    existing = ", ".join(sorted(a["name"] for a in assets)) or "none"
    needs = " (static build: this machine's C library is musl or an old glibc)" if static else ""
    raise FlowgateError(
        f"release {tag} has no archive for {want_os}/{want_arch}{needs}",
        "set `cliproxy.binary` to a binary you built or installed, or pick another "
        "`cliproxy.release.version` / `cliproxy.release.repo`",
        details=[f"assets in the release: {existing}"],
    )


# ------------------------------------------------------------------------------------------------
# paths, manifest, warm check


def installed_binary(paths: Paths, manifest: dict | None = None) -> Path:
    """Where `fetch` installed the binary; its file name is the line's (the manifest says which)."""
    manifest = read_manifest(paths) if manifest is None else manifest
    name = str((manifest or {}).get("binary") or "")
    if lines.by_binary_name(name) is None:
        name = next((n for n in lines.BINARY_NAMES if (paths.bin_dir / n).exists()), lines.MAINLINE.binary)
    return paths.bin_dir / name


def installed_line(paths: Paths, manifest: dict | None = None) -> lines.Line | None:
    """The line of the installed release, from its manifest (None when unknown)."""
    manifest = read_manifest(paths) if manifest is None else manifest
    return lines.LINES.get(str((manifest or {}).get("line") or "")) or \
        lines.by_binary_name(str((manifest or {}).get("binary") or ""))


def _user_binary(paths: Paths, settings: ReleaseSettings) -> Path:
    p = Path(os.path.expanduser(str(settings.binary)))
    return p if p.is_absolute() else paths.home / p


def binary_path(paths: Paths, settings: ReleaseSettings, manifest: dict | None = None) -> Path:
    """The binary to run: the user's own (`cliproxy.binary`) or the one `fetch` installed."""
    if settings.binary:
        return _user_binary(paths, settings)
    return installed_binary(paths, manifest)


def binary_line(paths: Paths, settings: ReleaseSettings, manifest: dict | None = None) -> lines.Line | None:
    """The line of the binary FlowGate runs: the manifest's, or a user binary's file name (None: unknown)."""
    if settings.binary:
        return lines.by_binary_name(_user_binary(paths, settings).name)
    return installed_line(paths, manifest)


def provider_problems(paths: Paths, stack: dict) -> list[lines.Unsupported]:
    """Configured providers the installed binary cannot log in to, when the manifest can tell.

    Only a manifest of the configured repository counts: after a repo change the next fetch decides.
    """
    settings = settings_from_stack(stack)
    manifest = read_manifest(paths)
    if settings.binary or not stack["cliproxy"]["enabled"] or not manifest or not _same_repo(manifest, settings):
        return []
    line = installed_line(paths, manifest)
    return lines.unsupported_providers(list(stack.get("providers") or []), line) if line else []


def check_user_binary(paths: Paths, settings: ReleaseSettings) -> Path:
    """Validate `cliproxy.binary`: it must exist, be a file, and be executable."""
    p = _user_binary(paths, settings)
    drop = "or remove `cliproxy.binary` to let FlowGate download the release"
    if not p.exists():
        raise FlowgateError(f"cliproxy.binary points to {p}, which does not exist",
                            f"install CLIProxyAPI there, fix the path, {drop}")
    if not p.is_file():
        raise FlowgateError(f"cliproxy.binary points to {p}, which is not a file",
                            f"point it at the cli-proxy-api (or cli-proxy-api-plus) executable itself, {drop}")
    if not os.access(p, os.X_OK):
        raise FlowgateError(f"cliproxy.binary {p} is not executable", f"run: chmod +x {p}")
    return p


def read_manifest(paths: Paths) -> dict | None:
    """The install manifest, or None when missing or unreadable."""
    try:
        data = json.loads(paths.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_manifest(paths: Paths, manifest: dict) -> None:
    atomic_write(paths.manifest, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _fingerprint(st: os.stat_result) -> dict:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _binary_intact(paths: Paths, manifest: dict | None, *, refresh: bool = True) -> bool:
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
    if manifest.get("binary_stat") == _fingerprint(st):
        return True
    if st.st_size != (manifest.get("binary_stat") or {}).get("size", st.st_size):
        return False
    try:
        if _sha256_file(target) != manifest["binary_sha256"]:
            return False
    except OSError:
        return False
    if refresh:  # same content, new stat (touched/copied): remember it so the next check is cheap
        manifest["binary_stat"] = _fingerprint(st)
        with contextlib.suppress(FlowgateError, OSError):
            _write_manifest(paths, manifest)
    return True


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _same_repo(manifest: dict, settings: ReleaseSettings) -> bool:
    return str(manifest.get("repo", "")).lower() == settings.repo.strip().lower()


def _config_satisfied(manifest: dict, settings: ReleaseSettings, now: float | None = None) -> bool:
    """Repo and version match, and for `latest` the last check is younger than check_interval."""
    if not _same_repo(manifest, settings):
        return False
    if not settings.is_latest:
        return manifest.get("tag") == settings.version.strip()
    if manifest.get("requested") != "latest":
        return False
    checked = _parse_time(manifest.get("checked_at"))
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
            check_user_binary(paths, settings)
        except FlowgateError:
            return False
        return True
    manifest = read_manifest(paths)
    if not manifest or not _config_satisfied(manifest, settings):
        return False
    return _binary_intact(paths, manifest)


# ------------------------------------------------------------------------------------------------
# checksums


def parse_checksums(text: str) -> dict[str, str]:
    """`<sha256 hex>  <name>` lines (also `<hex> *<name>`) -> {name: hex}."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or not _HEX64.match(parts[0]):
            continue
        name = parts[1].strip().lstrip("*")
        if name.startswith("./"):
            name = name[2:]
        sums[name] = parts[0].lower()
    return sums


def _digest_of(asset: dict) -> str | None:
    digest = asset.get("digest")
    if not isinstance(digest, str) or ":" not in digest:
        return None
    algo, _, value = digest.partition(":")
    if algo.strip().lower() != "sha256":
        return None
    if not _HEX64.match(value.strip()):
        raise FlowgateError(f"release asset {asset.get('name')} has a malformed digest {digest!r}",
                            "the release metadata looks corrupt; nothing was installed")
    return value.strip().lower()


def _checksums_asset(release: dict) -> dict | None:
    for asset in release.get("assets", []):
        name = str(asset.get("name", "")).lower() if isinstance(asset, dict) else ""
        if name in CHECKSUM_ASSETS or name.endswith("_checksums.txt"):
            if isinstance(asset.get("browser_download_url"), str):
                return asset
    return None


def _expected_sha256(gh, release: dict, asset: dict) -> dict[str, str]:
    """{source: hex} from the asset's digest and the release's checksums file (when present)."""
    expected: dict[str, str] = {}
    digest = _digest_of(asset)
    if digest:
        expected["digest"] = digest
    sums_asset = _checksums_asset(release)
    if sums_asset:
        listed = parse_checksums(gh.get_text(sums_asset["browser_download_url"]))
        value = listed.get(asset["name"])
        if value is None:  # tolerate case differences in the listed name
            value = next((v for k, v in listed.items() if k.lower() == asset["name"].lower()), None)
        if value:
            expected[sums_asset["name"]] = value
    if len(set(expected.values())) > 1:
        raise FlowgateError(
            f"the release's checksums for {asset['name']} disagree: "
            + ", ".join(f"{k} says {v}" for k, v in expected.items()),
            "the release metadata is inconsistent or tampered with; nothing was installed",
        )
    return expected


# ------------------------------------------------------------------------------------------------
# archive extraction


def _safe_member_name(name: str) -> str | None:
    """Normalised relative name, or None when the name is absolute or climbs out with `..`."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return None
    parts = [p for p in PurePosixPath(norm).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def _malicious(archive_name: str, member: str, why: str) -> FlowgateError:
    return FlowgateError(
        f"refusing to install from {archive_name}: member {member!r} {why}",
        "the archive is malformed or malicious; nothing was installed. Report it to the release's maintainers",
    )


def _archive_errors() -> tuple:
    """What reading a damaged archive raises (gzip.BadGzipFile is an OSError: keep it apart from ENOSPC).

    The archive modules are imported here, not at module level: the warm check (`is_current`) runs
    on every `doit up` and needs none of them.
    """
    import gzip
    import tarfile
    import zlib

    return (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


def _copy_member(src, dest_dir: Path, exe_name: str, size: int | None) -> tuple[Path, str]:
    """Stream `src` into a 0755 temp file in dest_dir (fsynced); return (temp path, sha256).

    Write failures (disk full) become fsutil.write_error; read failures propagate as archive errors.
    """
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{exe_name}.", suffix=".tmp", dir=dest_dir)
    except OSError as exc:
        raise write_error(dest_dir / exe_name, exc) from None
    h = hashlib.sha256()
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > MAX_BINARY_SIZE:
                    raise FlowgateError(f"{exe_name} in the archive is larger than {MAX_BINARY_SIZE} bytes",
                                        "the archive looks wrong; nothing was installed")
                h.update(chunk)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise write_error(dest_dir / exe_name, exc) from None
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise write_error(dest_dir / exe_name, exc) from None
        os.chmod(tmp, 0o755)
        if size is not None and written != size:
            raise FlowgateError(f"{exe_name} in the archive is truncated ({written} of {size} bytes)",
                                "the archive is corrupt; nothing was installed")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp), h.hexdigest()


def extract_binary(archive: Path, dest_dir: Path, archive_name: str, exe_name: str) -> tuple[Path, str]:
    """Check every member of a .tar.gz/.zip and stream the root `exe_name` to a temp file in dest_dir.

    Rejects absolute paths, `..` members, links, devices and FIFOs anywhere in the archive.
    Returns (temp file, sha256 of the binary); the caller renames it into place.
    """
    import tarfile
    import zipfile

    archive_errors = _archive_errors()
    corrupt = FlowgateError(f"{archive_name} is not a valid archive",
                            "the download is corrupt; run the command again. Nothing was installed")
    if archive_name.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(archive) as zf:
                found = None
                for info in zf.infolist():
                    rel = _safe_member_name(info.filename)
                    if rel is None:
                        raise _malicious(archive_name, info.filename, "has an absolute or `..` path")
                    kind = stat.S_IFMT(info.external_attr >> 16)
                    if info.is_dir():
                        continue
                    if kind and kind != stat.S_IFREG:
                        raise _malicious(archive_name, info.filename, "is a link or special file")
                    if rel == exe_name:
                        if found is not None:
                            raise _malicious(archive_name, info.filename, "appears twice")
                        found = info
                if found is None:
                    raise _missing(archive_name, exe_name)
                with zf.open(found) as src:
                    return _copy_member(src, dest_dir, exe_name, found.file_size)
        except (zipfile.BadZipFile, ValueError, *archive_errors):
            raise corrupt from None
    try:
        with tarfile.open(archive, "r:*") as tf:
            found = None
            for member in tf.getmembers():
                rel = _safe_member_name(member.name)
                if rel is None:
                    raise _malicious(archive_name, member.name, "has an absolute or `..` path")
                if member.issym() or member.islnk():
                    raise _malicious(archive_name, member.name, f"is a link (to {member.linkname!r})")
                if member.isdir():
                    continue
                if not member.isreg():
                    raise _malicious(archive_name, member.name, "is a device, FIFO or other special file")
                if rel == exe_name:
                    if found is not None:
                        raise _malicious(archive_name, member.name, "appears twice")
                    found = member
            if found is None:
                raise _missing(archive_name, exe_name)
            src = tf.extractfile(found)
            if src is None:
                raise _missing(archive_name, exe_name)
            with src:
                return _copy_member(src, dest_dir, exe_name, found.size)
    except archive_errors:
        raise corrupt from None


def _missing(archive_name: str, exe_name: str) -> FlowgateError:
    return FlowgateError(f"{archive_name} has no {exe_name} at its root",
                         "the release layout changed; set `cliproxy.binary` to a binary you installed")


# ------------------------------------------------------------------------------------------------
# progress


def progress_enabled(stream=None, environ: dict | None = None) -> bool:
    """A bar only on an interactive terminal and never under CI."""
    env = os.environ if environ is None else environ
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class ProgressBar:
    """`label  42% [#####.....] 12.0 MiB/28.3 MiB  3.1 MiB/s  ETA 0:05` on one terminal line."""

    def __init__(self, label: str, stream=None, *, min_interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, width: int | None = None):
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.min_interval = min_interval
        self.clock = clock
        import shutil

        self.width = width or shutil.get_terminal_size((80, 24)).columns
        self.start = clock()
        self._last = -1.0
        self._shown = False
        self._done = 0
        self._total: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        self._done, self._total = done, total
        now = self.clock()
        if now - self._last < self.min_interval and not (total and done >= total):
            return
        self._last = now
        self.stream.write("\r" + self.render(now))
        self.stream.flush()
        self._shown = True

    def render(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-6)
        rate = self._done / elapsed
        total = self._total
        if total:
            frac = min(1.0, self._done / total)
            eta = (total - self._done) / rate if rate > 0 else None
            eta_txt = f"{int(eta) // 60}:{int(eta) % 60:02d}" if eta is not None else "?:??"
            tail = f" {frac * 100:3.0f}% {{bar}} {_human(self._done)}/{_human(total)}  {_human(rate)}/s  ETA {eta_txt}"
            room = max(10, min(30, self.width - len(tail) - 12))
            filled = int(room * frac)
            bar = "[" + "#" * filled + "." * (room - filled) + "]"
            tail = tail.replace("{bar}", bar)
        else:
            tail = f" {_human(self._done)}  {_human(rate)}/s"
        label = self.label
        max_label = max(8, self.width - len(tail) - 1)
        if len(label) > max_label:
            label = label[: max_label - 1] + "…"
        return (label + tail)[: self.width - 1].ljust(self.width - 1)

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r" + self.render() + "\n")
            self.stream.flush()


# ------------------------------------------------------------------------------------------------
# fetch


def _validate(settings: ReleaseSettings) -> None:
    if not _REPO_RE.match(settings.repo.strip()):
        raise FlowgateError(f"cliproxy.release.repo {settings.repo!r} is not of the form owner/name",
                            f"e.g. `cliproxy.release.repo: {lines.MAINLINE_REPO}`")
    version = settings.version.strip()
    if not version or any(c.isspace() or c in "/?#" for c in version):
        raise FlowgateError(f"cliproxy.release.version {settings.version!r} is not a release tag",
                            f"use a tag like {lines.MAINLINE_VERSION}, or latest")


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
    """Make sure the configured CLIProxyAPIPlus binary is installed.

    `progress`: None = a bar on stderr when it is a terminal (and CI is unset), False = quiet,
    True = always a bar, or a callable `(bytes_done, total_or_None)`.
    `client_factory`: zero-argument callable returning an httpx.Client (tests, proxies, timeouts).
    """
    import tempfile

    if settings.binary:
        p = check_user_binary(paths, settings)
        return FetchResult("user-binary", tag=None, sha256=None, requests=0, binary=p)
    _validate(settings)
    manifest = read_manifest(paths)
    intact = _binary_intact(paths, manifest)
    if manifest and intact and _config_satisfied(manifest, settings):
        return _unchanged(paths, manifest, 0)

    from . import github

    api = github.api_base(settings.api_url)
    repo = settings.repo.strip()
    same_source = bool(manifest and intact and _same_repo(manifest, settings))
    with github.GitHub(api, repo, client_factory) as gh:
        etag = None
        if settings.is_latest and same_source and manifest.get("requested") == "latest" \
                and manifest.get("api_url") == api:
            etag = manifest.get("etag") or None
        release, new_etag = gh.get_release(None if settings.is_latest else settings.version.strip(), etag)

        if release is None or (settings.is_latest and same_source and release["tag_name"] == manifest.get("tag")
                               and _digest_unchanged(release, manifest)):
            # 304, or `latest` still is the release we have: just remember that we checked.
            manifest.update(requested="latest", checked_at=_now_iso(), etag=new_etag, api_url=api)
            _write_manifest(paths, manifest)
            return _unchanged(paths, manifest, gh.requests)

        tag = release["tag_name"]
        asset, info = pick_asset(release)
        target = paths.bin_dir / info.binary
        expected = _expected_sha256(gh, release, asset)
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
                        sha, size = gh.download(asset["browser_download_url"], out, bar)
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
            "binary_stat": _fingerprint(st),
            "source_url": asset["browser_download_url"],
            "api_url": api,
            "installed_at": _now_iso(),
        }
        if settings.is_latest:
            new_manifest.update(etag=new_etag, checked_at=_now_iso())
        _write_manifest(paths, new_manifest)
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
                digest = _digest_of(asset)
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

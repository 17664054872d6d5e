"""Which release archive this machine runs: platform and C library, and either line's asset names.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass

from ..base.errors import FlowgateError
from . import lines

OS_ALIASES = {"linux": "linux", "darwin": "darwin", "macos": "darwin", "windows": "windows", "win32": "windows"}
ARCH_ALIASES = {"amd64": "amd64", "x86_64": "amd64", "x64": "amd64", "arm64": "arm64", "aarch64": "arm64"}
# <prefix>_<version>_<os>_<arch>[_no-plugin].<ext>: the mainline spells arm64 `aarch64` and adds a
# static `_no-plugin` build; the Plus line has one build per platform.
_ASSET_RE = re.compile(r"^(?P<prefix>[A-Za-z]+)_(?P<version>[^_]+)_(?P<os>[a-z0-9]+)_"
                       r"(?P<arch>amd64|x86_64|arm64|aarch64)(?P<static>_no-plugin)?\.(?P<ext>tar\.gz|zip)$", re.I)
GLIBC_BASELINE = (2, 17)  # the mainline's default Linux build needs at least this glibc


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

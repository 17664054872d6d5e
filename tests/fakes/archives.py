"""Build CLIProxyAPI release archives (either line) for tests, including malicious ones.

    build_archive(tmp_path, "v6.8.16-0", release_files(script_bytes))            # a good Plus one
    build_archive(tmp_path, "v7.2.140", release_files(script, line="mainline"), line="mainline")
    build_archive(tmp_path, "v6.8.16-0", {"cli-proxy-api-plus": b"..", "../evil": b"x"})
    build_archive(tmp_path, "v6.8.16-0", {"cli-proxy-api-plus": Symlink("/bin/sh")})

Values in `files`: bytes (a regular file; mode 0755 for the executable, 0644 otherwise), File(data,
mode), Symlink(target), Hardlink(target), Special("fifo"|"chr"|"blk"), or Dir(). Names are written
verbatim, so "/abs/path" and "../evil" members are possible.
"""

from __future__ import annotations

import io
import stat
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

# line -> (asset prefix, executable): the naming of the two lines' releases (reference sheet)
LINES = {"plus": ("CLIProxyAPIPlus", "cli-proxy-api-plus"), "mainline": ("CLIProxyAPI", "cli-proxy-api")}
ASSET_PREFIX, BINARY = LINES["plus"]
MTIME = 1_760_000_000  # fixed, so archives (and their sha256) are reproducible


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Hardlink:
    target: str


@dataclass(frozen=True)
class Special:
    kind: str = "fifo"  # fifo | chr | blk


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


def binary_name(os: str = "linux", line: str = "plus") -> str:
    return LINES[line][1] + (".exe" if os == "windows" else "")


def asset_name(version: str, os: str = "linux", arch: str = "amd64", line: str = "plus", static: bool = False) -> str:
    """Plus: `CLIProxyAPIPlus_<v>_<os>_<arch>`; mainline: `CLIProxyAPI_<v>_<os>_<arch>[_no-plugin]`
    (the mainline spells arm64 `aarch64`)."""
    bare = version[1:] if version.startswith("v") else version
    ext = "zip" if os == "windows" else "tar.gz"
    if line == "mainline" and arch == "arm64":
        arch = "aarch64"
    return f"{LINES[line][0]}_{bare}_{os}_{arch}{'_no-plugin' if static else ''}.{ext}"


def release_files(binary: bytes, os: str = "linux", line: str = "plus") -> dict:
    """What a real release archive holds: the executable next to docs and an example config."""
    return {
        binary_name(os, line): File(binary, 0o755),
        "LICENSE": b"MIT License\n",
        "README.md": f"# {LINES[line][0]}\n".encode(),
        "README_CN.md": f"# {LINES[line][0]}\n".encode(),
        "config.example.yaml": b"port: 8317\n",
    }


def _normalise(name: str, value, os: str):
    if isinstance(value, (bytes, bytearray)):
        base = name.rsplit("/", 1)[-1]
        executable = base in (binary_name(os, line) for line in LINES)
        return File(bytes(value), 0o755 if executable else 0o644)
    return value


def build_archive(tmpdir, version: str, files: dict, os: str = "linux", arch: str = "amd64",
                  *, name: str | None = None, line: str = "plus", static: bool = False) -> Path:
    """Write a release archive (.tar.gz, or .zip for windows) into `tmpdir`; return its path."""
    name = name or asset_name(version, os, arch, line, static)
    out = Path(tmpdir) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".zip"):
        _build_zip(out, files, os)
    else:
        _build_tar(out, files, os)
    return out


def _build_tar(out: Path, files: dict, os: str) -> None:
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for member, raw in files.items():
            value = _normalise(member, raw, os)
            info = tarfile.TarInfo(member)  # verbatim: absolute and ../ names survive
            info.mtime = MTIME
            info.uname = info.gname = "root"
            if isinstance(value, File):
                info.size = len(value.data)
                info.mode = value.mode
                tf.addfile(info, io.BytesIO(value.data))
                continue
            if isinstance(value, Symlink):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, value.target, 0o777
            elif isinstance(value, Hardlink):
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, value.target, 0o755
            elif isinstance(value, Special):
                info.type = {"fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}[value.kind]
                info.mode = 0o644
            elif isinstance(value, Dir):
                info.type, info.mode = tarfile.DIRTYPE, value.mode
            else:
                raise TypeError(f"unsupported archive entry for {member}: {value!r}")
            tf.addfile(info)


def _build_zip(out: Path, files: dict, os: str) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, raw in files.items():
            value = _normalise(member, raw, os)
            info = zipfile.ZipInfo(member, date_time=time.localtime(MTIME)[:6])
            info.create_system = 3  # unix, so external_attr carries the mode bits
            if isinstance(value, File):
                info.external_attr = (stat.S_IFREG | value.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, value.data)
            elif isinstance(value, Symlink):
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, value.target.encode())
            elif isinstance(value, Dir):
                if not info.filename.endswith("/"):
                    info.filename += "/"
                info.external_attr = (stat.S_IFDIR | value.mode) << 16 | 0x10
                zf.writestr(info, b"")
            else:
                raise TypeError(f"unsupported zip entry for {member}: {value!r}")

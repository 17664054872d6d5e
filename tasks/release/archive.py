"""Safe extraction of the one executable a release archive holds.

Every member of a .tar.gz/.zip is checked first: absolute paths, `..`, links, devices and FIFOs
anywhere in the archive are refused. The archive modules are imported inside functions: the warm
check runs on every `doit up` and needs none of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..base.errors import FlowgateError
from ..base.fsutil import write_error

MAX_BINARY_SIZE = 1024 * 1024 * 1024  # a Go binary is ~30 MB; refuse archive bombs
MAX_MEMBERS = 1000  # a release archive holds 5 files; a million were read for 36 s into 628 MB
CHUNK = 256 * 1024


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


@dataclass(frozen=True)
class _Member:
    """One archive entry, the same for zip and tar: the safety rules are written once."""

    name: str
    kind: str  # "file" | "dir" | "link" | "special"
    size: int
    entry: Any  # the ZipInfo / TarInfo, to open it
    link: str = ""


def _too_many(archive_name: str) -> FlowgateError:
    return FlowgateError(f"{archive_name} holds more than {MAX_MEMBERS} entries; a release archive holds a few",
                         "refusing it (nothing was installed); set `cliproxy.binary` to a binary you verified")


def _zip_members(zf, archive_name: str = "") -> list[_Member]:
    if len(zf.infolist()) > MAX_MEMBERS:
        raise _too_many(archive_name)
    out = []
    for info in zf.infolist():
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir():
            what = "dir"
        elif kind == stat.S_IFLNK:
            what = "link"
        else:
            what = "file" if kind in (0, stat.S_IFREG) else "special"
        out.append(_Member(info.filename, what, info.file_size, info))
    return out


def _tar_members(tf, archive_name: str = "") -> list[_Member]:
    out = []
    for m in tf:  # one at a time: stop reading a hostile archive at the cap
        if len(out) >= MAX_MEMBERS:
            raise _too_many(archive_name)
        what = "link" if m.issym() or m.islnk() else "dir" if m.isdir() else "file" if m.isreg() else "special"
        out.append(_Member(m.name, what, m.size, m, m.linkname))
    return out


def _find_executable(members: list[_Member], archive_name: str, exe_name: str) -> _Member:
    """Check every member, then return the root `exe_name`: absolute or `..` paths, links and
    special files anywhere in the archive, or the executable twice, refuse the whole archive."""
    found = None
    for m in members:
        rel = _safe_member_name(m.name)
        if rel is None:
            raise _malicious(archive_name, m.name, "has an absolute or `..` path")
        if m.kind == "link":
            raise _malicious(archive_name, m.name, "is a link" + (f" (to {m.link!r})" if m.link else ""))
        if m.kind == "special":
            raise _malicious(archive_name, m.name, "is a device, FIFO or other special file")
        if m.kind == "file" and rel == exe_name:
            if found is not None:
                raise _malicious(archive_name, m.name, "appears twice")
            found = m
    if found is None:
        raise _missing(archive_name, exe_name)
    return found


def extract_binary(archive: Path, dest_dir: Path, archive_name: str, exe_name: str) -> tuple[Path, str]:
    """Check every member of a .tar.gz/.zip and stream the root `exe_name` to a temp file in dest_dir.

    Returns (temp file, sha256 of the binary); the caller renames it into place.
    """
    import tarfile
    import zipfile

    corrupt = FlowgateError(f"{archive_name} is not a valid archive",
                            "the download is corrupt; run the command again. Nothing was installed")
    try:
        if archive_name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                found = _find_executable(_zip_members(zf, archive_name), archive_name, exe_name)
                with zf.open(found.entry) as src:
                    return _copy_member(src, dest_dir, exe_name, found.size)
        with tarfile.open(archive, "r:*") as tf:
            found = _find_executable(_tar_members(tf, archive_name), archive_name, exe_name)
            src = tf.extractfile(found.entry)
            if src is None:
                raise _missing(archive_name, exe_name)
            with src:
                return _copy_member(src, dest_dir, exe_name, found.size)
    except (zipfile.BadZipFile, ValueError, *_archive_errors()):
        raise corrupt from None


def _missing(archive_name: str, exe_name: str) -> FlowgateError:
    return FlowgateError(f"{archive_name} has no {exe_name} at its root",
                         "the release layout changed; set `cliproxy.binary` to a binary you installed")

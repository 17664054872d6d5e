"""Process records and identity: what FlowGate remembers about a process it started, and whether
that process is still the same one (pid AND create time; a zombie counts as exited).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from typing import Callable

from ...base.fsutil import atomic_write, read_small

RECORD_VERSION = 1
RECORD_MODE = 0o644  # a record holds no secrets: no env values, ever
LOG_MODE = 0o600  # a service may log request data; keep its log private
CTIME_TOLERANCE = 0.01  # seconds; create times are kept in clock ticks (1/100 s)

# Children spawned by this interpreter: pid -> (Popen, create_time). Holding the Popen keeps
# subprocess from reaping them behind our back (and lets status() report their exit code).
_CHILDREN: dict[int, tuple[subprocess.Popen, float]] = {}
# Exit codes of children reaped with os.waitpid, keyed by (pid, create_time).
_REAPED: dict[tuple[int, float], int] = {}

_ON_LINUX = sys.platform.startswith("linux")


def _now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- records


class ProcessRecord(namedtuple("ProcessRecord", "service pid pgid create_time argv cwd inputs_hash started_at log "
                                              "meta boot_id boot_time", defaults=(None, None))):
    """What FlowGate remembers about a process it started (never env values). Immutable: `_replace`
    makes a changed copy (a namedtuple, as the other value types `doit up` loads: see tasks.paths).

    create_time  psutil.Process(pid).create_time(), seconds since the epoch
    started_at   ISO 8601, local time with offset
    meta         dict, always given (a shared default dict would leak between records)
    boot_id, boot_time
                 Linux: the boot the process belongs to, and the boot time its create_time was
                 computed with. The kernel's boot time (/proc/stat btime) moves when the wall clock
                 is stepped, which would shift create_time; normalising with the recorded one keeps
                 identity stable.
    """

    __slots__ = ()

    def to_json(self) -> str:
        data = {"version": RECORD_VERSION, **self._asdict()}
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> "ProcessRecord":
        """Build from parsed JSON; raises ValueError/TypeError/KeyError when malformed."""
        if not isinstance(data, dict):
            raise TypeError("record is not an object")
        argv = data["argv"]
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise TypeError("argv")
        pid, pgid = data["pid"], data["pgid"]
        for v in (pid, pgid):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError("pid/pgid")
        meta = data.get("meta") or {}
        if not isinstance(meta, dict):
            raise TypeError("meta")
        boot_time = data.get("boot_time")
        return cls(
            service=str(data["service"]),
            pid=pid,
            pgid=pgid,
            create_time=float(data["create_time"]),
            argv=list(argv),
            cwd=None if data.get("cwd") is None else str(data["cwd"]),
            inputs_hash=str(data.get("inputs_hash", "")),
            started_at=str(data.get("started_at", "")),
            log=None if data.get("log") is None else str(data["log"]),
            meta=meta,
            boot_id=None if data.get("boot_id") is None else str(data["boot_id"]),
            boot_time=None if boot_time is None else float(boot_time),
        )


def read_record(path: Path) -> ProcessRecord | None:
    """The record at `path`, or None when missing or unreadable (a corrupt record is stale)."""
    data = read_small(Path(path))  # never read whole: a damaged record may be a 2 GB sparse file
    if data is None:
        return None
    try:
        return ProcessRecord.from_dict(json.loads(data.decode("utf-8")))
    except (ValueError, TypeError, KeyError, RecursionError):
        return None


def write_record(path: Path, record: ProcessRecord) -> None:
    _set_aside_directory(Path(path))
    atomic_write(Path(path), record.to_json(), mode=RECORD_MODE)


def remove_record(path: Path) -> None:
    _set_aside_directory(Path(path))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _set_aside_directory(path: Path) -> None:
    """A directory where a run record belongs (made by hand or by another tool) made `down` fail while
    the service kept serving: it is renamed aside (`<name>.odd-<time>`, nothing deleted) so the record
    can be written or removed."""
    if path.is_dir() and not path.is_symlink():
        with contextlib.suppress(OSError):
            os.rename(path, path.with_name(f"{path.name}.odd-{time.time_ns()}"))


# --------------------------------------------------------------------------- identity


def _boot_id() -> str | None:
    if not _ON_LINUX:
        return None
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as fh:  # bytes: no codec to load
            return fh.read().decode().strip() or None
    except OSError:
        return None


_CLK_TCK: int | None = None


def _psutil():
    """psutil, imported on first use: `doit status` on Linux never needs it (~30 ms saved)."""
    import psutil

    return psutil


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """Linux: (state letter, start time in seconds since boot) of `pid`, or None if it is gone.

    The start time never changes and is immune to wall-clock steps.
    """
    global _CLK_TCK
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    try:
        # Fields after comm (2), which may contain spaces and parens: state (3) … starttime (22).
        fields = raw[raw.rindex(b")") + 2 :].split()
        state, ticks = fields[0].decode("ascii", "replace"), int(fields[19])
    except (ValueError, IndexError):
        return None
    if _CLK_TCK is None:
        _CLK_TCK = os.sysconf("SC_CLK_TCK")
    return state, ticks / _CLK_TCK


def _fast_path(record: ProcessRecord) -> bool:
    return _ON_LINUX and record.boot_id is not None and record.boot_time is not None


def _current_ctime(pid: int, record: ProcessRecord | None = None) -> float | None:
    """Create time of `pid`, comparable with `record.create_time`; None if it is gone.

    On Linux it is normalised with the record's boot time (so a stepped wall clock does not make
    our own process look foreign); elsewhere it is psutil's create time.
    """
    if record is not None and _fast_path(record) and record.boot_id == _boot_id():
        st = _proc_stat(pid)
        return None if st is None else st[1] + record.boot_time
    ps = _psutil()
    try:
        return ps.Process(pid).create_time()
    except ps.Error:
        return None


def make_record(
    pid: int,
    *,
    service: str,
    argv: list[str] | None = None,
    cwd: str | None = None,
    inputs_hash: str = "",
    log: str | None = None,
    meta: dict | None = None,
) -> ProcessRecord:
    """A record describing the live process `pid` as it is now (pid, pgid, create time)."""
    create_time = _psutil().Process(pid).create_time()
    st = _proc_stat(pid) if _ON_LINUX else None
    boot_id = _boot_id()
    boot_time = create_time - st[1] if (st is not None and boot_id) else None
    try:
        pgid = os.getpgid(pid)
    except OSError:
        pgid = pid
    return ProcessRecord(
        service=service,
        pid=pid,
        pgid=pgid,
        create_time=create_time,
        argv=list(argv if argv is not None else []),
        cwd=cwd,
        inputs_hash=inputs_hash,
        started_at=_now_iso(),
        log=log,
        meta=dict(meta or {}),
        boot_id=boot_id if boot_time is not None else None,
        boot_time=boot_time,
    )


# What became of a record's process.
ALIVE, ZOMBIE, GONE, FOREIGN = "alive", "zombie", "gone", "foreign"


def _identify(record: ProcessRecord) -> str:
    """ALIVE / ZOMBIE: our process (pid and create time match). GONE: no such pid.

    FOREIGN: the pid is someone else's now (other create time, an earlier boot, or unreadable).
    While any member of our process group lives, the kernel cannot reuse the pid number, so
    FOREIGN also means nothing of ours is left.
    """
    if _fast_path(record):
        if record.boot_id != _boot_id():
            return FOREIGN  # recorded before a reboot: nothing of ours can be left
        st = _proc_stat(record.pid)
        if st is None:
            return GONE
        state, since_boot = st
        if abs(since_boot + record.boot_time - record.create_time) > CTIME_TOLERANCE:
            return FOREIGN
        return ZOMBIE if state in ("Z", "X") else ALIVE
    ps = _psutil()
    try:
        proc = ps.Process(record.pid)
        if abs(proc.create_time() - record.create_time) > CTIME_TOLERANCE:
            return FOREIGN
        return ZOMBIE if proc.status() == ps.STATUS_ZOMBIE else ALIVE
    except ps.ZombieProcess:
        return ZOMBIE
    except ps.NoSuchProcess:
        return GONE
    except ps.AccessDenied:
        return FOREIGN  # a process we cannot identify is not one we may signal


def _child(pid: int, create_time: float | None = None) -> subprocess.Popen | None:
    """Our Popen for `pid`, if we spawned it (and, given `create_time`, it is that process)."""
    entry = _CHILDREN.get(pid)
    if entry is None:
        return None
    popen, ctime = entry
    if create_time is not None and abs(ctime - create_time) > CTIME_TOLERANCE:
        return None
    return popen


def _forget(record: ProcessRecord) -> None:
    if _child(record.pid, record.create_time) is not None:
        del _CHILDREN[record.pid]


def _reap(pid: int, create_time: float | None = None) -> int | None:
    """Reap `pid` if it is our exited child; its exit code (negative: killed by that signal).

    Only called for a pid known to be the process in question (identity checked, zombie).
    """
    popen = _child(pid, create_time)
    if popen is not None:
        return popen.poll()
    if pid in _CHILDREN:
        return None  # a newer child of ours holds this pid: not ours to reap here
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except OSError:  # ChildProcessError: not our child
        return None
    if done == 0:
        return None
    code = os.waitstatus_to_exitcode(status)
    if create_time is not None:
        _REAPED[(pid, round(create_time, 2))] = code
    return code


def _exit_code(record: ProcessRecord) -> int | None:
    """The exit code of the record's process, if it was our child and has been reaped."""
    popen = _child(record.pid, record.create_time)
    if popen is not None:
        return popen.poll()
    return _REAPED.get((record.pid, round(record.create_time, 2)))


def is_alive(record: ProcessRecord | None) -> bool:
    """True when the record's pid exists, has the recorded create time and is not a zombie.

    Never looks at names: a wrapper script or a reused pid cannot fool it.
    """
    if record is None:
        return False
    what = _identify(record)
    if what == ZOMBIE:
        _reap(record.pid, record.create_time)
    return what == ALIVE


# --------------------------------------------------------------------------- status


class ProcState(namedtuple("ProcState", "service state pid uptime exit_code record",
                           defaults=(None, None, None, None))):
    """state: "running" | "stopped" | "crashed"; uptime: seconds, when running; exit_code: when
    crashed and knowable (our own child), < 0 for a signal."""

    __slots__ = ()


def status(record: ProcessRecord | None, *, now: Callable[[], float] = time.time) -> ProcState:
    """running (alive) / stopped (no record) / crashed (record left, process gone)."""
    if record is None:
        return ProcState(service=None, state="stopped")
    if is_alive(record):
        return ProcState(
            service=record.service,
            state="running",
            pid=record.pid,
            uptime=max(0.0, now() - record.create_time),
            record=record,
        )
    return ProcState(
        service=record.service,
        state="crashed",
        pid=record.pid,
        exit_code=_exit_code(record),
        record=record,
    )

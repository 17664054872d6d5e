"""Spawn, identify and stop the services FlowGate runs (plain Python, knows nothing of doit).

Modelled on honcho's process manager: every service starts in a session of its own (so it leads
its own process group), stdin from /dev/null, stdout+stderr appended to a log file. `spawn`
returns at once; readiness is `tasks.probe`'s job.

Identity, never names: a record (`.router/run/<service>.json`) keeps the pid *and* the process
create time. A pid whose create time differs is somebody else's process and is never signalled.
A zombie counts as exited (init may take ~1.8 s to reap an orphan). `stop` signals the whole
process group (SIGTERM, then SIGKILL after a timeout), so a wrapper script's grandchildren go too.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from .errors import FlowgateError
from .fsutil import atomic_write

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


# --------------------------------------------------------------------------- records


@dataclass
class ProcessRecord:
    """What FlowGate remembers about a process it started (never env values)."""

    service: str
    pid: int
    pgid: int
    create_time: float  # psutil.Process(pid).create_time(), seconds since the epoch
    argv: list[str]
    cwd: str | None
    inputs_hash: str
    started_at: str  # ISO 8601, local time with offset
    log: str | None
    meta: dict = field(default_factory=dict)
    # Linux: the boot the process belongs to, and the boot time its create_time was computed
    # with. The kernel's boot time (/proc/stat btime) moves when the wall clock is stepped, which
    # would shift create_time; normalising with the recorded one keeps identity stable.
    boot_id: str | None = None
    boot_time: float | None = None

    def to_json(self) -> str:
        data = {"version": RECORD_VERSION, **asdict(self)}
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
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return ProcessRecord.from_dict(json.loads(text))
    except (ValueError, TypeError, KeyError):
        return None


def write_record(path: Path, record: ProcessRecord) -> None:
    atomic_write(Path(path), record.to_json(), mode=RECORD_MODE)


def remove_record(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# --------------------------------------------------------------------------- identity


def _boot_id() -> str | None:
    if not _ON_LINUX:
        return None
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip() or None
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


@dataclass
class ProcState:
    service: str | None
    state: str  # "running" | "stopped" | "crashed"
    pid: int | None = None
    uptime: float | None = None  # seconds, when running
    exit_code: int | None = None  # when crashed and knowable (our own child); <0 = signal
    record: ProcessRecord | None = None


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


# --------------------------------------------------------------------------- spawn


def _now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _open_log(log_path: Path) -> int:
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), LOG_MODE)
    except OSError as exc:
        raise FlowgateError(f"cannot open log file {log_path}: {exc.strerror or exc}") from None
    os.write(fd, f"--- started {_now_iso()} ---\n".encode())
    return fd


def _exec_error(service: str, argv: list[str], cwd, exc: OSError) -> FlowgateError:
    target = exc.filename if exc.filename is not None else argv[0]
    if cwd is not None and str(target) == str(cwd):
        return FlowgateError(
            f"cannot start {service}: working directory {cwd} does not exist or is not accessible",
        )
    if exc.errno == errno.ENOENT and os.path.exists(target):
        return FlowgateError(
            f"cannot start {service}: the interpreter named on the #! line of {target} was not found",
        )
    if exc.errno == errno.ENOENT:
        return FlowgateError(
            f"cannot start {service}: {target} not found",
            "check the path (for CLIProxyAPIPlus run `doit fetch`)",
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return FlowgateError(f"cannot start {service}: {target} is not executable", f"chmod +x {target}")
    if exc.errno == errno.ENOEXEC:
        return FlowgateError(
            f"cannot start {service}: {target} is not a valid executable for this machine",
            "it may be built for another OS/CPU; re-fetch it",
        )
    return FlowgateError(f"cannot start {service}: {target}: {exc.strerror or exc}")


def spawn(
    argv: list[str],
    *,
    env: dict[str, str] | None,
    cwd: str | os.PathLike | None,
    log_path: str | os.PathLike,
    record_path: str | os.PathLike,
    service: str,
    inputs_hash: str,
    meta: dict | None = None,
) -> ProcessRecord:
    """Start `argv` in a new session, write its record, and return at once.

    stdout+stderr are appended to `log_path` after a `--- started <time> ---` line. `env` is the
    complete environment (None inherits ours); its values never reach the record. Raises
    FlowgateError when the binary cannot be executed or the recorded process is still running.
    """
    argv = [os.fspath(a) for a in argv]
    if not argv:
        raise ValueError("spawn: empty argv")
    record_path = Path(record_path)
    log_path = Path(log_path)
    meta = dict(meta or {})
    json.dumps(meta)  # a non-JSON meta is a bug: fail before anything is started

    existing = read_record(record_path)
    if existing is not None and is_alive(existing):
        raise FlowgateError(
            f"{service} is already running (pid {existing.pid})",
            "stop it before starting it again",
        )

    cwd_str = None if cwd is None else os.fspath(cwd)
    log_fd = _open_log(log_path)
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd_str,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.write(log_fd, f"--- could not start: {exc.strerror or exc} ---\n".encode())
        raise _exec_error(service, argv, cwd_str, exc) from None
    finally:
        os.close(log_fd)
    try:
        record = make_record(
            popen.pid,
            service=service,
            argv=argv,
            cwd=cwd_str,
            inputs_hash=inputs_hash,
            log=str(log_path),
            meta=meta,
        )
        # start_new_session makes the child a group leader: pgid == pid.
        record.pgid = popen.pid
        _CHILDREN[popen.pid] = (popen, record.create_time)
        write_record(record_path, record)
    except BaseException:
        # Never leave a process behind that no record points to.
        with contextlib.suppress(OSError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            popen.wait(timeout=5)
        _CHILDREN.pop(popen.pid, None)
        raise
    return record


# --------------------------------------------------------------------------- stop


@dataclass
class StopResult:
    service: str | None
    outcome: str  # "stopped" (SIGTERM honoured) | "killed" | "stale" (record cleaned) | "not-running"
    seconds: float
    pid: int | None = None
    exit_code: int | None = None
    detail: str = ""

    @property
    def message(self) -> str:
        name = self.service or "process"
        if self.outcome == "not-running":
            return f"{name} is not running"
        if self.outcome == "stale":
            return f"{name}: stale record cleaned" + (f" ({self.detail})" if self.detail else "")
        verb = "stopped" if self.outcome == "stopped" else "killed (did not stop on SIGTERM)"
        text = f"{name} {verb} in {self.seconds:.1f} s"
        return text + (f" ({self.detail})" if self.detail else "")


def _is_zombie(proc) -> bool:
    ps = _psutil()
    try:
        return proc.status() == ps.STATUS_ZOMBIE
    except (ps.ZombieProcess, ps.NoSuchProcess):
        return True  # gone counts as exited too
    except ps.AccessDenied:
        return False


def _group_members(pgid: int, record: ProcessRecord) -> list:
    """Live (non-zombie) psutil.Processes in group `pgid` started no earlier than the leader."""
    ps = _psutil()
    members = []
    for pid in ps.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
        except OSError:
            continue
        ctime = _current_ctime(pid, record)
        if ctime is None or ctime < record.create_time - CTIME_TOLERANCE:
            continue  # older than our leader: cannot belong to the group it created
        try:
            proc = ps.Process(pid)
        except ps.Error:
            continue
        if _is_zombie(proc):
            _reap(pid)
            continue
        members.append(proc)
    return members


def _still_running(proc) -> bool:
    try:
        if not proc.is_running():  # also false when the pid was reused
            return False
    except _psutil().Error:
        return False
    if _is_zombie(proc):
        _reap(proc.pid)
        return False
    return True


def stop(
    record_path: str | os.PathLike,
    *,
    timeout: float = 10.0,
    kill_timeout: float = 5.0,
    poll_interval: float = 0.01,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    killpg: Callable[[int, int], None] = os.killpg,
    kill: Callable[[int, int], None] = os.kill,
) -> StopResult:
    """Stop the process (group) recorded at `record_path`; idempotent.

    No record -> "not-running". Record whose process is gone, or whose pid now belongs to another
    process -> the record is removed, nothing is signalled ("stale"). Otherwise SIGTERM to the
    group, wait up to `timeout`, then SIGKILL and wait up to `kill_timeout`; the record is removed.
    If the leader already exited but members of its group live on (a wrapper's server), they
    are stopped the same way. Raises FlowgateError only if processes survive SIGKILL.
    """
    started = clock()
    record_path = Path(record_path)

    def result(outcome: str, record: ProcessRecord | None = None, **kw) -> StopResult:
        return StopResult(
            service=record.service if record else None,
            outcome=outcome,
            seconds=clock() - started,
            pid=record.pid if record else None,
            **kw,
        )

    if not record_path.exists():
        return result("not-running")
    record = read_record(record_path)
    if record is None:
        remove_record(record_path)
        return result("stale", detail="unreadable record removed")

    what = _identify(record)
    if what == FOREIGN:
        # While any member of our group lived, the kernel could not have reused the pid number,
        # so nothing of ours is left to signal.
        remove_record(record_path)
        if _fast_path(record) and record.boot_id != _boot_id():
            return result("stale", record, detail="recorded before a reboot")
        return result("stale", record, detail=f"pid {record.pid} now belongs to another process")
    if what == ZOMBIE:
        _reap(record.pid, record.create_time)

    ps = _psutil()
    members: list = []
    leader_pgid = None
    if what == ALIVE:
        with contextlib.suppress(ps.Error):
            members.append(ps.Process(record.pid))
        with contextlib.suppress(OSError):
            leader_pgid = os.getpgid(record.pid)
    leader_alive = bool(members)
    members += [m for m in _group_members(record.pgid, record) if m.pid != record.pid]
    if not members:
        code = _exit_code(record)
        _forget(record)
        remove_record(record_path)
        return result("stale", record, exit_code=code, detail="process had already exited")
    detail = "" if leader_alive else f"leader had exited; {len(members)} leftover process(es) in its group"

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            killpg(record.pgid, sig)
        if leader_alive and leader_pgid is not None and leader_pgid != record.pgid:
            with contextlib.suppress(ProcessLookupError):
                kill(record.pid, sig)  # the leader left its group; it is still ours (identity checked)

    def wait(deadline: float) -> bool:
        nonlocal members
        interval = poll_interval
        while True:
            members = [m for m in members if _still_running(m)]
            if not members:
                # Catch anything forked into the group since we looked.
                members = _group_members(record.pgid, record)
                if not members:
                    return True
            now = clock()
            if now >= deadline:
                return False
            sleep(min(interval, max(0.0, deadline - now)))
            interval = min(interval * 1.5, 0.05)

    send(signal.SIGTERM)
    outcome = "stopped"
    if not wait(clock() + timeout):
        send(signal.SIGKILL)
        outcome = "killed"
        if not wait(clock() + kill_timeout):
            pids = ", ".join(str(m.pid) for m in members)
            raise FlowgateError(
                f"{record.service} did not exit after SIGKILL (pid {pids})",
                f"it may be stuck in the kernel (disk/NFS); check `ps -o pid,stat,cmd -p {pids}`",
            )
    code = _exit_code(record)
    _forget(record)
    remove_record(record_path)
    return result(outcome, record, exit_code=code, detail=detail)


# --------------------------------------------------------------------------- ports


class PortHolder(NamedTuple):
    pid: int | None  # None: held, but by a process we may not look at
    name: str | None


_WILDCARDS = {"0.0.0.0", "::", ""}


def _norm_ip(ip: str) -> str:
    ip = ip.strip("[]")
    if ip.startswith("::ffff:") and "." in ip:
        return ip[len("::ffff:") :]
    return ip


def _host_ips(host: str, port: int) -> set[str]:
    host = host.strip("[]")
    if host in _WILDCARDS:
        return {host}
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return {host}
    return {_norm_ip(info[4][0]) for info in infos} | {host}


def _bind_probe(host: str, port: int) -> PortHolder | None:
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return None
    for family, type_, proto, _, addr in infos:
        try:
            sock = socket.socket(family, type_, proto)
        except OSError:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return PortHolder(None, None)
        finally:
            sock.close()
    return None


def port_holder(host: str, port: int) -> PortHolder | None:
    """Who listens on `host:port` (TCP): (pid, name), (None, None) if unknown, None if free.

    Trying to bind comes first: it answers "free" in microseconds, where psutil's connection
    table costs ~40 ms (every `doit up` that starts something asks). Only a taken port is looked up.
    A listener on the wildcard address counts, since it holds the port for every address.
    """
    if _bind_probe(host, port) is None:
        return None
    ps = _psutil()
    try:
        conns = ps.net_connections(kind="tcp")
    except (ps.AccessDenied, PermissionError):
        return PortHolder(None, None)  # e.g. macOS without root: taken, owner unknown
    wanted = _host_ips(host, port)
    any_addr = bool(wanted & _WILDCARDS)
    for conn in conns:
        if conn.status != ps.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        ip = _norm_ip(conn.laddr.ip)
        if any_addr or ip in _WILDCARDS or ip in wanted:
            name = None
            if conn.pid is not None:
                with contextlib.suppress(ps.Error):
                    name = ps.Process(conn.pid).name()
            return PortHolder(conn.pid, name)
    return PortHolder(None, None)


# --------------------------------------------------------------------------- logs


def tail(path: str | os.PathLike, lines: int = 20, *, max_bytes: int = 256 * 1024) -> list[str]:
    """The last `lines` lines of `path` (without newlines); [] if it does not exist.

    Reads backwards from the end in blocks, never more than `max_bytes`.
    """
    if lines <= 0:
        return []
    try:
        fh = open(path, "rb")
    except OSError:
        return []
    with fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        data = b""
        block = 8192
        while pos > 0 and data.count(b"\n") <= lines and len(data) < max_bytes:
            step = min(block, pos, max_bytes - len(data))
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    out = data.decode("utf-8", errors="replace").splitlines()
    if pos > 0 and out:
        out = out[1:] if len(out) > lines else out  # the first line may be cut
    return out[-lines:]

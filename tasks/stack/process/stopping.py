"""Stop a recorded service: SIGTERM to its process group, SIGKILL after a timeout; never a
process whose identity does not match its record.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Callable, NamedTuple

from ...base.errors import FlowgateError
from .records import (
    ALIVE,
    CTIME_TOLERANCE,
    FOREIGN,
    ZOMBIE,
    ProcessRecord,
    _boot_id,
    _current_ctime,
    _exit_code,
    _fast_path,
    _forget,
    _identify,
    _psutil,
    _reap,
    read_record,
    remove_record,
)


class StopResult(NamedTuple):
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


def verified_group(record: ProcessRecord) -> int:
    """The process group FlowGate may signal for `record`: the one its leader created at spawn."""
    return record.pid


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

    The group signalled is the one the recorded leader created (`spawn` starts every service in a
    session of its own: pgid == pid), never the record's `pgid` field: an edited record must not
    aim FlowGate's signals at another group.
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
    group = verified_group(record)
    members: list = []
    leader_pgid = None
    if what == ALIVE:
        with contextlib.suppress(ps.Error):
            members.append(ps.Process(record.pid))
        with contextlib.suppress(OSError):
            leader_pgid = os.getpgid(record.pid)
    leader_alive = bool(members)
    members += [m for m in _group_members(group, record) if m.pid != record.pid]
    if not members:
        code = _exit_code(record)
        _forget(record)
        remove_record(record_path)
        return result("stale", record, exit_code=code, detail="process had already exited")
    detail = "" if leader_alive else f"leader had exited; {len(members)} leftover process(es) in its group"

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            killpg(group, sig)
        if leader_alive and leader_pgid is not None and leader_pgid != group:
            with contextlib.suppress(ProcessLookupError):
                kill(record.pid, sig)  # the leader left its group; it is still ours (identity checked)

    def wait(deadline: float) -> bool:
        nonlocal members
        interval = poll_interval
        while True:
            members = [m for m in members if _still_running(m)]
            if not members:
                # Catch anything forked into the group since we looked.
                members = _group_members(group, record)
                if not members:
                    return True
            now = clock()
            if now >= deadline:
                return False
            sleep(min(interval, max(0.0, deadline - now)))
            interval = min(interval * 1.5, 0.05)

    send(signal.SIGTERM)
    send(signal.SIGCONT)  # a stopped (SIGSTOPped, hung) group can act on the SIGTERM only when continued
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

"""Start a service in a session of its own (it leads its own process group), output appended to
its log file; returns at once (readiness is tasks.stack.watch.probe's job).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
from pathlib import Path

from ...base.errors import FlowgateError
from .records import (
    _CHILDREN,
    LOG_MODE,
    ProcessRecord,
    _now_iso,
    is_alive,
    make_record,
    read_record,
    write_record,
)


def _open_log(log_path: Path) -> int:
    from ..launch.logrotate import rotate_if_large

    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        rotate_if_large(log_path)  # bounded across starts
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                     LOG_MODE)
        try:
            os.write(fd, f"--- started {_now_iso()} ---\n".encode())
        except OSError:
            os.close(fd)
            raise
    except OSError as exc:
        from ...base.fsutil import refuse_link, write_error

        refuse_link(log_path)  # O_NOFOLLOW refused a link created since: say so
        raise write_error(log_path, exc) from None
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
            "check the path (for CLIProxyAPI run `doit fetch`)",
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
        record = record._replace(pgid=popen.pid)
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

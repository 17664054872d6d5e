"""Hung or starting? A recorded process that is alive but does not answer its probe.

It is `starting` while it has never been ready and is younger than its start timeout. Past that,
or once it has been ready (`wait_ready` marks the record), silence means it is hung (a SIGSTOP, a
deadlock, a blocked event loop): `status` says `unhealthy`, `up` restarts it.
"""

from __future__ import annotations

import time

from ...base.paths import Paths
from ...config.names import CLIPROXY, service_of
from ...services.common import probe_path
from . import probe
from .. import process
from ..swaps import replicas
from ..launch.launcher_files import read_state, self_restart

# `up` restarts on this verdict, so it gives a busy service longer than `status`'s 1 s probe.
RESTART_PROBE_TIMEOUT = 3.0


def _state_letter(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
        return raw[raw.rindex(b")") + 2:].split()[0].decode()
    except (OSError, ValueError, IndexError):
        return None


def hung_reason(settings, service: str, record: process.ProcessRecord, *, shared: bool = False,
                answered: bool | None = None, timeout: float = 1.0, now=time.time,
                paths: Paths | None = None) -> str | None:
    """Why the live process `record` counts as hung, or None (it answers, or may still be starting).

    `settings`: the service's (config.view.of); `shared`: LiteLLM instances share its address
    (replicas.several). `answered`: the probe's verdict when the caller already has one. `paths`: where its launcher
    says what it is doing; a service its launcher is restarting is not hung while it waits, nor
    during the restarted one's start_timeout (`up` must not throw that restart away).
    """
    if _state_letter(record.pid) == "T":
        return "not answering: its process is stopped (SIGSTOP or a debugger)"
    if answered is None:
        host, port = record.meta.get("host", settings.host), record.meta.get("port", settings.port)
        where = replicas.probe_address(shared, record, host, port)  # a replica: its private port
        answered = where is not None and probe.service_ok(service_of(service), *where,
                                                          probe_path(service_of(service), record.meta), record.meta, timeout)
    if answered:
        return None
    sup = launcher_state(paths, service, record) if paths is not None else None  # read only when silent
    restart = self_restart(sup, now())
    if restart is not None and "next_in_s" in restart:
        return None
    if sup and _state_letter(sup.get("service_pid") or 0) == "T":
        return "not answering: its process is stopped (SIGSTOP or a debugger)"
    limit = float(settings.start_timeout)
    if restart is not None:  # the restarted service boots: the same grace as a first start
        if restart["starting_s"] > limit:
            return f"not answering {restart['starting_s']:.0f} s after its launcher restarted it (start_timeout {limit:g} s)"
        return None
    if sup and isinstance(sup.get("ready_at"), (int, float)) and sup.get("restarts"):  # ready again since a restart
        return f"not answering since it was ready (at {time.strftime('%Y-%m-%dT%H:%M:%S%z', time.localtime(sup['ready_at']))})"
    if record.meta.get("ready_at"):
        return f"not answering since it was ready (at {record.meta['ready_at']})"
    age = now() - record.create_time
    if age > limit:
        return f"not answering {age:.0f} s after its start (start_timeout {limit:g} s)"
    return None


def launcher_state(paths: Paths, service: str, record: process.ProcessRecord) -> dict | None:
    """What the launcher recorded as `record` says (None for a recovered or pre-launcher process)."""
    return read_state(paths, service, record.pid) if record.meta.get("launcher") else None


def mark_ready(paths: Paths, service: str) -> None:
    """Remember in the record that its process has been ready (from then on, silence means hung),
    and CLIProxyAPI's version from the banner it just logged: `status` cannot find the banner once
    the log has grown past the tail it reads."""
    path = paths.record(service)
    record = process.read_record(path)
    if record is not None and not record.meta.get("ready_at") and process.is_alive(record):
        record.meta["ready_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if service == CLIPROXY and not record.meta.get("version"):
            record.meta["version"] = cliproxy_version_from_log(paths)
        process.write_record(path, record)


def cliproxy_version_from_log(paths: Paths) -> str | None:
    """The binary has no -version flag; its first stdout line names the version."""
    from ...release import lines

    for line in reversed(process.tail(paths.log(CLIPROXY), 400)):
        version = lines.banner_version(line)
        if version:
            return version
        if line.startswith("--- started"):
            break
    return None

"""A service whose run record is unreadable or gone, found again by what it is.

Without a record FlowGate would call a serving LiteLLM "stopped", `down` would leave it running and
`up` would refuse its port as foreign. Before giving up, the process listening on the service's port
is examined: when it (its process group's leader, which `spawn` makes of every service) is this
home's launcher for that service (`-m tasks.stack.launcher supervise --home H --service S`; an
earlier FlowGate ran the service itself, with this home's config file on its command line), from
this home's working directory, as this user, it is FlowGate's own, and a record is rebuilt for it.
When the leader is gone (a killed launcher whose stopped worker still holds the port), the holder
itself is examined: the launcher forks its worker, so the worker carries the same command line.
Costs nothing unless the port is held and there is no usable record.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...base.paths import Paths
from ...config.names import CLIPROXY, LITELLM
from .. import process


def signature(paths: Paths, service: str) -> tuple[str, str, str]:
    """(config flag, config path, working directory) every start of `service` in this home uses."""
    if service == LITELLM:
        return "--config", str(paths.litellm_config), str(paths.litellm_config.parent)
    return "-config", str(paths.cliproxy_config), str(paths.cliproxy_config.parent)


def _launcher_of(paths: Paths, service: str, cmdline: list[str]) -> bool:
    """`cmdline` is this home's launcher for `service` (its options come before the service's `--`)."""
    head = cmdline[:cmdline.index("--")] if "--" in cmdline else cmdline
    pairs = set(zip(head, head[1:]))
    return {("-m", "tasks.stack.launcher"), ("tasks.stack.launcher", "supervise"),
            ("--home", str(paths.home)), ("--service", service)} <= pairs


def is_ours(paths: Paths, service: str, cmdline: list[str], cwd: str | None) -> bool:
    flag, config, workdir = signature(paths, service)
    if cwd != workdir:
        return False
    return _launcher_of(paths, service, cmdline) or any(a == flag and b == config for a, b in zip(cmdline, cmdline[1:]))


def _identity(ps, pid: int):
    proc = ps.Process(pid)
    return proc.cmdline(), proc.cwd(), proc.uids().real


def adopt(paths: Paths, service: str, holder_pid: int | None) -> process.ProcessRecord | None:
    """A record for the port holder `holder_pid` if it is this home's `service`; None otherwise."""
    if not holder_pid:
        return None
    from ..process.records import _psutil

    ps = _psutil()
    try:
        leader = os.getpgid(holder_pid)
    except OSError:
        return None
    try:
        cmdline, cwd, uid = _identity(ps, leader)
    except ps.NoSuchProcess:  # the launcher is gone, its worker holds on: the worker is what to stop
        leader = holder_pid
        try:
            cmdline, cwd, uid = _identity(ps, leader)
        except (OSError, ps.Error):
            return None
    except (OSError, ps.Error):
        return None
    if uid != os.getuid() or not is_ours(paths, service, cmdline, cwd):
        return None
    meta = {"recovered": True, "launcher": _launcher_of(paths, service, cmdline)}
    if service == CLIPROXY:
        from ...release import lines

        line = next((lines.by_binary_name(Path(a).name) for a in cmdline if lines.by_binary_name(Path(a).name)), None)
        meta["line"] = line.name if line else None
    try:
        record = process.make_record(leader, service=service, argv=cmdline, cwd=cwd, inputs_hash="recovered",
                                     log=str(paths.log(service)), meta=meta)
    except ps.Error:
        return None
    return record._replace(pgid=leader)


def find(paths: Paths, service: str, host: str, port: int) -> process.ProcessRecord | None:
    """This home's `service` listening on host:port without a usable record, or None."""
    holder = process.port_holder(host, port)
    return adopt(paths, service, holder.pid) if holder else None


def record_or_orphan(paths: Paths, address: tuple | None, service: str, *, save: bool = False):
    """The service's usable record, else its recovered orphan (written back when `save`), else None.
    `address`: (host, port) the config gives the service (config.view.address), None when unknown."""
    record = process.read_record(paths.record(service))
    if record is not None and process.status(record).state != "crashed":
        return record
    host = (record.meta.get("host") if record else None) or (address or (None, None))[0]
    port = (record.meta.get("port") if record else None) or (address or (None, None))[1]
    orphan = find(paths, service, host, port) if host and port else None
    if orphan is None:
        return record
    if save:
        process.write_record(paths.record(service), orphan)
        from .. import events

        events.record(paths, "recover", service, "ok",
                      f"pid {orphan.pid} serves without a usable run record: identified by command line and cwd")
    return orphan


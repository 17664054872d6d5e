"""May a service bind its port? The one rule `preflight`, the start itself and `doctor` share.

A port is fine when nobody listens on it, or when the listener is the service's own recorded,
live process (it may be restarted onto the same port). Anything else is a conflict, named with the
holder's pid and name where the system lets us see them.
"""

from __future__ import annotations

import contextlib
import os
from collections import namedtuple

from ...base.errors import FlowgateError
from ...base.paths import Paths
from ...config.names import LITELLM, service_of
from .. import process


class PortState(namedtuple("PortState", "service host port holder ours")):
    """holder: the process.PortHolder listening there, None when the port is free; ours: the
    service's own live record when that holder is the service itself."""

    __slots__ = ()

    @property
    def conflict(self) -> bool:
        return self.holder is not None and self.ours is None

    @property
    def where(self) -> str:
        return f"{self.service} {self.host}:{self.port}"

    @property
    def problem(self) -> str:
        who = f"pid {self.holder.pid} ({self.holder.name or 'unknown'})" if self.holder.pid \
            else "a process FlowGate cannot see"
        return f"port {self.port} on {self.host} is held by {who}"

    @property
    def fix(self) -> str:
        return (f"stop that process (`lsof -i :{self.port}` shows it), or set {self.service}.port to a free "
                "port in config/local.yaml")

    def error(self) -> FlowgateError:
        return FlowgateError(f"cannot start {self.service}: {self.problem}", self.fix)


def _own(paths: Paths, service: str) -> list[process.ProcessRecord]:
    """The live records that may hold the service's port: its own, or any of LiteLLM's replicas."""
    names = [service]
    if service_of(service) == LITELLM:
        from ..swaps.replicas import recorded

        names = recorded(paths) or names
    records = [process.read_record(paths.record(name)) for name in names]
    return [r for r in records if process.is_alive(r)]


def check_port(paths: Paths, service: str, host: str, port: int) -> PortState:
    lives = _own(paths, service)
    for live in lives:
        if (live.meta.get("host"), live.meta.get("port")) == (host, port):
            # Our live service was started on this very address: it is the holder. Asking the system
            # who listens costs ~20 ms (psutil's connection table) on every no-op `doit up`.
            return PortState(service, host, port, process.PortHolder(live.pid, service), live)
    holder = process.port_holder(host, port)
    ours = None
    if holder is not None:
        mine = [live for live in lives if holder.pid is None or _same_group(holder.pid, live)]
        if mine:
            ours = mine[0]
        else:  # no usable record: the holder may still be this home's service (tasks.stack.watch.recover)
            from ..watch.recover import adopt

            ours = adopt(paths, service, holder.pid)
    return PortState(service, host, port, holder, ours)


def require_port(paths: Paths, service: str, host: str, port: int) -> None:
    """FlowgateError unless `service` may bind host:port."""
    state = check_port(paths, service, host, port)
    if state.conflict:
        raise state.error()


def require_port_released(paths: Paths, service: str, host: str, port: int, stopped: process.ProcessRecord,
                           timeout: float = 5.0) -> None:
    """After stopping `stopped`: wait until its group lets go of the port, then require it free.

    A SIGKILLed multi-threaded process is a zombie leader for a few ms while its other threads still
    hold the socket: checking at once would call our own dying process a foreign holder.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        holder = process.port_holder(host, port)
        if holder is None:
            return
        mine = holder.pid is None or _same_group(holder.pid, stopped)  # unseen: the zombie's threads
        if not mine or time.monotonic() >= deadline:
            require_port(paths, service, host, port)
            return
        time.sleep(0.02)


def strangers(paths: Paths, service: str, host: str, port: int) -> list[str]:
    """Listeners on the service's address that are not its own (a same-user process may share the
    port with SO_REUSEPORT and receive part of its connections): who they are, in words."""
    from ...base.listeners import sharing
    from ..process.ports import _host_ips

    found = sharing(_host_ips(host, port), port)
    lives = _own(paths, service)
    if not found or len(found) <= len(lives):
        return []  # no more listeners than live processes of ours: nothing to name (~0.1 ms)
    if service_of(service) == LITELLM:  # a swap under way: its new and old instance listen too
        from ..swaps.swap import next_record, prev_record

        extra = [process.read_record(path(paths, name)) for name in [service] for path in (next_record, prev_record)]
        lives += [r for r in extra if process.is_alive(r)]
    foreign_uids = sorted({entry.uid for entry in found if entry.uid != os.getuid()})
    who = [f"a process of uid {uid}" for uid in foreign_uids]
    from ..process.records import _psutil

    ps = _psutil()
    try:
        conns = ps.net_connections(kind="tcp")
    except (ps.AccessDenied, PermissionError):
        conns = []
    ips = {entry.ip for entry in found}
    for conn in conns:
        if conn.status != ps.CONN_LISTEN or not conn.laddr or conn.laddr.port != port or conn.laddr.ip not in ips:
            continue
        if conn.pid is not None and not any(_same_group(conn.pid, live) for live in lives):
            name = None
            with contextlib.suppress(ps.Error):
                name = ps.Process(conn.pid).name()
            who.append(f"pid {conn.pid} ({name or 'unknown'})")
    if not who and len(found) > len(lives):
        who.append(f"{len(found) - len(lives)} listener(s) FlowGate cannot see")
    return sorted(set(who))


def _same_group(pid: int, record: process.ProcessRecord) -> bool:
    from ..process.stopping import verified_group

    if pid == record.pid:
        return True
    try:
        return os.getpgid(pid) == verified_group(record)
    except (OSError, AttributeError):
        return False

"""Is the process on a service's port this checkout's? Asked before every call that acts through it.

Two checkouts (two FlowGate homes) may configure the same ports, and the one whose stack runs holds
them: without this check `doit accounts --disable` in the other checkout would disable an account in
the running one. The proof is this home's run record (pid and create time; or the orphan
tasks.stack.recover identifies by command line and cwd) and a listener on the port in that
process's tree. Cheap when it holds (the recorded process's own sockets, no system-wide table).
"""

from __future__ import annotations

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.names import CLIPROXY
from . import process, recover

_PROVEN: set[tuple] = set()  # (home, service, port, pid, create time): asked once per command


def require_own(paths: Paths, stack: dict, service: str = CLIPROXY) -> None:
    """FlowgateError naming the other process when `service`'s port is held by one that is not this
    home's; returns quietly when ours holds it or nothing does (the call then says "not running")."""
    from ..config.view import of
    from ..services.common import connect_host

    settings = of(stack, service)
    host, port = connect_host(settings.host).strip("[]"), int(settings.port)
    record = recover.record_or_orphan(paths, stack, service)
    alive = record is not None and process.is_alive(record)
    key = (str(paths.home), service, port, record.pid if alive else None, record.create_time if alive else None)
    if alive and (key in _PROVEN or port in _listening(_tree(record.pid))):
        _PROVEN.add(key)
        return
    holder = process.port_holder(host, port)
    if holder is None:
        return
    if alive and holder.pid in _tree(record.pid):
        _PROVEN.add(key)
        return
    label = "CLIProxyAPI" if service == CLIPROXY else service
    raise FlowgateError(
        f"{label} on {host}:{port} is not this checkout's ({paths.home}): it is {describe(holder)}; nothing was "
        f"sent to it", f"stop that process, or give this checkout another port (`{service}.port` in config/local.yaml)")


def describe(holder) -> str:
    """The port holder as a user can find it: pid, command line and working directory (escaped)."""
    from ..base.terminal import printable
    from .process.records import _psutil

    if not holder.pid:
        return "a process FlowGate may not look at (another user's?)"
    ps = _psutil()
    try:
        proc = ps.Process(holder.pid)
        command = " ".join(proc.cmdline()) or str(holder.name or "?")
    except ps.Error:
        return f"pid {holder.pid} ({printable(str(holder.name or '?'))})"
    try:
        where = f", in {printable(proc.cwd())}"
    except ps.Error:
        where = ""
    if len(command) > 200:
        command = command[:200] + "…"
    return f"pid {holder.pid} ({printable(command)}{where})"


def _tree(pid: int) -> set[int]:
    """`pid` and its descendants (the launcher runs its service as a child)."""
    from .process.records import _psutil

    ps = _psutil()
    try:
        return {pid} | {c.pid for c in ps.Process(pid).children(recursive=True)}
    except ps.Error:
        return {pid}


def _listening(pids: set[int]) -> set[int]:
    """The TCP ports the processes `pids` listen on."""
    from .process.records import _psutil

    ps = _psutil()
    ports = set()
    for pid in pids:
        try:
            conns = ps.Process(pid).net_connections(kind="tcp")
        except ps.Error:
            continue
        ports.update(c.laddr.port for c in conns if c.status == ps.CONN_LISTEN and c.laddr)
    return ports

"""Is the process on a service's port this checkout's? Asked before every call that acts through it.

Two checkouts (two FlowGate homes) may configure the same ports, and the one whose stack runs holds
them: without this check `doit accounts --disable` in the other checkout would disable an account in
the running one. The proof is the rule `preflight` applies before a start (tasks.stack.launch.portcheck):
this home's live run record (pid and create time) started on that very address, else the port's
holder in that record's process group, or identified as this home's by command line and cwd
(tasks.stack.watch.recover). Free when the record proves it: no system-wide socket table, no psutil.
"""

from __future__ import annotations

from ...base.errors import FlowgateError
from ...base.paths import Paths
from ...config.names import CLIPROXY


def require_own(paths: Paths, stack: dict, service: str = CLIPROXY) -> None:
    """FlowgateError naming the other process when `service`'s port is held by one that is not this
    home's; returns quietly when ours holds it or nothing does (the call then says "not running")."""
    from ...config.view import of
    from .portcheck import check_port

    settings = of(stack, service)
    state = check_port(paths, service, settings.host, int(settings.port))
    if not state.conflict:
        return
    label = "CLIProxyAPI" if service == CLIPROXY else service
    raise FlowgateError(
        f"{label} on {settings.host}:{settings.port} is not this checkout's ({paths.home}): it is "
        f"{describe(state.holder)}; nothing was sent to it",
        f"stop that process, or give this checkout another port (`{service}.port` in config/local.yaml)")


def describe(holder) -> str:
    """The port holder as a user can find it: pid, command line and working directory (escaped)."""
    from ...base.terminal import printable
    from ..process.records import _psutil

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

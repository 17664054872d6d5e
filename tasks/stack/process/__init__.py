"""Spawn, identify and stop the services FlowGate runs (plain Python, knows nothing of doit).

Modelled on honcho's process manager: every service starts in a session of its own (so it leads
its own process group), stdin from /dev/null, stdout+stderr appended to a log file. `spawn`
returns at once; readiness is `tasks.stack.probe`'s job.

Identity, never names: a record (`.router/run/<service>.json`) keeps the pid *and* the process
create time. A pid whose create time differs is somebody else's process and is never signalled.
A zombie counts as exited (init may take ~1.8 s to reap an orphan). `stop` signals the whole
process group (SIGTERM, then SIGKILL after a timeout), so a wrapper script's grandchildren go too.

This is the package's public surface; its modules (records, spawn, stop, ports, logs) are private.
"""

from .logs import clean as clean_log_line
from .logs import tail
from .ports import PortHolder, port_holder
from .records import (
           ProcessRecord,
           ProcState,
           is_alive,
           make_record,
           read_record,
           remove_record,
           status,
           write_record,
)
from .spawn import spawn
from .stop import StopResult, stop

__all__ = ["PortHolder", "clean_log_line", "ProcState", "ProcessRecord", "StopResult", "is_alive", "make_record", "port_holder",
           "read_record", "remove_record", "spawn", "status", "stop", "tail", "write_record"]

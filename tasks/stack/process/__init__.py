"""Spawn, identify and stop the services FlowGate runs (plain Python, knows nothing of doit).

Modelled on honcho's process manager: every service starts in a session of its own (so it leads
its own process group), stdin from /dev/null, stdout+stderr appended to a log file. `spawn`
returns at once; readiness is `tasks.stack.watch.probe`'s job.

Identity, never names: a record (`.router/run/<service>.json`) keeps the pid *and* the process
create time. A pid whose create time differs is somebody else's process and is never signalled.
A zombie counts as exited (init may take ~1.8 s to reap an orphan). `stop` signals the whole
process group (SIGTERM, then SIGKILL after a timeout), so a wrapper script's grandchildren go too.

This is the package's public surface; its modules (records, spawning, stopping, ports, logs) are private.
The names load on first use (PEP 562): the no-op `doit up` and `doit status` need only the records.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "clean_log_line": ("logs", "clean"), "tail": ("logs", "tail"),
    "PortHolder": ("ports", "PortHolder"), "port_holder": ("ports", "port_holder"),
    **{name: ("records", name) for name in ("ProcessRecord", "ProcState", "is_alive", "make_record", "read_record",
                                            "remove_record", "status", "write_record")},
    "spawn": ("spawning", "spawn"),
    "StopResult": ("stopping", "StopResult"), "stop": ("stopping", "stop"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{where[0]}", __name__)
    # All of the module's names at once (the submodules' names differ from the functions' on purpose:
    # importing a submodule binds it to the package attribute of its own name).
    globals().update({n: getattr(module, attr) for n, (mod, attr) in _EXPORTS.items() if mod == where[0]})
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Zero-downtime LiteLLM reload: a new instance boots beside the old one and takes over its address.

LiteLLM has no config reload, and its boot takes 5-12 s; stop-then-start refuses every connection
for that long. Instead (Linux): the new launcher binds the same port with SO_REUSEPORT, listens
only once its startup finished, steers new connections to itself and reports ready
(litellm_server); this module waits for that and probes the new instance on its private port,
promotes its record, then stops the old one, which lingers, stops accepting, drains its in-flight
requests (streams included) within stop_timeout, and exits. If the new one fails, it is stopped
and the old one never noticed; the command fails with the new instance's log.

While a swap runs, `run/litellm.next.json` records the new instance (`doit status` shows it), and
`run/litellm.prev.json` the old one while it drains; `doit down` stops both.
"""

from __future__ import annotations

import os
import time

from ...base.errors import FlowgateError
from ...base.paths import Paths
from ...config.names import LITELLM
from ...config.view import litellm
from ...services.common import LITELLM_PROBE_PATH, Launch
from .. import events, process
from ..launch import launcher_files
from ..watch import probe
from ...gateway import reuseport
from ..launch.launches import LOG_TAIL_LINES, Outcome

DRAIN_MARGIN = 5.0  # seconds beyond stop_timeout for the old instance's app shutdown before SIGKILL


def next_record(paths: Paths, name: str = LITELLM):
    return paths.run_dir / f"{name}.next.json"


def prev_record(paths: Paths, name: str = LITELLM):
    return paths.run_dir / f"{name}.prev.json"


def _log(paths: Paths, which: str, name: str = LITELLM):
    return paths.logs_dir / f"{name}.{which}.log"


def impossible(record: process.ProcessRecord, launch: Launch) -> str | None:
    """Why the running instance cannot hand over its address to a new one, or None."""
    why = reuseport.unsupported()
    if why:
        return why
    if not record.meta.get("shared_port"):
        return "the running instance does not share its port (started by an earlier FlowGate)"
    if (record.meta.get("host"), record.meta.get("port")) != (launch.host, launch.port):
        return "the address changes"
    uid = reuseport.owner_uid(record.pid)
    if uid is not None and uid != os.geteuid():
        return f"the running instance belongs to another user (uid {uid}), so its port cannot be shared"
    return None


def replace(paths: Paths, stack: dict, old: process.ProcessRecord, launch: Launch, why: str,
            name: str = LITELLM) -> Outcome:
    """Start `launch` beside the running `old`, hand over, drain and stop `old`. Stack lock held.

    `name`: the instance (tasks.stack.swaps.replicas); replicas are swapped one at a time."""
    lite = litellm(stack)
    stop_leftovers(paths, lite, name)
    began = time.monotonic()
    meta = {**launch.meta, "parts": launch.parts, "host": launch.host, "port": launch.port}
    new = process.spawn(launch.argv, env=launch.env, cwd=launch.cwd, log_path=_log(paths, "next", name),
                        record_path=next_record(paths, name), service=name, inputs_hash=launch.inputs_hash, meta=meta)
    events.record(paths, "swap", name, "started", why, old_pid=old.pid, new_pid=new.pid)
    try:
        _wait_ready(paths, new, old, float(lite.start_timeout), name)
    except BaseException as exc:
        _discard(paths, new, name)
        if isinstance(exc, KeyboardInterrupt):
            events.record(paths, "swap", name, "interrupted", why, old_pid=old.pid, new_pid=new.pid)
            raise FlowgateError("interrupted: the new LiteLLM instance was stopped",
                                f"the old one (pid {old.pid}) kept serving throughout") from None
        events.record(paths, "swap", name, "failed", str(exc.args[0] if exc.args else exc),
                      old_pid=old.pid, new_pid=new.pid)
        raise
    ready_s = time.monotonic() - began
    _promote(paths, old, new, name)
    events.record(paths, "swap", name, "ready", f"pid {new.pid} serves; pid {old.pid} drains",
                  old_pid=old.pid, new_pid=new.pid, seconds_to_ready=round(ready_s, 3))
    launcher_files.mark_replaced(paths, name, old.pid)
    stopped = process.stop(prev_record(paths, name), timeout=float(lite.stop_timeout) + DRAIN_MARGIN)
    drained = (launcher_files.read_state(paths, name, old.pid) or {}).get("drained")
    launcher_files.forget(paths, name, old.pid)
    events.record(paths, "swap", name, "ok", why, old_pid=old.pid, new_pid=new.pid,
                  seconds_to_ready=round(ready_s, 3), drained=drained, drain_s=round(stopped.seconds, 3),
                  old_stop=stopped.outcome)
    drained_text = "its in-flight requests" if drained is None else f"{drained} in-flight request(s)"
    return Outcome(name, "swapped", new.pid,
                   f"{why}; ready in {ready_s:.1f} s beside pid {old.pid}, which then finished {drained_text} "
                   f"and {'exited' if stopped.outcome == 'stopped' else stopped.outcome}")


def _wait_ready(paths: Paths, new: process.ProcessRecord, old: process.ProcessRecord, timeout: float,
                name: str) -> None:
    """Until the new instance says it listens and answers on its private port; else FlowgateError."""
    deadline = time.monotonic() + timeout
    worker = launcher_files.worker_path(paths, name, new.pid)
    while True:
        if not process.is_alive(new):
            code = process.status(new).exit_code
            raise _failure(paths, new, old, name, launcher_files.describe_exit(code) + " before it was ready")
        report = launcher_files.read_json(worker) or {}
        if report.get("ready") and probe.http_ok("127.0.0.1", int(report["probe_port"]), LITELLM_PROBE_PATH, timeout=2.0):
            return
        if time.monotonic() > deadline:
            raise _failure(paths, new, old, name, f"not ready after {timeout:.0f} s (litellm.start_timeout)")
        time.sleep(0.05)


def _failure(paths: Paths, new, old, name: str, what: str) -> FlowgateError:
    log = _log(paths, "failed", name)
    tail = [f"| {line}" for line in process.tail(_log(paths, "next", name), LOG_TAIL_LINES)]
    return FlowgateError(f"the new LiteLLM instance (pid {new.pid}) {what}; the old one (pid {old.pid}) keeps serving "
                         "the last config that booted (its restarts use that one too)",
                         f"see {log} (last lines above), fix the cause and run the command again",
                         details=[f"last lines of {log}:"] + tail)


def _discard(paths: Paths, new: process.ProcessRecord, name: str) -> None:
    """Stop a new instance that will not take over; keep its log for the user."""
    process.stop(next_record(paths, name), timeout=5.0)
    launcher_files.forget(paths, name, new.pid)
    if _log(paths, "next", name).exists():
        _log(paths, "next", name).replace(_log(paths, "failed", name))


def _promote(paths: Paths, old: process.ProcessRecord, new: process.ProcessRecord, name: str) -> None:
    """The new instance becomes the recorded one; the old one stays findable while it drains."""
    process.write_record(prev_record(paths, name), old)
    if paths.log(name).exists():
        paths.log(name).replace(_log(paths, "prev", name))  # the old one keeps writing there (same inode)
    _log(paths, "next", name).replace(paths.log(name))
    process.write_record(paths.record(name), new._replace(log=str(paths.log(name))))
    process.remove_record(next_record(paths, name))


def stop_leftovers(paths: Paths, lite, name: str = LITELLM) -> None:
    """Stop what an interrupted swap left: a new instance never promoted, an old one still draining."""
    timeout = float(lite.stop_timeout) if lite else 10.0
    for path, what in ((next_record(paths, name), "unpromoted new instance"), (prev_record(paths, name), "draining old instance")):
        record = process.read_record(path)
        if record is None:
            continue
        result = process.stop(path, timeout=timeout)
        launcher_files.forget(paths, name, record.pid)
        if result.outcome != "not-running":
            events.record(paths, "stop", name, result.outcome, f"{what} left by an interrupted swap", pid=record.pid)


def in_progress(paths: Paths, name: str = LITELLM) -> dict | None:
    """For `doit status`: the swap under way, if any (phase starting or draining, with pids)."""
    new = process.read_record(next_record(paths, name))
    if new is not None and process.is_alive(new):
        return {"phase": "starting", "new_pid": new.pid}
    old = process.read_record(prev_record(paths, name))
    if old is not None and process.is_alive(old):
        return {"phase": "draining", "old_pid": old.pid}
    return None


def restart(paths: Paths, stack: dict, why: str, name: str = LITELLM) -> Outcome | str:
    """`doit restart litellm` by a swap: the Outcome, or why it must stop-then-start."""
    from ..launch.launches import launch_for

    old = process.read_record(paths.record(name))
    if old is None or not process.is_alive(old):
        return "it is not running"
    launch = launch_for(paths, stack, name)
    blocked = impossible(old, launch)
    return blocked if blocked else replace(paths, stack, old, launch, why, name)

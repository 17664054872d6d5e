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

from ..errors import FlowgateError
from ..names import LITELLM
from ..paths import Paths
from ..services import LITELLM_PROBE_PATH, Launch
from . import events, launcher_files, probe, process, reuseport
from .lifecycle import LOG_TAIL_LINES, Outcome

DRAIN_MARGIN = 5.0  # seconds beyond stop_timeout for the old instance's app shutdown before SIGKILL


def next_record(paths: Paths):
    return paths.run_dir / f"{LITELLM}.next.json"


def prev_record(paths: Paths):
    return paths.run_dir / f"{LITELLM}.prev.json"


def _log(paths: Paths, which: str):
    return paths.logs_dir / f"{LITELLM}.{which}.log"


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


def replace(paths: Paths, stack: dict, old: process.ProcessRecord, launch: Launch, why: str) -> Outcome:
    """Start `launch` beside the running `old`, hand over, drain and stop `old`. Stack lock held."""
    cfg = stack[LITELLM]
    stop_leftovers(paths, cfg)
    began = time.monotonic()
    meta = {**launch.meta, "parts": launch.parts, "host": launch.host, "port": launch.port}
    new = process.spawn(launch.argv, env=launch.env, cwd=launch.cwd, log_path=_log(paths, "next"),
                        record_path=next_record(paths), service=LITELLM, inputs_hash=launch.inputs_hash, meta=meta)
    events.record(paths, "swap", LITELLM, "started", why, old_pid=old.pid, new_pid=new.pid)
    try:
        _wait_ready(paths, new, old, float(cfg["start_timeout"]))
    except BaseException as exc:
        _discard(paths, new)
        if isinstance(exc, KeyboardInterrupt):
            events.record(paths, "swap", LITELLM, "interrupted", why, old_pid=old.pid, new_pid=new.pid)
            raise FlowgateError("interrupted: the new LiteLLM instance was stopped",
                                f"the old one (pid {old.pid}) kept serving throughout") from None
        events.record(paths, "swap", LITELLM, "failed", str(exc.args[0] if exc.args else exc),
                      old_pid=old.pid, new_pid=new.pid)
        raise
    ready_s = time.monotonic() - began
    _promote(paths, old, new)
    events.record(paths, "swap", LITELLM, "ready", f"pid {new.pid} serves; pid {old.pid} drains",
                  old_pid=old.pid, new_pid=new.pid, seconds_to_ready=round(ready_s, 3))
    launcher_files.mark_replaced(paths, LITELLM, old.pid)
    stopped = process.stop(prev_record(paths), timeout=float(cfg["stop_timeout"]) + DRAIN_MARGIN)
    drained = (launcher_files.read_state(paths, LITELLM, old.pid) or {}).get("drained")
    launcher_files.forget(paths, LITELLM, old.pid)
    events.record(paths, "swap", LITELLM, "ok", why, old_pid=old.pid, new_pid=new.pid,
                  seconds_to_ready=round(ready_s, 3), drained=drained, drain_s=round(stopped.seconds, 3),
                  old_stop=stopped.outcome)
    drained_text = "its in-flight requests" if drained is None else f"{drained} in-flight request(s)"
    return Outcome(LITELLM, "swapped", new.pid,
                   f"{why}; ready in {ready_s:.1f} s beside pid {old.pid}, which then finished {drained_text} "
                   f"and {'exited' if stopped.outcome == 'stopped' else stopped.outcome}")


def _wait_ready(paths: Paths, new: process.ProcessRecord, old: process.ProcessRecord, timeout: float) -> None:
    """Until the new instance says it listens and answers on its private port; else FlowgateError."""
    deadline = time.monotonic() + timeout
    worker = launcher_files.worker_path(paths, LITELLM, new.pid)
    while True:
        if not process.is_alive(new):
            code = process.status(new).exit_code
            raise _failure(paths, new, old, launcher_files.describe_exit(code) + " before it was ready")
        report = launcher_files.read_json(worker) or {}
        if report.get("ready") and probe.http_ok("127.0.0.1", int(report["probe_port"]), LITELLM_PROBE_PATH, timeout=2.0):
            return
        if time.monotonic() > deadline:
            raise _failure(paths, new, old, f"not ready after {timeout:.0f} s (litellm.start_timeout)")
        time.sleep(0.05)


def _failure(paths: Paths, new, old, what: str) -> FlowgateError:
    log = _log(paths, "failed")
    tail = [f"| {line}" for line in process.tail(_log(paths, "next"), LOG_TAIL_LINES)]
    return FlowgateError(f"the new LiteLLM instance (pid {new.pid}) {what}; the old one (pid {old.pid}) keeps serving",
                         f"see {log} (last lines above), fix the cause and run the command again",
                         details=[f"last lines of {log}:"] + tail)


def _discard(paths: Paths, new: process.ProcessRecord) -> None:
    """Stop a new instance that will not take over; keep its log for the user."""
    process.stop(next_record(paths), timeout=5.0)
    launcher_files.forget(paths, LITELLM, new.pid)
    if _log(paths, "next").exists():
        _log(paths, "next").replace(_log(paths, "failed"))


def _promote(paths: Paths, old: process.ProcessRecord, new: process.ProcessRecord) -> None:
    """The new instance becomes the recorded one; the old one stays findable while it drains."""
    process.write_record(prev_record(paths), old)
    if paths.log(LITELLM).exists():
        paths.log(LITELLM).replace(_log(paths, "prev"))  # the old one keeps writing there (same inode)
    _log(paths, "next").replace(paths.log(LITELLM))
    new.log = str(paths.log(LITELLM))
    process.write_record(paths.record(LITELLM), new)
    process.remove_record(next_record(paths))


def stop_leftovers(paths: Paths, cfg: dict | None) -> None:
    """Stop what an interrupted swap left: a new instance never promoted, an old one still draining."""
    timeout = float(cfg["stop_timeout"]) if cfg else 10.0
    for path, what in ((next_record(paths), "unpromoted new instance"), (prev_record(paths), "draining old instance")):
        record = process.read_record(path)
        if record is None:
            continue
        result = process.stop(path, timeout=timeout)
        launcher_files.forget(paths, LITELLM, record.pid)
        if result.outcome != "not-running":
            events.record(paths, "stop", LITELLM, result.outcome, f"{what} left by an interrupted swap", pid=record.pid)


def in_progress(paths: Paths) -> dict | None:
    """For `doit status`: the swap under way, if any (phase starting or draining, with pids)."""
    new = process.read_record(next_record(paths))
    if new is not None and process.is_alive(new):
        return {"phase": "starting", "new_pid": new.pid}
    old = process.read_record(prev_record(paths))
    if old is not None and process.is_alive(old):
        return {"phase": "draining", "old_pid": old.pid}
    return None


def restart(paths: Paths, stack: dict, why: str) -> Outcome | str:
    """`doit restart litellm` by a swap: the Outcome, or why it must stop-then-start."""
    from .lifecycle import launch_for

    old = process.read_record(paths.record(LITELLM))
    if old is None or not process.is_alive(old):
        return "it is not running"
    launch = launch_for(paths, stack, LITELLM)
    blocked = impossible(old, launch)
    return blocked if blocked else replace(paths, stack, old, launch, why)

"""Readiness: wait until services answer their probes, and the one rule for "is it ready now".

Apart from tasks.stack.lifecycle so that what starts instances of its own (tasks.stack.swaps.bluegreen's
bridge) waits the same way without importing the lifecycle that calls it.
"""

from __future__ import annotations

from ...base.errors import FlowgateError
from ...base.paths import Paths
from ...config.names import LITELLM, OPTIONAL, enabled_services, litellm_instances, service_of
from ...config.view import litellm, of
from ...services.common import probe_path
from .. import events, process
from . import health, probe
from ..swaps import replicas
from ..launch.launches import LOG_TAIL_LINES


def _instances(stack: dict, services: list[str]) -> list[str]:
    """`services` with LiteLLM expanded to its instances (litellm.replicas)."""
    return [n for s in services for n in (litellm_instances(stack) if s == LITELLM else [s])]


def wait_ready(paths: Paths, stack: dict, services: list[str], fresh=None) -> dict:
    """Wait until every service answers its probe; FlowgateError with the log tail otherwise.

    `fresh`: the services started in this run (they get a `ready` event); None means all.
    """
    from datetime import datetime, timezone

    began = datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # events' own clock and format
    checks, timeout = [], 0.0
    several = replicas.several(litellm(stack))
    for service in _instances(stack, services):
        svc = service_of(service)
        record = process.read_record(paths.record(service))
        if record is None:
            raise FlowgateError(f"{service} is not running", "run `uv run doit up`")
        host, port = record.meta.get("host", stack[svc]["host"]), record.meta.get("port", stack[svc]["port"])
        # Replicas share the address: each answers on its private port (None until it reported it).
        target = (lambda r=record, h=host, p=port: replicas.probe_address(True, r, h, p)) if several else None
        ask = probe.redis_answer(host, port, record.meta, svc) if svc in OPTIONAL else None
        checks.append(probe.Check(service, host, port, probe_path(svc, record.meta), 200,
                                  (lambda r=record: process.is_alive(r)), target, ask,
                                  recent_ok=fresh is not None and svc not in fresh))
        timeout = max(timeout, float(stack[svc]["start_timeout"]))
    try:
        # Poll often: a refused connect costs microseconds, and every poll gap adds to `doit up`.
        results = probe.wait_ready(checks, timeout=timeout, interval=0.02, max_interval=0.05)
    except KeyboardInterrupt:
        raise FlowgateError("interrupted while waiting for the services to become ready",
                            "they keep starting in the background: `uv run doit status` to see, "
                            "`uv run doit down` to stop them") from None
    failed = probe.not_ready(results)
    for res in results.values():
        if res.ready:
            health.mark_ready(paths, res.name)
        if res.ready and (fresh is None or service_of(res.name) in fresh):
            events.record(paths, "ready", res.name, "ok", f"ready after {res.seconds:.2f} s")
    if failed:
        res = failed[0]
        log = paths.log(res.name)
        if res.exited and _stopped_by_down(paths, res.name, began):
            raise FlowgateError(f"{res.name} was stopped by a concurrent `doit down` while this command waited "
                                "for it to be ready", "nothing to fix: run `uv run doit up` again to start the stack")
        if res.exited:
            state = process.status(process.read_record(paths.record(res.name)))
            code = f" with exit code {state.exit_code}" if state.exit_code is not None else ""
            events.record(paths, "crash", res.name, "exited", f"exited{code} before it was ready")
            message = f"{res.name} exited{code} before it was ready"
        else:
            events.record(paths, "ready", res.name, "timeout", res.reason)
            message = f"{res.name} is not ready: {res.reason}"
        others = [f"{r.name}: {r.reason}" for r in failed[1:]]
        tail = [f"| {line}" for line in process.tail(log, LOG_TAIL_LINES)]
        raise FlowgateError(message, f"see {log} (last lines above), fix the cause and run `uv run doit up` again",
                            details=others + [f"last lines of {log}:"] + tail)
    return results


def _stopped_by_down(paths: Paths, name: str, since: str) -> bool:
    """`doit down` stopped `name` after `since` (and its record is gone): not a crash to debug."""
    if paths.record(name).exists():
        return False
    return any(e.get("event") == "stop" and e.get("service") == name and e.get("detail") == "down"
               and str(e.get("ts") or "") >= since for e in events.tail(paths))


def is_ready(paths: Paths, stack: dict, service: str, timeout: float = 1.0) -> bool:
    """The one readiness rule outside `wait_ready`: the recorded process is alive and answers its probe."""
    if service not in enabled_services(stack):
        return False
    record = process.read_record(paths.record(service))
    if record is None or not process.is_alive(record):
        return False
    settings = of(stack, service)
    host, port = record.meta.get("host", settings.host), record.meta.get("port", settings.port)
    return probe.service_ok(service, host, port, probe_path(service, record.meta), record.meta, timeout)

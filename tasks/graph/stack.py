"""Tasks that run the stack: start:*, ready, up, down, restart, status, logs."""

from __future__ import annotations

import json
import sys

from .common import PATHS, action, read_stack, read_stack_or_none

LITELLM, CLIPROXY = "litellm", "cliproxy"  # tasks.services names, without importing it at load time
# What each start task did in this run (actions run in this process); absent = up to date.
OUTCOMES: dict[str, object] = {}


def service_current(service: str) -> bool:
    """uptodate for start:<service>: same live process, same restart inputs. Never raises."""
    from ..lifecycle import is_current

    stack = read_stack_or_none()
    if stack is None:
        return False
    try:
        return is_current(PATHS, stack, service)
    except Exception:
        return False  # the action will find out and say what is wrong


def start_service(service: str) -> dict:
    from ..lifecycle import ensure_running
    from ..lock import stack_lock

    stack = read_stack()
    with stack_lock(PATHS, what=f"start:{service}"):
        outcome = ensure_running(PATHS, stack, service)
    OUTCOMES[service] = outcome
    if outcome.action not in ("unchanged", "disabled"):
        print(outcome.line())
    return {"action": outcome.action, "pid": outcome.pid}


def task_start():
    """Start a service, restart it if its restart inputs changed, or hot-reload CLIProxyAPIPlus."""
    # preflight first: doit does not promise to run task_deps in list order, so each start
    # depends on it explicitly (nothing starts while a port is taken or the binary is missing).
    for service, deps in ((LITELLM, ["preflight", "render:litellm"]), (CLIPROXY, ["preflight", "fetch", "render:cliproxy"])):
        yield {
            "name": service,
            "doc": f"start {service} (returns at once; `ready` waits)",
            "actions": [(action(start_service), [service])],
            "task_dep": deps,
            "uptodate": [(service_current, [service])],
        }


def _enabled(stack: dict) -> list[str]:
    return [LITELLM] + ([CLIPROXY] if stack["cliproxy"]["enabled"] else [])


def check_ports() -> None:
    from ..lifecycle import preflight

    preflight(PATHS, read_stack())


def task_preflight():
    """Refuse before starting anything when a service's port is held by a foreign process."""
    return {"actions": [action(check_ports)], "task_dep": ["fetch", "render"], "uptodate": [False],
            "meta": {"quiet": True}}


def wait_ready() -> None:
    from ..lifecycle import wait_ready as wait

    stack = read_stack()
    fresh = {s for s, o in OUTCOMES.items() if o.action in ("started", "restarted")}
    wait(PATHS, stack, _enabled(stack), fresh)


def task_ready():
    """Wait until both services answer their readiness probes (they boot at the same time)."""
    # Everything that can fail without starting a process comes first; then both spawn back to back.
    return {"actions": [action(wait_ready)], "task_dep": ["start:litellm", "start:cliproxy"],
            "uptodate": [False], "meta": {"quiet": True}}


def summary() -> None:
    from ..lifecycle import Outcome
    from ..services import base_url

    stack = read_stack()
    print(f"FlowGate is up (profile {stack['profile']})")
    for service in _enabled(stack):
        outcome = OUTCOMES.get(service)
        if outcome is None:
            from .. import process

            record = process.read_record(PATHS.record(service))
            outcome = Outcome(service, "unchanged", record.pid if record else None)
        print(f"  {outcome.line():<60} {base_url(stack[service])}")
    print(f"  OpenAI base URL: {base_url(stack['litellm'])}/v1   Anthropic base URL: {base_url(stack['litellm'])}")
    print(f"  gateway key: {PATHS.secret('litellm_master_key')}")


def task_up():
    """Bring the whole stack up and true to the config (default task)."""
    return {"actions": [action(summary)], "task_dep": ["ready"], "uptodate": [False], "meta": {"quiet": True}}


def stop_services(services: list[str], reason: str) -> None:
    from ..lifecycle import stop_service
    from ..lock import stack_lock

    stack = read_stack_or_none()
    with stack_lock(PATHS, what="down"):
        for service in services:  # LiteLLM first: it is the one clients talk to
            result = stop_service(PATHS, stack, service, reason)
            print(f"{service} is not running" if result.outcome == "not-running" else result.message)


def task_down():
    """Stop both services (idempotent; never signals a process FlowGate did not start)."""
    return {"actions": [(action(stop_services), [[LITELLM, CLIPROXY], "down"])], "uptodate": [False],
            "meta": {"quiet": True}}


def _pick(names: list[str]) -> list[str]:
    from ..errors import FlowgateError

    unknown = [n for n in names if n not in (LITELLM, CLIPROXY)]
    if unknown:
        raise FlowgateError(f"unknown service {unknown[0]!r}", f"name {LITELLM} or {CLIPROXY}, or none for both")
    return [s for s in (LITELLM, CLIPROXY) if s in names] or [LITELLM, CLIPROXY]


def restart(pos: list[str]) -> None:
    from ..lifecycle import ensure_running, stop_service, wait_ready as wait
    from ..lock import stack_lock

    stack = read_stack()
    services = [s for s in _pick(pos) if s in _enabled(stack)]
    with stack_lock(PATHS, what="restart"):
        for service in services:
            stop_service(PATHS, stack, service, "restart requested")
            outcome = ensure_running(PATHS, stack, service)
            print(f"{service}: restarted (pid {outcome.pid})")
    wait(PATHS, stack, services, set(services))
    print("ready: " + ", ".join(services))


def task_restart():
    """Restart both services, or the ones named: `doit restart litellm`."""
    return {"actions": [action(restart)], "pos_arg": "pos", "task_dep": ["render", "fetch"],
            "uptodate": [False], "meta": {"quiet": True}}


def show_status(json_output: bool):
    from .. import report
    from ..errors import FlowgateError

    stack = read_stack_or_none()
    if stack is None:
        try:
            from ..config import load_stack

            stack = load_stack(PATHS)
        except FlowgateError:
            stack = None
    data = report.collect(PATHS, stack)
    print(json.dumps(data, indent=2) if json_output else report.table(data))
    sys.stdout.flush()
    if not data["ready"]:
        down = [s["service"] for s in data["services"] if s["enabled"] and not s["ready"]]
        raise FlowgateError(f"not ready: {', '.join(down)}", "run `uv run doit up`")


def task_status():
    """Show each service's state, pid, uptime, address, readiness, version and drift (exit 1 unless ready)."""
    return {
        "actions": [action(show_status)],
        "params": [{"name": "json_output", "long": "json", "type": bool, "default": False,
                    "help": "print JSON for scripts"}],
        "uptodate": [False],
        "meta": {"quiet": True},
    }


def show_logs(pos: list[str], lines: int, follow: bool) -> None:
    from .. import process

    services = _pick(pos)
    for service in services:
        log = PATHS.log(service)
        print(f"==> {log} <==")
        for line in process.tail(log, lines) if log.exists() else ["(no log yet: the service has not been started)"]:
            print(line)
    if follow:
        _follow([PATHS.log(s) for s in services])


def _follow(logs) -> None:
    import time

    offsets = {log: (log.stat().st_size if log.exists() else 0) for log in logs}
    try:
        while True:
            for log in logs:
                if not log.exists():
                    continue
                size = log.stat().st_size
                if size < offsets[log]:
                    offsets[log] = 0  # rotated or truncated
                if size > offsets[log]:
                    with open(log, "rb") as fh:
                        fh.seek(offsets[log])
                        chunk = fh.read()
                    offsets[log] += len(chunk)
                    prefix = f"[{log.stem}] " if len(logs) > 1 else ""
                    for line in chunk.decode("utf-8", "replace").splitlines():
                        print(prefix + line, flush=True)
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass


def task_logs():
    """Show the last lines of each service's log (`-n 50`, `-f` to follow, or name one service)."""
    return {
        "actions": [action(show_logs)],
        "pos_arg": "pos",
        "params": [
            {"name": "lines", "short": "n", "long": "lines", "type": int, "default": 20, "help": "lines per log"},
            {"name": "follow", "short": "f", "long": "follow", "type": bool, "default": False,
             "help": "keep printing new lines"},
        ],
        "uptodate": [False],
        "meta": {"quiet": True},
    }


def run_doctor() -> None:
    from ..doctor import format_checks, run_checks
    from ..errors import FlowgateError

    checks = run_checks(PATHS)
    print(format_checks(checks))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise FlowgateError(f"doctor found {len(failed)} problem(s): {', '.join(failed)}", "apply the fixes listed above")


def task_doctor():
    """Read-only health checks (config, litellm, binary, ports, secrets, disk), each with its fix."""
    return {"actions": [action(run_doctor)], "uptodate": [False], "meta": {"quiet": True}}

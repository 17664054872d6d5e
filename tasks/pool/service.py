"""How FlowGate runs the steward (tasks.pool.steward) as a service of its own: started by `doit up`
when CLIProxyAPI is enabled and `accounts.steering` (or `accounts.read_usage_queue`) is true,
supervised by FlowGate's launcher (`--ready worker`: it reports in its worker file), restarted when
the `accounts:` section or CLIProxyAPI's address changes, stopped by `doit down`.

A process of its own, not a thread of LiteLLM's: it must see every account whichever gateway
replica serves, survive a gateway swap, and never put a management call on the data plane's loop.
It has no port: nothing listens, so the stack's port checks and probes leave it out.
"""

from __future__ import annotations

import os
import sys

from ..base.paths import Paths

SERVICE = "steward"
STOP_TIMEOUT = 5.0


def wanted(stack: dict | None) -> bool:
    from ..config.accountspec import steering
    from ..config.view import cliproxy

    if stack is None or not cliproxy(stack).enabled:
        return False
    settings = steering(stack)
    return settings.steering or settings.read_usage_queue


def launch(paths: Paths, stack: dict):
    from ..config.view import cliproxy
    from ..services.common import Launch, launcher_argv, launcher_env, sha

    argv = launcher_argv(paths, SERVICE, "worker") + [sys.executable, "-m", "tasks.pool", "--home", str(paths.home)]
    cp = cliproxy(stack)
    from pathlib import Path

    code = sha(repr([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(Path(__file__).parent.glob("*.py"))]))
    # `code`: the steward's own modules (a pulled FlowGate restarts it); stat, not content: `up` asks each run
    parts = {"argv": argv, "config": sha(repr(sorted((stack.get("accounts") or {}).items()))),
             "host": cp.host, "port": cp.port, "code": code}
    return Launch(SERVICE, argv, launcher_env(os.environ), str(paths.home), "", 0, parts, meta={"launcher": True})


def is_current(paths: Paths, stack: dict | None) -> bool:
    from ..stack import process

    record = process.read_record(paths.record(SERVICE))
    if not wanted(stack):
        from ..config.view import cliproxy

        return record is None and not (stack is not None and cliproxy(stack).enabled and _holds(paths))
    return record is not None and process.is_alive(record) and record.inputs_hash == launch(paths, stack).inputs_hash


def ensure(paths: Paths, stack: dict):
    """Start, restart (its inputs changed, or it died) or stop (not wanted): an Outcome. Call with the stack lock held."""
    from ..services.common import restart_reasons
    from ..stack.launch.launches import Outcome
    from ..stack import events, process
    from ..stack.launch.launcher_files import sweep

    path = paths.record(SERVICE)
    record = process.read_record(path)
    alive = record is not None and process.is_alive(record)
    if not wanted(stack):
        if record is not None:
            result = process.stop(path, timeout=STOP_TIMEOUT)
            events.record(paths, "stop", SERVICE, result.outcome, "accounts.steering is false or CLIProxyAPI is off")
        release(paths, stack)
        return Outcome(SERVICE, "disabled")
    new = launch(paths, stack)
    if alive and record.inputs_hash == new.inputs_hash:
        return Outcome(SERVICE, "unchanged", record.pid)
    why = ""
    if alive:
        why = ", ".join(restart_reasons(record.meta.get("parts", {}), new.parts))
        result = process.stop(path, timeout=STOP_TIMEOUT)
        events.record(paths, "stop", SERVICE, result.outcome, f"restart: {why}")
    elif record is not None:
        why = "its process was gone"
        events.record(paths, "crash", SERVICE, "detected", f"pid {record.pid} is gone")
        process.remove_record(path)
    sweep(paths, SERVICE)
    started = process.spawn(new.argv, env=new.env, cwd=new.cwd, log_path=paths.log(SERVICE), record_path=path,
                            service=SERVICE, inputs_hash=new.inputs_hash, meta={**new.meta, "parts": new.parts})
    events.record(paths, "restart" if why else "start", SERVICE, "ok", why, pid=started.pid)
    return Outcome(SERVICE, "restarted" if why else "started", started.pid, why)


def stop(paths: Paths, reason: str = "down"):
    from ..stack import events, process
    from ..stack.launch.launcher_files import forget

    result = process.stop(paths.record(SERVICE), timeout=STOP_TIMEOUT)
    if result.outcome != "not-running":
        events.record(paths, "stop", SERVICE, result.outcome, reason, seconds=round(result.seconds, 3))
    if result.pid:
        forget(paths, SERVICE, result.pid)
    return result


def running(paths: Paths) -> int | None:
    """The steward's launcher pid while it runs, else None (a record read and a liveness check)."""
    from ..stack import process

    record = process.read_record(paths.record(SERVICE))
    return record.pid if record is not None and process.is_alive(record) else None


def _holds(paths: Paths) -> bool:
    """The state file still has accounts out or models steered (for `release`)."""
    from ..accounts import pool_state

    data = pool_state.read(paths) or {}
    return bool(data.get("steered")) or any(isinstance(e, dict) and e.get("state") == "out" for e in data.get("accounts") or [])


def release(paths: Paths, stack: dict) -> None:
    """Steering turned off: the accounts the steward took out go back into rotation (its state file
    says which), and the gateway steers nothing. Never raises: CLIProxyAPI may be off too."""
    from ..accounts import pool_state
    from ..accounts.inventory import Account, set_disabled
    from ..base.errors import FlowgateError
    from ..config.view import cliproxy
    from ..stack import events

    data = pool_state.read(paths)
    out = [e for e in (data or {}).get("accounts") or [] if isinstance(e, dict) and e.get("state") == "out"]
    if data is None or not (out or data.get("steered")) or not cliproxy(stack).enabled:
        return  # CLIProxyAPI off: its accounts stay as they are, and a steward started later knows its own
    kept = []
    if out:
        from ..accounts.management import Management

        try:
            client = Management.for_stack(paths, stack)
        except FlowgateError:
            client = None
        for entry in out:
            account = Account(name=str(entry.get("name")), provider=str(entry.get("provider")), type="",
                              label=str(entry.get("label") or ""), status="", disabled=True, last_refresh="",
                              status_message="", unavailable=False, auth_index=str(entry.get("auth_index") or ""))
            try:
                if client is None:
                    raise FlowgateError("CLIProxyAPI cannot be reached")
                set_disabled(client, account, False)
            except FlowgateError as exc:
                kept.append(entry)
                events.record(paths, "steer", SERVICE, "failed",
                              f"could not put {account.label or account.name} back: {exc.one_line()}")
                continue
            events.record(paths, "steer", SERVICE, "in", f"{account.provider} {account.label or account.name} back "
                          "in rotation: steering is off", provider=account.provider, file=account.name)
    pool_state.write(paths, {**data, "steering": False, "steered": {}, "accounts": kept})

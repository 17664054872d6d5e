"""Replace a running CLIProxyAPI (new binary, new address, or a restart) without failing a request.

CLIProxyAPI is a Go binary: it cannot share its port with a successor as LiteLLM's launcher does
(tasks.stack.swaps.swap). So the new build first runs as a *bridge* on a spare port, beside the old one
on the same auth directory:

    1. the bridge starts and must answer its readiness probe (and the caller's `verify`, e.g. the
       upgrade's smoke test) before any traffic moves; else it is stopped and nothing changed;
    2. LiteLLM moves to the bridge by its zero-downtime swap (each instance), so the old
       LiteLLM drains its requests to the old CLIProxyAPI;
    3. logins in progress on the old CLIProxyAPI are cancelled (its sessions live in its memory);
       then it stops, with no request left on it;
    4. the new build starts at the configured address (`settle`), LiteLLM swaps back to its usual
       config, and the bridge stops once no LiteLLM points at it.

At rest, CLIProxyAPI always listens where the config says; the bridge exists only during a switch
(`run/cliproxy#bridge.json`, its config beside the usual one; `doit status` reads that record). An interrupted switch is finished
by the next `doit up`: it starts what is missing, swaps LiteLLM back, then retires the bridge.
Without a running LiteLLM there is no traffic to keep, and the caller stops then starts.
"""

from __future__ import annotations

import socket

from ...base.errors import FlowgateError
from ...base.fsutil import atomic_write
from ...base.paths import Paths
from ...config.names import CLIPROXY, CLIPROXY_BRIDGE as BRIDGE, litellm_instances
from ...config.view import cliproxy
from .. import events, process
from ..launch.launches import Outcome, launch_for


def bridge_config(paths: Paths):
    return paths.cliproxy_config.with_name("config.bridge.yaml")


def litellm_bridge_config(paths: Paths):
    """Beside the usual config: LiteLLM finds the auth hook (general_settings.custom_auth) there."""
    return paths.litellm_config.with_name("config.bridge.yaml")


def bridge_record(paths: Paths):
    return paths.record(BRIDGE)


def running_litellm(paths: Paths, stack: dict) -> list[tuple[str, process.ProcessRecord]]:
    out = []
    for name in litellm_instances(stack):
        record = process.read_record(paths.record(name))
        if record is not None and process.is_alive(record):
            out.append((name, record))
    return out


def impossible(paths: Paths, stack: dict) -> str | None:
    """Why CLIProxyAPI cannot be replaced without a gap, or None; "" when no LiteLLM runs in front of
    it (no traffic to keep: stop, then start)."""
    from . import swap

    lite = running_litellm(paths, stack)
    if not lite:
        return ""
    for name, record in lite:
        blocked = swap.impossible(record, launch_for(paths, stack, name))
        if blocked:
            return f"LiteLLM cannot swap ({blocked})"
    return None


def move(paths: Paths, stack: dict, old: process.ProcessRecord, why: str, settle, verify=None, out=print) -> Outcome:
    """Replace the running CLIProxyAPI `old` by the configured launch, through a bridge. Stack lock held.

    `verify(base_url)`: called once the bridge is ready, before traffic moves; it raises
    FlowgateError to refuse the new build (which is then stopped: `old` never noticed).
    `settle()`: starts CLIProxyAPI at its address, moves LiteLLM back and retires the bridge
    (tasks.stack.lifecycle.settle_cliproxy); returns its Outcome.
    """
    leave_bridge(paths, stack)  # an interrupted switch: LiteLLM back to `old` first, then its bridge goes
    bridge = start_bridge(paths, stack, why)
    try:
        if verify is not None:
            verify(url_of(stack, bridge.meta["port"]))
        out(f"cliproxy: new instance ready on port {bridge.meta['port']} (pid {bridge.pid}); moving LiteLLM to it")
        point_litellm(paths, stack, bridge.meta["port"], f"CLIProxyAPI switch: {why}")
    except BaseException:
        # Not forced: a LiteLLM instance that could not be moved back keeps its bridge (`doit up` finishes it).
        retire_bridge(paths, stack, why="the switch did not go through")
        raise
    events.record(paths, "switch", CLIPROXY, "bridged", why, old_pid=old.pid, bridge_pid=bridge.pid)
    cancel_logins(paths, f"CLIProxyAPI was replaced ({why}) while the login waited", out)
    _stop(paths, paths.record(CLIPROXY), stack, f"replaced: {why}")
    outcome = settle()
    events.record(paths, "switch", CLIPROXY, "ok", why, old_pid=old.pid, new_pid=outcome.pid)
    return Outcome(CLIPROXY, "switched", outcome.pid,
                   f"{why}; pid {old.pid} handed over through a bridge, no request dropped")


def start_bridge(paths: Paths, stack: dict, why: str) -> process.ProcessRecord:
    from ...services.cliproxy import render_cliproxy
    from ...services.secrets import read_all
    from ..watch.readiness import wait_ready

    passing = with_cliproxy_port(stack, spare_port(cliproxy(stack).host))
    atomic_write(bridge_config(paths), render_cliproxy(paths, passing, read_all(paths)), mode=0o600)
    launch = launch_for(paths, passing, BRIDGE, config=bridge_config(paths))
    meta = {**launch.meta, "parts": launch.parts, "host": launch.host, "port": launch.port}
    if paths.log(BRIDGE).exists():  # one switch per log: a failure's tail is this build's own lines
        paths.log(BRIDGE).replace(paths.log(BRIDGE).with_suffix(".log.1"))
    record = process.spawn(launch.argv, env=launch.env, cwd=launch.cwd, log_path=paths.log(BRIDGE),
                           record_path=bridge_record(paths), service=BRIDGE, inputs_hash=launch.inputs_hash, meta=meta)
    events.record(paths, "switch", CLIPROXY, "started", why, bridge_pid=record.pid, port=launch.port)
    try:
        wait_ready(paths, passing, [BRIDGE], {CLIPROXY})
    except BaseException as exc:
        retire_bridge(paths, stack, force=True, why="not ready")
        if isinstance(exc, KeyboardInterrupt):
            raise FlowgateError("interrupted: the new CLIProxyAPI instance was stopped",
                                "the running one kept serving throughout") from None
        if isinstance(exc, FlowgateError):
            raise FlowgateError(f"the new CLIProxyAPI did not become ready: {exc.message}; "
                                "the running one kept serving throughout",
                                f"its log is {paths.log(BRIDGE)} (last lines above)", details=exc.details) from None
        raise
    return record


def on_bridge(paths: Paths, stack: dict) -> list[tuple[str, process.ProcessRecord]]:
    """The running LiteLLM instances whose config points at the bridge."""
    bridged = str(litellm_bridge_config(paths))
    return [(name, record) for name, record in running_litellm(paths, stack) if record.meta.get("config_path") == bridged]


def leave_bridge(paths: Paths, stack: dict) -> None:
    """Before a new switch: LiteLLM instances still on an old bridge go back to the usual config (the
    running CLIProxyAPI at its address), then that bridge stops. Never kills a bridge in use."""
    from . import swap

    for name, record in on_bridge(paths, stack):
        swap.replace(paths, stack, record, launch_for(paths, stack, name), "finishing an interrupted CLIProxyAPI switch", name)
    retire_bridge(paths, stack)


def point_litellm(paths: Paths, stack: dict, port: int, why: str) -> None:
    """Swap every running LiteLLM instance to a config whose CLIProxyAPI is at `port`."""
    from ...services.litellm import litellm_launch, render_litellm_local
    from ...services.secrets import read_all
    from . import swap

    passing = with_cliproxy_port(stack, port)
    atomic_write(litellm_bridge_config(paths), render_litellm_local(paths, passing, read_all(paths)), mode=0o600)
    moved = []
    try:
        for name, record in running_litellm(paths, stack):
            launch = litellm_launch(paths, passing, instance=name, config=litellm_bridge_config(paths))
            moved.append((name, swap.replace(paths, stack, record, launch, why, name)))
    except BaseException:
        for name, _ in moved:  # replicas already on the bridge go back before the bridge is stopped
            record = process.read_record(paths.record(name))
            if record is not None:
                swap.replace(paths, stack, record, launch_for(paths, stack, name), "the CLIProxyAPI switch failed", name)
        raise


def retire_bridge(paths: Paths, stack: dict | None, force: bool = False, why: str = "the switch is over") -> bool:
    """Stop the bridge once no LiteLLM instance runs a config pointing at it (`force`: regardless)."""
    if not force and stack is not None and on_bridge(paths, stack):
        return False
    _stop(paths, bridge_record(paths), stack, why)
    from ..launch.launcher_files import sweep

    sweep(paths, BRIDGE)  # its launcher's state file: an interrupted switch left it (issue 31, item 20)
    bridge_config(paths).unlink(missing_ok=True)
    litellm_bridge_config(paths).unlink(missing_ok=True)
    return True


def cancel_logins(paths: Paths, why: str, out=print) -> None:
    """Tell every login waiting on the old CLIProxyAPI that its session goes with it (tasks.stack.logins)."""
    from .. import logins

    for login in logins.cancel_all(paths, why):
        out(f"cliproxy: the {login.get('provider')} login in progress (pid {login.get('pid')}) is cancelled: "
            "its session lives in the process being replaced")


# --------------------------------------------------------------------------- helpers


def with_cliproxy_port(stack: dict, port: int) -> dict:
    return {**stack, "cliproxy": {**stack["cliproxy"], "port": port}}


def spare_port(host: str) -> int:
    """A port free right now on `host` (the kernel's choice), for the bridge."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]") or "127.0.0.1", 0))
        return sock.getsockname()[1]


def url_of(stack: dict, port: int) -> str:
    from ...services.common import base_url

    return base_url(cliproxy(with_cliproxy_port(stack, port)))


def _stop(paths: Paths, record_path, stack: dict | None, why: str) -> None:
    record = process.read_record(record_path)
    timeout = float(((stack or {}).get(CLIPROXY) or {}).get("stop_timeout", 10.0))
    result = process.stop(record_path, timeout=timeout)
    if record is not None and result.outcome != "not-running":
        events.record(paths, "stop", record.service or CLIPROXY, result.outcome, why,
                      pid=record.pid, seconds=round(result.seconds, 3))


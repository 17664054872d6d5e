"""Start, reload, stop and wait for the two services. Plain Python: the doit layer calls these.

The rule: a service is left alone when its recorded process is the same live process (pid AND
create time) and was started with the same restart inputs. CLIProxyAPI gets other config
changes through its own hot reload: FlowGate rewrites the copy it runs with, never restarts it.
"""

from __future__ import annotations

from ..base.errors import FlowgateError
from ..base.fsutil import PRIVATE_DIR_MODE, ensure_dir, write_in_place
from ..base.paths import Paths
from ..config.names import CLIPROXY, CLIPROXY_BRIDGE, LITELLM, OPTIONAL, POSTGRES, REDIS, enabled_services, litellm_instances, service_of
from ..config.view import address, configured_env, litellm, of, redis
from ..services.common import file_sha, restart_reasons
from . import events, process
from .watch import health, recover
from .swaps import replicas
from .launch.launchcheck import require_launchable
from .launch.launches import Outcome, launch_for
from .launch.portcheck import require_port, require_port_released
from .watch.readiness import _instances, wait_ready


def is_current(paths: Paths, stack: dict, service: str) -> bool:
    """Cheap check for doit's uptodate: same live process, same restart inputs, config delivered."""
    if service == LITELLM:
        if paths.record(CLIPROXY_BRIDGE).exists():  # a CLIProxyAPI switch to finish (ensure_running retires it)
            return False
        names = litellm_instances(stack)
        return all(_is_current(paths, stack, name) for name in names) and not replicas.extras(paths, names)
    return _is_current(paths, stack, service)


def _is_current(paths: Paths, stack: dict, service: str) -> bool:
    if service in (CLIPROXY, *OPTIONAL) and service not in enabled_services(stack):
        return process.read_record(paths.record(service)) is None
    record = process.read_record(paths.record(service))
    if record is None or not process.is_alive(record):
        return False
    try:
        launch = launch_for(paths, stack, service)
    except FlowgateError:
        return False
    if record.inputs_hash != launch.inputs_hash:
        return False
    if service == CLIPROXY and (record.meta.get("rendered_sha") != launch.meta["rendered_sha"]
                                or _config_replaced(paths, record)):
        return False
    return _hung(paths, stack, service, record) is None


def ensure_running(paths: Paths, stack: dict, service: str) -> Outcome:
    """Start, restart, hot-reload or leave alone. Call with the stack lock held.

    LiteLLM's replicas one after the other: a config change swaps them one at a time (each swap
    waits for its new instance), fresh starts return at once and boot side by side."""
    if service != LITELLM:
        return _ensure(paths, stack, service)
    names = litellm_instances(stack)
    if len(names) > 1:
        _require_sharing(stack)
    for name in replicas.extras(paths, names):
        stop_service(paths, stack, name, f"litellm.replicas is {len(names)}")
        from .launch.launcher_files import sweep

        sweep(paths, name)
    outcome = _combined([_ensure(paths, stack, name) for name in names])
    if paths.record(CLIPROXY_BRIDGE).exists():  # LiteLLM is off a CLIProxyAPI switch's bridge now
        from .swaps import bluegreen

        bluegreen.retire_bridge(paths, stack)
    return outcome


def _hung(paths: Paths, stack: dict, service: str, record) -> str | None:
    """health.hung_reason with the settings it reads, at the probe timeout a restart decision uses."""
    return health.hung_reason(of(stack, service_of(service)), service, record, shared=replicas.several(litellm(stack)),
                              timeout=health.RESTART_PROBE_TIMEOUT, paths=paths)


def _require_sharing(stack: dict) -> None:
    from ..gateway.reuseport import unsupported

    why = unsupported()
    if why:
        raise FlowgateError(f"litellm.replicas is {litellm(stack).replicas}, but replicas share one port and {why}",
                            "set litellm.replicas to 1 in config/local.yaml")


def _combined(outcomes: list[Outcome]) -> Outcome:
    if len(outcomes) == 1:
        return outcomes[0]
    changed = [o for o in outcomes if o.action != "unchanged"]
    first = (changed or outcomes)[0]
    return Outcome(LITELLM, first.action, first.pid, first.why, instances=outcomes)


def _ensure(paths: Paths, stack: dict, service: str) -> Outcome:
    """ensure_running for one service or LiteLLM instance."""
    svc = service_of(service)
    record_path = paths.record(service)
    # hardening: an unreadable record
    record = recover.record_or_orphan(paths, address(stack, service), service, save=True)
    if service in (CLIPROXY, *OPTIONAL) and service not in enabled_services(stack):
        if record is not None:
            result = process.stop(record_path, timeout=of(stack, service).stop_timeout)
            why = "cliproxy.enabled is false" if service == CLIPROXY else f"{service}.managed is false"
            events.record(paths, "stop", service, result.outcome, why)
        return Outcome(service, "disabled")
    launch = launch_for(paths, stack, service)
    why = ""
    alive = record is not None and process.is_alive(record)
    # --- hardening: a hung process is restarted; nothing is stopped before the new launch is checked
    hung = _hung(paths, stack, service, record) if alive else None
    if alive and not hung and service == CLIPROXY:
        hung = _config_replaced(paths, record)
    if alive and record.inputs_hash == launch.inputs_hash and not hung:
        if service == CLIPROXY and record.meta.get("rendered_sha") != launch.meta["rendered_sha"]:
            _deliver_cliproxy_config(paths)
            record.meta.update(launch.meta)
            process.write_record(record_path, record)
            events.record(paths, "reload", service, "ok", "config changed: delivered for hot reload")
            return Outcome(service, "reloaded", record.pid, "config changed, hot reload")
        return Outcome(service, "unchanged", record.pid)
    require_launchable(paths, launch, configured_env(stack, service_of(service)))
    # --- end hardening
    if alive:
        if hung or record.meta.get("recovered"):
            why = hung or f"its run record was unreadable (recovered pid {record.pid})"
        else:
            why = ", ".join(restart_reasons(record.meta.get("parts", {}), launch.parts))
            # --- LiteLLM takes a new config without downtime where it can (tasks.stack.swaps.swap), and
            # CLIProxyAPI a new binary or address through a bridge (tasks.stack.swaps.bluegreen) ---
            blocked = _no_gap_blocker(paths, stack, service, record, launch)
            if blocked is None:
                return _replace_without_gap(paths, stack, service, record, launch, why)
            if blocked:  # "": no traffic to keep (CLIProxyAPI without a LiteLLM in front)
                why += f" (stop-then-start: {blocked})"
            # ---
        result = process.stop(record_path, timeout=stack[svc]["stop_timeout"])
        events.record(paths, "stop", service, result.outcome, f"restart: {why}", seconds=round(result.seconds, 3))
        require_port_released(paths, service, launch.host, launch.port, record)  # hardening: a killed group lingers
    elif record is not None:
        state = process.status(record)
        code = f" (exit code {state.exit_code})" if state.exit_code is not None else ""
        why = f"its process was gone{code}"
        events.record(paths, "crash", service, "detected", f"pid {record.pid} is gone{code}")
        process.remove_record(record_path)
    require_port(paths, service, launch.host, launch.port)  # ours is stopped by now: must be free
    if service == CLIPROXY:
        ensure_dir(paths.auths_dir, PRIVATE_DIR_MODE)
        _deliver_cliproxy_config(paths)
    if service == REDIS:
        from ..services.redis import write_conf

        write_conf(paths, redis(stack))
    if service == POSTGRES:
        from ..services.postgres import ensure_cluster

        ensure_cluster(paths, of(stack, POSTGRES))
    meta = {**launch.meta, "parts": launch.parts, "host": launch.host, "port": launch.port}
    if service == CLIPROXY:
        meta["config_inode"] = _inode(paths.cliproxy_config)
    record = process.spawn(launch.argv, env=launch.env, cwd=launch.cwd, log_path=paths.log(service),
                           record_path=record_path, service=service, inputs_hash=launch.inputs_hash, meta=meta)
    action = "restarted" if why else "started"
    events.record(paths, "restart" if why else "start", service, "ok", why, pid=record.pid)
    return Outcome(service, action, record.pid, why)


def restart_service(paths: Paths, stack: dict, service: str, reason: str = "restart requested") -> Outcome:
    """Replace a running service, but only once the new launch is known to be startable: LiteLLM
    by a swap where it can (no downtime; replicas one at a time), otherwise stop and start again."""
    if service == LITELLM and (replicas.several(litellm(stack)) or replicas.extras(paths, litellm_instances(stack))):
        outcome = ensure_running(paths, stack, LITELLM)  # stops the extras, starts missing ones
        return _combined([_restart_one(paths, stack, o.service, reason) if o.action == "unchanged" else o
                          for o in (outcome.instances or [outcome])])
    return _restart_one(paths, stack, service, reason)


def _no_gap_blocker(paths: Paths, stack: dict, service: str, record, launch) -> str | None:
    """Why `service` must stop before its replacement starts, or None (a swap or a bridge can do it);
    "" when stopping first loses nothing."""
    if service_of(service) == LITELLM:
        from .swaps import swap

        return swap.impossible(record, launch)
    if service == CLIPROXY:
        from .swaps import bluegreen

        return bluegreen.impossible(paths, stack)
    return "it has no zero-downtime replacement"


def _replace_without_gap(paths: Paths, stack: dict, service: str, record, launch, why: str, **options) -> Outcome:
    if service_of(service) == LITELLM:
        from .swaps import swap

        return swap.replace(paths, stack, record, launch, why, service)
    return switch_cliproxy(paths, stack, record, why, **options)


def switch_cliproxy(paths: Paths, stack: dict, old, why: str, verify=None, out=print) -> Outcome:
    """Replace the running CLIProxyAPI `old` through a bridge (tasks.stack.swaps.bluegreen). Stack lock held."""
    from .swaps import bluegreen

    return bluegreen.move(paths, stack, old, why, settle=lambda: settle_cliproxy(paths, stack, out),
                          verify=verify, out=out)


def settle_cliproxy(paths: Paths, stack: dict, out=print) -> Outcome:
    """CLIProxyAPI at its configured address, LiteLLM on its usual config, then no bridge: the end
    of every switch, and what finishes one that was interrupted."""
    from .swaps import bluegreen

    outcome = _ensure(paths, stack, CLIPROXY)
    wait_ready(paths, stack, [CLIPROXY], {CLIPROXY})
    if bluegreen.running_litellm(paths, stack):
        out("cliproxy: ready at its configured address; moving LiteLLM back to it")
        ensure_running(paths, stack, LITELLM)  # swaps each instance back to the rendered config
    bluegreen.retire_bridge(paths, stack)
    return outcome


def _restart_one(paths: Paths, stack: dict, service: str, reason: str) -> Outcome:
    launch = launch_for(paths, stack, service)
    require_launchable(paths, launch, configured_env(stack, service_of(service)))
    fallback = ""
    old = recover.record_or_orphan(paths, address(stack, service), service, save=True)
    if service_of(service) in (LITELLM, CLIPROXY) and old is not None and process.is_alive(old):
        blocked = ("its run record was unreadable" if old.meta.get("recovered")
                   else _no_gap_blocker(paths, stack, service, old, launch))
        if blocked is None:
            return _replace_without_gap(paths, stack, service, old, launch, reason)
        fallback = f"stop-then-start: {blocked}" if blocked else ""
    elif service_of(service) == LITELLM:
        fallback = "stop-then-start: it is not running"
    stop_service(paths, stack, service, reason)
    if old is not None:
        settings = of(stack, service_of(service))
        require_port_released(paths, service, settings.host, settings.port, old)
    outcome = _ensure(paths, stack, service)
    return Outcome(service, "restarted", outcome.pid, fallback or reason)


def preflight(paths: Paths, stack: dict) -> None:
    """Before starting (or stopping) anything: every service's port is free, or held by itself."""
    for service in enabled_services(stack):
        settings = of(stack, service)
        require_port(paths, service, settings.host, settings.port)


def _deliver_cliproxy_config(paths: Paths) -> None:
    """Copy the rendered config to the file the binary runs with. The binary watches that file's
    inode (not its directory) and reloads on a write: a rename over it would end its hot reload for
    good, so the copy is written in place (found against the real binary; docs/dev/cliproxy-parity.md)."""
    try:
        text = paths.cliproxy_rendered.read_bytes()
    except FileNotFoundError:
        raise FlowgateError(f"{paths.cliproxy_rendered} is missing", "run `uv run doit render`") from None
    write_in_place(paths.cliproxy_config, text, mode=0o600)


def _inode(path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _config_replaced(paths: Paths, record) -> str | None:
    """Why the running CLIProxyAPI must restart to see its config again: it watches the inode it
    started with, and something (an editor's atomic save, a restore) put another file in its place."""
    started_with = record.meta.get("config_inode")
    if started_with is None or _inode(paths.cliproxy_config) in (None, started_with):
        return None
    return "its config file was replaced by another file, which the running binary does not watch"


def rotate_logs(paths: Paths, stack: dict, services: list[str]) -> None:
    """Keep the logs of running services bounded: a service may run for weeks between starts."""
    from .launch.logrotate import rotate_in_place

    for name in _instances(stack, services):
        rotate_in_place(paths.log(name))


def stop_service(paths: Paths, stack: dict | None, service: str, reason: str = "down") -> process.StopResult:
    # `down` reads stack.json as the last `config` wrote it: after an upgrade of FlowGate it may lack
    # a key this version knows, and stopping must never depend on that.
    timeout = float(((stack or {}).get(service_of(service)) or {}).get("stop_timeout", 10.0))
    recover.record_or_orphan(paths, address(stack, service), service, save=True)  # a lost record must not orphan it
    result = process.stop(paths.record(service), timeout=timeout)
    if result.outcome != "not-running":
        events.record(paths, "stop", service, result.outcome, reason, seconds=round(result.seconds, 3))
    return result


def config_drift(paths: Paths, service: str, record) -> bool | None:
    """True when the running service's config differs from what is rendered now."""
    if record is None:
        return None
    if service in OPTIONAL:
        return False  # its config is a restart input: a change shows as a pending restart
    if service_of(service) == LITELLM:
        return record.meta.get("config_sha") != file_sha(paths.litellm_config)
    if record.meta.get("rendered_sha") != file_sha(paths.cliproxy_rendered):
        return True
    return _cliproxy_runtime_differs(paths)


def _cliproxy_runtime_differs(paths: Paths) -> bool:
    """The binary bcrypt-hashes the management key in the file it runs with: that is not drift."""
    try:
        running = paths.cliproxy_config.read_text(encoding="utf-8")
        rendered = paths.cliproxy_rendered.read_text(encoding="utf-8")
    except OSError:
        return True
    strip = lambda text: [l for l in text.splitlines() if not l.strip().startswith("secret-key:")]  # noqa: E731
    if strip(running) == strip(rendered):
        return False
    import yaml  # the binary may re-serialise the whole file: compare meaning, not text

    try:
        running_doc, rendered_doc = yaml.safe_load(running) or {}, yaml.safe_load(rendered) or {}
    except yaml.YAMLError:
        return True
    key = (running_doc.get("remote-management") or {}).get("secret-key")
    if isinstance(key, str) and key.startswith(("$2a$", "$2b$", "$2y$")):
        for doc in (running_doc, rendered_doc):
            (doc.get("remote-management") or {}).pop("secret-key", None)
    return running_doc != rendered_doc

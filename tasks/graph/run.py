"""Tasks that change the stack: start:*, preflight, ready, up, down, restart."""

from __future__ import annotations

from ..config.names import CLIPROXY, LITELLM, OPTIONAL, POSTGRES, REDIS, SERVICES, enabled_services
from .common import PATHS, action, read_stack, read_stack_or_none, service_choice

# What each start task did in this run (actions run in this process); absent = up to date.
OUTCOMES: dict[str, object] = {}


def service_current(service: str) -> bool:
    """uptodate for start:<service>: same live process, same restart inputs. Never raises."""
    from ..stack.lifecycle import is_current

    stack = read_stack_or_none()
    if stack is None:
        return False
    try:
        return is_current(PATHS, stack, service)
    except Exception:
        return False  # the action will find out and say what is wrong


def start_service(service: str) -> dict:
    from ..stack.lifecycle import ensure_running
    from ..stack.lock import stack_lock

    stack = read_stack()
    with stack_lock(PATHS, what=f"start:{service}"):
        outcome = ensure_running(PATHS, stack, service)
    OUTCOMES[service] = outcome
    if outcome.action not in ("unchanged", "disabled"):
        print(outcome.line())
    return {"action": outcome.action, "pid": outcome.pid}


def start_steward() -> dict:
    from ..pool import service
    from ..stack.lock import stack_lock

    stack = read_stack()
    with stack_lock(PATHS, what="start:steward"):
        outcome = service.ensure(PATHS, stack)
    OUTCOMES[service.SERVICE] = outcome
    if outcome.action not in ("unchanged", "disabled"):
        print(outcome.line())
    return {"action": outcome.action, "pid": outcome.pid}


def steward_current() -> bool:
    from ..pool.service import is_current

    try:
        return is_current(PATHS, read_stack_or_none())
    except Exception:
        return False  # the action will find out and say what is wrong


def task_start():
    """Start a service, restart it if its restart inputs changed, or hot-reload CLIProxyAPI."""
    # preflight first: doit does not promise to run task_deps in list order, so each start
    # depends on it explicitly (nothing starts while a port is taken or the binary is missing).
    # CLIProxyAPI before LiteLLM: a new binary or port moves LiteLLM through a bridge and back
    # (tasks.stack.swaps.bluegreen), so LiteLLM must not first swap to an address nothing serves yet.
    # Starting only spawns: a cold `up` still boots both side by side.
    for service, deps in ((LITELLM, ["preflight", "render:litellm", "start:cliproxy"]),
                          (CLIPROXY, ["preflight", "fetch", "render:cliproxy"]),
                          (REDIS, ["preflight"]), (POSTGRES, ["preflight"])):
        yield {
            "name": service,
            "doc": f"start {service} (returns at once; `ready` waits)",
            "actions": [(action(start_service), [service])],
            "task_dep": deps,
            "uptodate": [(service_current, [service])],
        }
    # the account pool's steward (tasks.pool): after CLIProxyAPI, whose management API it uses
    yield {"name": "steward", "doc": "start the account pool's steward (accounts.steering)",
           "actions": [action(start_steward)], "task_dep": ["start:cliproxy"], "uptodate": [steward_current]}


def check_ports() -> None:
    from ..stack.lifecycle import preflight

    preflight(PATHS, read_stack())


def task_preflight():
    """Refuse before starting anything when a service's port is held by a foreign process."""
    return {"actions": [action(check_ports)], "task_dep": ["fetch", "render"], "uptodate": [False],
            "meta": {"quiet": True}}


def wait_ready() -> None:
    from ..stack.lifecycle import rotate_logs
    from ..stack.watch.readiness import wait_ready as wait

    stack = read_stack()
    fresh = {s for s, o in OUTCOMES.items() if o.action in ("started", "restarted")}
    # a swap or a switch this command made is its own too: its new process is not ready yet either
    _say_when_waiting_for_another(stack, {s for s, o in OUTCOMES.items() if o.action not in ("unchanged", "disabled")})
    wait(PATHS, stack, enabled_services(stack), fresh)
    rotate_logs(PATHS, stack, enabled_services(stack))


def _say_when_waiting_for_another(stack: dict, fresh: set) -> None:
    """A live service this command did not start and that was never ready (its record has no
    `ready_at`) is being started by another command (an `up` in its own wait): say so, as the stack
    lock does, instead of waiting silently. A record read, never one more probe."""
    import sys

    from ..stack import process

    def starting(service: str) -> bool:
        record = process.read_record(PATHS.record(service))
        return record is not None and not record.meta.get("ready_at") and process.is_alive(record)

    waiting = [s for s in enabled_services(stack) if s not in fresh and starting(s)]
    if waiting:
        print(f"waiting for another FlowGate command to finish ({', '.join(waiting)} still starting) ...",
              file=sys.stderr, flush=True)


def task_ready():
    """Wait until both services answer their readiness probes (they boot at the same time)."""
    # Everything that can fail without starting a process comes first; then both spawn back to back.
    return {"actions": [action(wait_ready)],
            "task_dep": ["start:litellm", "start:cliproxy", "start:redis", "start:postgres", "start:steward"],
            "uptodate": [False], "meta": {"quiet": True}}


def summary() -> None:
    from ..config.view import litellm, of, redis
    from ..services.common import base_url
    from ..stack.launch.launches import Outcome

    stack = read_stack()
    print(f"FlowGate is up (profile {stack['profile']})")
    rows = []
    for service in enabled_services(stack):
        outcome = OUTCOMES.get(service)
        if outcome is None:
            from ..stack import process

            record = process.read_record(PATHS.record(service))
            outcome = Outcome(service, "unchanged", record.pid if record else None)
        where = (f"redis://127.0.0.1:{redis(stack).port}" if service == REDIS else
                 f"postgresql://127.0.0.1:{of(stack, POSTGRES).port}" if service == POSTGRES else base_url(of(stack, service)))
        rows.append((outcome.line().split("\n"), where))
    width = max(len(line) for lines, _ in rows for line in lines)  # the address column stays straight
    for lines, where in rows:
        for line in lines[:-1]:
            print(f"  {line}")
        print(f"  {lines[-1]:<{width}}  {where}")
    _steward_after_up(stack)
    gateway = base_url(litellm(stack))
    print(f"  OpenAI base URL: {gateway}/v1   Anthropic base URL: {gateway}")
    print(f"  gateway key: {PATHS.secret('litellm_master_key')}")
    _unsupported_providers()
    _models_after_up(stack)
    from ..clients.record import after_up

    for line in after_up(PATHS, stack):  # a moved port, an unserved slot: said now, not at the next `status`
        print(line)


def _steward_after_up(stack: dict) -> None:
    from ..pool import service

    if not service.wanted(stack):
        return
    from ..config.accountspec import steering
    from ..stack.launch.launches import Outcome

    outcome = OUTCOMES.get(service.SERVICE) or Outcome(service.SERVICE, "unchanged", service.running(PATHS))
    settings = steering(stack)
    what = f"steering on, threshold {settings.threshold:g} %" if settings.steering else "steering off (usage queue only)"
    print(f"  {outcome.line()}: {what}")


def _models_after_up(stack: dict) -> None:
    """Read what CLIProxyAPI serves when it (re)started or its accounts changed since the kept
    catalog; a no-op `up` only stats the auth dir."""
    if CLIPROXY not in enabled_services(stack):
        return
    from ..catalog import store
    from ..catalog.discover import auth_dir_changed_since, refresh
    from ..base.errors import FlowgateError

    kept = store.read(PATHS)
    fresh = CLIPROXY in OUTCOMES and OUTCOMES[CLIPROXY].action in ("started", "restarted", "switched")
    if not fresh and not auth_dir_changed_since(PATHS, kept):
        served = len(kept.models) if kept else 0
    else:
        try:
            kept, _ = refresh(PATHS, stack)
        except FlowgateError as exc:
            print(f"  models: not read: {exc.one_line()}")
            return
        served = len(kept.models)
    if served:
        print(f"  models: {served} served (`uv run doit models` lists them)")
    else:
        names = stack.get("provider_names") or ["codex"]
        print(f"  models: no account serves a model yet: log in with `uv run doit login:{names[0]}`")


def _unsupported_providers() -> None:
    from ..base.fsutil import load_json

    try:  # what the `config` / `fetch` tasks found (tasks.accounts.providers.remember_problems)
        unsupported = load_json(PATHS.state_dir / "providers.unsupported.json")
    except (OSError, ValueError):
        unsupported = []
    for entry in unsupported if isinstance(unsupported, list) else []:
        if isinstance(entry, dict):
            print(f"warning: providers: {entry.get('problem')}: no login for it until {entry.get('fix')}")


def task_up():
    """Bring the whole stack up and true to the config (default task)."""
    return {"actions": [action(summary)], "task_dep": ["ready"], "uptodate": [False], "meta": {"quiet": True}}


def stop_services(services: list[str], reason: str) -> None:
    from ..stack.lifecycle import stop_service
    from ..stack.lock import stack_lock
    from ..stack.launch.launcher_files import forget
    from ..stack.swaps.replicas import recorded
    from ..stack.swaps.swap import stop_leftovers
    from ..config.names import CLIPROXY_BRIDGE as BRIDGE
    from ..config.view import litellm

    stack = read_stack_or_none()
    with stack_lock(PATHS, what="down"):
        if CLIPROXY in services:  # the steward first: it acts through CLIProxyAPI's management API
            from ..pool import service as steward

            result = steward.stop(PATHS, reason)
            if result.outcome != "not-running":
                print(result.message)
        if LITELLM in services:  # every replica, also those beyond litellm.replicas
            instances = [LITELLM] + [n for n in recorded(PATHS) if n != LITELLM]
            services = [n for s in services for n in (instances if s == LITELLM else [s])]
            for name in instances:
                stop_leftovers(PATHS, litellm(stack) if stack else None, name)  # a swap interrupted halfway
        if CLIPROXY in services and PATHS.record(BRIDGE).exists():  # a CLIProxyAPI switch interrupted halfway
            services = services + [BRIDGE]
        for service in services:  # LiteLLM first: it is the one clients talk to
            if service in OPTIONAL and service not in enabled_services(stack) and not PATHS.record(service).exists():
                continue  # not configured, not running: nothing to say about it
            result = stop_service(PATHS, stack, service, reason)
            if result.pid:
                forget(PATHS, service, result.pid)  # its launcher's state: nothing is left to report
            print(f"{service} is not running" if result.outcome == "not-running" else result.message)
        from ..stack.launch.launcher_files import sweep

        sweep(PATHS, BRIDGE)  # what an interrupted switch's bridge launcher left


def task_down():
    """Stop both services (idempotent; never signals a process FlowGate did not start)."""
    return {"actions": [(action(stop_services), [list(SERVICES), "down"])], "uptodate": [False],
            "meta": {"quiet": True}}


def restart(pos: list[str]) -> None:
    from ..stack.lifecycle import restart_service
    from ..stack.watch.readiness import wait_ready as wait
    from ..stack.lock import stack_lock

    stack = read_stack()
    services = [s for s in service_choice(pos) if s in enabled_services(stack)]
    with stack_lock(PATHS, what="restart"):
        for service in services:
            print(restart_service(PATHS, stack, service).line())
    wait(PATHS, stack, services, set(services))
    print("ready: " + ", ".join(services))


def task_restart():
    """Restart both services, or the ones named: `doit restart litellm`."""
    from .posargs import with_options_anywhere

    return {"actions": [action(with_options_anywhere("restart", restart, []))], "pos_arg": "pos", "task_dep": ["render", "fetch"],
            "uptodate": [False], "meta": {"quiet": True}}

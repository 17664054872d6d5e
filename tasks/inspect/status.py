"""`doit status`: the whole truth about the stack, as a table or JSON. Reads, never changes."""

from __future__ import annotations

import time

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.names import CLIPROXY, CLIPROXY_BRIDGE, LITELLM, OPTIONAL, enabled_services, litellm_instances, service_of
from ..release import lines
from ..services.common import connect_host, probe_path
from ..stack.watch import probe
from ..stack import process


def service_status(paths: Paths, stack: dict | None, service: str) -> dict:
    from ..stack.lifecycle import config_drift

    from ..stack.watch import health, recover

    from ..config.view import address, litellm, of
    from ..stack.swaps.replicas import probe_address, probe_target, several

    enabled = not stack or service_of(service) in enabled_services(stack)
    record = recover.record_or_orphan(paths, address(stack, service), service)  # in memory only: status changes nothing
    state = process.status(record)
    cfg = (stack or {}).get(service_of(service), {})
    host = (record.meta.get("host") if record else None) or cfg.get("host", "127.0.0.1")
    port = (record.meta.get("port") if record else None) or cfg.get("port")
    entry = {
        "service": service,
        "enabled": enabled,
        "state": state.state if enabled or record else "disabled",
        "pid": state.pid if state.state == "running" else None,
        "uptime_s": round(state.uptime, 1) if state.uptime is not None and state.state == "running" else None,
        "address": f"http://{connect_host(host)}:{port}" if port else None,
        "ready": False,
        "version": None,
        "line": None,
        "drift": None,
        "exit_code": state.exit_code,
        "log": str(paths.log(service)),
        "problem": None,
        "recovered": bool(record and record.meta.get("recovered")),
    }
    entry.update(_supervision(paths, service, record, state))
    if state.state == "running":
        if service_of(service) == LITELLM:  # each instance's own port, beside the shared address
            own = probe_target(record)
            entry["probe_port"] = own[1] if own else None
        shared = bool(stack) and several(litellm(stack))
        where = probe_address(shared, record, host, port)  # a replica answers on its private port
        entry["ready"] = where is not None and probe.service_ok(service_of(service), *where,
                                                                probe_path(service_of(service), record.meta), record.meta)
        if not entry["ready"]:
            hung = (health.hung_reason(of(stack, service_of(service)), service, record, shared=shared, answered=False,
                                       paths=paths) if stack else None)
            entry["state"], entry["problem"] = ("unhealthy", hung) if hung else (
                "restarting" if entry["restart"] else "starting", None)
        else:
            entry["restart"] = None  # it answers: the restart is over
        entry["drift"] = config_drift(paths, service, record)
        if port and service_of(service) == service:  # replicas share the first instance's address: asked once
            from ..stack.launch.portcheck import strangers

            entry["strangers"] = strangers(paths, service, host, port)
        if service_of(service) == LITELLM:  # what its launcher boots, whatever is rendered now
            entry["serving_config"] = _serving_config(paths, service, record)
        entry["version"] = record.meta.get("version") or (health.cliproxy_version_from_log(paths) if service == CLIPROXY else None)
        if service == CLIPROXY:
            line = lines.LINES.get(record.meta.get("line") or "") or lines.by_version(entry["version"])
            entry["line"] = line.name if line else None
    return entry


def _serving_config(paths: Paths, service: str, record) -> str:
    from ..stack.launch.launcher_files import booted_config

    kept = booted_config(paths, service, record.pid)
    return str(kept if kept.exists() else paths.litellm_config)


def _supervision(paths: Paths, service: str, record, state) -> dict:
    """What the launcher knows (restarts, last exit, why it gave up) and a LiteLLM swap under way."""
    from ..stack.launch import launcher_files
    from ..stack.swaps import swap

    sup = (launcher_files.read_state(paths, service, record.pid) if record is not None else None) or {}
    out = {"restarts": sup.get("restarts", 0), "last_exit_code": sup.get("last_exit_code"),
           "service_pid": sup.get("service_pid") if state.state == "running" else None,
           "launcher": sup.get("state"), "gave_up": sup.get("detail") if sup.get("state") in ("gave-up", "failed") else None,
           "swap": swap.in_progress(paths, service) if service_of(service) == LITELLM else _switch(paths, service),
           "restart": launcher_files.self_restart(sup, time.time()) if state.state == "running" else None}
    if state.state == "crashed" and state.exit_code is None:
        out["exit_code"] = sup.get("last_exit_code")  # the launcher exits as its service did
    return out


def _switch(paths: Paths, service: str) -> dict | None:
    """A CLIProxyAPI switch under way: its bridge (tasks.stack.swaps.bluegreen), read without importing it."""
    if service != CLIPROXY:
        return None
    bridge = process.read_record(paths.record(CLIPROXY_BRIDGE))
    if bridge is None or not process.is_alive(bridge):
        return None
    return {"phase": "bridge", "bridge_pid": bridge.pid, "port": bridge.meta.get("port")}


def collect(paths: Paths, stack: dict | None) -> dict:
    from ..clients.record import stale

    from .pending import pending

    from ..stack.swaps.replicas import recorded

    instances = litellm_instances(stack) if stack else [LITELLM]
    instances += [name for name in recorded(paths) if name not in instances]  # beyond replicas: still running
    managed = [s for s in OPTIONAL if (stack and s in enabled_services(stack)) or paths.record(s).exists()]
    services = [service_status(paths, stack, s) for s in (*instances, CLIPROXY, *managed)]
    changes = pending(paths, stack, {s["service"]: s["ready"] for s in services})
    accounts, quota = _accounts(paths, stack, next(s for s in services if s["service"] == CLIPROXY))
    return {
        "profile": stack["profile"] if stack else None,
        "profile_source": stack.get("profile_source") if stack else None,
        "ready": all(s["ready"] for s in services if s["enabled"]),
        "pending": changes,  # what `doit up` would change; [] when the stack matches the config
        "services": services,
        "accounts": accounts,
        "quota": quota,  # {"accounts": [...]} per account (tasks.accounts.quota), or {"error": ...}
        "stale_clients": stale(paths, stack) if stack else [],
        "models": _models(paths, stack),
        "lean_path": _lean_path(paths, stack),
        "steering": _steering(paths, stack),  # the account pool's steward (tasks.pool), or None
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _steering(paths: Paths, stack: dict | None) -> dict | None:
    from ..pool.show import status

    return status(paths, stack)


def _accounts(paths: Paths, stack: dict | None, cliproxy: dict) -> tuple[dict | None, dict | None]:
    """Accounts per provider, and their quota; asked of CLIProxyAPI only when it is ready (None otherwise)."""
    if not stack or not cliproxy["ready"]:
        return None, None
    from ..accounts.inventory import status_accounts

    summary, accounts = status_accounts(paths, stack)
    if accounts:  # answers kept 60 s: a no-op status asks no provider (tasks.accounts.quota)
        from ..accounts.quota import status_quota

        return summary, status_quota(paths, stack, accounts)
    return summary, None


def _quota_lines(data: dict | None) -> list[str]:
    if not data:
        return []
    from ..base.terminal import printable

    if "error" in data:
        return [f"quota: cannot read it: {printable(data['error'])}"]
    from ..accounts.quota import Quota, provider_lines

    return [printable(line) for line in provider_lines([Quota.from_dict(d) for d in data["accounts"]])]


def _models(paths: Paths, stack: dict | None) -> dict | None:
    """From the kept catalog (no request): how many ids are served, and client settings or profiles
    naming an id nothing routes now, with the command that fixes each."""
    from ..catalog import store
    from ..clients.record import read

    catalog = store.read(paths) if stack else None
    if catalog is None:
        return None
    if not catalog.models:  # before any login: one "log in" line, not a warning per id named
        return {"served": 0, "read_at": catalog.read_at, "clients": [], "unserved": []}
    from ..clients import drift

    routable = {m["name"] for m in stack["models"]} | set(catalog.ids())
    clients = []
    for client, entry in sorted(read(paths).items()):
        # what the client's own files name now (a client may have rewritten them); what was applied
        # when they cannot be read
        found = drift.unserved(client, [f for f in entry.get("files", []) if isinstance(f, str)], routable)
        clients += found if found is not None else [
            {"client": client, "slot": slot, "model": entry["settings"][slot], "command": f"uv run doit integrate:{client} --apply"}
            for slot in ("model", "fast_model")
            if isinstance(entry.get("settings"), dict) and entry["settings"].get(slot) and entry["settings"][slot] not in routable]
    unserved: dict[str, list[str]] = {}
    for profile, models in (stack.get("profile_models") or {}).items():
        for model in models:
            if model not in routable:
                unserved.setdefault(model, []).append(f"profile {profile}")
    return {"served": len(catalog.models), "read_at": catalog.read_at, "clients": clients,
            "unserved": [{"model": m, "used_by": who} for m, who in unserved.items()]}


def _lean_path(paths: Paths, stack: dict | None) -> str | None:
    """Which path serves which models, and why, in one line (tasks.gateway.leanpolicy)."""
    if not stack:
        return None
    from ..services.litellm import lean_policy
    from ..gateway.leanpolicy import summary

    return summary(lean_policy(paths, stack))


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def table(report: dict) -> str:
    from ..base.terminal import printable
    from ..stack.launch import launcher_files

    headers = ["service", "state", "pid", "uptime", "address", "ready", "restarts", "version", "drift"]
    rows, notes = [], []
    for s in report["services"]:
        state = s["state"]
        if state == "crashed" and s["exit_code"] is not None:
            state += f" (exit {s['exit_code']})"
        elif s.get("restart") and not s["ready"]:
            state = launcher_files.describe_restart(s["restart"])
        elif s.get("launcher") == "restarting":
            state = "restarting"
        swap = s.get("swap")
        if swap:
            state += {"starting": lambda: f" (swap: new pid {swap['new_pid']} starting)",
                      "draining": lambda: f" (swap: old pid {swap['old_pid']} draining)",
                      "bridge": lambda: f" (switch: new build on port {swap['port']}, pid {swap['bridge_pid']})"}[swap["phase"]]()
        restarts = str(s.get("restarts") or 0)
        if s.get("last_exit_code") is not None and s.get("restarts"):
            restarts += f" (last exit {s['last_exit_code']})"
        if s.get("gave_up"):
            notes.append(f"{s['service']}: the launcher {s['gave_up']}: see `uv run doit logs {s['service']}`, "
                         f"then `uv run doit up`")
        drift = {None: "-", True: "yes: run `doit up`", False: "no"}[s["drift"]]
        version = printable(str(s["version"] or "-")) + (f" ({s['line']})" if s.get("line") else "")  # the binary's word
        rows.append([s["service"], state, str(s["pid"] or "-"), _uptime(s["uptime_s"]), s["address"] or "-",
                     "yes" if s["ready"] else "no", restarts, version, drift])
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    lines += notes
    source = " (selected with `doit profile`)" if report.get("profile_source") == "selected" else ""
    lines.append(f"profile: {report['profile'] or 'unknown (config not loaded)'}{source}")
    if report.get("lean_path"):
        lines.append(printable(report["lean_path"]))
    if report.get("pending"):
        lines.append("`uv run doit up` would:")
        lines += [f"  - {item}" for item in report["pending"]]
    for s in report["services"]:
        if s.get("problem"):
            lines.append(f"{s['service']} is unhealthy: {s['problem']}: `uv run doit up` restarts it")
        if s.get("strangers"):
            port = s["address"].rsplit(":", 1)[-1]
            lines.append(f"{s['service']}: port {port} is shared with a listener that is not FlowGate's: "
                         f"{', '.join(s['strangers'])}: it can receive the service's connections (keys included): "
                         f"stop it (`lsof -i :{port}`)")
        if s.get("drift") and s.get("serving_config"):
            lines.append(f"{s['service']} serves the config it booted with ({s['serving_config']}), not the one "
                         "rendered since: `uv run doit up` applies it (or shows why it does not boot)")
        if s.get("recovered"):
            lines.append(f"{s['service']}: its run record was unreadable; pid {s['pid']} was identified as FlowGate's "
                         "by its command line and working directory (`uv run doit up` restarts it once)")
    if report.get("accounts") is not None:
        from ..accounts.inventory import summary_lines

        lines += summary_lines(report["accounts"])
    models = report.get("models")
    if models is not None:
        when = time.strftime("%H:%M", time.localtime(models["read_at"]))
        lines.append(f"models: {models['served']} served (read {when}; `uv run doit models` lists them)"
                     if models["served"] else "models: no account serves a model: log in with `uv run doit login:<provider>`")
        for entry in models["clients"]:
            where = f" in {printable(entry['file'])}" if entry.get("file") else ""
            lines.append(f"{entry['client']} settings name {printable(entry['model'])} ({entry['slot'].replace('_', ' ')}{where}), "
                         f"which no account serves now: run `{entry['command']}`")
        for entry in models["unserved"]:
            lines.append(f"warning: {printable(entry['model'])} is not served now (named by {', '.join(entry['used_by'])})")
    lines += _quota_lines(report.get("quota"))
    from ..pool.show import lines as steering_lines

    lines += [printable(line) for line in steering_lines(report.get("steering"))]
    from ..clients.record import stale_line

    lines += [stale_line(entry) for entry in report.get("stale_clients", [])]
    return "\n".join(lines)



def verdict(data: dict) -> FlowgateError | None:
    """Why `doit status` exits 1 (the first of: not ready, a stranger on a port, pending changes), or None."""
    if not data["ready"]:
        down = [s for s in data["services"] if s["enabled"] and not s["ready"]]
        others = [s["service"] for s in down if not s.get("restart")]
        restarting = [s["service"] for s in down if s.get("restart")]  # nothing to do but wait: `up` waits too
        what = [f"not ready: {', '.join(others)}"] if others else []
        what += [f"{', '.join(restarting)} restarting after a crash (its launcher restarts it)"] if restarting else []
        return FlowgateError("; ".join(what), "run `uv run doit up`" if others else
                             "run `uv run doit status` again shortly (`uv run doit up` waits for it)")
    shared = [s["service"] for s in data["services"] if s.get("strangers")]
    if shared:
        return FlowgateError(f"a listener that is not FlowGate's shares the port of {', '.join(shared)}",
                             "stop it (named above)")
    from .pending import BLOCKED

    if any(item.startswith(BLOCKED) for item in data["pending"]):  # `up` would stop at the config: no "applies them"
        return FlowgateError("the config is invalid: `uv run doit up` would stop at it",
                             "fix it (`uv run doit check` lists every problem with its file:line), then `uv run doit up`")
    if data["pending"]:
        return FlowgateError(f"the stack does not match the config: {len(data['pending'])} pending change(s)",
                             "`uv run doit up` applies them (listed above)")
    return None

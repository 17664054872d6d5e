"""The plain-Python core of `doit doctor`: read-only checks, each a pass/fail line plus the fix.

Every check runs even when an earlier one failed (a broken config falls back to the default
locations and ports), and none of them raises: a FlowgateError or an OSError becomes a failed
Check. Nothing here writes into the FlowGate home; the binary is run in a throw-away temp dir.

Module-level imports are stdlib and tasks modules only (psutil is imported by tasks.process on
first use; yaml only when the config is loaded). This module knows nothing of doit.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Callable

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.load import load_stack
from ..config.stackspec import SCHEMA
from ..config.references import require_references
from ..config.names import RENDERED, SERVICES, enabled_services
from ..config.view import cliproxy
from ..release import lines
from ..services import secrets
from ..stack import process
from ..stack.launch.portcheck import check_port
from .binarycheck import check_binary, check_providers
from .checks import Check

MIB = 1024 * 1024
GIB = 1024 * MIB
DISK_FAIL_BELOW = 200 * MIB
DISK_WARN_BELOW = 1 * GIB
STATE_FIX = "run `uv run doit up` or `uv run doit down`"

_STATUS_WIDTH = 6
_NAME_WIDTH = 14


# --------------------------------------------------------------------------- running and output


def run_checks(paths: Paths, environ=None) -> list[Check]:
    """All checks, in order: config, litellm, binary, providers, accounts, ports, secrets, disk, state, usage,
    clients."""
    env = dict(os.environ if environ is None else environ)
    stack_box: list[dict | None] = [None]
    line_box: list[lines.Line | None] = [None]  # the binary's line, from its banner

    def config() -> Check:
        check, stack_box[0] = _check_config(paths, env)
        return check

    def binary() -> Check:
        check, line_box[0] = check_binary(paths, stack, env)
        return check

    checks = [_guard("config", config)]
    stack = stack_box[0]
    checks.append(_guard("litellm", _check_litellm))
    checks.append(_guard("binary", binary))
    checks.append(_guard("providers", lambda: check_providers(stack, line_box[0])))
    checks.append(_guard("accounts", lambda: _check_accounts(paths, stack)))
    checks.append(_guard("ports", lambda: _check_ports(paths, stack)))
    checks.append(_guard("secrets", lambda: _check_secrets(paths, stack)))
    space = functools.cache(lambda: _free_space(paths))  # the disk check and the usage check read one measure
    checks.append(_guard("disk", lambda: _check_disk(space())))
    checks.append(_guard("state", lambda: _check_state(paths)))
    checks.append(_guard("usage", lambda: _check_usage(paths, space)))
    checks.append(_guard("keys", lambda: _check_keys(paths)))
    checks.append(_guard("clients", lambda: _check_clients(paths, stack, env)))
    return checks


def format_checks(checks) -> str:
    """One line per check (`ok    config        valid: ...`), a `fix:` line under each problem."""
    from ..base.terminal import printable

    lines = []
    for c in checks:
        lines.append(f"{c.status:<{_STATUS_WIDTH}}{c.name:<{_NAME_WIDTH}}{printable(c.detail)}".rstrip())
        if c.fix and (not c.ok or c.warn):
            lines.append(f"{'':<{_STATUS_WIDTH}}fix: {printable(c.fix)}")
    return "\n".join(lines)


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    """Run one check; whatever goes wrong becomes a failed Check (doctor itself never fails)."""
    try:
        return fn()
    except FlowgateError as exc:
        return Check(name, False, _error_line(exc), exc.hint or "")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return Check(name, False, f"{where}{exc.strerror or exc}", "check the file's owner and permissions")
    except Exception as exc:  # a bug: report it, and let the other checks run
        return Check(name, False, f"unexpected {type(exc).__name__}: {exc}",
                     "this is a bug in FlowGate's doctor; please report it with this line")


def _error_line(exc: FlowgateError, max_details: int = 2) -> str:
    parts = [exc.message]
    if exc.details:
        shown = "; ".join(exc.details[:max_details])
        more = len(exc.details) - max_details
        parts.append(shown + (f" (+{more} more)" if more > 0 else ""))
    return ": ".join(parts)


# --------------------------------------------------------------------------- config


def _check_config(paths: Paths, env: dict) -> tuple[Check, dict | None]:
    try:
        stack = load_stack(paths)
    except FlowgateError as exc:
        # Only the first problems fit on this line: point to the command that lists them all.
        return Check("config", False, _error_line(exc), "`uv run doit check` lists every problem with its "
                     "file:line; fix those keys in config/local.yaml"), None
    from ..catalog.routes import models_phrase

    valid = f"valid: profile {stack['profile']}, {models_phrase(stack)}"
    try:
        require_references(paths, stack, env)
    except FlowgateError as exc:
        return Check("config", False, f"{valid}, but {_error_line(exc)}", exc.hint or ""), stack
    return Check("config", True, valid), stack


# --------------------------------------------------------------------------- litellm


def _check_litellm() -> Check:
    """Installed in this environment: metadata only; importing litellm takes ~10 s."""
    fix = "run `uv sync`"
    try:
        version = importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return Check("litellm", False, "litellm is not installed in this environment", fix)
    if importlib.util.find_spec("litellm") is None:  # finds the package without running it
        return Check("litellm", False, f"litellm {version} has metadata but no importable package", fix)
    return Check("litellm", True, version)


def _check_accounts(paths: Paths, stack: dict | None) -> Check:
    """At least one active account while CLIProxyAPI runs: without one nothing can be served."""
    if stack is None:
        return Check("accounts", True, "not checked: the config is invalid", skipped=True)
    if not cliproxy(stack).enabled:
        return Check("accounts", True, "cliproxy disabled: only the config's own models serve")
    from ..accounts.management import cliproxy_ready

    if not cliproxy_ready(paths, stack):
        return Check("accounts", True, "not checked: CLIProxyAPI is not running (`uv run doit up`)", skipped=True)
    from ..accounts.inventory import status_summary

    summary = status_summary(paths, stack)
    if "error" in summary:
        return Check("accounts", False, f"cannot list them: {summary['error']}", "see `uv run doit logs cliproxy`")
    active = {name: entry["active"] for name, entry in summary.items() if entry.get("accounts")}
    if not any(active.values()):
        names = stack.get("provider_names") or ["codex"]
        return Check("accounts", False, "no account is logged in: no model can be served",
                     " or ".join(f"`uv run doit login:{n}`" for n in names[:2]))
    return Check("accounts", True, ", ".join(f"{n}: {c} active" for n, c in active.items()))


def _check_clients(paths: Paths, stack: dict | None, env: dict) -> Check:
    """The wired clients' own settings name served models, and nothing in the environment overrides
    the wiring (tasks.clients.drift)."""
    from ..catalog import store
    from ..clients import claude, codex, drift, record

    applied = record.read(paths)
    files = {"codex": [str(p) for p in codex.settings_files(env)], "claude": [str(claude.settings_path(env))]}
    for client, entry in applied.items():
        if client in files:
            files[client] = list(dict.fromkeys(files[client] + [f for f in entry.get("files", []) if isinstance(f, str)]))
    wired = {c: found for c, f in files.items() if (found := drift.configured(c, f))}
    problems, fixes = [], []
    catalog = store.read(paths) if stack else None
    if catalog is not None:
        routable = {m["name"] for m in stack["models"]} | set(catalog.ids())
        for client in wired:
            for entry in drift.unserved(client, files[client], routable) or []:
                problems.append(f"{entry['file']} names {entry['model']} ({entry['slot']}), which no account serves now")
                fixes.append(f"`{entry['command']}`")
    for client in sorted(set(wired) | set(applied)):
        for line in drift.overriding_env(client, env):
            problems.append(line.split(";")[0] + f" ({client})")
            fixes.append(f"unset {line.split(' ', 1)[0]}")
    if problems:
        return Check("clients", False, "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    if not wired:
        return Check("clients", True, "no client is wired to the gateway (`uv run doit integrate:codex --apply`)")
    return Check("clients", True, ", ".join(f"{c}: {', '.join(sorted({m for _, _, m in found}))}"
                                            for c, found in sorted(wired.items())) + (" (served)" if catalog else ""))


# --------------------------------------------------------------------------- ports


def _default_section(name: str) -> dict:
    return SCHEMA.fields[name].check({}, (name,), [], False)


def _check_ports(paths: Paths, stack: dict | None) -> Check:
    if stack is None:
        configs = {s: _default_section(s) for s in RENDERED}  # a managed Redis is off by default
        suffix = " (config invalid: checked the default ports)"
    else:
        configs, suffix = {s: stack[s] for s in enabled_services(stack)}, ""
    states = [check_port(paths, s, cfg["host"], cfg["port"]) for s, cfg in configs.items()]
    conflicts = [s for s in states if s.conflict]
    if conflicts:
        return Check("ports", False, "; ".join(f"{s.where}: {s.problem}" for s in conflicts) + suffix,
                     "; ".join(s.fix for s in conflicts))
    from ..stack.launch.portcheck import strangers

    shared = [(s, strangers(paths, s.service, s.host, s.port)) for s in states if s.ours]
    shared = [(s, who) for s, who in shared if who]
    if shared:
        return Check("ports", False, "; ".join(f"{s.where}: shared with a listener that is not FlowGate's: {', '.join(who)}"
                                               for s, who in shared) + suffix,
                     "stop that process (`lsof -i :PORT` shows it): it can receive the service's connections")
    found = [f"{s.where} ours ({s.service} pid {s.ours.pid})" if s.ours else f"{s.where} free" for s in states]
    return Check("ports", True, ", ".join(found) + suffix)


# --------------------------------------------------------------------------- secrets


def _check_secrets(paths: Paths, stack: dict | None = None) -> Check:
    wanted = secrets.needed(stack) if stack is not None else list(secrets.SECRETS)
    present = [name for name in secrets.SECRETS if paths.secret(name).exists()]
    if not paths.secrets_dir.exists() or not present:
        return Check("secrets", True, "not generated yet (`uv run doit up` creates them)")
    loose = secrets.loose_modes(paths)
    if loose:
        fix = []
        if paths.secrets_dir.stat().st_mode & 0o077:
            fix.append(f"chmod 700 {paths.secrets_dir}")
        files = [str(paths.secret(n)) for n in present if paths.secret(n).stat().st_mode & 0o077]
        if files:
            fix.append(f"chmod 600 {' '.join(files)}")
        return Check("secrets", False, "; ".join(loose), "; ".join(fix))
    for name in present:
        secrets.read(paths, name)  # empty or wrong-kind file: FlowgateError with its own fix
    missing = len([name for name in wanted if name not in present])
    detail = f"{len(present)} present, private (0700/0600)"
    if missing:
        detail += f"; {missing} not generated yet"
    return Check("secrets", True, detail)


# --------------------------------------------------------------------------- disk


def _human(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.1f} MiB"


def _free_space(paths: Paths) -> tuple[Path, int]:
    """The free space on the disk that holds (or will hold) .router/: the nearest existing parent's."""
    where = paths.router
    while not where.exists() and where.parent != where:
        where = where.parent
    return where, shutil.disk_usage(where).free


def _check_disk(space: tuple[Path, int]) -> Check:
    where, free = space
    detail = f"{_human(free)} free"
    fix = f"free some space on the disk holding {where} (old logs in .router/logs can go)"
    if free < DISK_FAIL_BELOW:
        return Check("disk", False, detail, fix)
    if free < DISK_WARN_BELOW:
        return Check("disk", True, detail, fix, warn=True)
    return Check("disk", True, detail)


# --------------------------------------------------------------------------- state


def _check_state(paths: Paths) -> Check:
    running, stale = [], []
    for svc in SERVICES:
        path = paths.record(svc)
        if not path.exists():
            continue
        record = process.read_record(path)
        if record is None:
            stale.append(f"{svc} (unreadable record)")
        elif process.is_alive(record):
            running.append(f"{svc} (pid {record.pid})")
        else:
            stale.append(f"{svc} (pid {record.pid} is gone)")
    if stale:
        detail = "stale process record: " + ", ".join(stale)
        if running:
            detail += "; running: " + ", ".join(running)
        return Check("state", True, detail, STATE_FIX, warn=True)
    return Check("state", True, "running: " + ", ".join(running) if running else "no services running")


def _check_usage(paths: Paths, space: Callable[[], tuple[Path, int]]) -> Check:
    """The usage database is readable, and the recorder's last word was not a failure."""
    from ..gateway.usage import store

    ok, detail = store.check(paths)
    where, free = space()
    if ok and free < DISK_FAIL_BELOW:
        # a full disk drops the recorder's rows and its own health file with them: the space is the finding
        ok, detail = False, f"{_human(free)} free on the disk holding {where}: new requests may not be recorded"
    fix = ("" if ok else f"free disk space, stop whatever holds {paths.usage_db.name} locked, or move a corrupt "
           f"{paths.usage_db} aside; recording resumes by itself (serving is not affected)")
    return Check("usage", ok, detail, fix)


def _check_keys(paths: Paths) -> Check:
    """The member-key database reads as the gateway reads it (else member keys are refused: issue 30)."""
    from ..base.errors import FlowgateError
    from ..keys.manage import check
    from ..services.postgres import control_env

    try:
        ok, detail = check(paths, control_env(paths))
    except FlowgateError as exc:  # the config does not load: its own check says so
        return Check("keys", False, f"the key store is unknown: {exc.one_line()}", "fix the config (`uv run doit check`)")
    if not ok and "PostgreSQL" in detail:
        return Check("keys", ok, detail, "start it (`uv run doit up` for postgres.managed), or fix postgres.url_env / "
                                         "url_file; until then member keys are refused, the master key works")
    fix = "" if ok else (f"remove a link, or move a corrupt {paths.keys_db} aside and make the keys again "
                         "(`uv run doit keys create NAME`); until then member keys are refused, the master key works")
    return Check("keys", ok, detail, fix)

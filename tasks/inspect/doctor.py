"""The plain-Python core of `doit doctor`: read-only checks, each a pass/fail line plus the fix.

Every check runs even when an earlier one failed (a broken config falls back to the default
locations and ports), and none of them raises: a FlowgateError or an OSError becomes a failed
Check. Nothing here writes into the FlowGate home; the binary is run in a throw-away temp dir.

Module-level imports are stdlib and tasks modules only (psutil is imported by tasks.process on
first use; yaml only when the config is loaded). This module knows nothing of doit.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import release
from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.load import SCHEMA, load_stack
from ..config.references import require_references
from ..config.names import RENDERED, SERVICES, enabled_services
from ..config.view import cliproxy
from ..release import lines
from ..services import secrets
from ..stack import process
from ..stack.portcheck import check_port

MIB = 1024 * 1024
GIB = 1024 * MIB
DISK_FAIL_BELOW = 200 * MIB
DISK_WARN_BELOW = 1 * GIB
BINARY_TIMEOUT = 5.0  # seconds for the binary to print its banner and exit on a bad config
STATE_FIX = "run `uv run doit up` or `uv run doit down`"

_STATUS_WIDTH = 6
_NAME_WIDTH = 14


@dataclass
class Check:
    name: str  # short, e.g. "config"
    ok: bool
    detail: str  # what was found, one line
    fix: str = ""  # what to do when not ok (or when warn), one line
    warn: bool = False  # ok but worth a look (e.g. disk getting full)
    skipped: bool = False  # not run: what it needs is missing (an invalid config); never "ok"

    @property
    def status(self) -> str:
        if self.skipped:
            return "skip"
        if not self.ok:
            return "FAIL"
        return "warn" if self.warn else "ok"


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
        check, line_box[0] = _check_binary(paths, stack, env)
        return check

    checks = [_guard("config", config)]
    stack = stack_box[0]
    checks.append(_guard("litellm", _check_litellm))
    checks.append(_guard("binary", binary))
    checks.append(_guard("providers", lambda: _check_providers(stack, line_box[0])))
    checks.append(_guard("accounts", lambda: _check_accounts(paths, stack)))
    checks.append(_guard("ports", lambda: _check_ports(paths, stack)))
    checks.append(_guard("secrets", lambda: _check_secrets(paths, stack)))
    checks.append(_guard("disk", lambda: _check_disk(paths)))
    checks.append(_guard("state", lambda: _check_state(paths)))
    checks.append(_guard("usage", lambda: _check_usage(paths)))
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


# --------------------------------------------------------------------------- binary


def _check_binary(paths: Paths, stack: dict | None, env: dict) -> tuple[Check, lines.Line | None]:
    check, version = _binary_version(paths, stack, env)
    return check, lines.by_version(version)


def _binary_version(paths: Paths, stack: dict | None, env: dict) -> tuple[Check, str | None]:
    settings = None
    if stack is not None:
        if not cliproxy(stack).enabled:
            return Check("binary", True, "cliproxy disabled"), None
        settings = release.settings_from_stack(stack)
    fallback = "" if stack is not None else " (config invalid: looked in the default place)"
    try:
        binary = release.locate_binary(paths, settings)
    except FlowgateError as exc:
        return Check("binary", False, exc.message + fallback, exc.hint or ""), None
    path, user = binary.path, binary.user
    rerun = ("point cliproxy.binary at the cli-proxy-api (or cli-proxy-api-plus) executable" if user
             else "re-install it with `uv run doit fetch`")
    version, problem = _run_banner(path, env)
    if version is None:
        return Check("binary", False, f"{path} {problem}{fallback}", rerun), None

    line = lines.by_version(version)
    manifest = None if user else release.read_manifest(paths)
    tag = (manifest or {}).get("tag")
    about = [line.name] if line else []
    if user:
        about.append(f"your cliproxy.binary {path}")
    else:
        about += [f"release {tag} of {manifest.get('repo')}"] if tag else ["no install manifest"]
        about += [manifest["build"]] if (manifest or {}).get("build") else []
    detail = f"{line.title if line else 'CLIProxyAPI'} {version} ({', '.join(about)})"
    detail += ("" if user else f" at {path}") + fallback
    if settings and not user and not settings.is_latest and tag and tag != settings.version.strip():
        return Check("binary", True, f"{detail}; config pins {settings.version.strip()}",
                     "run `uv run doit fetch` to install the pinned release", warn=True), version
    return Check("binary", True, detail), version


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


def _check_providers(stack: dict | None, line: lines.Line | None) -> Check:
    """Every configured login provider must be one the running binary's line has built in."""
    if stack is None:
        return Check("providers", True, "not checked: the config is invalid", skipped=True)
    from ..accounts.providers import configured_names, unsupported

    names = configured_names(stack)
    if not cliproxy(stack).enabled or line is None:
        return Check("providers", True, ", ".join(names) + " (not checked: no binary to ask)")
    problems = unsupported(stack, line.name)
    if problems:
        return Check("providers", False, "; ".join(p.problem for p in problems), "; ".join(p.fix for p in problems))
    return Check("providers", True, f"{', '.join(names) or 'none'} (all built into {line.title})")


def _run_banner(path: Path, env: dict) -> tuple[str | None, str]:
    """Run the binary on a config that does not exist; (version from its banner, or None + why)."""
    run_env = {k: v for k, v in env.items() if k != "MANAGEMENT_PASSWORD"}
    with tempfile.TemporaryDirectory(prefix="flowgate-doctor-") as cwd:
        # A temp cwd: the binary reads ./.env and may create ./logs; nothing lands in the home.
        try:
            proc = subprocess.Popen([str(path), "-config", os.path.join(cwd, "nonexistent", "x.yaml")],
                                    cwd=cwd, env=run_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            return None, f"cannot be run: {exc.strerror or exc}"
        timed_out = False
        try:
            out, err = proc.communicate(timeout=BINARY_TIMEOUT)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            try:
                out, err = proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:  # something outside its group holds the pipes
                out, err = b"", b""
    text = out.decode("utf-8", "replace")
    version = lines.banner_version(text) or lines.banner_version(err.decode("utf-8", "replace"))
    if version:
        return version, ""
    if timed_out:
        return None, f"printed no `CLIProxyAPI Version:` banner and did not exit within {BINARY_TIMEOUT:g} s"
    first = next((ln.strip() for ln in (text + "\n" + err.decode("utf-8", "replace")).splitlines() if ln.strip()), "")
    said = f": {first[:120]}" if first else " and printed nothing"
    return None, f"ran (exit {proc.returncode}) but printed no `CLIProxyAPI Version:` banner{said}"


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
    from ..stack.portcheck import strangers

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


def _check_disk(paths: Paths) -> Check:
    where = paths.router
    while not where.exists() and where.parent != where:
        where = where.parent
    free = shutil.disk_usage(where).free
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


def _check_usage(paths: Paths) -> Check:
    """The usage database is readable, and the recorder's last word was not a failure."""
    from ..usage import store

    ok, detail = store.check(paths)
    fix = ("" if ok else f"free disk space, stop whatever holds {paths.usage_db.name} locked, or move a corrupt "
           f"{paths.usage_db} aside; recording resumes by itself (serving is not affected)")
    return Check("usage", ok, detail, fix)

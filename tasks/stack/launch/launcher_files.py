"""What a launcher leaves in `.router/run/`, and how to read it (cheap: `doit status` reads it).

`<service>.<launcher pid>.state.json`: the supervisor's view (service pid, state, restarts, last
exit code, why it gave up, what the server drained when stopped). `<service>.<launcher pid>.worker.json`:
LiteLLM's in-process server's own report (pid, private probe port, ready, drained).
`.router/litellm/config.<service>.<launcher pid>.yaml`: the config a LiteLLM launcher booted with,
which its restarts use: a rendered config that failed to boot never reaches a running launcher.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

from ...base.paths import Paths
from ...gateway.handoff import WORKER_FILE_ENV, read_json  # noqa: F401  (the gateway's side of the files)


def state_path(paths: Paths, service: str, pid: int) -> Path:
    return paths.run_dir / f"{service}.{pid}.state.json"


def worker_path(paths: Paths, service: str, pid: int) -> Path:
    return paths.run_dir / f"{service}.{pid}.worker.json"


def mark_replaced(paths: Paths, service: str, pid: int) -> None:
    """Tell the server of launcher `pid` that a successor took over its port (it lingers on stop)."""
    path = worker_path(paths, service, pid)
    data = read_json(path)
    if data is not None:
        tmp = path.with_name(path.name + ".swap.tmp")
        tmp.write_text(json.dumps({**data, "replaced": True}) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def booted_config(paths: Paths, service: str, pid: int) -> Path:
    """Beside the rendered config: LiteLLM imports the auth hook from the config file's directory."""
    return paths.litellm_config.parent / f"config.{service}.{pid}.yaml"


def keep_booted_config(paths: Paths, service: str, pid: int, rendered: str) -> str:
    """A private copy of `rendered` for launcher `pid`'s restarts; `rendered` itself when it cannot be made."""
    import shutil

    copy = booted_config(paths, service, pid)
    tmp = copy.with_name(copy.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out, open(rendered, "rb") as src:
            shutil.copyfileobj(src, out)
        os.replace(tmp, copy)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return rendered
    return str(copy)


def read_state(paths: Paths, service: str, pid: int) -> dict | None:
    return read_json(state_path(paths, service, pid))


def self_restart(state: dict | None, now: float) -> dict | None:
    """The restart a launcher is doing by itself, from its state: {"attempt", "next_in_s"} while it
    waits, {"attempt", "starting_s"} while the restarted service boots; None otherwise."""
    if not state or not isinstance(state.get("restarts"), int):
        return None
    if state.get("state") == "restarting":
        next_at = state.get("next_at") if isinstance(state.get("next_at"), (int, float)) else now
        return {"attempt": state.get("attempt") or state["restarts"] + 1, "next_in_s": round(max(0.0, next_at - now), 1)}
    if state.get("state") == "starting" and state["restarts"] > 0:
        began = state.get("started_at") if isinstance(state.get("started_at"), (int, float)) else now
        return {"attempt": state["restarts"], "starting_s": round(max(0.0, now - began), 1)}
    return None


def describe_restart(restart: dict) -> str:
    if "next_in_s" in restart:
        return f"restarting (attempt {restart['attempt']}, next in {restart['next_in_s']:g} s)"
    return f"restarting (attempt {restart['attempt']}, starting for {restart['starting_s']:g} s)"


def forget(paths: Paths, service: str, pid: int) -> None:
    """Remove what a finished supervisor left behind."""
    for path in (state_path(paths, service, pid), worker_path(paths, service, pid), booted_config(paths, service, pid)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(paths: Paths, service: str) -> None:
    """Remove the files of this service's supervisors that are gone (a new one starts now)."""
    found = [(path, path.name.split(".")[1]) for path in paths.run_dir.glob(f"{service}.*.*.json")]
    found += [(path, path.name.split(".")[2]) for path in paths.litellm_config.parent.glob(f"config.{service}.*.yaml")]
    for path, pid in found:
        if pid.isdigit() and not _pid_exists(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _pid_exists(pid: int) -> bool:
    """Alive and not a zombie (an orphaned launcher may wait a while for init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            return f"was killed by signal {-code} (exit code {code})"
    return f"exited with code {code}"

"""What every service shares: where a client reaches it, its readiness route, how it is launched
under FlowGate's supervising launcher, and the fingerprint that says when it must restart.

Plain data in, plain data out; each service's own module (litellm, cliproxy, redis) builds on this.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import namedtuple
from pathlib import Path

from ..base.paths import Paths, ROOT
from ..config.names import CLIPROXY, LITELLM
from ..config.view import cliproxy


def connect_host(host: str) -> str:
    """Where a local client connects for a service bound to `host` (URL form)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def base_url(settings) -> str:
    """Where a local client reaches a service, from its settings (tasks.config.view)."""
    return f"http://{connect_host(settings.host)}:{settings.port}"


# What `accounts.read_usage_queue: true` needs of the binary (tasks.usage.ledger): usage records queued
# at all (off by default), and kept long enough for the steward's next cycle (60 s by default): twice
# accounts.refresh_seconds, at least 600 s, at most the binary's own limit of 3600 s
QUEUE_SETTINGS = {"usage-statistics-enabled": True, "redis-usage-queue-retention-seconds": 600}


def cliproxy_settings(stack: dict) -> dict:
    """cliproxy.settings as rendered: with QUEUE_SETTINGS when FlowGate reads the usage queue (the
    user's own values of those keys win)."""
    cp = cliproxy(stack)
    accounts = stack.get("accounts") or {}
    if accounts.get("read_usage_queue") is not True:
        return cp.settings
    refresh = accounts.get("refresh_seconds")
    keep = int(min(3600, max(600, 2 * refresh))) if isinstance(refresh, (int, float)) else 600
    return {**QUEUE_SETTINGS, "redis-usage-queue-retention-seconds": keep, **cp.settings}


def render_inputs(stack: dict, service: str) -> dict:
    """The part of the stack config a service's rendered file depends on.

    The config task writes each slice to its own file, so an edit that concerns one service
    leaves the other's render task up to date.
    """
    cp = cliproxy(stack)
    if service == CLIPROXY:
        return {**{k: getattr(cp, k) for k in ("enabled", "host", "port", "allow_remote", "api_keys")},
                "settings": cliproxy_settings(stack)}
    return {
        "profile": stack["profile"],
        "models": stack["models"],
        "litellm_settings": stack["litellm_settings"],
        "router_settings": stack["router_settings"],
        "general_settings": stack["general_settings"],
        "cliproxy": {"host": cp.host, "port": cp.port},
        "redis": stack.get("redis"),
    }


# --------------------------------------------------------------------------- readiness

LITELLM_PROBE_PATH = "/health/liveliness"  # never LiteLLM's /health: it calls every model

CLIPROXY_PROBE_PATH = "/"  # answers on both lines; the mainline also has /healthz


def probe_path(service: str, meta: dict | None = None) -> str:
    """Readiness route: CLIProxyAPI's /healthz exists on the mainline only; `/` answers on both lines.
    `meta`: the process record's (its `line`)."""
    if service == LITELLM:
        return LITELLM_PROBE_PATH
    from ..release.lines import LINES

    line = LINES.get(str((meta or {}).get("line") or ""))
    return line.health_path if line else CLIPROXY_PROBE_PATH


# --------------------------------------------------------------------------- launching


class Launch(namedtuple("Launch", "service argv env cwd host port parts meta")):
    """How to run one service, and the fingerprint of everything that needs a restart to change.

    parts  the named restart inputs, e.g. {"config": sha, "version": "1.108.14"}
    meta   extra record data that does not force a restart
    """

    __slots__ = ()

    @property
    def inputs_hash(self) -> str:
        return sha(json.dumps(self.parts, sort_keys=True))


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def file_sha(path: Path) -> str | None:
    try:
        return sha(path.read_bytes())
    except OSError:
        return None


def launcher_argv(paths: Paths, service: str, ready: str) -> list[str]:
    """The supervising launcher (tasks.stack.launcher): it restarts the service if it crashes."""
    return [sys.executable, "-m", "tasks.stack.launcher", "supervise", "--home", str(paths.home),
            "--service", service, "--ready", ready, "--"]


def launcher_env(environ) -> dict[str, str]:
    """The launcher is `python -m tasks.stack.launcher`: the checkout must be importable."""
    path = environ.get("PYTHONPATH")
    return {**environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def restart_reasons(old: dict, new: dict) -> list[str]:
    """Which named restart inputs differ, in words."""
    words = {"config": "config changed", "auth_hook": "FlowGate's auth hook changed", "argv": "command line changed", "env": "environment changed",
             "keys": "upstream key variables changed", "version": "litellm version changed",
             "binary": "binary changed", "host": "host changed", "port": "port changed",
             "lean_path": "litellm.lean_path changed", "key_store": "the member keys' store changed"}
    changed = [k for k in new if old.get(k) != new[k]] + [k for k in old if k not in new]
    if "argv" in changed and {"binary", "host", "port"} & set(changed):
        changed.remove("argv")  # the command line names the binary, host and port: say which, once
    return [words.get(k, f"{k} changed") for k in changed] or ["inputs changed"]

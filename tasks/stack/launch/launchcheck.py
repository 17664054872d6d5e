"""Everything a new process needs, checked before the old one is stopped.

`up` and `restart` stop a healthy service only to replace it, so whatever can make the start fail
is found first: a variable name Popen refuses (`=` in it, empty), a NUL byte in a value or an
argument, a missing working directory or executable, and for an installed CLIProxyAPI binary, its
content against the sha256 recorded at install (read now, as it is about to run).
"""

from __future__ import annotations

import os

from ...base.errors import FlowgateError
from ...base.paths import Paths
from ...config.names import CLIPROXY
from ...services.common import Launch


def problems(launch: Launch, configured_env: dict) -> list[str]:
    found = []
    for name, value in launch.env.items():
        where = f"{launch.service}.env.{name}" if name in configured_env else f"environment variable {name!r}"
        if not name or "=" in name or "\0" in name:
            found.append(f"{where}: {name!r} is not a usable variable name (empty, or holds '=' or NUL)")
        elif "\0" in value:
            found.append(f"{where}: its value contains a NUL byte")
    if any("\0" in arg for arg in launch.argv):
        found.append(f"the {launch.service} command line contains a NUL byte")
    if not os.path.isdir(launch.cwd):
        found.append(f"working directory {launch.cwd} does not exist (run `uv run doit render`)")
    exe = launch.argv[0]
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        found.append(f"{exe} is missing or not executable")
    return found


def require_launchable(paths: Paths, launch: Launch, configured_env: dict) -> None:
    """FlowgateError naming every reason `launch` would fail; call before stopping anything.
    `configured_env`: the service's own `env` from the config (its variables are named as such)."""
    found = problems(launch, configured_env)
    if found:
        raise FlowgateError(f"cannot start {launch.service}: {found[0]}",
                            f"fix it and run the command again; the running {launch.service} was left alone",
                            details=found[1:])
    if launch.service == CLIPROXY:
        require_untampered(paths, launch)


def require_untampered(paths: Paths, launch: Launch) -> None:
    """The installed binary still has the sha256 its manifest recorded (user binaries have none)."""
    from ...release.installed import tamper_problem

    problem = tamper_problem(paths, launch.argv[0])
    if problem:
        raise FlowgateError(f"refusing to run CLIProxyAPI: {problem}",
                            "run `uv run doit fetch` to reinstall the verified release (and find out what changed it)")

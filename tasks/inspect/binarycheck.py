"""`doit doctor`'s look at the installed CLIProxyAPI: its version from its own banner (the binary
has no version flag: run on a config that does not exist, it prints the banner and exits), the
release it came from, and whether its line has every configured login provider built in.

The binary runs in a throw-away temp dir (it reads ./.env and may create ./logs): nothing lands in
the FlowGate home. Split from tasks.inspect.doctor, which runs these among its other checks."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

from .. import release
from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.view import cliproxy
from ..release import lines
from .checks import Check

BINARY_TIMEOUT = 5.0  # seconds for the binary to print its banner and exit on a bad config


def check_binary(paths: Paths, stack: dict | None, env: dict) -> tuple[Check, lines.Line | None]:
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
    version, problem = run_banner(path, env)
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


def check_providers(stack: dict | None, line: lines.Line | None) -> Check:
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


def run_banner(path: Path, env: dict) -> tuple[str | None, str]:
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

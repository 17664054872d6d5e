"""The `fetch` task: install (or locate) the CLIProxyAPI binary (mainline or Plus line)."""

from __future__ import annotations

from ..config.view import cliproxy
from .common import PATHS, action, read_stack, read_stack_or_none


def binary_current() -> bool:
    """Up-to-date check: no network, no httpx; re-hashes only if the binary's stat changed."""
    from ..release import is_current, settings_from_stack

    stack = read_stack_or_none()
    if stack is None:
        return False
    return not cliproxy(stack).enabled or is_current(PATHS, settings_from_stack(stack))


def fetch_binary() -> dict:
    from ..stack.lock import stack_lock

    # Under the stack lock: an upgrade replaces the installed binary while it runs; the stack is read
    # once the lock is held, so a pin the upgrade just wrote is the one fetched.
    with stack_lock(PATHS, what="fetch"):
        return _fetch_binary()


def _fetch_binary() -> dict:
    from ..release import fetch, settings_from_stack
    from ..stack import events

    stack = read_stack()
    if not cliproxy(stack).enabled:
        print("cliproxy is disabled: nothing to fetch")
        return {"action": "disabled"}
    from ..release.installed import installed_binary, tamper_problem

    tampered = tamper_problem(PATHS, installed_binary(PATHS))
    if tampered:  # say so before replacing it: a changed binary is news, not a routine update
        print(f"warning: {tampered}; reinstalling the verified release")
        events.record(PATHS, "tamper", "cliproxy", "detected", tampered)
    try:
        result = fetch(PATHS, settings_from_stack(stack))
    except Exception as exc:
        events.record(PATHS, "fetch", "cliproxy", "error", getattr(exc, "message", str(exc)))
        raise
    if result.action == "user-binary":
        print(f"using your binary {result.binary} (cliproxy.binary)")
    elif result.action == "installed":
        print(f"installed {result.describe()} from {stack['cliproxy']['release']['repo']}: {result.asset}, "
              f"sha256 {result.sha256[:12]}…, "
              f"verified by {', '.join(result.verified_by) or 'nothing: allow_unverified is on'}")
    elif result.action == "restored":
        print(f"activated {result.describe()} from the kept releases (no download; sha256 verified)")
    else:
        print(f"{result.describe()} is current")
    events.record(PATHS, "fetch", "cliproxy", result.action, f"{result.tag or ''} {result.asset or ''}".strip(),
                  requests=result.requests, line=result.line)
    from ..accounts.providers import remember_problems

    remember_problems(PATHS, stack)  # another binary may lack (or now have) a configured provider
    return {"action": result.action, "tag": result.tag}


def task_fetch():
    """Install the pinned CLIProxyAPI release into .router/bin (checksum-verified; offline when current)."""
    return {
        "actions": [action(fetch_binary)],
        "task_dep": ["config"],
        "uptodate": [binary_current],
    }

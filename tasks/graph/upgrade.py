"""Tasks that move CLIProxyAPI to another release: upgrade, rollback (core: tasks/upgrade/)."""

from __future__ import annotations

from .common import PATHS, command, option, read_stack


def run_upgrade(to: str, repo: str) -> dict:
    from ..stack.lock import stack_lock
    from ..upgrade.switch import upgrade

    with stack_lock(PATHS, what="upgrade"):
        result = upgrade(PATHS, read_stack(), to or None, repo or None)
        _restack(result)  # before the lock goes: a `doit up` waiting for it must see the new pin
    _models(result)
    return result


def run_rollback() -> dict:
    from ..stack.lock import stack_lock
    from ..upgrade.switch import rollback

    with stack_lock(PATHS, what="rollback"):
        result = rollback(PATHS, read_stack())
        _restack(result)
    _models(result)
    return result


def _restack(result: dict) -> None:
    """stack.json from the new pin, so `status`, `fetch` and the next `up` agree with it at once."""
    if result.get("action") == "switched":
        from .build import write_stack

        write_stack()


def _models(result: dict) -> None:
    """What the new release serves (its catalog may differ): said as after a login."""
    if result.get("action") == "switched":
        from ..catalog.discover import refresh_quietly

        refresh_quietly(PATHS, read_stack())


def task_upgrade():
    """Move CLIProxyAPI to the newest release (or --to TAG), proven before it serves, rolled back if not."""
    # fetch first: the release the pin names is the one installed (after an interrupted upgrade too)
    return command(run_upgrade,
                   option("to", "the release tag to move to (default: the newest)"),
                   option("repo", "another repository (owner/name), e.g. to switch lines; default cliproxy.release.repo"),
                   task_dep=["render", "fetch"])


def task_rollback():
    """Go back to the CLIProxyAPI release that served before the last upgrade (no network needed)."""
    return command(run_rollback, task_dep=["render", "fetch"])

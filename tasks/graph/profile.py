"""`doit profile [NAME] [--clear]`: list the routing profiles, or switch the running stack to one.

A switch re-renders LiteLLM's config and hands it to a new LiteLLM instance without downtime
(tasks.stack.swaps.swap); CLIProxyAPI is untouched (profiles cannot change its settings). It calls
the same core steps as `config` and `render:litellm` instead of running those tasks: doit runs a
task's dependencies before it, and the choice must be persisted first. The next `doit up` finds
their outputs current.
"""

from __future__ import annotations

import contextlib

from ..config.names import LITELLM
from .common import PATHS, command, flag, read_stack_or_none


def profile(pos: list[str], clear: bool) -> None:
    from ..base.errors import FlowgateError
    from ..config import profiles
    from ..config.load import load_stack

    if len(pos) > 1 or (pos and clear):
        raise FlowgateError("give one profile name, or --clear", "e.g. `uv run doit profile reliable`")
    if not pos and not clear:
        print(profiles.listing(load_stack(PATHS)))
        return
    from ..stack.lock import stack_lock

    # Decided under the stack lock, from what holds once it is ours: a `down` or another `profile`
    # running at the same moment either finishes first (and is seen) or waits for this one.
    with stack_lock(PATHS, what="profile"):
        _switch(pos[0] if pos else None, clear)


def _switch(target: str | None, clear: bool) -> None:
    from ..base.errors import FlowgateError
    from ..config import profiles
    from ..config.load import load_stack

    stack = load_stack(PATHS)
    before, choice = stack["profile"], profiles.selected(PATHS)
    if clear:
        if choice is None:
            print(f"no profile selected: `profile: {before}` from the config is active (up to date)")
            return
        target = None
    else:
        if target not in stack["profile_names"]:
            raise FlowgateError(f"unknown profile {target!r}",
                                f"known profiles: {', '.join(stack['profile_names'])} (`uv run doit profile` describes them)")
        if target == before:
            print(f"profile {target} is already active (up to date)")
            return
    profiles.select(PATHS, target)
    try:
        _apply(before)
        _say_stale_clients()
    except FlowgateError as exc:
        profiles.select(PATHS, choice)  # back to what was chosen: config, render and the running stack agree
        with contextlib.suppress(FlowgateError):
            _rebuild()
        exc.hint = f"{exc.hint}; profile {before} stays active" if exc.hint else f"profile {before} stays active"
        raise


def _apply(before: str) -> str:
    """Config and render for the new choice, then a swap if LiteLLM runs. Returns the new profile."""
    from ..stack import events, process
    from ..stack.lifecycle import ensure_running
    from ..stack.watch.readiness import wait_ready

    stack = _rebuild()
    after = stack["profile"]
    record = process.read_record(PATHS.record(LITELLM))
    if record is None or not process.is_alive(record):
        events.record(PATHS, "profile", None, "ok", f"{before} -> {after} (applies at the next `doit up`)",
                      old=before, new=after, applied=False)
        print(f"profile {after} selected; the stack is not running: `uv run doit up` starts it with this profile")
        return after
    outcome = ensure_running(PATHS, stack, LITELLM)  # the caller holds the stack lock
    if outcome.action in ("started", "restarted"):  # no swap was possible: wait as `doit up` would
        wait_ready(PATHS, stack, [LITELLM], {LITELLM})
    print(outcome.line())
    events.record(PATHS, "profile", None, "ok", f"{before} -> {after}: litellm {outcome.action}",
                  old=before, new=after, applied=True, pid=outcome.pid)
    print(f"profile {after} is active")
    return after


def _say_stale_clients() -> None:
    """A profile may change the clients' models: say so now, not at the next `status`."""
    from ..clients.record import stale

    for entry in stale(PATHS, read_stack_or_none() or {}):
        print(f"{entry['client']}'s settings name the previous profile's {', '.join(entry['changed'])}: "
              f"run `{entry['command']}`")


def _rebuild() -> dict:
    """stack.json and LiteLLM's rendered config for the current choice (what `config` and `render:litellm` do)."""
    from ..services import secrets
    from ..config.load import load_stack
    from .build import render_service, write_stack

    write_stack()
    if secrets.all_present(PATHS, read_stack_or_none()):  # a fresh checkout renders at `doit up`
        render_service(LITELLM)
    return load_stack(PATHS)


def task_profile():
    """List the routing profiles, or switch to one: `doit profile reliable` (`--clear`: the config's)."""
    return command(profile, flag("clear", "forget the profile chosen here; `profile:` in the config applies again"),
                   pos_arg="pos")

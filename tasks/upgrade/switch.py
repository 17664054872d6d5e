"""`doit upgrade [--to TAG] [--repo OWNER/NAME]` and `doit rollback`: move CLIProxyAPI to another
release, proven before it serves, put back by itself when it fails.

The steps, each of which leaves the previous release able to serve:
  1. fetch the release beside the running binary (verified as `fetch` does; a kept release is
     restored with no download, tasks.release.store), the running process keeps its own file;
  2. a bridge instance of it must become ready and pass the smoke test of what the accounts
     serve, before any traffic moves (tasks.upgrade.verify);
  3. traffic moves to it without a dropped request (tasks.stack.swaps.bluegreen), or, with no LiteLLM
     in front, CLIProxyAPI is restarted on it;
  4. only then the pin is written to config/local.yaml and the way back remembered.
A failure in 1-3 activates the previous release again and, if traffic had moved, moves it back;
the pin is never touched. Runs with the stack lock held (the doit layer takes it).
"""

from __future__ import annotations

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.names import CLIPROXY, CLIPROXY_BRIDGE, enabled_services
from ..release import lines
from ..release.installed import binary_intact, read_manifest
from ..release.settings import settings_from_stack, valid_repo, valid_tag
from ..stack import events, process
from . import history


def upgrade(paths: Paths, stack: dict, to: str | None = None, repo: str | None = None, out=print) -> dict:
    current = _current(paths, stack)
    settings = settings_from_stack(stack)
    repo = (repo or settings.repo).strip()
    if not valid_repo(repo):
        raise FlowgateError(f"--repo {repo!r} is not of the form owner/name", "e.g. --repo kaitranntt/CLIProxyAPIPlus")
    tag = (to or "").strip()
    asked_latest = tag.lower() in ("", "latest")
    tag = _newest(settings, repo) if asked_latest else tag  # a pin is always a tag
    if not valid_tag(tag):
        raise FlowgateError(f"--to {tag!r} is not a release tag", "name one like v7.2.140 (`uv run doit outdated` lists them)")
    if asked_latest:
        _refuse_downgrade(current, repo, tag)
        from ..release import refused

        failed = refused.load(paths).get((repo.lower(), tag))
        if failed:
            raise FlowgateError(f"{repo}'s latest release {tag} was rolled back here on {failed['at'][:10]} "
                                f"({failed['reason']}): not trying it again by itself",
                                f"`uv run doit upgrade --to {tag}` tries it again on purpose; "
                                "`uv run doit outdated` lists the other releases")
    if repo.lower() == str(current.get("repo") or "").lower() and tag == current.get("tag"):
        out(f"{_title(current)} from {repo} is installed: nothing to upgrade")
        return {"action": "unchanged", "tag": tag}
    return _switch(paths, stack, current, repo, tag, f"upgrade to {tag}", out)


def rollback(paths: Paths, stack: dict, out=print) -> dict:
    current = _current(paths, stack)
    back = history.previous(paths)
    if back is None:
        raise FlowgateError("there is nothing to roll back to: no upgrade was made with this FlowGate home",
                            "`uv run doit upgrade --to TAG` installs a given release")
    if back["repo"].lower() == str(current.get("repo") or "").lower() and back["tag"] == current.get("tag"):
        raise FlowgateError(f"{_title(current)} is already the release that served before the last upgrade",
                            "`uv run doit outdated` lists the releases; `uv run doit upgrade --to TAG` installs one")
    return _switch(paths, stack, current, back["repo"], back["tag"], f"rollback to {back['tag']}", out)


def _switch(paths: Paths, stack: dict, current: dict, repo: str, tag: str, why: str, out) -> dict:
    from ..release import fetch
    from ..release.store import keep
    from .pin import check_pin

    target = _with_release(stack, repo, tag)
    other_repo = repo.lower() != settings_from_stack(stack).repo.strip().lower()
    check_pin(paths)  # the pin must be writable once the new release serves: found out now, not after
    if keep(paths, current) is None:  # the way back, kept (and verified) before anything else changes
        raise FlowgateError(f"{_title(current)} cannot be kept in {paths.bin_dir / 'releases'}, so there would be "
                            "no way back: nothing was changed", "see that the disk has room, then run the command again")
    result = fetch(paths, settings_from_stack(target), progress=None)
    how = "kept copy, no download" if result.action == "restored" else f"verified by {', '.join(result.verified_by) or 'nothing'}"
    out(f"cliproxy: {result.describe()} is ready beside the running binary ({how})")
    events.record(paths, "upgrade", CLIPROXY, "fetched", why, tag=tag, repo=repo)
    try:
        serving = _serve(paths, target, why, out)
    except BaseException as exc:
        restored = _put_back(paths, stack, current, out)
        if result.action == "installed":  # downloaded for this and failed: it must not push a good kept one out
            from ..release.store import discard

            discard(paths, repo, tag)
        reason = exc.message if isinstance(exc, FlowgateError) else ("interrupted" if isinstance(exc, KeyboardInterrupt)
                                                                      else f"{type(exc).__name__}: {exc}")
        events.record(paths, "upgrade", CLIPROXY, "rolled-back", f"{why}: {reason}", tag=tag)
        from ..release import refused

        refused.remember(paths, repo, tag, reason)  # `doit outdated` stops recommending it, and says why
        details = list(exc.details) if isinstance(exc, FlowgateError) else []
        pin = "the pin in config/local.yaml is unchanged" if paths.local_config.exists() else "nothing was pinned"
        raise FlowgateError(f"{why} failed: {reason}; rolled back: {restored}, and {pin}",
                            (exc.hint if isinstance(exc, FlowgateError) and exc.hint else
                             "see `uv run doit logs cliproxy` and the lines above"), details=details) from None
    from .pin import write_pin

    new = read_manifest(paths) or {}
    write_pin(paths, tag, repo if other_repo else None)
    history.record(paths, current, new)
    from ..release import refused

    refused.forget(paths, repo, tag)
    events.record(paths, "upgrade", CLIPROXY, "ok", why, tag=tag, repo=repo)
    out(f"cliproxy: {result.describe()} {serving}; pinned cliproxy.release.version: {tag}"
        + (f" (repo {repo})" if other_repo else "")
        + " in config/local.yaml; `uv run doit rollback` goes back to " + _title(current))
    return {"action": "switched", "tag": tag, "repo": repo, "line": new.get("line")}


def _serve(paths: Paths, stack: dict, why: str, out) -> str:
    """Prove the active (new) binary, then make it serve; FlowgateError when it cannot."""
    from ..stack.swaps import bluegreen
    from ..stack.lifecycle import ensure_running, switch_cliproxy
    from ..stack.watch.readiness import wait_ready
    from .verify import smoke

    verify = lambda url: smoke(paths, stack, url, out)  # noqa: E731
    old = process.read_record(paths.record(CLIPROXY))
    running = old is not None and process.is_alive(old)
    blocked = bluegreen.impossible(paths, stack) if running else ""
    if running and blocked is None:
        switch_cliproxy(paths, stack, old, why, verify=verify, out=out)
        return "serves; LiteLLM moved to it without dropping a request"
    if blocked:
        out(f"warning: {blocked}: CLIProxyAPI restarts on the new release, and requests sent meanwhile fail "
            "(`uv run doit restart litellm` first avoids that)")
    bluegreen.leave_bridge(paths, stack)  # a bridge left by an interrupted switch
    bridge = bluegreen.start_bridge(paths, stack, why)  # proven alone first: the running one is untouched
    try:
        verify(bluegreen.url_of(stack, bridge.meta["port"]))
    finally:
        bluegreen.retire_bridge(paths, stack, force=True)
    if not running:
        return "passed its checks (CLIProxyAPI is not running: `uv run doit up` starts it)"
    outcome = ensure_running(paths, stack, CLIPROXY)  # no LiteLLM in front: nothing to keep, so a restart
    wait_ready(paths, stack, [CLIPROXY], {CLIPROXY})
    return f"serves ({outcome.action}, pid {outcome.pid})"


def _put_back(paths: Paths, stack: dict, before: dict, out) -> str:
    """Activate `before` again and, when the failure came after traffic moved, serve from it."""
    from ..release.store import activate, find
    from ..stack.swaps import bluegreen
    from ..stack.lifecycle import settle_cliproxy, switch_cliproxy

    # refuse=False: a kept copy found edited must not hide the failure being put right
    entry = find(paths, str(before.get("repo")), str(before.get("tag")), refuse=False)
    if entry is None:
        return f"{_title(before)} could not be restored (its kept copy is gone or was changed): run `uv run doit fetch`"
    activate(paths, entry)
    record = process.read_record(paths.record(CLIPROXY))
    alive = record is not None and process.is_alive(record)
    serving_old = alive and (record.meta.get("parts") or {}).get("binary") == before.get("binary_sha256")
    if serving_old or not alive and not paths.record(CLIPROXY_BRIDGE).exists():
        if serving_old:
            bluegreen.leave_bridge(paths, stack)  # LiteLLM back from a half-made move, then no bridge
        return f"{_title(before)} serves as before" if serving_old else f"{_title(before)} is the installed release again"
    try:  # traffic had moved to the new build: back to the old one the same way, without a gap
        if alive and bluegreen.impossible(paths, stack) is None:
            switch_cliproxy(paths, stack, record, "putting the previous release back", out=out)
        else:
            settle_cliproxy(paths, stack, out)  # nothing at the address: start the old build there
    except FlowgateError as exc:
        return f"{_title(before)} is installed again but did not take over: {exc.message}"
    return f"{_title(before)} serves again"


def _current(paths: Paths, stack: dict) -> dict:
    settings = settings_from_stack(stack)
    if CLIPROXY not in enabled_services(stack):
        raise FlowgateError("cliproxy.enabled is false: there is no CLIProxyAPI to upgrade",
                            "set cliproxy.enabled: true in config/local.yaml first")
    if settings.binary:
        raise FlowgateError("cliproxy.binary is set: FlowGate runs your own CLIProxyAPI binary and does not replace it",
                            "upgrade it yourself, or remove cliproxy.binary from config/local.yaml to let FlowGate manage releases")
    manifest = read_manifest(paths)
    if not manifest or not binary_intact(paths, manifest):
        raise FlowgateError("no verified CLIProxyAPI release is installed yet", "run `uv run doit up` (or `uv run doit fetch`) first")
    return manifest


def _refuse_downgrade(current: dict, repo: str, tag: str) -> None:
    """GitHub's "latest" is the release its maintainers marked, not the highest version: it can be older
    than what runs. Moving back is a choice the user names with --to, never a silent upgrade."""
    from ..release.outdated import version_key

    if repo.lower() != str(current.get("repo") or "").lower():
        return  # another line or fork: versions do not compare
    mine, theirs = version_key(str(current.get("tag") or "")), version_key(tag)
    if mine is not None and theirs is not None and theirs < mine:
        raise FlowgateError(f"{repo}'s latest release is {tag}, older than the installed {current.get('tag')}: "
                            "not downgrading",
                            f"`uv run doit upgrade --to {tag}` moves back to it on purpose; "
                            "`uv run doit outdated` lists the newer releases")


def _newest(settings, repo: str) -> str:
    from ..release import github

    with github.GitHub(github.api_base(settings.api_url), repo) as gh:
        release, _ = gh.get_release(None)
    tag = str((release or {}).get("tag_name") or "")
    if not valid_tag(tag):
        raise FlowgateError(f"the newest release of {repo} has no usable tag", "name one: `uv run doit upgrade --to TAG`")
    return tag


def _with_release(stack: dict, repo: str, tag: str) -> dict:
    cp = stack["cliproxy"]
    return {**stack, "cliproxy": {**cp, "release": {**cp["release"], "repo": repo, "version": tag}}}


def _title(manifest: dict) -> str:
    line = lines.LINES.get(str(manifest.get("line") or ""))
    return f"{line.title if line else 'CLIProxyAPI'} {manifest.get('tag')}"

"""Tasks for the clients: integrate:codex, integrate:claude, smoke, models.

`doit integrate:codex --apply` works: doit parses options given after a subtask's full name.
"""

from __future__ import annotations

from .common import PATHS, command, flag, option, read_stack

CLIENT_NAMES = ("codex", "claude")  # tasks.clients.gateway.CLIENTS, without importing it at load time


def integrate(client: str, apply: bool, restore: bool, key: str = "", profile_only: bool = False) -> None:
    from ..clients import claude, codex, files, record
    from ..base.errors import FlowgateError

    if apply and restore:
        raise FlowgateError("--apply and --restore exclude each other", "give one of them")
    if restore:
        restore_client(client)
        return
    stack = read_stack()
    gw = None
    if key:  # a member's key, kept for clients (tasks.keys.kept), read by the helper as the master key is
        from ..clients.gateway import member_gateway

        gw = member_gateway(PATHS, stack, key)
    if client == "codex":
        changes, notices = codex.plan(PATHS, stack, profile_only, gw=gw)
    else:
        changes, notices = claude.plan(PATHS, stack, gw=gw)
    import os

    from ..clients.drift import overriding_env
    from ..clients.gateway import choice_lines

    for line in choice_lines(PATHS, stack, client):
        print(line)
    notices += overriding_env(client, os.environ)  # the shell wins over the settings file for these
    if not apply:
        for change in changes:
            print(change.diff() if change.changed else f"{change.path}: already up to date")
        for notice in notices:
            print(f"note: {notice}")
        if any(c.changed for c in changes):
            print(f"nothing written: run `uv run doit integrate:{client} --apply` to write this")
        return
    saved: dict = {}
    for line in files.apply(changes, saved):
        print(line)
    for notice in notices:
        print(f"note: {notice}")
    record.remember(PATHS, client, record.current_settings(PATHS, stack, client, key or None),
                    files=[str(c.path) for c in changes], created=[str(c.path) for c in changes if c.old is None],
                    backups=saved, written={str(c.path): files.digest(c.new) for c in changes})
    _say_if_down(stack)


def restore_client(client: str) -> None:
    from ..clients import claude, codex, files, record

    entry = record.forget(PATHS, client)
    created, originals, written = entry.get("created", []), entry.get("originals", {}), entry.get("written", {})
    unmerge = {p: codex.unmerge_config for p in codex.settings_files()} if client == "codex" \
        else {claude.settings_path(): claude.unmerge_settings}
    for path, undo in unmerge.items():
        print(files.restore(path, lambda text, user, p=path, undo=undo: undo(text, user, p),
                            created=str(path) in created, original=originals.get(str(path)),
                            written=written.get(str(path))))


def _say_if_down(stack: dict) -> None:
    from ..config.names import LITELLM
    from ..config.view import litellm
    from ..services.common import base_url
    from ..stack.watch.readiness import is_ready

    if not PATHS.secret("litellm_master_key").exists() or not is_ready(PATHS, stack, LITELLM):
        print(f"the gateway at {base_url(litellm(stack))} is not up yet: `uv run doit up` starts it")


def _client_params(client: str) -> list[dict]:
    params = [flag("apply", "write the settings (backs up first)"),
              flag("restore", "take FlowGate's settings out again, your own (and later edits) kept"),
              option("key", "wire it with this member's key (kept by `doit keys create|rotate NAME --keep`), "
                            "not the master key")]
    if client == "codex":
        params.append(flag("profile_only", "write only flowgate.config.toml (`codex --profile flowgate`), not config.toml"))
    return params


def task_integrate():
    """Wire a client to the gateway: prints the change; --apply writes it, --restore undoes it."""
    docs = {"codex": "Codex CLI: $CODEX_HOME/config.toml + flowgate.config.toml (--apply, --restore, --profile-only)",
            "claude": "Claude Code: $CLAUDE_CONFIG_DIR/settings.json (--apply, --restore)"}
    for client in CLIENT_NAMES:
        # Not `ready`: printing must change nothing, and client files do not need a running stack.
        yield command(integrate, *_client_params(client), args=[client], name=client, doc=docs[client],
                      task_dep=["config"])


def run_smoke(model: str | None, json_output: bool, timeout: float) -> None:
    import sys

    from ..clients import smoke
    from ..base.errors import FlowgateError

    stack = read_stack()
    models, served = smoke.models_to_check(PATHS, stack, model)
    checks = []
    for check in smoke.run(PATHS, stack, models, served, timeout):
        checks.append(check)
        if not json_output:
            print(check.line(), flush=True)
    if json_output:
        print(smoke.as_json(stack, checks))
    else:
        print(smoke.summary(checks))
    sys.stdout.flush()
    failed = [c for c in checks if not c.ok]
    if failed:
        raise FlowgateError(f"smoke: {len(failed)} of {len(checks)} checks failed",
                            "the FAIL lines carry the upstream's error; `uv run doit logs` shows both services' logs")


def task_smoke():
    """Real requests through the running gateway for what the accounts serve (CI: after `doit up`)."""
    return command(run_smoke, option("model", "check this model only", default=None),
                   flag("json_output", "print JSON for CI", long="json"),
                   option("timeout", "seconds one request may take before its check fails", float, 60.0),
                   task_dep=["ready"])


def show_models(json_output: bool) -> None:
    from ..accounts.providers import configured_names
    from ..catalog import store, table
    from ..catalog.discover import refresh
    from ..config.view import cliproxy
    from ..base.errors import FlowgateError

    stack = read_stack()
    catalog = store.read(PATHS)
    if cliproxy(stack).enabled:
        try:
            catalog, _ = refresh(PATHS, stack)  # an explicit command: ask the binary now
        except FlowgateError as exc:
            kept = "showing the catalog kept from before" if catalog is not None else "no catalog was read yet"
            print(f"note: {kept}: {exc.one_line()}", flush=True)
    if json_output:
        print(table.as_json(stack, catalog))
        return
    hint = " or ".join(f"`uv run doit login:{n}`" for n in configured_names(stack)[:2]) or "`uv run doit login:<provider>`"
    print(table.table(stack, catalog, hint))


def task_models():
    """What clients may ask for now: every id the accounts serve and the config's own models (--json)."""
    return command(show_models, flag("json_output", "print JSON", long="json"), task_dep=["config"])

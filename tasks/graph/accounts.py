"""Tasks for accounts: login:<provider>, accounts, import:codex (core: tasks/accounts/)."""

from __future__ import annotations

from ..config.names import CLIPROXY
from .common import JSON_FLAG, PATHS, command, flag, option, read_stack, read_stack_or_none

LOGIN_PARAMS = [
    flag("no_browser", "print the URL, never open a browser"),
    option("callback_url", "the address a browser on another machine landed on: hand it to the waiting login"),
    option("timeout", "seconds to wait for the login", float, 300.0),
    flag("add", "log in to another account even when one is active"),
]


def login_names() -> list[str]:
    """`providers:` of the config; while stack.json is older than the config, every known one too.

    A name missing here is "task not found" before the `config` task could refresh stack.json;
    the action checks the refreshed config, so an extra name costs nothing.
    """
    stack = read_stack_or_none()
    if stack is not None and "provider_names" in stack and not _config_newer_than_stack():
        return list(stack["provider_names"])  # the cheap path every `doit` command takes
    from ..accounts.providers import TABLE, configured_names

    names = configured_names(stack)
    return names + [n for n in TABLE if n not in names]


def _config_newer_than_stack() -> bool:
    try:
        built = PATHS.stack_json.stat().st_mtime_ns
    except OSError:
        return True
    return any(p.exists() and p.stat().st_mtime_ns > built for p in (PATHS.base_config, PATHS.local_config))


def run_login(name: str, no_browser: bool, callback_url: str, timeout: float, add: bool) -> dict:
    from ..accounts.login import LoginOptions, login
    from ..stack.watch.readiness import wait_ready
    from .run import OUTCOMES

    stack = read_stack()
    fresh = {s for s, o in OUTCOMES.items() if o.action in ("started", "restarted")}
    wait_ready(PATHS, stack, [CLIPROXY], fresh)  # only CLIProxyAPI: a login never needs LiteLLM
    options = LoginOptions(no_browser=no_browser, callback_url=callback_url or None, timeout=timeout, add=add)
    result = login(PATHS, stack, name, options)
    from ..catalog.discover import refresh_quietly

    refresh_quietly(PATHS, stack)  # what the new account serves is routable now: say so
    return {"result": result}


def task_login():
    """Log in to an OAuth provider through CLIProxyAPI: `doit login:codex [--no-browser] [--add]`."""
    for name in login_names():
        # start:cliproxy, not ready: the action waits for CLIProxyAPI alone, never for LiteLLM; always
        # run ("already logged in" needs the running binary: the action says it)
        yield command(run_login, *LOGIN_PARAMS, args=[name], name=name, task_dep=["start:cliproxy"],
                      doc=f"log in to {name} (--no-browser, --callback-url URL, --timeout S, --add)")


def show_accounts(json_output: bool, disable: str, enable: str, remove: str) -> None:
    from ..base.terminal import printable
    from ..accounts import inventory
    from ..accounts.management import Management
    from ..base.errors import FlowgateError

    stack = read_stack()
    changes = [(what, name) for what, name in (("disable", disable), ("enable", enable), ("remove", remove)) if name]
    if len(changes) > 1:
        raise FlowgateError("give one of --disable, --enable, --remove at a time")
    client = Management.for_stack(PATHS, stack)
    if changes:
        what, name = changes[0]
        account = inventory.change(PATHS, stack, client, name, what)
        print(printable(f"{account.provider}: {what}d {account.label or account.name} ({account.name})"))
        from ..catalog.discover import refresh_quietly

        refresh_quietly(PATHS, stack)
        return
    accounts = inventory.list_accounts(client, stack)
    from ..accounts import pool_state, quota

    quotas = quota.by_name(quota.current(PATHS, stack, accounts)) if accounts else {}
    pool = pool_state.read(PATHS)
    quotas.update(quota.from_pool(accounts, pool, quotas))  # an account the steward took out: its last windows
    if json_output:
        import json

        listed = json.loads(inventory.as_json(accounts))
        print(json.dumps([{**a, "quota": quota.as_json(quotas.get(a["name"])), "pool": pool_state.account(pool, a["name"])}
                          for a in listed], indent=2))
        return
    print(inventory.table(accounts, pool, {name: q.plan for name, q in quotas.items()}))
    if quotas:
        print(f"quota (kept {quota.CACHE_SECONDS:g} s; the steward refreshes it while it runs):")
        print("\n".join(quota.account_lines([quotas[a.name] for a in accounts if a.name in quotas],
                                            full_at=quota.forecasts(pool))))


def task_accounts():
    """List the accounts CLIProxyAPI knows (--json); --disable / --enable / --remove NAME."""
    return command(show_accounts, JSON_FLAG, option("disable", "disable the account file NAME"),
                   option("enable", "enable the account file NAME"), option("remove", "delete the account file NAME"))


def import_codex(file: str) -> dict:
    from ..base.terminal import printable
    from ..accounts import inventory
    from ..accounts.codex_import import import_codex as run_import
    from ..accounts.management import Management, cliproxy_ready

    result = run_import(PATHS, file or None)
    verb = {"imported": "imported", "updated": "updated", "up-to-date": "up to date:"}[result.action]
    print(printable(f"codex: {verb} {result.email} -> {result.file} (0600)" + (f" ({result.why})" if result.why else "")))
    stack = read_stack_or_none()
    if stack is None or not cliproxy_ready(PATHS, stack):
        print("CLIProxyAPI is not running: it loads the account when it starts (`uv run doit up`)")
        return {"action": result.action}
    listed = inventory.wait_for(Management.for_stack(PATHS, stack), stack, lambda a: a.name == result.file.name, 5.0)
    if listed:
        print(printable(f"CLIProxyAPI lists it: {listed[0].name} ({listed[0].status})"))
        from ..catalog.discover import refresh_quietly

        refresh_quietly(PATHS, stack)
    else:
        print("CLIProxyAPI does not list it yet; it loads it at its next start at the latest")
    return {"action": result.action}


def task_import():
    """Import a login made by another tool: `doit import:codex [--file PATH]` (Codex CLI's auth.json)."""
    yield command(import_codex,
                  option("file", "the auth.json to import (default $CODEX_HOME/auth.json, else ~/.codex/auth.json)"),
                  name="codex", task_dep=["config"],
                  doc="import Codex CLI's login ($CODEX_HOME/auth.json, or --file PATH) as a codex account")

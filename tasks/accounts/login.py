"""`doit login:<provider>`: an OAuth login through the management API of CLIProxyAPI.

What the user must do (URL, user code) is printed and flushed BEFORE the wait starts; the status
route is polled WITH the state the start route returned (the binary answers ok for an unknown
state, so a poll without it "succeeds" at once); management errors fail at once.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from ..base.errors import FlowgateError
from ..base.paths import Paths
from .inventory import Account, list_accounts, new_account, record_login
from .management import Management, ManagementError, RouteMissing
from .providers import (
    DEVICE,
    REDIRECT,
    Provider,
    installed_line,
    require_supported,
    resolve,
)

MAX_POLL_INTERVAL = 1.0


@dataclass
class LoginOptions:
    no_browser: bool = False
    callback_url: str | None = None
    timeout: float = 300.0
    add: bool = False


def say(text: str) -> None:
    """One line to the user. Peer text (URLs, codes, account labels from the binary) is escaped:
    a hostile answer cannot move the cursor or rewrite the terminal."""
    from ..base.terminal import printable

    print(printable(text), flush=True)  # flushed: the user must see the URL before the wait starts


def browsable(url: str) -> bool:
    """Only an http(s) URL is handed to a browser (never file:, javascript: or a custom scheme)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def login(paths: Paths, stack: dict, name: str, options: LoginOptions, out: Callable[[str], None] = say) -> str:
    """Log in to `name`; returns ok / up-to-date, or raises FlowgateError."""
    provider = resolve(stack, name)
    client = Management.for_stack(paths, stack)
    if options.callback_url:
        return _forward_pasted_redirect(paths, stack, client, provider, options, out)
    require_supported(provider, installed_line(paths))
    before = list_accounts(client, stack)
    active = [a for a in before if a.type == provider.type and a.active]
    if active and not options.add:
        labels = ", ".join(a.label or a.name for a in active)
        out(f"{provider.name}: already logged in ({labels}); nothing to do "
            f"(`uv run doit login:{provider.name} --add` adds another account)")
        record_login(paths, provider, "up-to-date", labels)
        return "up-to-date"
    query = dict(provider.query)
    if provider.flow == REDIRECT:
        query["is_webui"] = "true"  # the binary listens for the browser's redirect itself
    try:
        started = client.get(provider.route, **query)
    except RouteMissing:
        from .fallback import run_binary_login

        return run_binary_login(paths, stack, client, provider, before, out)
    state = str(started.get("state") or "")
    if not state:
        raise FlowgateError(f"CLIProxyAPI started a {provider.name} login without a state",
                            "FlowGate cannot follow it safely; see `uv run doit logs cliproxy`")
    _show_start(provider, started, options, out)
    return wait_for_login(paths, stack, client, provider, state, before, options.timeout, out,
                          announce=f"waiting for the {provider.name} login to finish (up to {options.timeout:g} s; "
                                   "Ctrl-C cancels)", register=True)


def _show_start(provider: Provider, started: dict, options: LoginOptions, out) -> None:
    url = str(started.get("verification_uri") or started.get("url") or "")
    code = str(started.get("user_code") or "")
    if provider.flow == DEVICE and code:
        out(f"{provider.name}: open {url} and enter the code {code}")
    elif url:
        out(f"{provider.name}: open this URL in a browser and log in:")
        out(f"  {url}")
    if provider.flow == REDIRECT and provider.callback_port:
        out(f"CLIProxyAPI receives the browser's redirect on http://localhost:{provider.callback_port} (this machine).")
        out("Browser on another machine? Copy the address it lands on (it will not load) and, while this waits, run:")
        # The `=` form on purpose: doit takes a word with `=` that does not start with `-` (every
        # such address) for a NAME=VALUE variable, so `--callback-url URL` would lose the URL.
        out(f"  uv run doit login:{provider.name} --callback-url='<that address>'")
    if url and browsable(url) and not options.no_browser and browser_available():
        import webbrowser

        try:
            if webbrowser.open(url):
                out("(opened your browser)")
        except Exception:  # a broken browser setup must not break the login: the URL is printed
            pass


def browser_available(environ=None) -> bool:
    """A browser FlowGate may open: never in CI, over SSH, or on a Linux box without a display."""
    env = os.environ if environ is None else environ
    if env.get("CI") or env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return False
    if sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return True


def wait_for_login(paths: Paths, stack: dict, client: Management, provider: Provider, state: str,
                   before: list[Account], timeout: float, out, *, announce: str = "", clock=time.monotonic,
                   sleep=time.sleep, register: bool = False) -> str:
    """Poll the status route with `state` until ok / error / timeout; Ctrl-C cancels the session.

    `announce` is printed inside the Ctrl-C guard: a user who presses Ctrl-C the moment they read
    "waiting" must get the cancel, not an interrupted command.
    """
    from ..stack import logins

    deadline = clock() + timeout
    interval, shown = 0.2, set()
    if register:  # a CLIProxyAPI switch cancels the session with it: it says so here (tasks.stack.logins)
        logins.register(paths, provider.name, state)
    try:
        if announce:
            out(announce)
        while True:
            try:
                answer = client.get("get-auth-status", state=state)
            except FlowgateError:
                _raise_if_switched(paths, provider)
                raise
            status = str(answer.get("status") or "")
            if status == "ok":  # finished before a switch could cancel it: the account is saved
                return _succeeded(paths, stack, client, provider, before, out)
            _raise_if_switched(paths, provider)
            if status == "error":
                return _failed(paths, stack, client, provider, before, str(answer.get("error") or ""), out)
            if status in ("device_code", "auth_url"):  # kiro: what to open arrives here
                key = (status, answer.get("url") or answer.get("verification_url"), answer.get("user_code"))
                if key not in shown:
                    shown.add(key)
                    _show_status_step(provider, answer, out)
            if clock() >= deadline:
                _cancel(client, state)
                record_login(paths, provider, "timeout", f"no result within {timeout:g} s")
                raise FlowgateError(f"the {provider.name} login did not finish within {timeout:g} s",
                                    f"nothing was saved; run `uv run doit login:{provider.name}` again "
                                    "(`--timeout 600` gives you more time)")
            sleep(max(0.0, min(interval, deadline - clock())))
            interval = min(interval * 1.5, MAX_POLL_INTERVAL)
    except KeyboardInterrupt:
        cancelled = _cancel(client, state)
        record_login(paths, provider, "cancelled", "Ctrl-C")
        raise FlowgateError(f"the {provider.name} login was cancelled (Ctrl-C)",
                            "nothing was saved" + ("; the binary's login session is cancelled" if cancelled
                                                   else "; the binary forgets the login session within 10 minutes")) from None
    finally:
        if register:
            logins.unregister(paths)


def _raise_if_switched(paths: Paths, provider: Provider) -> None:
    from ..stack import logins

    why = logins.cancelled(paths)
    if why:
        record_login(paths, provider, "cancelled", why)
        raise FlowgateError(f"the {provider.name} login was cancelled: {why}",
                            f"nothing was saved; run `uv run doit login:{provider.name}` again") from None


def _show_status_step(provider: Provider, answer: dict, out) -> None:
    if answer.get("status") == "device_code":
        out(f"{provider.name}: open {answer.get('verification_url') or answer.get('url')} "
            f"and enter the code {answer.get('user_code')}")
    else:
        out(f"{provider.name}: open this URL in a browser and log in:")
        out(f"  {answer.get('url')}")


def _succeeded(paths, stack, client, provider, before, out) -> str:
    account = new_account(client, stack, provider, before)
    label = (account.label or account.name) if account else ""
    if account:
        out(f"{provider.name}: logged in as {label} ({account.name})")
    else:
        out(f"{provider.name}: logged in (the account is not listed yet: `uv run doit accounts` shows it)")
    record_login(paths, provider, "ok", label)
    return "ok"


def _failed(paths, stack, client, provider, before, error: str, out) -> str:
    # Mainline answers ok for only 60 s after a login finished, then "unknown or expired state":
    # the account list says whether it finished.
    if "unknown" in error or "expired" in error:
        if new_account(client, stack, provider, before, wait=0) is not None:
            return _succeeded(paths, stack, client, provider, before, out)
        record_login(paths, provider, "expired", error)
        raise FlowgateError(f"the {provider.name} login session is unknown or expired ({error})",
                            f"start again: `uv run doit login:{provider.name}`")
    record_login(paths, provider, "error", error)
    raise FlowgateError(f"the {provider.name} login failed: {error or 'no reason given'}",
                        f"nothing was saved; run `uv run doit login:{provider.name}` to try again")


def _cancel(client: Management, state: str) -> bool:
    """Cancel the binary's login session where it can (mainline); never fails the caller."""
    try:
        answer = client.request("DELETE", "oauth-session", query={"state": state})
        # the real binary answers 200 {"cancelled": false} for a session it no longer has
        return not (isinstance(answer, dict) and answer.get("cancelled") is False)
    except (FlowgateError, KeyboardInterrupt):
        return False


def _forward_pasted_redirect(paths, stack, client, provider: Provider, options: LoginOptions, out) -> str:
    """The headless case: the browser ran elsewhere; hand its final address to the binary."""
    if provider.flow != REDIRECT:
        raise FlowgateError(f"--callback-url is for redirect logins; {provider.name} uses a {provider.flow} flow",
                            f"run `uv run doit login:{provider.name} --no-browser` and follow what it prints")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(options.callback_url.strip()).query)
    state = (query.get("state") or [""])[0]
    if not state:
        raise FlowgateError("the pasted address has no state= parameter",
                            "paste the whole address the browser ended on, in quotes")
    if not (query.get("code") or query.get("error")):
        raise FlowgateError("the pasted address has no code= (nor error=) parameter",
                            "paste the address the browser ended on after you logged in, in quotes")
    before = list_accounts(client, stack)
    try:
        client.request("POST", "oauth-callback",
                       body={"provider": provider.callback or provider.name, "redirect_url": options.callback_url.strip()})
    except ManagementError as exc:
        if exc.status in (404, 409):
            record_login(paths, provider, "expired", exc.error)
            raise FlowgateError(f"CLIProxyAPI has no pending {provider.name} login for that address ({exc.error})",
                                f"start a new one with `uv run doit login:{provider.name} --no-browser` and paste "
                                "the address while it waits") from None
        raise
    return wait_for_login(paths, stack, client, provider, state, before, options.timeout, out,
                          announce=f"{provider.name}: handed the redirect to CLIProxyAPI; waiting for it to "
                                   "finish the login", register=True)



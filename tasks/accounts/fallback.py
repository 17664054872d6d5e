"""The binary's own login flag, for a binary whose management API lacks a provider's route.

`<binary> -<provider>-login -no-browser -config <the running config>`: its output is relayed line
by line (the URL or code it prints must reach the user as it appears).
"""

from __future__ import annotations

import subprocess

from ..base.errors import FlowgateError
from ..base.paths import Paths
from .inventory import Account
from .management import Management
from .providers import Provider


def run_binary_login(paths: Paths, stack: dict, client: Management, provider: Provider, before: list[Account],
                     out) -> str:
    from ..release import locate_binary, settings_from_stack
    from .inventory import new_account, record_login

    if not provider.login_flag:
        raise FlowgateError(f"this CLIProxyAPI binary has no /{provider.route} route, and FlowGate knows no "
                            f"login flag of its own for {provider.name}",
                            "set the provider's `route:` in `providers:` of config/local.yaml if this binary names it differently")
    binary = locate_binary(paths, settings_from_stack(stack)).path
    argv = [str(binary), f"-{provider.login_flag}", "-no-browser", "-config", str(paths.cliproxy_config)]
    out(f"{provider.name}: this CLIProxyAPI binary has no /{provider.route} management route; "
        f"falling back to its own login: {binary.name} -{provider.login_flag} -no-browser")
    proc = subprocess.Popen(argv, cwd=paths.cliproxy_config.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", bufsize=1)
    try:
        for line in proc.stdout:
            out(f"  | {line.rstrip()}")
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        record_login(paths, provider, "cancelled", "Ctrl-C (binary login flag)")
        raise FlowgateError(f"the {provider.name} login was cancelled (Ctrl-C)", "nothing was saved") from None
    if code != 0:
        record_login(paths, provider, "error", f"-{provider.login_flag} exited with status {code}")
        raise FlowgateError(f"{binary.name} -{provider.login_flag} exited with status {code} (its output is above)",
                            "this binary may not support that provider: see the reference of its line")
    account = new_account(client, stack, provider, before)
    label = (account.label or account.name) if account else ""
    out(f"{provider.name}: logged in" + (f" as {label} ({account.name})" if account else ""))
    record_login(paths, provider, "ok", label, via="login flag")
    return "ok"

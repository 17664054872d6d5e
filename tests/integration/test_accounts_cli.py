"""Accounts through the real `doit` command line: login:<provider>, accounts, import:codex, status.

One home for the module with CLIProxyAPIPlus alone (a login never waits for LiteLLM), installed
from the fake GitHub like the real release. Logins are finished the way a browser or a device
approval would: through the double's oauth-callback route, or its test-only complete route.
"""

from __future__ import annotations

import json
import re
import signal
import stat
import time

import httpx
import pytest

from tests.fakes.codex_cli import auth_json, token_values, write_auth
from tests.integration.conftest import OUTPUTS, Running, make_stack, redirect, start_login  # noqa: F401



@pytest.fixture(scope="module")
def home(tmp_path_factory, github):
    st = make_stack(tmp_path_factory, github, "accounts", line="plus")  # Copilot: a Plus-line login
    st.write_local("providers: [codex, claude, copilot, {name: xai, flow: device}]\n")
    started = st.doit("start:cliproxy")
    assert started.returncode == 0, started.output
    yield st
    st.doit("down")
    st.kill_all()


def doit(st, *args, **kw):
    result = st.doit(*args, **kw)
    OUTPUTS.append(result.output)
    assert "Traceback" not in result.output, result.output
    return result


def mgmt(st, method, route, **kw):
    key = st.paths.secret("cliproxy_management_key").read_text().strip()
    return httpx.request(method, f"http://127.0.0.1:{st.cliproxy_port}/v0/management/{route}",
                         headers={"Authorization": f"Bearer {key}"}, timeout=5, **kw)


def accounts(st) -> list[dict]:
    result = doit(st, "accounts", "--json")
    assert result.returncode == 0, result.output
    return json.loads(result.stdout)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------------------- redirect

def test_redirect_login_waits_for_the_browser_then_shows_the_account(home):
    run, state = start_login(home, "codex")
    r = mgmt(home, "POST", "oauth-callback", json={"provider": "codex", "redirect_url": redirect(state, "dev@example.com")})
    assert r.status_code == 200, r.text
    code, out, _ = run.finish()
    assert code == 0, out
    assert out.splitlines()[-2:] == ["codex: logged in as dev@example.com (codex-dev@example.com.json)",
                                     "models: 8 served"]  # what the new account serves is routable now
    assert "is_webui=true" in home.paths.log("cliproxy").read_text()  # asked the binary to take the redirect
    event = home.events("login")[-1]
    assert (event["result"], event["provider"], event["detail"]) == ("ok", "codex", "dev@example.com")


def test_second_login_is_up_to_date_and_add_logs_in_another_account(home):
    again = doit(home, "login:codex")
    assert again.returncode == 0
    assert "codex: already logged in (dev@example.com); nothing to do" in again.stdout
    run, state = start_login(home, "codex", "--add")
    mgmt(home, "POST", "oauth-callback", json={"provider": "codex", "redirect_url": redirect(state, "second@example.com")})
    code, out, _ = run.finish()
    assert code == 0 and "logged in as second@example.com" in out
    assert {a["label"] for a in accounts(home) if a["provider"] == "codex"} == {"dev@example.com", "second@example.com"}


def test_pasted_redirect_url_finishes_the_waiting_login(home):
    run, state = start_login(home, "claude")
    assert run.seen[-2] == "  uv run doit login:claude --callback-url='<that address>'"
    pasted = doit(home, "login:claude", f"--callback-url=http://localhost:54545/callback?code=c0de&state={state}"
                                        "&email=paste@example.com")
    assert pasted.returncode == 0, pasted.output
    assert "claude: handed the redirect to CLIProxyAPI" in pasted.stdout
    assert "claude: logged in as paste@example.com" in pasted.stdout
    code, out, _ = run.finish()
    assert code == 0 and "logged in as paste@example.com" in out  # the first command saw it too
    stale = doit(home, "login:claude", f"--callback-url=http://localhost:54545/callback?code=c0de&state={state}")
    assert stale.returncode == 1 and "no pending claude login for that address" in stale.stderr


def test_login_error_status_fails_with_the_reason(home):
    run, state = start_login(home, "claude", "--add")
    mgmt(home, "POST", "_double/complete", json={"state": state, "ok": False, "error": "access_denied"})
    code, _, err = run.finish()
    assert code == 1 and "the claude login failed: access_denied" in err
    assert home.events("login")[-1]["result"] == "error"


def test_timeout(home):
    begin = time.monotonic()
    result = doit(home, "login:claude", "--add", "--no-browser", "--timeout", "1")
    assert result.returncode == 1
    assert "the claude login did not finish within 1 s" in result.stderr and "--timeout" in result.stderr
    assert time.monotonic() - begin < 10


def test_ctrl_c_cancels_cleanly(home):
    run, _ = start_login(home, "claude", "--add")
    run.proc.send_signal(signal.SIGINT)
    code, _, err = run.finish()
    assert code != 0 and "the claude login was cancelled (Ctrl-C)" in err
    assert home.events("login")[-1]["result"] == "cancelled"
    assert mgmt(home, "GET", "auth-files").status_code == 200  # the binary keeps running


# ----------------------------------------------------------------------------------------- device

def test_device_flow_shows_the_code_before_it_waits(home):
    run = Running(home, "login:copilot", "--no-browser")
    match = run.expect(r"^copilot: open (https://github.com/login/device) and enter the code ([A-F0-9]{4}-[A-F0-9]{4})$")
    run.expect(r"^waiting for the copilot login to finish")
    user_code = match.group(2)
    # The user approves only after seeing the code: the code line must already be out.
    state = next(l.split()[-1] for l in home.paths.log("cliproxy").read_text().splitlines()
                 if "github copilot device flow started" in l)
    mgmt(home, "POST", "_double/complete", json={"state": state, "username": "octocat"})
    code, out, _ = run.finish()
    assert code == 0
    lines = out.splitlines()
    code_line = next(i for i, l in enumerate(lines) if user_code in l)
    wait_line = next(i for i, l in enumerate(lines) if l.startswith("waiting for"))
    assert code_line < wait_line < len(lines) - 1
    assert lines[-2] == "copilot: logged in as octocat (github-octocat.json)"
    assert lines[-1].startswith("models: ") and lines[-1].endswith("; new: claude-sonnet-4, gpt-4.1")  # Copilot's


# ---------------------------------------------------------------------- the binary's line, fallback

def test_route_missing_falls_back_to_the_binarys_own_login_flag(home):
    result = doit(home, "login:xai", "--no-browser")
    assert result.returncode == 1
    assert "xai: this CLIProxyAPI binary has no /xai-auth-url management route; falling back to its own login: " \
           "cli-proxy-api-plus -xai-login -no-browser" in result.stdout
    assert "  | flag provided but not defined: -xai-login" in result.stdout  # its output, relayed
    assert "cli-proxy-api-plus -xai-login exited with status 2" in result.stderr


def test_a_provider_the_installed_line_lacks_names_the_line_that_has_it(home):
    home.write_local("providers: [codex, xai]\n")
    try:
        result = doit(home, "login:xai")
    finally:
        home.write_local("providers: [codex, claude, copilot, {name: xai, flow: device}]\n")
    assert result.returncode == 1
    assert "xai needs the CLIProxyAPI line (installed: CLIProxyAPIPlus, plus)" in result.stderr


def test_a_provider_not_in_the_config_is_refused(home):
    result = doit(home, "login:gemini")
    assert result.returncode == 1 and "gemini is not in `providers:`" in result.stderr


# ------------------------------------------------------------------------------- accounts, status

def test_accounts_disable_enable_remove(home):
    table = doit(home, "accounts")
    # label, plan, state in the pool, the requests it served (the binary's counters), status, file
    assert re.search(r"codex\s+dev@example.com\s+plus\s+in rotation\s+\d+/\d+\s+active\s+codex-dev@example.com.json",
                     table.stdout), table.stdout
    assert doit(home, "accounts", "--disable", "second@example.com").stdout.strip() == \
        "codex: disabled second@example.com (codex-second@example.com.json)"
    assert re.search(r"second@example.com\s+\S+\s+disabled by you\s", doit(home, "accounts").stdout)
    assert [a["status"] for a in accounts(home) if a["label"] == "second@example.com"] == ["disabled"]
    doit(home, "accounts", "--enable", "codex-second@example.com.json")
    assert [a["active"] for a in accounts(home) if a["label"] == "second@example.com"] == [True]
    doit(home, "accounts", "--remove", "codex-second@example.com.json")
    assert "second@example.com" not in {a["label"] for a in accounts(home)}
    assert [e["result"] for e in home.events("account")][-3:] == ["disabled", "enabled", "removed"]
    unknown = doit(home, "accounts", "--remove", "nobody")
    assert unknown.returncode == 1 and "no account is named 'nobody'" in unknown.stderr


def test_status_counts_accounts_per_provider(home):
    doit(home, "accounts", "--disable", "github-octocat.json")
    result = doit(home, "status", "--json")  # exit 1: LiteLLM is not running in this home
    data = json.loads(result.stdout)["accounts"]
    assert data["codex"] == {"accounts": 1, "active": 1}
    assert data["copilot"] == {"accounts": 1, "active": 0, "fix": "uv run doit login:copilot"}
    table = doit(home, "status").stdout
    assert "codex: 1 account, 1 active" in table
    assert "copilot: 1 account, 0 active: log in with `uv run doit login:copilot`" in table
    doit(home, "accounts", "--enable", "github-octocat.json")


def test_quota_per_account_and_per_provider_kept_for_a_minute(home):
    from tests.fakes.cliproxy_double import CODEX_WINDOWS

    used, weekly = CODEX_WINDOWS["primary_window"][0], CODEX_WINDOWS["secondary_window"][0]
    table = doit(home, "accounts").stdout
    assert re.search(rf"codex dev@example.com \(plan plus\): 5h {used:g}% used, resets in 1h59m; "
                     rf"weekly {weekly:g}% used, resets in 3d23h", table), table
    assert "copilot octocat: quota not available for copilot" in table
    listed = {a["name"]: a["quota"] for a in accounts(home)}
    assert listed["codex-dev@example.com.json"]["windows"][0]["used_percent"] == used
    status = doit(home, "status").stdout
    assert f"quota codex: fullest window 5h {used:g}% used" in status and "quota not available for copilot" in status
    # while the kept answers are fresh, status asks no provider: a failing upstream is not seen yet
    account = home.paths.auths_dir / "codex-dev@example.com.json"
    data = json.loads(account.read_text())
    data["double_upstream"] = {"status_code": 401, "body": '{"detail": "<b>token</b> \\u001b[2Jrevoked"}'}
    account.write_text(json.dumps(data))
    assert f"quota codex: fullest window 5h {used:g}% used" in doit(home, "status").stdout
    kept = json.loads(home.paths.quota_cache.read_text())
    kept["fetched_at"] -= 61
    home.paths.quota_cache.write_text(json.dumps(kept))
    status = doit(home, "status").stdout
    assert "quota codex: codex answered 401: <b>token</b> \\x1b[2Jrevoked" in status and "\x1b" not in status
    del data["double_upstream"]
    account.write_text(json.dumps(data))


# ------------------------------------------------------------------------------------------ import

def test_import_codex_appears_in_the_running_binarys_list(home, tmp_path):
    write_auth(tmp_path / "codex" / "auth.json", auth_json("imported@example.com", "acct-imp"))
    result = doit(home, "import:codex", env={"CODEX_HOME": str(tmp_path / "codex")})
    assert result.returncode == 0, result.output
    assert "codex: imported imported@example.com" in result.stdout
    assert "CLIProxyAPI lists it: codex-imported@example.com.json (active)" in result.stdout
    again = doit(home, "import:codex", "--file", str(tmp_path / "codex" / "auth.json"))
    assert "codex: up to date: imported@example.com" in again.stdout
    bad = doit(home, "import:codex", "--file", str(write_auth(tmp_path / "bad.json", {"tokens": {}})))
    assert bad.returncode == 1 and "has no `tokens.id_token` field" in bad.stderr


def test_import_without_a_running_binary_says_when_it_loads(light, tmp_path):
    source = write_auth(tmp_path / "auth.json", auth_json("offline@example.com"))
    result = doit(light, "import:codex", "--file", str(source))
    assert result.returncode == 0, result.output
    assert "it loads the account when it starts" in result.stdout
    assert mode(light.paths.auths_dir / "codex-offline@example.com.json") == 0o600


# ------------------------------------------------------------------------------ key and management

def _edit_running_config(st, old: str, new: str):
    """What a hand edit of .router/cliproxy/config.yaml does; the binary hot-reloads it."""
    path = st.paths.cliproxy_config
    text = path.read_text()
    assert re.search(old, text), text
    path.write_text(re.sub(old, new, text))


def _wait_status(st, wanted: int):
    deadline = time.monotonic() + 10
    while mgmt(st, "GET", "auth-files").status_code != wanted:
        assert time.monotonic() < deadline, "the binary did not reload its config"
        time.sleep(0.05)


def test_wrong_key_fails_at_once(home):
    _edit_running_config(home, r"secret-key: \S+", "secret-key: mgmt-edited-by-hand")
    _wait_status(home, 401)
    begin = time.monotonic()
    result = doit(home, "login:claude", "--add")
    assert time.monotonic() - begin < 5  # no retry until a timeout
    assert result.returncode == 1
    assert "CLIProxyAPI refused FlowGate's management key (401 invalid management key)" in result.stderr
    assert "doit restart cliproxy" in result.stderr
    assert doit(home, "restart", "cliproxy").returncode == 0  # the fix the hint names
    assert doit(home, "accounts").returncode == 0


def test_management_disabled(home):
    _edit_running_config(home, r"secret-key: \S+", 'secret-key: ""')
    _wait_status(home, 404)
    result = doit(home, "accounts")
    assert result.returncode == 1
    assert "the management API of CLIProxyAPI is disabled (every management route answers 404)" in result.stderr
    assert doit(home, "restart", "cliproxy").returncode == 0
    assert doit(home, "accounts").returncode == 0


# ------------------------------------------------------------------------------------------ secrets

def test_written_account_files_are_private_and_no_token_leaks(home):
    files = [p for p in home.paths.auths_dir.iterdir() if p.suffix == ".json"]
    assert files and mode(home.paths.auths_dir) == 0o700
    assert all(mode(p) == 0o600 for p in files)
    tokens = [t for p in files for t in token_values(json.loads(p.read_text()))]
    key = home.paths.secret("cliproxy_management_key").read_text().strip()
    seen = "\n".join(OUTPUTS) + home.paths.events.read_text()
    assert tokens and not [t for t in tokens + [key] if t in seen]

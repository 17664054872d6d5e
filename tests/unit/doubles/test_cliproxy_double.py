"""Fast checks that the CLIProxyAPIPlus test double behaves like the reference says.

Each test starts the double as a real subprocess on a free 127.0.0.1 port and talks HTTP to it.
Readiness and hot reloads are awaited by polling with a deadline, never by fixed sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.catalog_support import registry
from tests.fakes.cliproxy_double import fake_jwt
from tests.support import free_port, wait_for

DOUBLE = Path(__file__).resolve().parents[2] / "fakes" / "cliproxy_double.py"
CLIENT_KEY = "sk-client-1"
MGMT_KEY = "mgmt-secret-1"






def config_text(port: int, auth_dir: Path, api_keys=(CLIENT_KEY,), secret: str | None = MGMT_KEY) -> str:
    keys = "".join(f"  - {k}\n" for k in api_keys) if api_keys else ""
    return (
        "# FlowGate test config\n"
        "host: 127.0.0.1\n"
        f"port: {port}\n"
        f"auth-dir: {auth_dir}\n"
        + ("api-keys:\n" + keys if keys else "api-keys: []\n")
        + "remote-management:\n"
        "  allow-remote: false\n"
        + (f"  secret-key: {secret}   # keep this comment\n" if secret is not None else '  secret-key: ""\n')
        + "  disable-control-panel: true\n"
        "routing:\n"
        "  strategy: round-robin\n"
    )


class Double:
    def __init__(self, tmp_path: Path, port: int, proc: subprocess.Popen, config: Path, auth_dir: Path, log: Path):
        self.tmp_path, self.port, self.proc = tmp_path, port, proc
        self.config, self.auth_dir, self.log = config, auth_dir, log
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base, timeout=5.0)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def mgmt(self, method: str, path: str, key: str | None = MGMT_KEY, **kw) -> httpx.Response:
        headers = kw.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.request(method, f"/v0/management{path}", headers=headers, **kw)

    def stop(self) -> int:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(timeout=5)
        return self.proc.returncode


@pytest.fixture
def start_double(tmp_path):
    started: list[Double] = []

    def _start(*, api_keys=(CLIENT_KEY,), secret: str | None = MGMT_KEY, env: dict | None = None,
               port: int | None = None, wait_ready: bool = True, name: str = "d") -> Double:
        port = port or free_port()
        workdir = tmp_path / name
        workdir.mkdir()
        auth_dir = workdir / "auths"
        config = workdir / "config.yaml"
        config.write_text(config_text(port, auth_dir, api_keys, secret), encoding="utf-8")
        log = workdir / "double.log"
        full_env = {**os.environ, **(env or {})}
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(DOUBLE), "-config", str(config)],
                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=full_env,
            )
        d = Double(workdir, port, proc, config, auth_dir, log)
        started.append(d)
        if wait_ready:
            def ready():
                if proc.poll() is not None:
                    raise AssertionError(f"double exited early ({proc.returncode}):\n{d.output()}")
                try:
                    return d.http.get("/").status_code == 200
                except httpx.TransportError:
                    return False
            wait_for(ready, what="GET / to answer 200")
        return d

    yield _start
    for d in started:
        d.stop()


def write_account(auth_dir: Path, name: str, data: dict) -> None:
    tmp = auth_dir / f".{name}.tmp"
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, auth_dir / name)


def model_ids(d: Double) -> set[str]:
    r = d.http.get("/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    return {m["id"] for m in body["data"]}


def test_root_banner_and_no_healthz(start_double):
    d = start_double()
    r = d.http.get("/")
    assert r.status_code == 200
    assert r.json()["message"] == "CLI Proxy API Server"
    assert d.http.get("/healthz").status_code == 404
    first_line = d.output().splitlines()[0]
    assert first_line == "CLIProxyAPI Version: 6.8.16-0-plus, Commit: double, BuiltAt: 2026-01-01T00:00:00Z"
    assert d.auth_dir.is_dir() and stat.S_IMODE(d.auth_dir.stat().st_mode) == 0o700
    assert d.stop() == 0  # SIGTERM -> clean exit 0


def test_client_api_key_errors_and_accepted_forms(start_double):
    d = start_double()
    r = d.http.get("/v1/models")
    assert (r.status_code, r.json()) == (401, {"error": "Missing API key"})
    r = d.http.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    assert (r.status_code, r.json()) == (401, {"error": "Invalid API key"})
    for kwargs in (
        {"headers": {"Authorization": f"Bearer {CLIENT_KEY}"}},
        {"headers": {"X-Api-Key": CLIENT_KEY}},
        {"headers": {"X-Goog-Api-Key": CLIENT_KEY}},
        {"params": {"key": CLIENT_KEY}},
    ):
        assert d.http.get("/v1/models", **kwargs).status_code == 200, kwargs


def test_empty_api_keys_disables_client_auth(start_double):
    d = start_double(api_keys=())
    write_account(d.auth_dir, "kimi-u.json", {"type": "kimi", "username": "u"})
    wait_for(lambda: d.http.get("/v1/models").json()["data"], what="kimi models without a client key")
    assert [m["id"] for m in d.http.get("/v1/models").json()["data"]] == [m["id"] for m in registry()["kimi"]]


def test_failing_model_answers_500_on_every_api_route(start_double):
    d = start_double()
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    chat = d.http.post("/v1/chat/completions", headers=auth,
                       json={"model": "double-fail-x", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 500 and "upstream failure for double-fail-x" in chat.json()["error"]["message"]
    resp = d.http.post("/v1/responses", headers=auth, json={"model": "double-fail-x", "input": "hi"})
    assert resp.status_code == 500
    msg = d.http.post("/v1/messages", headers=auth,
                      json={"model": "double-fail-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert msg.status_code == 500 and msg.json()["error"]["type"] == "api_error"


def test_models_follow_enabled_account_files_and_chat_echoes(start_double):
    d = start_double()
    assert model_ids(d) == set()  # (!) no account: nothing is served
    write_account(d.auth_dir, "claude-off@example.com.json", {"type": "claude", "email": "off@example.com", "disabled": True})
    write_account(d.auth_dir, "codex-a@example.com.json", {"type": "codex", "email": "a@example.com"})
    wait_for(lambda: "gpt-5.5" in model_ids(d), what="codex models after adding an account file")
    # no plan claim in the token: the pro catalog, as the binary does; the disabled claude account is skipped
    assert model_ids(d) == {m["id"] for m in registry()["codex-pro"]}
    listed = d.http.get("/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"}).json()["data"]
    assert {m["owned_by"] for m in listed} == {"openai"} and all(m["created"] > 0 for m in listed)

    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    r = d.http.post("/v1/chat/completions", headers=auth,
                    json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "hello world"}]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "double(gpt-5.5): hello world"
    assert r.json()["usage"]["prompt_tokens"] == 2

    with d.http.stream("POST", "/v1/chat/completions", headers=auth,
                       json={"model": "gpt-5.4-mini(high)", "stream": True,  # a thinking suffix on a served id
                             "messages": [{"role": "user", "content": "hi"}]}) as s:
        lines = [line for line in s.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    text = "".join(json.loads(l[6:])["choices"][0]["delta"].get("content", "") for l in lines[:-1])
    assert text == "double(gpt-5.4-mini(high)): hi"

    # the sheet's refusal, exactly: 400 model_not_found naming the id, on every protocol
    for model in ("claude-sonnet-4-6", "gpt-5-codex", "gpt-5"):  # no claude account; ids never or no longer served
        r = d.http.post("/v1/chat/completions", headers=auth, json={"model": model, "messages": []})
        assert r.status_code == 400 and r.json() == {"error": {
            "message": f"unknown provider for model {model}", "type": "invalid_request_error",
            "code": "model_not_found", "param": "model"}}
    r = d.http.post("/v1/messages", headers=auth, json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []})
    assert r.status_code == 400 and r.json() == {"type": "error", "error": {
        "type": "invalid_request_error", "message": "unknown provider for model claude-sonnet-4-5"}}


def test_codex_plan_picks_the_channel_and_auth_file_models_says_who_serves(start_double):
    d = start_double(name="plans")
    write_account(d.auth_dir, "codex-free.json", {"type": "codex", "email": "f@example.com", "id_token": fake_jwt(
        {"https://api.openai.com/auth": {"chatgpt_plan_type": "free"}})})
    write_account(d.auth_dir, "claude-c@example.com.json", {"type": "claude", "email": "c@example.com"})
    wait_for(lambda: "claude-sonnet-4-6" in model_ids(d), what="claude models")
    free, claude = ({m["id"] for m in registry()[ch]} for ch in ("codex-free", "claude"))
    assert model_ids(d) == free | claude and "gpt-5.4" not in free  # a free plan serves fewer ids
    answer = d.mgmt("GET", "/auth-files/models", params={"name": "codex-free.json"}).json()
    assert {m["id"] for m in answer["models"]} == free and {m["owned_by"] for m in answer["models"]} == {"openai"}
    assert d.mgmt("GET", "/auth-files/models", params={"name": "nobody.json"}).json() == {"models": []}
    assert d.mgmt("GET", "/auth-files/models").status_code == 400


def test_the_catalog_changes_without_a_restart(start_double, tmp_path):
    catalog = tmp_path / "models.json"
    catalog.write_text(json.dumps(registry()))
    d = start_double(name="refresh", env={"CLIPROXY_DOUBLE_CATALOG": str(catalog)})
    write_account(d.auth_dir, "claude-c@example.com.json", {"type": "claude", "email": "c@example.com"})
    wait_for(lambda: "claude-sonnet-4-6" in model_ids(d), what="claude models")
    changed = registry()
    changed["claude"] = [*changed["claude"][1:], {"id": "claude-tomorrow-1", "created": 1, "owned_by": "anthropic"}]
    catalog.write_text(json.dumps(changed))  # as the binary's 3-hourly refresh would
    wait_for(lambda: "claude-tomorrow-1" in model_ids(d), what="the new id")
    assert "claude-haiku-4-5-20251001" not in model_ids(d)


def test_management_key_errors_and_headers(start_double):
    d = start_double()
    r = d.mgmt("GET", "/config", key=None)
    assert (r.status_code, r.json()) == (401, {"error": "missing management key"})
    r = d.mgmt("GET", "/config", key="nope")
    assert (r.status_code, r.json()) == (401, {"error": "invalid management key"})
    r = d.mgmt("GET", "/config", headers={"X-Forwarded-For": "203.0.113.9"})
    assert (r.status_code, r.json()) == (403, {"error": "remote management disabled"})
    r = d.http.get("/v0/management/config", headers={"X-Management-Key": MGMT_KEY})
    assert r.status_code == 200
    assert r.headers["X-CPA-VERSION"] == "6.8.16-0-plus"
    assert r.headers["X-CPA-COMMIT"] and r.headers["X-CPA-BUILD-DATE"]
    assert r.json()["port"] == d.port


def test_management_disabled_without_secret(start_double):
    d = start_double(secret=None)
    assert d.mgmt("GET", "/config").status_code == 404


def test_plaintext_secret_key_is_hashed_in_place_at_start(start_double):
    d = start_double()
    text = d.config.read_text(encoding="utf-8")
    assert MGMT_KEY not in text
    line = next(l for l in text.splitlines() if "secret-key:" in l)
    assert line.strip().startswith("secret-key: $2a$")
    assert line.endswith("# keep this comment")
    assert text.startswith("# FlowGate test config\n")
    assert d.mgmt("GET", "/usage").status_code == 200  # the plaintext still authenticates


def test_hot_reload_of_api_keys(start_double):
    d = start_double()
    text = d.config.read_text(encoding="utf-8").replace(f"  - {CLIENT_KEY}\n", "  - sk-rotated\n")
    with open(d.config, "r+", encoding="utf-8") as fh:  # in place: the real binary watches the file's inode
        fh.write(text)
        fh.truncate()

    def rotated():
        new = d.http.get("/v1/models", headers={"X-Api-Key": "sk-rotated"}).status_code
        old = d.http.get("/v1/models", headers={"X-Api-Key": CLIENT_KEY}).status_code
        return new == 200 and old == 401

    wait_for(rotated, what="the rotated api key to be accepted and the old one refused")


def test_oauth_callback_login_writes_private_account_file(start_double):
    d = start_double(env={"CLIPROXY_DOUBLE_CALLBACK_DELAY": "0.2"})
    r = d.mgmt("GET", "/codex-auth-url")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["url"].startswith("https://") and body["state"]
    state = body["state"]
    assert d.mgmt("GET", "/get-auth-status", params={"state": state}).json() == {"status": "wait"}

    redirect = f"http://localhost:1455/auth/callback?code=c0de&state={state}&email=dev@example.com"
    r = d.mgmt("POST", "/oauth-callback", json={"provider": "codex", "redirect_url": redirect})
    assert r.json() == {"status": "ok"}, r.text
    wait_for(lambda: d.mgmt("GET", "/get-auth-status", params={"state": state}).json().get("status") == "ok",
             what="login status ok")

    account = d.auth_dir / "codex-dev@example.com.json"
    assert account.is_file()
    assert stat.S_IMODE(account.stat().st_mode) == 0o600
    data = json.loads(account.read_text())
    assert data["type"] == "codex" and data["email"] == "dev@example.com" and data["access_token"]
    files = d.mgmt("GET", "/auth-files").json()["files"]
    assert [f["name"] for f in files] == ["codex-dev@example.com.json"]
    assert "gpt-5.5" in model_ids(d)
    # faithful quirk: an unknown state also says ok
    assert d.mgmt("GET", "/get-auth-status", params={"state": "never-issued"}).json() == {"status": "ok"}


def test_device_flow_completed_through_test_endpoint(start_double):
    d = start_double()
    body = d.mgmt("GET", "/github-auth-url").json()
    assert body["user_code"] and body["verification_uri"]
    state = body["state"]
    r = d.mgmt("POST", "/_double/complete", json={"state": state, "ok": False, "error": "access_denied"})
    assert r.status_code == 200
    assert d.mgmt("GET", "/get-auth-status", params={"state": state}).json() == {"status": "error", "error": "access_denied"}

    state = d.mgmt("GET", "/github-auth-url").json()["state"]
    r = d.mgmt("POST", "/_double/complete", json={"state": state, "username": "octo"})
    assert r.json()["file"] == "github-octo.json"
    assert d.mgmt("GET", "/get-auth-status", params={"state": state}).json() == {"status": "ok"}
    assert {"gpt-4.1", "claude-sonnet-4"} <= model_ids(d)


def test_port_taken_logs_and_exits_zero(start_double):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        d = start_double(port=port, wait_ready=False)
        rc = d.proc.wait(timeout=10)
    out = d.output()
    assert rc == 0
    assert "API server started successfully" in out
    assert "failed to start HTTP server" in out and "address already in use" in out


def test_unknown_flag_exits_2_and_invalid_config_exits_0(tmp_path):
    r = subprocess.run([sys.executable, str(DOUBLE), "-version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert r.stdout.startswith("CLIProxyAPI Version: ")
    assert "flag provided but not defined: -version" in r.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("port: [unclosed\n", encoding="utf-8")
    r = subprocess.run([sys.executable, str(DOUBLE), f"-config={bad}"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert "failed to load config" in r.stdout


# ------------------------------------------------------------------------------ mainline edition

MAINLINE = {"CLIPROXY_DOUBLE_EDITION": "mainline"}


def test_executable_name_decides_the_edition(tmp_path):
    exe = tmp_path / "cli-proxy-api"
    exe.write_bytes(DOUBLE.read_bytes())
    out = subprocess.run([sys.executable, str(exe), "-github-copilot-login"], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.splitlines()[0].startswith("CLIProxyAPI Version: 7.2.140, ")  # no -plus suffix
    assert out.returncode == 2 and "flag provided but not defined: -github-copilot-login" in out.stderr


def test_mainline_healthz_routes_and_codex_file_names(start_double):
    d = start_double(env=MAINLINE)
    assert d.http.get("/healthz").json() == {"status": "ok"}
    assert d.mgmt("GET", "/github-auth-url").status_code == 404  # no Copilot on the mainline
    xai = d.mgmt("GET", "/xai-auth-url").json()
    assert xai["flow"] == "device" and xai["user_code"] and xai["expires_in"]
    state = d.mgmt("GET", "/codex-auth-url").json()["state"]
    redirect = f"http://localhost:1455/auth/callback?code=c0de&state={state}&email=dev@example.com"
    assert d.mgmt("POST", "/oauth-callback", json={"provider": "codex", "redirect_url": redirect}).json() == {"status": "ok"}
    wait_for(lambda: d.mgmt("GET", "/get-auth-status", params={"state": state}).json().get("status") == "ok",
             what="login status ok")
    [name] = [f["name"] for f in d.mgmt("GET", "/auth-files").json()["files"]]
    assert name.startswith("codex-") and name.endswith("-dev@example.com.json") and len(name.split("-")[1]) == 8


def test_mainline_unknown_state_is_an_error_and_ok_lasts_a_minute_only(start_double):
    d = start_double(env={**MAINLINE, "CLIPROXY_DOUBLE_OK_WINDOW": "0.3"})
    assert d.mgmt("GET", "/get-auth-status", params={"state": "never-issued"}).json() == \
        {"status": "error", "error": "unknown or expired state"}
    state = d.mgmt("GET", "/kimi-auth-url").json()["state"]
    d.mgmt("POST", "/_double/complete", json={"state": state, "username": "moon"})
    assert d.mgmt("GET", "/get-auth-status", params={"state": state}).json() == {"status": "ok"}
    wait_for(lambda: d.mgmt("GET", "/get-auth-status", params={"state": state}).json()["status"] == "error",
             what="the finished login to be forgotten")


def test_mainline_cancels_a_pending_login(start_double):
    d = start_double(env=MAINLINE)
    state = d.mgmt("GET", "/anthropic-auth-url").json()["state"]
    assert d.mgmt("DELETE", "/oauth-session", params={"state": state}).json() == {"status": "ok", "cancelled": True}
    assert d.mgmt("GET", "/get-auth-status", params={"state": state}).json()["status"] == "error"
    # the real v7.2.140 answers a second cancel with 200 and cancelled false
    assert d.mgmt("DELETE", "/oauth-session", params={"state": state}).json() == {"status": "ok", "cancelled": False}


# -- api-call: the quota upstreams (reference: "Quota and usage through the management API") -----

def _index(d: Double, name: str) -> str:
    files = d.mgmt("GET", "/auth-files").json()["files"]
    return next(f["auth_index"] for f in files if f["name"] == name)


def test_api_call_reads_quota_with_the_accounts_token(start_double):
    from tests.fakes.cliproxy_double import CLAUDE_WINDOWS, CODEX_WINDOWS, auth_index

    d = start_double()
    write_account(d.auth_dir, "codex-q@example.com.json", {"type": "codex", "email": "q@example.com",
                                                           "access_token": "tok-codex", "account_id": "acc-1"})
    write_account(d.auth_dir, "claude-q@example.com.json", {"type": "claude", "email": "q@example.com",
                                                            "access_token": "tok-claude"})
    index = _index(d, "codex-q@example.com.json")
    assert index == auth_index(str(d.auth_dir / "codex-q@example.com.json"), "codex") and len(index) == 16
    codex = d.mgmt("POST", "/api-call", json={
        "auth_index": index, "method": "GET", "url": "https://chatgpt.com/backend-api/wham/usage",
        "header": {"Authorization": "Bearer $TOKEN$", "ChatGPT-Account-Id": "acc-1"}}).json()
    assert codex["status_code"] == 200 and isinstance(codex["body"], str)
    body = json.loads(codex["body"])
    assert body["rate_limit"]["primary_window"]["used_percent"] == CODEX_WINDOWS["primary_window"][0]
    claude = d.mgmt("POST", "/api-call", json={
        "auth_index": _index(d, "claude-q@example.com.json"), "method": "GET",
        "url": "https://api.anthropic.com/api/oauth/usage",
        "header": {"Authorization": "Bearer $TOKEN$", "anthropic-beta": "oauth-2025-04-20"}}).json()
    assert json.loads(claude["body"])["five_hour"]["utilization"] == CLAUDE_WINDOWS["five_hour"][0]
    # an unknown auth_index leaves $TOKEN$ as it is: the upstream refuses it
    unknown = d.mgmt("POST", "/api-call", json={"auth_index": "0" * 16, "method": "GET",
                                                "url": "https://chatgpt.com/backend-api/wham/usage",
                                                "header": {"Authorization": "Bearer $TOKEN$"}}).json()
    assert unknown["status_code"] == 401


def test_api_call_refusals_as_the_binary(start_double):
    d = start_double()
    write_account(d.auth_dir, "claude-n@example.com.json", {"type": "claude", "email": "n@example.com"})
    cases = [({"url": "https://x.example/"}, 400, "missing method"), ({"method": "GET"}, 400, "missing url"),
             ({"method": "GET", "url": "nope"}, 400, "invalid url"),
             ({"method": "GET", "url": "ftp://x.example/"}, 400, "only http and https schemes are allowed"),
             ({"method": "GET", "url": "https://elsewhere.example/"}, 502, "request failed"),
             ({"method": "GET", "url": "https://api.anthropic.com/api/oauth/usage",
               "auth_index": _index(d, "claude-n@example.com.json"), "header": {"Authorization": "Bearer $TOKEN$"}},
              400, "auth token not found")]
    for body, status, error in cases:
        r = d.mgmt("POST", "/api-call", json=body)
        assert (r.status_code, r.json()) == (status, {"error": error}), body
    assert d.mgmt("POST", "/api-call", content=b"[1]").json() == {"error": "invalid body"}
    assert d.mgmt("POST", "/api-call", key=None, json={}).status_code == 401

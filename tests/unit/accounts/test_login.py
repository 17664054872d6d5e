"""tasks.accounts.login: the parts the double's Plus behaviour does not reach, against a small
mainline-like management API over real HTTP (unknown state answers error, a finished login is ok
for only 60 s, DELETE /oauth-session cancels)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tasks.accounts.inventory import Account
from tasks.accounts.login import browser_available, wait_for_login
from tasks.accounts.management import Management
from tasks.accounts.providers import TABLE
from tasks.base.errors import FlowgateError


class Mainline(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = {"status": "wait"}
        self.files: list[dict] = []
        self.calls: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: Mainline

    def log_message(self, *args):
        pass

    def _answer(self, body: dict, status: int = 200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        self.server.calls.append(f"GET {url.path}?{url.query}")
        if url.path.endswith("/get-auth-status"):
            self._answer(self.server.status)
        elif url.path.endswith("/auth-files"):
            self._answer({"files": self.server.files})
        else:
            self._answer({"error": "no"}, 500)

    def do_DELETE(self):
        url = urlsplit(self.path)
        self.server.calls.append(f"DELETE {url.path}?{url.query}")
        self._answer({"status": "ok", "cancelled": True})


@pytest.fixture
def mainline(paths):
    server = Mainline()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, Management("127.0.0.1", server.server_address[1], "mgmt-test-key")
    server.shutdown()
    server.server_close()


STACK = {"providers": ["codex"]}
CODEX = TABLE["codex"]


def test_unknown_state_after_a_finished_login_is_confirmed_through_the_account_list(paths, mainline):
    server, client = mainline
    server.status = {"status": "error", "error": "unknown or expired state"}  # the 60 s "ok" window was missed
    server.files = [{"name": "codex-1a2b3c4d-dev@example.com-plus.json", "type": "codex", "email": "dev@example.com",
                     "status": "active"}]
    lines: list[str] = []
    assert wait_for_login(paths, STACK, client, CODEX, "st-1", [], 5, lines.append) == "ok"
    assert lines == ["codex: logged in as dev@example.com (codex-1a2b3c4d-dev@example.com-plus.json)"]
    assert all("state=st-1" in c for c in server.calls if "get-auth-status" in c)  # always with the state


def test_unknown_state_without_a_new_account_is_an_expired_session(paths, mainline):
    server, client = mainline
    server.status = {"status": "error", "error": "unknown or expired state"}
    before = [Account("codex-old.json", "codex", "codex", "old@example.com", "active", False, "")]
    server.files = [{"name": "codex-old.json", "type": "codex", "email": "old@example.com", "status": "active"}]
    with pytest.raises(FlowgateError) as err:
        wait_for_login(paths, STACK, client, CODEX, "st-2", before, 5, lambda _: None)
    assert "unknown or expired" in err.value.message and "doit login:codex" in err.value.hint


def test_timeout_cancels_the_session(paths, mainline):
    server, client = mainline
    now = [0.0]
    with pytest.raises(FlowgateError) as err:
        wait_for_login(paths, STACK, client, CODEX, "st-3", [], 2, lambda _: None,
                       clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s + 0.5))
    assert "did not finish within 2 s" in err.value.message
    assert "DELETE /v0/management/oauth-session?state=st-3" in server.calls
    assert json.loads(paths.events.read_text().splitlines()[-1])["result"] == "timeout"


def test_ctrl_c_cancels_the_session(paths, mainline):
    server, client = mainline

    def interrupt(_seconds):
        raise KeyboardInterrupt

    with pytest.raises(FlowgateError) as err:
        wait_for_login(paths, STACK, client, CODEX, "st-4", [], 60, lambda _: None, sleep=interrupt)
    assert "cancelled (Ctrl-C)" in err.value.message and "session is cancelled" in err.value.hint
    assert "DELETE /v0/management/oauth-session?state=st-4" in server.calls


@pytest.mark.parametrize("env, expected", [
    ({"CI": "true", "DISPLAY": ":0"}, False),
    ({"SSH_CONNECTION": "1 2 3 4", "DISPLAY": ":0"}, False),
])
def test_no_browser_in_ci_or_over_ssh(env, expected):
    assert browser_available(env) is expected


def test_peer_text_is_escaped_and_only_http_urls_reach_a_browser(capsys):
    from tasks.accounts.login import browsable, say

    say("codex: open https://auth.example/x?state=a\x1b[2J\x1b]0;pwned\x07 now")
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\\x1b[2J" in printed
    assert browsable("https://auth.openai.com/oauth/authorize?x=1") and browsable("http://localhost:1455/cb")
    for url in ("file:///etc/passwd", "javascript:alert(1)", "vscode://open", "https://", "ms-settings:"):
        assert not browsable(url), url

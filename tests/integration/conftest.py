"""The integration stack: real LiteLLM in front of the CLIProxyAPI double, installed through a fake
of today's GitHub (tests/fakes/today.py) by `doit fetch`. LiteLLM boots in ~12 s here, so one stack
per CLIProxyAPI line is shared by the whole session: the mainline with the shipped config's release
settings untouched, and the Plus line from a fork (tests that need their own home run light ones)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tasks.base.paths import Paths
from tasks.release import lines
from tests.conftest import ROOT, base_env, make_home, run_doit
from tests.fakes import today
from tests.fakes.github import FakeGitHub
from tests.support import free_port, seed_accounts, wait_for

# line -> what the stack's local.yaml says about the release (the mainline: nothing, as shipped)
RELEASES = {"mainline": "", "plus": f"  release:\n    repo: {today.PLUS_FORK}\n    version: {today.PLUS_TAG}\n"}




@pytest.fixture(scope="session")
def github(tmp_path_factory):
    with FakeGitHub() as gh:
        yield today.publish_today(gh, tmp_path_factory.mktemp("dist"))


class Stack:
    """A FlowGate home wired to the fake GitHub (through GITHUB_API_URL), on free ports."""

    def __init__(self, home: Path, github: FakeGitHub, env: dict | None = None, line: str = "mainline"):
        self.home = home
        self.paths = Paths(root=ROOT, home=home)
        self.github = github
        self.line = lines.LINES[line]
        # A catalog of its own: a test may add an id as the binary's 3-hourly refresh would.
        self.catalog_file = home.parent / "models.json"
        self.catalog_file.write_bytes((ROOT / "tests" / "fakes" / "models.json").read_bytes())
        self.env = {"CI": "true", "GITHUB_API_URL": github.api_url, "CLIPROXY_DOUBLE_CATALOG": str(self.catalog_file),
                    **(env or {})}
        self.litellm_port = free_port()
        self.cliproxy_port = free_port()
        self.always = ""  # top-level keys every write_local keeps (the shared stacks: no steward)
        self.write_local()

    def write_local(self, extra: str = "", line: str | None = None) -> None:
        """config/local.yaml: this stack's ports and timeouts, its line's release, then `extra`
        (lines under `cliproxy:`, or top-level keys)."""
        release = RELEASES[line or self.line.name]
        self.paths.local_config.write_text(
            f"litellm:\n  port: {self.litellm_port}\n  start_timeout: 120\n  stop_timeout: 5\n"
            f"cliproxy:\n  port: {self.cliproxy_port}\n{release}" + extra + self.always)

    def doit(self, *args, env=None, timeout=240):
        return run_doit(self.home, *args, env={**self.env, **(env or {})}, timeout=timeout)

    def record(self, service: str) -> dict | None:
        try:
            return json.loads(self.paths.record(service).read_text())
        except FileNotFoundError:
            return None

    def pid(self, service: str) -> int | None:
        rec = self.record(service)
        return rec["pid"] if rec else None

    def events(self, event: str | None = None, service: str | None = None) -> list[dict]:
        try:
            lines = self.paths.events.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(l) for l in lines]
        return [e for e in out if (event is None or e["event"] == event) and (service is None or e["service"] == service)]

    @property
    def master_key(self) -> str:
        return self.paths.secret("litellm_master_key").read_text().strip()

    @property
    def litellm_url(self) -> str:
        return f"http://127.0.0.1:{self.litellm_port}"

    def log_in(self, provider: str = "codex", email: str = "dev@example.com") -> str:
        """A real `doit login:<provider> --no-browser`, the browser's redirect handed to the double
        as the provider would send it; returns what the login printed."""
        run, state = start_login(self, provider)
        port = {"codex": 1455, "claude": 54545}[provider]
        key = self.paths.secret("cliproxy_management_key").read_text().strip()
        answer = httpx.post(f"http://127.0.0.1:{self.cliproxy_port}/v0/management/oauth-callback", timeout=5,
                            headers={"Authorization": f"Bearer {key}"},
                            json={"provider": "anthropic" if provider == "claude" else provider,
                                  "redirect_url": redirect(state, email).replace(":1455/", f":{port}/")})
        assert answer.status_code == 200, answer.text
        code, out, err = run.finish()
        assert code == 0, out + err
        return out

    def seed_accounts(self, *providers: str) -> None:
        """Accounts written before the binary starts, for stacks whose tests are not about logging in."""
        seed_accounts(self.paths.auths_dir, *providers)

    def kill_all(self) -> None:
        """Last-resort cleanup: whatever `doit down` left (it should leave nothing)."""
        for service in ("steward", "litellm", "cliproxy", "redis", "postgres"):
            rec = self.record(service)
            if rec:
                try:
                    os.killpg(rec["pgid"], signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


OUTPUTS: list[str] = []  # everything a user saw through Running: checked for tokens by the accounts tests


class Running:
    """A `doit` command in the background whose output lines are read as the user sees them."""

    def __init__(self, st, *args):
        env = {**base_env(st.home), **st.env}
        self.proc = subprocess.Popen([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args], cwd=st.home,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; seen: {self.seen}") from None
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0)  # the reader thread drains the pipe at EOF
        rest = []
        while True:
            try:
                rest.append(self.lines.get(timeout=1))
            except queue.Empty:
                break
        out = "\n".join(self.seen + rest)
        err = self.proc.stderr.read()
        OUTPUTS.append(out + err)
        assert "Traceback" not in out + err, out + err
        return code, out, err


def start_login(st, provider, *args) -> tuple[Running, str]:
    """Run `doit login:<provider>` until it waits; returns it with the state it polls."""
    run = Running(st, f"login:{provider}", "--no-browser", *args)
    url = run.expect(r"^  (https://\S+)$").group(1)
    run.expect(r"^waiting for the ")
    return run, re.search(r"[?&]state=([^&]+)", url).group(1)


def redirect(state: str, email: str, code: str = "c0de") -> str:
    return f"http://localhost:1455/auth/callback?code={code}&state={state}&email={email}"


def serve(st: Stack):
    """For a fixture: yield the stack, then take it down, whatever its tests left running."""
    try:
        yield st
    finally:
        st.doit("down")
        st.kill_all()


def make_stack(tmp_path_factory, github, name: str, env: dict | None = None, line: str = "mainline") -> Stack:
    return Stack(make_home(tmp_path_factory.mktemp(name) / "home"), github, env, line)


def start_alone(st: Stack, service: str, port: int) -> str:
    """`doit start:<service>` for a managed Redis or PostgreSQL (no LiteLLM boot), until `status`
    shows it running and ready on `port`; the command's output."""
    import json

    started = st.doit(f"start:{service}")
    assert started.returncode == 0, started.output
    assert f"{service}: started" in started.stdout

    def entry():
        found = {s["service"]: s for s in json.loads(st.doit("status", "--json").stdout)["services"]}.get(service)
        return found if found and found["ready"] else None

    svc = wait_for(entry, timeout=60, what=f"{service} ready in status")
    assert svc["state"] == "running" and svc["address"].endswith(f":{port}")
    assert service in st.doit("status").stdout
    return started.stdout


@contextlib.contextmanager
def running(st: Stack):
    """The stack up for the block (`doit up` must succeed), then down and every process gone."""
    try:
        up = st.doit("up")
        assert up.returncode == 0, up.output
        yield st
    finally:
        st.doit("down")
        st.kill_all()


@pytest.fixture(scope="session", params=["mainline", "plus"])
def stack(tmp_path_factory, github, request):
    """A shared stack per line: fetched once, then brought up by two concurrent `doit up` commands."""
    st = make_stack(tmp_path_factory, github, f"stack-{request.param}", line=request.param)
    # The account pool's steward lists the accounts every second: these tests count CLIProxyAPI's
    # requests and events (steering has its own stacks: test_pool_steering.py)
    st.always = "accounts:\n  steering: false\n"
    st.write_local()
    first = st.doit("fetch")
    assert first.returncode == 0, first.output
    st.first_fetch = first
    github.reset_counts()
    st.warm_fetch = st.doit("fetch")
    st.warm_fetch_requests = github.total_requests
    # Two `doit up` at once: the stack lock must make them agree (each service started once).
    import subprocess

    from tests.conftest import base_env

    env = {**base_env(st.home), **st.env}
    argv = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "up"]
    procs = [subprocess.Popen(argv, cwd=st.home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]  # reading the pipes is what lets them finish
    st.concurrent = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    # As a user would next: log in to both providers (the models follow the accounts).
    st.logins = {p: st.log_in(p) for p in ("codex", "claude")}
    yield st
    st.doit("down")
    st.kill_all()


@pytest.fixture
def light(tmp_path_factory, github, request):
    """A stack home of its own for fault tests; torn down after the test."""
    st = make_stack(tmp_path_factory, github, request.node.name[:30])
    yield st
    st.doit("down")
    st.kill_all()

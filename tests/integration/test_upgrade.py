"""`doit upgrade` / `doit rollback` and CLIProxyAPI switches on a running stack, under traffic.

The stack has a GitHub of its own, so the newer tags published here reach no other test: a newer
mainline release, then a broken one (its binary never listens, as the real one does on a config it
cannot use), and the Plus fork for a switch of lines and back with the network gone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import ROOT, base_env, make_home
from tests.fakes import today
from tests.fakes.github import FakeGitHub
from tests.integration.conftest import Stack, start_login
from tests.integration.traffic import Traffic
from tests.support import free_port, wait_for

LOCAL = """# my settings: FlowGate must keep this file as I wrote it
litellm:
  port: {lport}   # the gateway
  start_timeout: 120
  stop_timeout: 5

cliproxy:
  # the accounts' proxy
  port: {cport}
"""


@pytest.fixture(scope="module")
def st(tmp_path_factory):
    with FakeGitHub() as gh:
        dist = tmp_path_factory.mktemp("dist-upgrade")
        today.publish_today(gh, dist)
        st = Stack(make_home(tmp_path_factory.mktemp("upgrade") / "home"), gh)
        st.dist = dist
        st.paths.local_config.write_text(LOCAL.format(lport=st.litellm_port, cport=st.cliproxy_port))
        st.seed_accounts("codex", "claude")
        up = st.doit("up")
        assert up.returncode == 0, up.output
        yield st
        st.doit("down")
        st.kill_all()


def version(st) -> str:
    data = json.loads(st.doit("status", "--json").stdout)
    return next(s["version"] for s in data["services"] if s["service"] == "cliproxy")


def under_traffic(st, *command):
    """Run `doit COMMAND` while two clients send requests; returns (result, requests during it, failures)."""
    env = {**base_env(st.home), **st.env}
    with Traffic(st) as traffic:
        wait_for(lambda: len(traffic.results) >= 5, what="traffic before the switch")
        began = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *command], cwd=st.home,
                              env=env, capture_output=True, text=True, timeout=300)
        ended = time.monotonic()
        wait_for(lambda: len([r for r in traffic.results if r[0] > ended]) >= 5, what="traffic after the switch")
    during = [r for r in traffic.results if began <= r[0] <= ended]
    failed = [r for r in traffic.results if r[1] is not None]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc, during, failed


def assert_at_rest(st):
    """No switch left behind: no bridge process, record or config; CLIProxyAPI where the config says."""
    assert st.record("cliproxy#bridge") is None
    assert not list(st.paths.router.glob("*/config.bridge.yaml"))
    assert st.record("cliproxy")["meta"]["port"] == st.cliproxy_port


def test_upgrade_moves_to_the_newest_release_without_dropping_a_request(st):
    today.publish_mainline(st.github, st.dist, "v7.3.0")
    before = st.paths.local_config.read_text()
    proc, during, failed = under_traffic(st, "upgrade")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not failed, f"{len(failed)} requests failed: {failed[:3]}"
    assert len(during) >= 30, f"only {len(during)} requests during the upgrade"
    assert "smoke test on the new instance: " in proc.stdout and "pinned cliproxy.release.version: v7.3.0" in proc.stdout
    assert version(st) == "7.3.0"
    # the pin is added to the user's file: every line of it kept, in its order, comments included
    after = st.paths.local_config.read_text()
    assert [line for line in after.splitlines() if line.strip() not in ("release:", "version: v7.3.0")] == before.splitlines()
    assert "  release:\n    version: v7.3.0\n" in after
    assert_at_rest(st)
    pid = st.pid("cliproxy")
    again = st.doit("up")  # the pin and the running release agree: nothing to redo
    assert again.returncode == 0 and "cliproxy: unchanged" in again.stdout and st.pid("cliproxy") == pid


def test_a_release_that_fails_readiness_is_rolled_back_by_itself(st):
    today.publish_mainline(st.github, st.dist, "v7.3.1", quirk="no-listener")
    pin, pid = st.paths.local_config.read_bytes(), st.pid("cliproxy")
    proc, _, failed = under_traffic(st, "upgrade")
    assert proc.returncode != 0
    report = proc.stdout + proc.stderr
    assert "error: upgrade to v7.3.1 failed: the new CLIProxyAPI did not become ready" in report, report
    assert "rolled back: CLIProxyAPI v7.3.0 serves as before, and the pin in config/local.yaml is unchanged" in report
    assert "this build is broken" in report  # the failed build's own log lines
    assert not failed
    assert st.paths.local_config.read_bytes() == pin and st.pid("cliproxy") == pid and version(st) == "7.3.0"
    assert json.loads(st.paths.manifest.read_text())["tag"] == "v7.3.0"
    assert_at_rest(st)


def test_a_release_that_fails_the_smoke_test_is_rolled_back_by_itself(st):
    today.publish_mainline(st.github, st.dist, "v7.3.2", quirk="upstream-fails")
    pin = st.paths.local_config.read_bytes()
    proc = st.doit("upgrade")
    assert proc.returncode == 1 and "Traceback" not in proc.output
    assert "error: upgrade to v7.3.2 failed: the smoke test failed on the new CLIProxyAPI:" in proc.stderr
    assert "upstream failure for" in proc.stderr  # the new build's own answer
    assert st.paths.local_config.read_bytes() == pin and version(st) == "7.3.0"
    assert_at_rest(st)


def test_a_release_that_fails_after_traffic_moved_is_rolled_back_without_dropping_a_request(st):
    today.publish_mainline(st.github, st.dist, "v7.3.3", quirk="fails-at-home")
    pin = st.paths.local_config.read_bytes()
    proc, during, failed = under_traffic(st, "upgrade", "--to", "v7.3.3")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "moving LiteLLM to it" in proc.stdout  # it passed on the bridge, and traffic moved
    assert "error: upgrade to v7.3.3 failed:" in proc.stderr and "rolled back: CLIProxyAPI v7.3.0 serves again" in proc.stderr
    assert not failed, f"{len(failed)} requests failed: {failed[:3]}"
    assert len(during) >= 30
    assert st.paths.local_config.read_bytes() == pin and version(st) == "7.3.0"
    assert json.loads(st.paths.manifest.read_text())["tag"] == "v7.3.0"
    assert_at_rest(st)
    assert "cliproxy: unchanged" in st.doit("up").stdout


def test_rollback_returns_to_the_release_before_the_last_upgrade(st):
    """With a `doit up` started mid-switch (its config read the old pin): it waits for the stack lock,
    then finds the rolled-back release pinned and serving, and must not put the other one back."""
    seen = len(st.events("switch", "cliproxy"))
    concurrent = {}

    def up_mid_switch():
        wait_for(lambda: [e for e in st.events("switch", "cliproxy")[seen:] if e["result"] == "bridged"],
                 timeout=120, what="the rollback's traffic on the bridge")
        concurrent["up"] = st.doit("up")

    helper = threading.Thread(target=up_mid_switch)
    helper.start()
    proc, _, failed = under_traffic(st, "rollback")
    helper.join(timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not failed and "kept copy, no download" in proc.stdout
    up = concurrent["up"]
    assert up.returncode == 0 and "cliproxy: unchanged" in up.stdout and "switched" not in up.stdout, up.output
    assert version(st) == "7.2.140" and "version: v7.2.140" in st.paths.local_config.read_text()
    assert json.loads(st.paths.manifest.read_text())["tag"] == "v7.2.140"
    assert st.doit("up").returncode == 0 and version(st) == "7.2.140"  # a later `up` keeps it


def test_a_line_switch_and_back_works_offline(st):
    proc, _, failed = under_traffic(st, "upgrade", "--repo", today.PLUS_FORK, "--to", today.PLUS_TAG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not failed and version(st) == today.PLUS_TAG[1:] + "-plus"
    assert f"repo: {today.PLUS_FORK}" in st.paths.local_config.read_text()
    st.env["GITHUB_API_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there: offline
    try:
        back = st.doit("rollback")
        assert back.returncode == 0, back.output
        assert version(st) == "7.2.140" and "kept copy, no download" in back.stdout
        assert st.doit("up").returncode == 0 and version(st) == "7.2.140"
    finally:
        st.env["GITHUB_API_URL"] = st.github.api_url
    assert_at_rest(st)


def test_a_new_cliproxy_port_drops_no_request_and_cancels_a_waiting_login_with_a_clear_message(st):
    login, _ = start_login(st, "codex", "--add")  # waits on the CLIProxyAPI about to be replaced
    old_pid, new_port = st.pid("cliproxy"), free_port()
    text = st.paths.local_config.read_text()
    st.paths.local_config.write_text(text.replace(f"port: {st.cliproxy_port}", f"port: {new_port}"))
    st.cliproxy_port = new_port
    proc, during, failed = under_traffic(st, "up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cliproxy: switched" in proc.stdout and "port changed" in proc.stdout
    assert "codex login in progress" in proc.stdout and "is cancelled" in proc.stdout
    assert not failed, f"{len(failed)} requests failed: {failed[:3]}"
    assert len(during) >= 30 and st.pid("cliproxy") != old_pid
    code, out, err = login.finish(timeout=60)
    assert code != 0
    assert "the codex login was cancelled: CLIProxyAPI was replaced (port changed) while the login waited" in out + err
    assert "run `uv run doit login:codex` again" in out + err
    assert_at_rest(st)
    assert "cliproxy: unchanged" in st.doit("up").stdout


def test_an_interrupted_switch_is_finished_by_the_next_up_without_dropping_a_request(st):
    """`doit restart cliproxy` killed (SIGKILL: no cleanup at all) once LiteLLM serves through the bridge."""
    env = {**base_env(st.home), **st.env}
    switched = len(st.events("switch", "cliproxy"))
    with Traffic(st) as traffic:
        wait_for(lambda: len(traffic.results) >= 5, what="traffic before the switch")
        proc = subprocess.Popen([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "restart", "cliproxy"],
                                cwd=st.home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: [e for e in st.events("switch", "cliproxy")[switched:] if e["result"] == "bridged"],
                 timeout=120, what="LiteLLM serving through the bridge")
        proc.kill()
        proc.wait(timeout=10)
        assert st.record("cliproxy#bridge") is not None  # left behind, LiteLLM on it
        shown = json.loads(st.doit("status", "--json").stdout)["services"][1]
        assert shown["service"] == "cliproxy" and shown["swap"]["phase"] == "bridge"  # status tells
        up = st.doit("up")
        ended = time.monotonic()
        wait_for(lambda: len([r for r in traffic.results if r[0] > ended]) >= 5, what="traffic after up")
    assert up.returncode == 0, up.output
    failed = [r for r in traffic.results if r[1] is not None]
    assert not failed, f"{len(failed)} requests failed: {failed[:3]}"
    assert_at_rest(st)
    assert not list(st.paths.run_dir.glob("cliproxy#bridge.*.json"))  # nothing of the killed switch's bridge left
    again = st.doit("up")
    assert "litellm: unchanged" in again.stdout and "cliproxy: unchanged" in again.stdout

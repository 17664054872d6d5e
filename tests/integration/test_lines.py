"""The two CLIProxyAPI lines against today's GitHub: the deleted Plus repository, switching lines on a
running stack, and providers the installed binary lacks. Only CLIProxyAPI runs here (no LiteLLM boot)."""

from __future__ import annotations

import json
import os

import httpx

from tests.fakes import today
from tests.integration.test_stack import executed, status_json, wait_for


def management(st, path: str) -> httpx.Response:
    key = st.paths.secret("cliproxy_management_key").read_text().strip()
    return httpx.get(f"http://127.0.0.1:{st.cliproxy_port}/v0/management{path}",
                     headers={"Authorization": f"Bearer {key}"}, timeout=5)


def answers(st, path: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{st.cliproxy_port}{path}", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_the_deleted_plus_repository_fails_fetch_with_the_way_out(light):
    light.write_local(f"  release:\n    repo: {today.DELETED_REPO}\n    version: v6.8.16-0\n")
    result = light.doit("fetch")
    assert result.returncode == 1 and "Traceback" not in result.output
    assert f"GitHub has no release v6.8.16-0 for repository {today.DELETED_REPO} (404" in result.stderr
    assert "deleted on 2026-04-22" in result.stderr and today.MAINLINE_REPO in result.stderr
    assert today.PLUS_FORK in result.stderr
    assert not light.paths.manifest.exists()


def test_switching_lines_restarts_cliproxy_for_a_changed_binary_and_keeps_accounts(light):
    first = light.doit("start:cliproxy")
    assert first.returncode == 0, first.output
    assert "cliproxy: started" in first.stdout
    wait_for(lambda: answers(light, "/healthz"))  # the mainline's health route
    account = light.paths.auths_dir / "claude-dev@example.com.json"
    fd = os.open(account, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"type": "claude", "email": "dev@example.com", "access_token": "t", "refresh_token": "r"}, out)

    def listed():
        resp = management(light, "/auth-files")
        return resp.status_code == 200 and [f["name"] for f in resp.json()["files"]] == [account.name]
    wait_for(listed)
    old_pid = light.pid("cliproxy")

    light.write_local(line="plus")
    switched = light.doit("start:cliproxy")
    assert switched.returncode == 0, switched.output
    assert "fetch" in executed(switched)
    assert f"cliproxy: restarted (pid {light.pid('cliproxy')}): binary changed\n" in switched.stdout
    assert light.pid("cliproxy") != old_pid
    wait_for(lambda: answers(light, "/"))
    assert not answers(light, "/healthz")  # the Plus line has no health route: `/` is its probe
    wait_for(listed)  # same auth dir, same account-file format
    code, data = status_json(light)
    cliproxy = data["services"][1]
    assert cliproxy["ready"] and cliproxy["line"] == "plus" and cliproxy["version"].endswith("-plus")


def test_check_reports_a_provider_the_installed_line_lacks(light):
    assert light.doit("fetch").returncode == 0
    light.write_local("providers: [codex, github-copilot]\n")
    result = light.doit("check")
    assert result.returncode == 1 and "Traceback" not in result.output
    assert "providers: copilot needs the CLIProxyAPIPlus line (installed: CLIProxyAPI, mainline)" in result.stderr
    assert today.PLUS_FORK.split("/")[0] in result.stderr
    # the same provider with the Plus line configured: check cannot know before the next fetch, doctor can
    light.write_local("providers: [codex, github-copilot]\n", line="plus")
    assert light.doit("check").returncode == 0

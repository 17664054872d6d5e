"""Profiles, zero-downtime LiteLLM swaps and the supervising launcher, on one stack of this module's
own (mainline double, real LiteLLM). Tests run in file order: the first switches while the stack is
down and brings it up; later ones switch it under load, break it and kill its processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, base_env
from tests.integration.conftest import make_stack
from tests.integration.traffic import Traffic
from tests.support import down_and_check, wait_for

# gpt-5.5's upstream fails (a named model routed to a `double-fail*` id, which the double answers
# with 500): for the fallback test, through the shipped `reliable` profile's gpt-5.5 -> claude-sonnet-4-6.
MODELS = """models:
  - {name: gpt-5.5, model: double-fail-codex, protocol: openai}
profiles:
  broken:
    description: a profile LiteLLM refuses to start with
    router_settings:
      routing_strategy: no-such-strategy
"""


@pytest.fixture(scope="module")
def st(tmp_path_factory, github):
    # Streams of the double last ~0.25 s, so a swap meets streams in flight.
    stack = make_stack(tmp_path_factory, github, "profiles", env={"CLIPROXY_DOUBLE_STREAM_DELAY": "0.05"})
    stack.write_local(MODELS)
    stack.seed_accounts("codex", "claude")
    fetched = stack.doit("fetch")
    assert fetched.returncode == 0, fetched.output
    yield stack
    stack.doit("down")
    stack.kill_all()


def status(st) -> tuple[int, dict]:
    result = st.doit("status", "--json")
    data = json.loads(result.stdout)
    return result.returncode, {s["service"]: s for s in data["services"]} | {"_": data}


def no_traceback(result):
    assert "Traceback" not in result.output, result.output


def chat(st, model: str, text: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{st.litellm_url}/v1/chat/completions", headers={"Authorization": f"Bearer {st.master_key}"},
                      json={"model": model, "messages": [{"role": "user", "content": text}]}, timeout=timeout)


def test_switch_while_down_applies_at_next_up(st):
    result = st.doit("profile", "cost")
    assert result.returncode == 0, result.output
    assert "profile cost selected; the stack is not running" in result.stdout
    assert st.record("litellm") is None  # nothing started
    listing = st.doit("profile")
    assert "* cost" in listing.stdout and "selected with `doit profile`" in listing.stdout
    up = st.doit("up")
    assert up.returncode == 0, up.output
    assert "FlowGate is up (profile cost)" in up.stdout
    assert "num_retries: 0" in st.paths.litellm_config.read_text()
    code, svc = status(st)
    assert code == 0 and svc["_"]["profile"] == "cost" and svc["_"]["profile_source"] == "selected"


def test_unknown_profile_is_refused_with_the_known_ones(st):
    result = st.doit("profile", "fastest")
    assert result.returncode == 1
    no_traceback(result)
    assert "unknown profile 'fastest'" in result.stderr
    assert "default, reliable, cost, broken" in result.stderr
    assert json.loads(st.paths.profile_choice.read_text())["profile"] == "cost"


def test_switch_to_the_active_profile_is_up_to_date(st):
    pid = st.pid("litellm")
    result = st.doit("profile", "cost")
    assert result.returncode == 0, result.output
    assert "profile cost is already active (up to date)" in result.stdout
    assert st.pid("litellm") == pid and not st.events("swap")


def test_switch_under_load_drops_no_request(st):
    old = {s: st.pid(s) for s in ("litellm", "cliproxy")}
    env = {**base_env(st.home), **st.env}
    with Traffic(st) as traffic:
        wait_for(lambda: len(traffic.results) >= 5, what="traffic before the switch")
        began = time.monotonic()
        switch = subprocess.Popen([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "profile", "reliable"],
                                  cwd=st.home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # `doit status` names the swap while the new instance boots beside the old one
        seen = wait_for(lambda: status(st)[1]["litellm"]["swap"], timeout=60, what="status showing the swap")
        assert seen["phase"] == "starting" and seen["new_pid"] != old["litellm"]
        out, err = switch.communicate(timeout=240)
        ended = time.monotonic()
        wait_for(lambda: len([r for r in traffic.results if r[0] > ended]) >= 5, what="traffic after the switch")
    assert switch.returncode == 0, out + err
    assert "litellm: swapped" in out and "profile reliable is active" in out
    across = [r for r in traffic.results if began <= r[0] <= ended]
    assert len(across) >= 30, f"only {len(across)} requests during the switch"
    failed = [r for r in traffic.results if r[1] is not None]
    assert not failed, f"{len(failed)} of {len(traffic.results)} requests failed: {failed[:3]}"
    assert st.pid("litellm") != old["litellm"] and st.pid("cliproxy") == old["cliproxy"]
    swap = [e for e in st.events("swap", "litellm") if e["result"] == "ok"][-1]
    assert swap["old_pid"] == old["litellm"] and swap["new_pid"] == st.pid("litellm")
    assert swap["seconds_to_ready"] > 0 and isinstance(swap["drained"], int)
    switched = st.events("profile")[-1]
    assert (switched["old"], switched["new"], switched["applied"]) == ("cost", "reliable", True)
    assert not st.events("start", "cliproxy")[1:] and not st.events("restart", "cliproxy")
    code, svc = status(st)
    assert code == 0 and svc["litellm"]["swap"] is None and svc["_"]["profile"] == "reliable"


def test_fallbacks_serve_from_the_fallback_model_only_in_the_reliable_profile(st):
    served = chat(st, "gpt-5.5", "fall back")  # its upstream answers 500; reliable falls back to Claude
    assert served.status_code == 200, served.text
    assert served.json()["choices"][0]["message"]["content"] == "double(claude-sonnet-4-6): fall back"
    switched = st.doit("profile", "default")
    assert switched.returncode == 0, switched.output
    failed = chat(st, "gpt-5.5", "no fallback")
    assert failed.status_code == 500
    assert "upstream failure for double-fail-codex" in failed.text


def test_a_config_that_fails_to_boot_keeps_the_old_instance_serving(st):
    old = st.pid("litellm")
    result = st.doit("profile", "broken")
    assert result.returncode == 1
    no_traceback(result)
    assert f"the old one (pid {old}) keeps serving" in result.stderr
    assert "Invalid routing_strategy: 'no-such-strategy'" in result.stderr  # the new instance's log tail
    assert "profile default stays active" in result.stderr
    assert st.pid("litellm") == old
    code, svc = status(st)
    assert code == 0 and svc["litellm"]["ready"] and svc["litellm"]["drift"] is False
    assert svc["_"]["profile"] == "default"
    assert chat(st, "gpt-5.4-mini", "still here").status_code == 200
    assert [e for e in st.events("swap") if e["result"] == "failed"]


def test_a_crash_after_a_failed_config_change_restarts_the_config_that_booted(st):
    """`up` with an edited config that passes `check` but does not boot fails and leaves the rendered
    file broken; the old launcher's next restart must not load it."""
    local = st.paths.local_config.read_text()
    st.write_local(MODELS + "router_settings:\n  routing_strategy: no-such-strategy\n")
    try:
        old = st.pid("litellm")
        assert st.doit("check").returncode == 0
        result = st.doit("up")
        assert result.returncode == 1 and f"the old one (pid {old}) keeps serving the last config that booted" \
            in result.stderr, result.output
        code, svc = status(st)
        serving = svc["litellm"]["serving_config"]
        assert svc["litellm"]["drift"] is True and serving != str(st.paths.litellm_config)
        assert "no-such-strategy" not in open(serving).read() and "serves the config it booted with" in st.doit("status").stdout
        victim = svc["litellm"]["service_pid"]
        os.kill(victim, signal.SIGKILL)  # the old worker crashes once: its launcher restarts it
        back = wait_for(lambda: (e := status(st)[1]["litellm"])["ready"] and e["service_pid"] not in (None, victim) and e,
                        timeout=180, interval=0.2, what="litellm restarted from the config that booted")
        assert back["restarts"] == 1 and not back["gave_up"] and st.pid("litellm") == old
        assert chat(st, "gpt-5.4-mini", "still here").status_code == 200
    finally:
        st.paths.local_config.write_text(local)
    fixed = st.doit("up")
    assert fixed.returncode == 0, fixed.output
    code, svc = status(st)
    assert code == 0 and svc["litellm"]["drift"] is False


@pytest.mark.parametrize("service", ["cliproxy", "litellm"])
def test_kill9_of_a_service_brings_it_back_without_a_command(st, service):
    launcher = st.pid(service)
    victim, restarts = (status(st)[1][service][k] for k in ("service_pid", "restarts"))
    os.kill(victim, signal.SIGKILL)

    def back():
        code, svc = status(st)
        entry = svc[service]
        return code == 0 and entry["ready"] and entry["service_pid"] not in (None, victim) and entry

    entry = wait_for(back, timeout=180, interval=0.2, what=f"{service} back after kill -9")
    assert entry["restarts"] == restarts + 1 and entry["last_exit_code"] == -9
    assert st.pid(service) == launcher  # the same launcher restarted it
    assert [e for e in st.events("restart", service) if "SIGKILL" in e["detail"]]
    assert chat(st, "gpt-5.4-mini", "back").status_code == 200


def test_a_service_dying_at_once_on_every_start_is_given_up(st):
    binary = st.paths.bin_dir / st.line.binary
    good = binary.read_bytes()
    broken = binary.with_name("broken")
    broken.write_text("#!/bin/sh\necho 'cannot start: broken on purpose'\nexit 3\n")
    broken.chmod(0o755)
    os.replace(broken, binary)  # a new inode: the running process is unaffected until it restarts
    try:
        os.kill(status(st)[1]["cliproxy"]["service_pid"], signal.SIGKILL)
        gave_up = wait_for(lambda: status(st)[1]["cliproxy"]["gave_up"], timeout=60, interval=0.2,
                           what="the launcher giving up")
        assert "gave up" in gave_up and "exited with code 3" in gave_up
        code, svc = status(st)
        assert code == 1 and svc["cliproxy"]["state"] == "crashed" and svc["cliproxy"]["exit_code"] == 3
        table = st.doit("status")
        assert "cliproxy: the launcher gave up" in table.stdout
        assert st.events("give-up", "cliproxy")
    finally:
        binary.write_bytes(good)
    up = st.doit("up")
    assert up.returncode == 0, up.output
    assert "cliproxy: restarted" in up.stdout


def test_down_stops_everything(st):
    down_and_check(st)
    assert sorted(p.name for p in st.paths.run_dir.glob("*.json")) == []
    assert not list(st.paths.litellm_config.parent.glob("config.litellm*.yaml"))  # the configs that booted

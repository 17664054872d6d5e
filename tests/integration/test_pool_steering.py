"""Issue 29, on the double and on the real v7.2.140 alike: two accounts per provider under steady traffic (a request every 1.5 s through the gateway,
with the real `openai` / `anthropic` SDKs), the double's windows filling 10 % a request.

One scenario, in order: codex account a fills alone, b (disabled by the user) is enabled, a crosses
the threshold and the steward takes it out before it reaches 100 % while b serves; b crosses too and
every codex account is out: gpt-5.5 goes on with the `reliable` profile's fallback (claude-sonnet-4-6)
and gpt-5.4 (no fallback) gets a 429 in the client's protocol naming the reset; a comes back after its
reset. The traffic sees 0 failures throughout; the double never answered usage_limit_reached (no
`failed` count); claude account d, disabled by the user, is never enabled; the decisions are events
`doit status` shows.
"""

from __future__ import annotations

import threading
import time

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import running
from tests.integration.pool_harness import pool_stack
from tests.support import wait_for, write_account

STEP, RESET, EVERY = 10, 35, 1.5


class Traffic(threading.Thread):
    """gpt-5.5 every EVERY seconds until stopped: (sent at, answered at, "<model> <text>" answered, error)."""

    def __init__(self, st):
        super().__init__(daemon=True)
        self.st, self.results, self.halt = st, [], threading.Event()

    def run(self):
        with openai.OpenAI(base_url=self.st.litellm_url + "/v1", api_key=self.st.master_key, max_retries=0,
                           timeout=30) as client:
            while not self.halt.is_set():
                sent = time.time()
                try:
                    answer = client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}])
                    self.results.append((sent, time.time(), f"{answer.model} {answer.choices[0].message.content}", None))
                except openai.APIError as exc:
                    self.results.append((sent, time.time(), None, repr(exc)))
                self.halt.wait(max(0.0, EVERY - (time.time() - sent)))


def files(st) -> dict:
    key = st.paths.secret("cliproxy_management_key").read_text().strip()
    answer = httpx.get(f"http://127.0.0.1:{st.cliproxy_port}/v0/management/auth-files", timeout=5,
                       headers={"Authorization": f"Bearer {key}"})
    return {f["name"]: f for f in answer.json()["files"]}


def pool(st) -> dict:
    from tasks.accounts import pool_state

    return pool_state.read(st.paths) or {"accounts": [], "steered": {}}


def state_of(st, name) -> str | None:
    return next((a["state"] for a in pool(st)["accounts"] if a["name"] == name), None)


@pytest.fixture(scope="module", params=["double", "real"])
def pooled(tmp_path_factory, github, request):
    """The stack up with two codex and two claude accounts, on the double (its knobs) or on the real
    v7.2.140 (tests/fakes/provider.py's subscriptions through tests/fakes/mitm.py: test_real_pool.py's harness)."""
    closers = []
    st, proxy = pool_stack(request.param, tmp_path_factory, github, f"steer-{request.param}", STEP, RESET, closers)
    st.write_local("profile: reliable\naccounts:\n  threshold: 90\n")
    st.paths.auths_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    names = {"a": write_account(st.paths.auths_dir, "codex", "a@example.com", proxy_url=proxy),
             "b": write_account(st.paths.auths_dir, "codex", "b@example.com", disabled=True, proxy_url=proxy),
             "c": write_account(st.paths.auths_dir, "claude", "c@example.com", proxy_url=proxy),
             "d": write_account(st.paths.auths_dir, "claude", "d@example.com", disabled=True, proxy_url=proxy)}
    try:
        with running(st):
            yield st, names
    finally:
        for close in reversed(closers):
            close()


def test_two_accounts_per_provider_through_a_crossing_exhaustion_and_reset(pooled):
    st, names = pooled
    a, b, d = names["a"], names["b"], names["d"]
    wait_for(lambda: state_of(st, a) == "in" and state_of(st, b) == "disabled-by-user", 30, what="the steward's first pass")
    traffic = Traffic(st)
    traffic.start()
    try:
        wait_for(lambda: files(st)[a]["success"] >= 5, 30, interval=0.2, what="a at 50 %")
        enabled = st.doit("accounts", "--enable", b)  # the user's own enable: b joins the rotation
        assert enabled.returncode == 0, enabled.output
        crossed = []  # when a served its 9th request (90 %), as its counter shows

        def a_out():
            if not crossed and files(st)[a]["success"] >= 9:
                crossed.append(time.time())
            return state_of(st, a) == "out"

        wait_for(a_out, 60, interval=0.1, what="a out of rotation")
        out_event = next(e for e in st.events("steer") if e["result"] == "out" and e.get("file") == a)
        listed = files(st)
        assert listed[a]["disabled"] is True and listed[a]["success"] < 10 and listed[a]["failed"] == 0
        assert "5h window 90 % >= 90 %" in out_event["detail"]
        if crossed:
            from datetime import datetime

            reaction = datetime.fromisoformat(out_event["ts"]).timestamp() - crossed[0]
            print(f"\nreaction: threshold crossing -> account out in {reaction:.2f} s")  # docs/dev/measurements.md
        wait_for(lambda: "gpt-5.5" in pool(st)["steered"] and files(st)[b]["disabled"], 60, interval=0.2,
                 what="every codex account out")  # disabled after the gateway had time to see the state
        steered = pool(st)["steered"]
        assert steered["gpt-5.5"]["fallback"] == "claude-sonnet-4-6" and steered["gpt-5.4"]["fallback"] is None
        resets = steered["gpt-5.4"]["resets_at"]
        with openai.OpenAI(base_url=st.litellm_url + "/v1", api_key=st.master_key, max_retries=0) as client:
            with pytest.raises(openai.RateLimitError) as refused:
                client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "hi"}])
        assert "every codex account is out of rotation" in str(refused.value)
        assert time.strftime("%H:%M:%S", time.gmtime(resets)) in str(refused.value)
        assert 1 <= int(refused.value.response.headers["retry-after"]) <= RESET
        with anthropic.Anthropic(base_url=st.litellm_url, api_key=st.master_key, max_retries=0) as client:
            with pytest.raises(anthropic.RateLimitError) as refused:
                client.messages.create(model="gpt-5.4", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        assert refused.value.body["error"]["type"] == "rate_limit_error"
        wait_for(lambda: any(r[2] and "claude-sonnet-4-6" in r[2] for r in traffic.results), 30,
                 what="the fallback answering")
        wait_for(lambda: state_of(st, a) == "in", RESET + 30, what="a back after its reset")
        assert files(st)[a]["disabled"] is False
        wait_for(lambda: "gpt-5.5" not in pool(st)["steered"], 10, what="codex available again")
        served = len(traffic.results)
        wait_for(lambda: len(traffic.results) >= served + 2, 10, what="traffic after the return")
    finally:
        traffic.halt.set()
        traffic.join(30)
    failures = [r for r in traffic.results if r[3]]
    assert not failures, failures
    assert any((r[2] or "").startswith("gpt-5.5") for r in traffic.results[-2:])  # the model itself again
    listed = files(st)
    assert all(listed[n]["failed"] == 0 for n in (a, b)), "the double answered usage_limit_reached"
    assert listed[d]["disabled"] is True and state_of(st, d) == "disabled-by-user"  # the user's, never undone
    status = st.doit("status").stdout
    assert "steering: on, threshold 90 %" in status
    up = st.doit("up")  # a no-op up names the steward with the others
    assert up.returncode == 0 and "steward: unchanged" in up.stdout and "steering on, threshold 90 %" in up.stdout
    accounts = st.doit("accounts").stdout
    assert "disabled by you" in accounts and "in rotation" in accounts
    assert "steward.log <==" in st.doit("logs", "steward").stdout
    pid = st.pid("steward")
    st.write_local("profile: reliable\naccounts:\n  threshold: 80\n")  # an edit of accounts: restarts it
    assert "restart the account pool's steward" in st.doit("status").stdout
    up = st.doit("up")
    assert up.returncode == 0 and "steward: restarted" in up.stdout and "config changed" in up.stdout, up.output
    assert st.pid("steward") != pid and "steering on, threshold 80 %" in up.stdout
    assert "back in rotation" in status and "every codex account is out" in status

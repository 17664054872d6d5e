"""The steward's pass against a management API in memory: what it asks, what it changes, what it writes."""

import json

from tasks.accounts import pool_state, quota
from tasks.accounts.quota_parse import Window
from tasks.pool.steward import Steward
from tasks.stack import events


class FakeManagement:
    def __init__(self, files):
        self.files, self.patches = files, []

    def get(self, route, **query):
        assert route == "auth-files"
        return {"files": [dict(f) for f in self.files]}

    def request(self, method, route, *, query=None, body=None):
        assert (method, route) == ("PATCH", "auth-files/status")
        self.patches.append(body)
        for f in self.files:
            if f["name"] == body["name"]:
                f["disabled"] = body["disabled"]
        return {"status": "ok"}


def file(name, provider="codex", **extra):
    return {"name": name, "type": provider, "email": f"{name}@x", "status": "active", "auth_index": f"i-{name}",
            "success": 0, "failed": 0, **extra}


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept = getattr(self, "slept", 0) + seconds


def steward(paths, files, used, clock, stack=None):
    client = FakeManagement(files)
    reads = []

    def read_one(_client, _paths, account, now=None):
        reads.append(account.name)
        return quota.Quota(account.name, account.provider, account.label, "plus",
                           [Window("5h", used[account.name], clock.now + 600)], "")

    stack = stack or {"accounts": {"threshold": 90, "min_refresh_seconds": 2, "refresh_seconds": 60},
                      "router_settings": {"fallbacks": [{"gpt-5.5": ["claude-sonnet-4-6"]}]}}
    return Steward(paths, stack, client, clock=clock, read_one=read_one, ledger=None, sleep=clock.sleep), client, reads


def test_takes_out_past_the_threshold_puts_back_at_the_reset_and_says_so(paths):
    clock, used = Clock(), {"a": 50.0, "b": 20.0}
    s, client, reads = steward(paths, [file("a"), file("b")], used, clock)
    s.cycle()
    assert sorted(reads) == ["a", "b"] and client.patches == []
    used["a"] = 92.0
    client.files[0]["success"] = 5  # it served: read again once min_refresh has passed
    clock.now += 1
    s.cycle()
    assert sorted(reads) == ["a", "b"]
    clock.now += 1
    s.cycle()
    assert client.patches == [{"name": "a", "disabled": True, "auth_index": "i-a"}]
    state = pool_state.read(paths)
    a = pool_state.account(state, "a")
    assert a["state"] == "out" and a["reason"] == "5h window 92 % >= 90 %" and a["until"] == 1602.0
    assert a["windows"][0]["used_percent"] == 92.0 and a["windows"][0]["full_at"] is not None
    assert (paths.state_dir / "pool.json").stat().st_mode & 0o777 == 0o600
    assert json.loads(paths.quota_cache.read_text())["accounts"][0]["windows"][0]["used_percent"] == 92.0
    steer = [e for e in events.read(paths) if e["event"] == "steer"]
    assert steer[-1]["result"] == "out" and "a@x out of rotation: 5h window 92 %" in steer[-1]["detail"]
    used["a"] = 0.0
    clock.now = 1602.0
    s.cycle()
    assert client.patches[-1] == {"name": "a", "disabled": False, "auth_index": "i-a"}
    assert pool_state.account(pool_state.read(paths), "a")["state"] == "in"


def test_a_users_disable_is_kept_and_a_new_steward_remembers_its_own(paths):
    clock, used = Clock(), {"a": 95.0, "b": 10.0}
    s, client, _ = steward(paths, [file("a"), file("b", disabled=True)], used, clock)
    s.cycle()
    assert client.patches == [{"name": "a", "disabled": True, "auth_index": "i-a"}]
    assert pool_state.account(pool_state.read(paths), "b")["state"] == "disabled-by-user"
    # a restarted steward: "a" is still its own, "b" still the user's
    s2, client2, _ = steward(paths, client.files, used, clock)
    after_reset(s2, used, clock)
    assert client2.patches == [{"name": "a", "disabled": False, "auth_index": "i-a"}]
    assert pool_state.account(pool_state.read(paths), "b")["state"] == "disabled-by-user"


def after_reset(s, used, clock):
    used["a"] = 0.0
    clock.now += 700
    s.cycle()


def test_a_user_disable_of_an_account_that_is_out_is_never_undone(paths):
    clock, used = Clock(), {"a": 95.0}
    s, client, _ = steward(paths, [file("a")], used, clock)
    s.cycle()
    pool_state.note_user(paths, "a", "disable")  # `doit accounts --disable a` while it is out
    after_reset(s, used, clock)
    assert client.patches == [{"name": "a", "disabled": True, "auth_index": "i-a"}]
    assert pool_state.account(pool_state.read(paths), "a")["state"] == "disabled-by-user"


def test_every_account_out_steers_the_providers_models(paths):
    from tasks.catalog import store

    store.write(paths, store.Catalog(1.0, [store.Served("gpt-5.5", "openai", 0, "openai", ["codex"], []),
                                           store.Served("claude-sonnet-4-6", "anthropic", 0, "anthropic", ["claude"], [])],
                                     [], False))
    clock, used = Clock(), {"a": 95.0, "b": 91.0, "c": 10.0}
    s, client, _ = steward(paths, [file("a"), file("b"), file("c", provider="claude")], used, clock)
    patched_after = []
    patch = client.request
    client.request = lambda *args, **kw: (patched_after.append((pool_state.read(paths) or {}).get("steered")), patch(*args, **kw))[1]
    s.cycle()
    # the state naming the steered models was written, and the gateway given time to see it, before the last disable
    assert all(seen and "gpt-5.5" in seen for seen in patched_after) and clock.slept >= 0.3
    state = pool_state.read(paths)
    assert state["steered"] == {"gpt-5.5": {"provider": "codex", "resets_at": 1600.0, "fallback": "claude-sonnet-4-6"}}
    exhausted = [e for e in events.read(paths) if e["result"] == "exhausted"]
    assert exhausted and "every codex account is out" in exhausted[0]["detail"]


def test_a_failing_listing_is_one_event_not_a_dead_loop(paths):
    from tasks.base.errors import FlowgateError

    clock = Clock()
    s, client, _ = steward(paths, [file("a")], {"a": 1.0}, clock)

    def refuse(route, **query):
        raise FlowgateError("CLIProxyAPI is not running")

    client.get = refuse
    s.cycle()  # CLIProxyAPI starting beside it: no event yet
    assert not [e for e in events.read(paths) if e["event"] == "steer"]
    clock.now += 31
    s.cycle()
    s.cycle()
    errors = [e for e in events.read(paths) if e["event"] == "steer" and e["result"] == "error"]
    assert len(errors) == 1


def test_the_usage_ledger_every_pass_the_queue_only_when_allowed_and_a_failure_is_one_event(paths):
    calls = []

    class Ledger:
        def note_counters(self, paths, files, now=None):
            calls.append(("counters", [f["name"] for f in files]))

        def drain_queue(self, paths, client, limit=500):
            calls.append(("queue",))
            raise RuntimeError("queue broken")

    clock = Clock()
    for queue in (False, True):
        stack = {"accounts": {"read_usage_queue": queue}}
        s = Steward(paths, stack, FakeManagement([file("a")]), clock=clock, ledger=Ledger(), sleep=clock.sleep,
                    read_one=lambda c, p, a, now=None: quota.Quota(a.name, a.provider, a.label, "", [], "no windows"))
        calls.clear()
        s.cycle()
        s.cycle()
        assert calls.count(("counters", ["a"])) == 2 and calls.count(("queue",)) == (2 if queue else 0)
    errors = [e for e in events.read(paths) if e["event"] == "steer" and e["result"] == "error"]
    assert len(errors) == 1 and "queue broken" in errors[0]["detail"]

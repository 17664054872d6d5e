from tasks.accounts.inventory import Account
from tasks.accounts.quota_parse import Window
from tasks.pool import policy
from tasks.pool.policy import EMPTY, Memory


def acct(name, provider="codex", disabled=False, source="oauth"):
    return Account(name=name, provider=provider, type=provider, label=f"{name}@x", status="active", disabled=disabled,
                   last_refresh="", status_message="", unavailable=False, auth_index=f"i-{name}", source=source)


def test_an_account_past_the_threshold_goes_out_until_its_window_resets():
    d = policy.decide([acct("a"), acct("b")], {"a": [Window("5h", 92.0, 5000.0), Window("weekly", 40.0, 9000.0)],
                                               "b": [Window("5h", 50.0, 5000.0)]}, EMPTY, 90, now=1000)
    assert [(a.name, why, until) for a, why, until in d.take_out] == [("a", "5h window 92 % >= 90 %", 5000.0)]
    assert d.verdicts["a"].state == "out" and d.verdicts["b"].state == "in"
    assert d.memory.ours == {"a": {"until": 5000.0, "reason": "5h window 92 % >= 90 %"}}


def test_ours_comes_back_at_its_reset_or_when_below_the_threshold():
    memory = Memory({"a": {"until": 5000.0, "reason": "r"}}, {}, frozenset())
    stale = {"a": [Window("5h", 95.0, 5000.0)]}
    assert policy.decide([acct("a", disabled=True)], stale, memory, 90, now=4999).verdicts["a"].state == "out"
    back = policy.decide([acct("a", disabled=True)], stale, memory, 90, now=5000)
    assert [a.name for a, *_ in back.put_back] == ["a"] and back.memory.ours == {}
    early = policy.decide([acct("a", disabled=True)], {"a": [Window("5h", 3.0, 9999.0)]}, memory, 90, now=100)
    assert [a.name for a, *_ in early.put_back] == ["a"]


def test_a_users_disable_is_never_undone():
    d = policy.decide([acct("a", disabled=True)], {"a": [Window("5h", 0.0, 1.0)]}, EMPTY, 90, now=10)
    assert not d.put_back and d.verdicts["a"].state == "disabled-by-user"
    # the user disabled one the steward had out: it is the user's from now on
    memory = Memory({"a": {"until": 50.0, "reason": "r"}}, {}, frozenset({"a"}))
    d = policy.decide([acct("a", disabled=True)], {}, memory, 90, now=60)
    assert not d.put_back and d.verdicts["a"].state == "disabled-by-user" and d.memory.ours == {}


def test_an_account_the_user_put_back_stays_in_until_its_reset():
    memory = Memory({"a": {"until": 500.0, "reason": "r"}}, {}, frozenset())
    full = {"a": [Window("5h", 95.0, 500.0)]}
    d = policy.decide([acct("a")], full, memory, 90, now=100)
    assert not d.take_out and d.verdicts["a"] == policy.Verdict("in", "put back by you", 500.0)
    d = policy.decide([acct("a")], full, d.memory, 90, now=200)
    assert not d.take_out
    d = policy.decide([acct("a")], full, d.memory, 90, now=600)  # past that reset: steered again
    assert [a.name for a, *_ in d.take_out] == ["a"]


def test_steering_off_puts_ours_back_and_takes_none_out():
    memory = Memory({"a": {"until": 500.0, "reason": "r"}}, {}, frozenset())
    d = policy.decide([acct("a", disabled=True), acct("b")], {"b": [Window("5h", 99.0, 1.0)]}, memory, 90, now=1,
                      steering=False)
    assert [a.name for a, *_ in d.put_back] == ["a"] and not d.take_out


def test_api_keys_are_never_touched_and_count_as_in_rotation():
    d = policy.decide([acct("k", source="api-key"), acct("a")], {"a": [Window("5h", 99.0, 50.0)], "k": [Window("5h", 99.0, 1.0)]},
                      EMPTY, 90, now=1)
    assert [a.name for a, *_ in d.take_out] == ["a"] and d.verdicts["k"].state == "in"
    assert policy.steered([acct("k", source="api-key"), acct("a")], d.verdicts, {"codex": ["gpt-5.5"]}, {}) == {}


def test_steered_when_every_account_is_out_with_the_earliest_reset_and_a_fallback():
    accounts = [acct("a"), acct("b"), acct("c", provider="claude")]
    verdicts = {"a": policy.Verdict("out", "", 700.0), "b": policy.Verdict("out", "", 600.0),
                "c": policy.Verdict("in", "", None)}
    models = {"codex": ["gpt-5.5", "gpt-5.4-mini"], "claude": ["claude-sonnet-4-6"]}
    fallbacks = {"gpt-5.5": ["gpt-5.4-mini", "claude-sonnet-4-6"]}
    assert policy.steered(accounts, verdicts, models, fallbacks) == {
        "gpt-5.5": {"provider": "codex", "resets_at": 600.0, "fallback": "claude-sonnet-4-6"},
        "gpt-5.4-mini": {"provider": "codex", "resets_at": 600.0, "fallback": None}}
    verdicts["b"] = policy.Verdict("disabled-by-user", "", None)  # one out, one the user's: still none in rotation
    assert set(policy.steered(accounts, verdicts, models, fallbacks)) == {"gpt-5.5", "gpt-5.4-mini"}
    verdicts["a"] = policy.Verdict("disabled-by-user", "", None)  # all the user's: not the steward's to answer
    assert policy.steered(accounts, verdicts, models, fallbacks) == {}


def test_fallback_map_reads_the_profiles_chains():
    stack = {"router_settings": {"fallbacks": [{"gpt-5.5": ["claude-sonnet-4-6"]}, {"x": "bad"}, "junk"]}}
    assert policy.fallback_map(stack) == {"gpt-5.5": ["claude-sonnet-4-6"]}
    assert policy.fallback_map(None) == {}

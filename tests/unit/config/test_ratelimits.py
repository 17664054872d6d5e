"""tasks.ratelimits: rpm/tpm under a routing strategy that ignores them."""

from __future__ import annotations

from tasks.config.ratelimits import unenforced


def stack(strategy=None, params=None):
    settings = {"routing_strategy": strategy} if strategy else {}
    return {"router_settings": settings, "models": [{"name": "a", "params": params or {}}, {"name": "b", "params": {}}]}


def test_a_limit_under_the_default_strategy_is_named_with_the_one_that_enforces_it():
    [warning] = unenforced(stack(params={"rpm": 6, "tpm": 1000}))
    assert warning.startswith("models[0] (a): rpm/tpm set, but not enforced under routing_strategy simple-shuffle")
    assert "routing_strategy: usage-based-routing-v2" in warning
    assert unenforced(stack("least-busy", {"tpm": 5}))


def test_no_warning_when_enforced_or_unset():
    assert unenforced(stack("usage-based-routing-v2", {"rpm": 6})) == []
    assert unenforced(stack()) == []

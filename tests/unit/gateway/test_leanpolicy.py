"""tasks.gateway.leanpolicy: which requests the lean path may take, from the rendered LiteLLM config."""

from __future__ import annotations

import pytest

from tasks.gateway.leanpolicy import Policy, decide, summary

ROOT = "http://127.0.0.1:8317"
KEY = "sk-cliproxy"


def rendered(**sections) -> dict:
    """A config as FlowGate renders it: the pattern routes, the shipped settings, then `sections`."""
    config = {
        "model_list": [
            {"model_name": "claude-*", "litellm_params": {"model": "anthropic/claude-*", "api_base": ROOT, "api_key": KEY},
             "model_info": {"flowgate": "flowgate-catalog"}},
            {"model_name": "*", "litellm_params": {"model": "openai/*", "api_base": ROOT + "/v1", "api_key": KEY},
             "model_info": {"flowgate": "flowgate-catalog"}},
        ],
        "litellm_settings": {"drop_params": True, "num_retries": 1, "request_timeout": 600},
        "router_settings": {"routing_strategy": "simple-shuffle"},
        "general_settings": {"master_key": "sk-master", "custom_auth": "flowgate_auth.user_api_key_auth"},
    }
    for section, values in sections.items():
        if section == "model_list":
            config["model_list"] = values + config["model_list"]
        elif isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    return config


def named(name: str, model: str, base: str = ROOT + "/v1", **params) -> dict:
    return {"model_name": name, "litellm_params": {"model": model, "api_base": base, "api_key": KEY, **params}}


def test_the_shipped_config_sends_everything_the_lean_path_can_serve_to_it():
    policy = decide(rendered(), ROOT)
    assert policy == Policy(None, {})
    assert summary(policy) == "lean path: every CLIProxyAPI model in its own protocol"


def test_the_reliable_profile_keeps_the_lean_path_for_models_without_fallbacks():
    policy = decide(rendered(litellm_settings={"num_retries": 2}, router_settings={
        "num_retries": 2, "allowed_fails": 2, "cooldown_time": 30, "timeout": 600, "retry_after": 1,
        "redis_host": "127.0.0.1", "redis_port": 6380, "redis_password": "pw",
        "fallbacks": [{"gpt-5.5": ["claude-sonnet-4-6"]}, {"claude-sonnet-4-6": ["gpt-5.5"]}]}), ROOT)
    assert policy == Policy(None, {"gpt-5.5": "fallbacks", "claude-sonnet-4-6": "fallbacks"})
    assert summary(policy) == ("lean path: CLIProxyAPI models in their own protocol; "
                               "LiteLLM's path: claude-sonnet-4-6, gpt-5.5 (fallbacks)")


@pytest.mark.parametrize("section,key,value", [
    ("litellm_settings", "callbacks", ["detect_prompt_injection"]),
    ("litellm_settings", "success_callback", ["generic_api"]),
    ("litellm_settings", "failure_callback", ["langfuse"]),
    ("litellm_settings", "guardrails", [{"prompt_injection": {"callbacks": ["lakera_prompt_injection"]}}]),
    ("litellm_settings", "cache", True),
    ("litellm_settings", "model_alias_map", {"fast": "gpt-5.4-mini"}),
    ("general_settings", "forward_client_headers_to_llm_api", True),
    ("router_settings", "model_group_alias", {"fast": "gpt-5.4-mini"}),
    ("router_settings", "default_fallbacks", ["gpt-5.5"]),
    ("litellm_settings", "some_flag_litellm_adds_next_year", 1),  # unknown: not known to be safe
    ("guardrails", None, [{"guardrail_name": "g", "litellm_params": {"guardrail": "presidio"}}]),
])
def test_a_setting_the_lean_path_does_not_implement_sends_every_request_to_litellm(section, key, value):
    config = rendered(**{section: {key: value} if key else value})
    policy = decide(config, ROOT)
    assert policy.off == (f"{section}.{key}" if key else section) and policy.models == {}
    assert summary(policy).startswith(f"lean path: off ({policy.off})")


@pytest.mark.parametrize("strategy,lean", [("simple-shuffle", True), ("usage-based-routing-v2", True),
                                           ("latency-based-routing", False), ("least-busy", False)])
def test_only_routing_strategies_that_need_no_answer_keep_the_lean_path(strategy, lean):
    policy = decide(rendered(router_settings={"routing_strategy": strategy}), ROOT)
    assert (policy.off is None) is lean


def test_an_empty_or_false_setting_enables_nothing():
    policy = decide(rendered(litellm_settings={"callbacks": [], "cache": False, "success_callback": None},
                             general_settings={"forward_client_headers_to_llm_api": False}), ROOT)
    assert policy == Policy(None, {})


@pytest.mark.parametrize("key", ["fallbacks", "context_window_fallbacks", "content_policy_fallbacks"])
@pytest.mark.parametrize("section", ["litellm_settings", "router_settings"])
def test_each_kind_of_fallback_sends_its_models_to_litellm(section, key):
    policy = decide(rendered(**{section: {key: [{"gpt-5.4": ["gpt-5.5"]}, {"gpt-5.3": []}]}}), ROOT)
    assert policy == Policy(None, {"gpt-5.4": key.replace("_", " ")})  # an empty chain falls back nowhere


def test_a_fallback_for_every_model_sends_every_request_to_litellm():
    assert decide(rendered(router_settings={"fallbacks": [{"*": ["gpt-5.5"]}]}), ROOT).off == "router_settings.fallbacks: *"


def test_named_models_the_lean_path_cannot_forward_as_they_are():
    policy = decide(rendered(model_list=[
        named("gpt-5.5", "openai/gpt-5.5", rpm=60),  # a served id with an rpm limit: lean
        named("fast", "openai/gpt-5.4-mini"),  # an alias
        named("tuned", "openai/tuned", extra_headers={"x": "y"}),
        named("counted", "openai/counted", tpm=1000),
        named("gpt-4o-direct", "openai/gpt-4o", base="https://api.openai.com/v1"),
        named("claude-x", "anthropic/claude-x", base=ROOT),  # Anthropic against the root: lean
    ]), ROOT)
    assert policy == Policy(None, {"fast": "alias of gpt-5.4-mini", "tuned": "params: extra_headers",
                                   "counted": "params: tpm", "gpt-4o-direct": "not CLIProxyAPI"})


def test_the_switch_and_a_stack_without_cliproxy_turn_it_off():
    assert decide(rendered(), ROOT, enabled=False).off == "litellm.lean_path: false"
    assert decide(rendered(), None).off == "cliproxy.enabled: false"


def test_the_summary_stays_one_short_line():
    policy = Policy(None, {**{f"model-{i}": "fallbacks" for i in range(10)}, "fast": "alias of gpt-5.4-mini"})
    assert summary(policy) == ("lean path: CLIProxyAPI models in their own protocol; LiteLLM's path: "
                               "fast (alias of gpt-5.4-mini); model-0, model-1, model-2 +7 (fallbacks)")

"""Which requests the lean path may take, decided once per config from the rendered LiteLLM config.

The lean path (tasks.gateway.leanpath) is an optimisation, never a feature: a request takes it only when
the config enables nothing it does not implement identically. This module is that decision, as one
pure function of the rendered config (`decide`), used by the lean path when LiteLLM's process starts
and by `doit status` (`summary`). It is an allow-list: a LiteLLM setting not named in SAFE below sends
every request to LiteLLM's path, so a setting LiteLLM gains later is safe until the differential
suite (tests/integration/test_lean_differential.py) covers it and it is added here.

What the lean path implements itself (so these settings leave it on):
- litellm_settings: num_retries and request_timeout (the attempts and timeouts LiteLLM would make),
  drop_params (no parameter LiteLLM would drop or rename is ever forwarded: see BODY_KEYS),
  set_verbose / json_logs (logging only);
- router_settings: num_retries, retry_after, timeout, allowed_fails and cooldown_time (LiteLLM's
  Router picks the deployment and counts the failures it retries), routing_strategy simple-shuffle or
  usage-based-routing-v2 (its rpm pre-call check runs), the shared Redis (redis_*, cache_kwargs);
- general_settings: FlowGate's own master_key and custom_auth; disable_spend_logs and
  disable_error_logs (LiteLLM's database logs, which the lean path never writes).

What sends requests to LiteLLM's path:
- every request: any callback (callbacks, success_callback, failure_callback, ...), guardrails, a
  response cache, model_alias_map, forward_client_headers_to_llm_api, a routing strategy that learns
  from answers, default fallbacks, any other setting (or top-level key) not known to be safe;
- the requests for one model: a model named by fallbacks, context_window_fallbacks or
  content_policy_fallbacks (LiteLLM falls back on a 4xx too), a named model whose litellm_params the
  lean path does not apply (anything outside DEPLOYMENT_KEYS), a tpm limit, an alias (a name whose
  upstream id differs: LiteLLM answers with the client's name), a deployment that is not CLIProxyAPI;
- one request: a body key outside BODY_KEYS (and DROPPED, which it leaves out as LiteLLM does) for
  its route (LiteLLM may drop, rename or act on it),
  a Responses `previous_response_id` LiteLLM encoded, a LiteLLM request key.
"""

from __future__ import annotations

from collections import namedtuple

# Settings the lean path keeps identically, per section of the rendered config (see the docstring).
SAFE = {
    "litellm_settings": frozenset({"drop_params", "num_retries", "request_timeout", "set_verbose", "json_logs"}),
    "router_settings": frozenset({"routing_strategy", "num_retries", "retry_after", "timeout", "allowed_fails",
                                  "cooldown_time", "redis_host", "redis_port", "redis_password", "cache_kwargs",
                                  "fallbacks", "context_window_fallbacks", "content_policy_fallbacks"}),
    "general_settings": frozenset({"master_key", "custom_auth", "disable_spend_logs", "disable_error_logs"}),
}
SECTIONS = ("model_list", *SAFE)
ROUTING = frozenset({"simple-shuffle", "usage-based-routing-v2"})  # strategies that need no answer's data
FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
# litellm_params a deployment may carry with the lean path still forwarding it as LiteLLM would
# (the Router fills in flags, all false by default).
DEPLOYMENT_KEYS = frozenset({"model", "api_base", "api_key", "rpm", "timeout", "num_retries", "max_retries",
                             "weight", "order"})
# Body keys LiteLLM passes to CLIProxyAPI as they are, per route: a request with any other key takes
# LiteLLM's path (it may drop it under drop_params, rename it as max_tokens for gpt-5 ids, or act on it).
# Each is covered by the differential suite (what the upstream received, on both paths).
_OPENAI_COMMON = {"model", "stream", "tools", "tool_choice", "parallel_tool_calls", "user"}
BODY_KEYS = {
    # not reasoning_effort: with tools, LiteLLM sends a gpt-5 chat request to the upstream's Responses API
    "chat": frozenset(_OPENAI_COMMON | {"messages", "stream_options", "response_format"}),
    "responses": frozenset(_OPENAI_COMMON | {"input", "instructions", "reasoning", "store", "include", "text",
                                             "prompt_cache_key", "previous_response_id", "max_output_tokens",
                                             "temperature", "metadata", "truncation", "service_tier"}),
    "messages": frozenset({"model", "messages", "stream", "system", "max_tokens", "tools", "tool_choice",
                           "thinking", "stop_sequences", "temperature", "top_p", "top_k", "metadata",
                           "context_management", "output_config"}),
}
# Body keys LiteLLM's path leaves out of what it sends upstream: the lean path leaves them out too.
DROPPED = {"chat": frozenset(), "responses": frozenset({"client_metadata"}), "messages": frozenset()}

Policy = namedtuple("Policy", ("off", "models"))
Policy.__doc__ = """off: why no request takes the lean path (a setting's dotted name), or None;
models: {model name: why its requests take LiteLLM's path} for the rest."""


def _enabled(value) -> bool:
    return value not in (None, False, "", [], {})


def _fallback_models(rules) -> list[str]:
    out = []
    for rule in rules if isinstance(rules, list) else []:
        if isinstance(rule, dict):
            out += [str(name) for name, chain in rule.items() if _enabled(chain)]
    return out


def deployment_reason(params: dict, model_info: dict | None, root: str | None) -> str | None:
    """Why requests for this deployment take LiteLLM's path, or None when the lean path may forward them."""
    extra = sorted(k for k, v in params.items() if k not in DEPLOYMENT_KEYS and _enabled(v))
    if extra:
        return f"params: {', '.join(extra)}"
    if (model_info or {}).get("tpm") or params.get("tpm"):
        return "a tpm limit"
    provider, _, model = str(params.get("model") or "").partition("/")
    base = str(params.get("api_base") or "").rstrip("/")
    key = params.get("api_key")
    if root is None or provider not in ("openai", "anthropic") or not model:
        return "not CLIProxyAPI"
    if base != (root + "/v1" if provider == "openai" else root) or not isinstance(key, str):
        return "not CLIProxyAPI"
    return None


def decide(config: dict, root: str | None, enabled: bool = True) -> Policy:
    """The policy for a rendered LiteLLM config (its parsed YAML) whose CLIProxyAPI is at `root`."""
    if not enabled:
        return Policy("litellm.lean_path: false", {})
    if root is None:
        return Policy("cliproxy.enabled: false", {})
    for top in sorted(config):
        if top not in SECTIONS and _enabled(config[top]):
            return Policy(top, {})
    models: dict[str, str] = {}
    for section, safe in SAFE.items():
        settings = config.get(section) or {}
        for key in sorted(settings):
            value = settings[key]
            if key in FALLBACK_KEYS:
                for name in _fallback_models(value):
                    if name == "*":
                        return Policy(f"{section}.{key}: *", {})
                    models.setdefault(name, key.replace("_", " "))
            elif key == "routing_strategy" and section == "router_settings":
                if value not in ROUTING:
                    return Policy(f"router_settings.routing_strategy: {value}", {})
            elif key not in safe and _enabled(value):
                return Policy(f"{section}.{key}", {})
    for entry in config.get("model_list") or []:
        name, params = entry.get("model_name"), entry.get("litellm_params") or {}
        if not isinstance(name, str) or "*" in name:
            continue
        why = deployment_reason(params, entry.get("model_info"), root)
        upstream = str(params.get("model") or "").partition("/")[2]
        if why is None and upstream != name:
            why = f"alias of {upstream}"
        if why:
            models.setdefault(name, why)
    return Policy(None, models)


def summary(policy: Policy) -> str:
    """One line for `doit status`: which path serves which models, and why."""
    if policy.off:
        return f"lean path: off ({policy.off}): LiteLLM's path serves every model"
    if not policy.models:
        return "lean path: every CLIProxyAPI model in its own protocol"
    groups: dict[str, list[str]] = {}
    for name, why in sorted(policy.models.items()):
        groups.setdefault(why, []).append(name)
    shown = [", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "") + f" ({why})"
             for why, names in groups.items()]
    return f"lean path: CLIProxyAPI models in their own protocol; LiteLLM's path: {'; '.join(shown)}"

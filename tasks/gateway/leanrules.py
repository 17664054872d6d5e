"""LiteLLM's own rules, as the lean path (tasks.gateway.leanpath) applies them to a request it forwards:
whether a Responses id is one LiteLLM issued, the `anthropic-beta` it sends,
whether a deployment takes a request as it is, the policy for the booted config, and LiteLLM's wait
before a retry. Each calls into LiteLLM where LiteLLM has the rule, so the two paths cannot drift
apart; where LiteLLM cannot answer, the request takes LiteLLM's path."""

from __future__ import annotations

import base64
import os

from . import leanpolicy


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def litellm_encoded(response_id) -> bool:
    """Whether a Responses id is one LiteLLM's path issued: its plain encoding (`resp_` + base64 of
    `litellm:...`) or the proxy's encrypted one (ResponsesIDSecurity, keyed by the master key)."""
    if not isinstance(response_id, str) or not response_id.startswith("resp_"):
        return False
    try:
        if base64.b64decode(response_id[5:17]).startswith(b"litellm:"):  # 12 characters: 9 bytes
            return True
    except ValueError:
        pass
    try:
        from litellm.proxy.hooks.responses_id_security import ResponsesIDSecurity

        return ResponsesIDSecurity()._is_encrypted_response_id(response_id)
    except Exception:  # noqa: BLE001  (cannot tell: LiteLLM's path reads it)
        return True


def anthropic_betas(headers: dict, data: dict) -> dict | None:
    """`headers` with the `anthropic-beta` LiteLLM's path sends for this Messages body (its own rule:
    the client's betas plus those the body's features need, e.g. context_management's, sorted);
    None when that rule cannot be applied (the request then takes LiteLLM's path)."""
    try:
        from litellm.llms.anthropic.pass_through.messages.transformation import AnthropicMessagesConfig

        return dict(AnthropicMessagesConfig._update_headers_with_anthropic_beta(
            headers, data, custom_llm_provider="anthropic", messages=data.get("messages") or ()))
    except Exception:  # noqa: BLE001  (a LiteLLM without it, or a body it cannot read)
        return None


def forwardable(deployment: dict, protocol: str, root: str, model: str) -> tuple[str, str] | None:
    """(upstream model id, key) when `deployment` is CLIProxyAPI in the request's protocol and the
    model's name is the upstream's own, else None."""
    params = deployment.get("litellm_params") or {}
    if leanpolicy.deployment_reason(params, deployment.get("model_info"), root) is not None:
        return None
    provider, _, upstream = str(params.get("model") or "").partition("/")
    if provider != protocol or params["api_key"].startswith("os.environ/"):
        return None
    if upstream != model and not (upstream == "*" or upstream.endswith("*")):  # an alias: LiteLLM's path
        return None
    return model, params["api_key"]


def litellm_state():
    """(master key, Router) of LiteLLM's proxy in this process, once its startup has set them."""
    from litellm.proxy import proxy_server

    return proxy_server.master_key, proxy_server.llm_router


def config_policy(root: str) -> leanpolicy.Policy:
    """The policy for the config LiteLLM booted with (CONFIG_FILE_PATH), decided once."""
    try:
        import yaml

        with open(os.environ.get("CONFIG_FILE_PATH") or "", encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
    except Exception as exc:  # noqa: BLE001  (unreadable, or not YAML: LiteLLM's path says why, if it can)
        return leanpolicy.Policy(f"the config is unreadable: {type(exc).__name__}", {})
    if not isinstance(config, dict):
        return leanpolicy.Policy("the config is not a mapping", {})
    return leanpolicy.decide(config, root)


def litellm_backoff(router, retries: int, headers) -> float:
    """LiteLLM's wait before its first retry: the upstream's `retry-after` (up to 60 s), else its
    backoff (at least router_settings.retry_after), plus its jitter."""
    from litellm.utils import calculate_retry_after

    return calculate_retry_after(remaining_retries=retries, max_retries=retries, response_headers=headers,
                                 min_timeout=getattr(router, "retry_after", 0) or 0)


def _json():
    """(loads, dumps to bytes): orjson, which comes with LiteLLM; plain json when it does not."""
    try:
        import orjson

        return orjson.loads, orjson.dumps
    except ImportError:
        import json

        return json.loads, lambda v: json.dumps(v, separators=(",", ":")).encode()

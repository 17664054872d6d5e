"""FlowGate's gateway-key check for LiteLLM (`general_settings.custom_auth`), copied into .router/litellm/.

Rendered by FlowGate; do not edit. The check is tasks.gateway.key_hook: LiteLLM runs in FlowGate's
gateway process (`python -m tasks.gateway`), where `tasks` is importable.
"""

from tasks.gateway.key_hook import user_api_key_auth  # noqa: F401  (what custom_auth names)

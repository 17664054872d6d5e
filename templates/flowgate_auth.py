"""FlowGate's gateway-key check for LiteLLM (`general_settings.custom_auth`), copied into .router/litellm/.

Rendered by FlowGate; do not edit. LiteLLM 1.108.14 without a database answers a wrong key with
400 "No connected db." and a missing one with 500 (its auth error path imports prisma, which is not
installed, and logs an 11 KB traceback per request). This hook accepts exactly the master key, sent
as `Authorization: Bearer <key>` or `x-api-key: <key>`, and refuses anything else with a 401 that
names where the key lives: LiteLLM logs a 401 as one short entry, no traceback. A request carrying
the key in either header is accepted: Claude Code with an `ANTHROPIC_AUTH_TOKEN` exported in the
shell sends that token as the bearer and the key helper's key as `x-api-key`, and retries a 401 for
a minute.
"""

import hmac
import os

from litellm.proxy._types import LiteLLMRoutes, LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth

KEY_FILE = os.environ.get("FLOWGATE_GATEWAY_KEY_FILE") or ".router/secrets/litellm_master_key"
MASTER_KEY_ALIAS = "litellm_proxy_master_key"  # what LiteLLM itself records instead of the raw key


async def user_api_key_auth(request, api_key: str) -> UserAPIKeyAuth:
    from litellm.proxy import proxy_server

    if request.url.path in LiteLLMRoutes.public_routes.value:  # as LiteLLM's own check does
        return UserAPIKeyAuth(user_role=LitellmUserRoles.INTERNAL_USER_VIEW_ONLY)
    master_key = proxy_server.master_key or ""
    sent = (api_key or "").strip()
    headers = getattr(request, "headers", None) or {}
    bearer = (headers.get("authorization") or "").strip()
    candidates = {sent, (headers.get("x-api-key") or "").strip(), bearer[7:].strip() if bearer[:7].lower() == "bearer " else ""}
    if master_key and any(c and hmac.compare_digest(c.encode(), master_key.encode()) for c in candidates):
        return UserAPIKeyAuth(api_key=MASTER_KEY_ALIAS, user_role=LitellmUserRoles.PROXY_ADMIN,
                              user_id=proxy_server.litellm_proxy_admin_name)
    what = "wrong gateway key" if sent else "no gateway key"
    raise ProxyException(
        message=(f"{what}: send the key in {KEY_FILE} as `Authorization: Bearer <key>` or `x-api-key: <key>` "
                 "(`uv run doit integrate:codex` / `integrate:claude` wire the clients)"),
        type=ProxyErrorTypes.auth_error, param="api_key", code=401)

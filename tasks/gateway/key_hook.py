"""FlowGate's gateway-key check inside LiteLLM (`general_settings.custom_auth`), loaded through the
one-line hook `templates/flowgate_auth.py` that the render copies beside LiteLLM's config.

LiteLLM 1.108.14 without a database answers a wrong key with 400 "No connected db." and a missing
one with 500 (its auth error path imports prisma, which is not installed, and logs an 11 KB
traceback per request). This hook accepts exactly the master key, read from the headers by the rule
every path of the gateway applies (tasks.gateway.gate.sent_keys: LiteLLM's own reading, e.g.
`Authorization: Bearer <key>` or `x-api-key: <key>`, and `x-api-key` beside a bearer: Claude Code
with an `ANTHROPIC_AUTH_TOKEN` exported in the shell sends that token as the bearer and the key
helper's key as `x-api-key`, and retries a 401 for a minute), and refuses anything else with a 401
that names where the key lives: LiteLLM logs a 401 as one short entry, no traceback.

A member's key (tasks.gateway.keys, issue 30) is accepted as an internal user on the routes a client
uses (MEMBER_ROUTES: the gate decided its model and rate already), never on LiteLLM's admin routes:
the master key stays the admin key.
"""

from litellm.proxy._types import LiteLLMRoutes, LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth

from .gate import KEY_ROUTES, accepted, fresh_book, refusal, sent_keys
from .keys.enforce import Refusal, admit

MASTER_KEY_ALIAS = "litellm_proxy_master_key"  # what LiteLLM itself records instead of the raw key
MEMBER_ROUTES = KEY_ROUTES | {"/v1/models", "/models", "/v1/model/info", "/model/info"}


async def user_api_key_auth(request, api_key: str) -> UserAPIKeyAuth:
    from litellm.proxy import proxy_server

    if request.url.path in LiteLLMRoutes.public_routes.value:  # as LiteLLM's own check does
        return UserAPIKeyAuth(user_role=LitellmUserRoles.INTERNAL_USER_VIEW_ONLY)
    headers = getattr(request, "headers", None) or {}
    keys = sent_keys(headers.get)
    # LiteLLM's own reading (api_key) too: it also knows a configured key header and Google's `?key=`
    if accepted((*keys, (api_key or "").strip()), proxy_server.master_key):
        return UserAPIKeyAuth(api_key=MASTER_KEY_ALIAS, user_role=LitellmUserRoles.PROXY_ADMIN,
                              user_id=proxy_server.litellm_proxy_admin_name)
    offered = (*keys, (api_key or "").strip())
    member = admit(await fresh_book(offered), offered) if any(offered) else Refusal(401, "")
    if isinstance(member, Refusal):
        status, message = member.status, member.message
        raise ProxyException(message=message or refusal(any(offered)), type=ProxyErrorTypes.auth_error,
                             param="api_key", code=status)
    if request.url.path not in MEMBER_ROUTES:
        raise ProxyException(message=f"{request.url.path} takes the master key: a member's key reaches the model "
                             "routes only", type=ProxyErrorTypes.auth_error, param="api_key", code=403)
    return UserAPIKeyAuth(api_key=f"flowgate-member:{member.name}", key_alias=member.name,
                          user_role=LitellmUserRoles.INTERNAL_USER, user_id=member.name)

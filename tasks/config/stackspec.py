"""The stack config's schema: every key of config/flowgate.yaml (+ config/local.yaml) with its type
and default, and the settings FlowGate owns. tasks.config.load validates a file against it; the
sections of their own (team, usage, accounts, API keys) live in their *spec modules.
"""

from __future__ import annotations

from ..accounts.provider_spec import PROVIDERS_SPEC
from ..release import lines
from .accountspec import ACCOUNTS
from .apikeys import API_KEYS
from .schema import FreeMapping, ListOf, MapOf, Mapping, Scalar
from .teamspec import DEPLOY, KEYS, POSTGRES, REDIS, REPLICAS, STORE
from .usagespec import USAGE
from .valuerules import ENV_NAME, MODEL_NAME, PROFILE_NAME

PROTOCOLS = ("anthropic", "openai")  # tasks.services.protocol
PROFILE_KEYS = ("description", "litellm_settings", "router_settings", "general_settings", "models", "clients")


def _port(default: int) -> Scalar:
    return Scalar(int, default=default, min=1, max=65535, what="a port number from 1 to 65535")


def _seconds(default: float, minimum: float = 0, maximum: float = 3600) -> Scalar:
    # Finite and bounded: an infinite stop timeout would never escalate to SIGKILL.
    return Scalar((int, float), default=default, min=minimum, max=maximum)


DAY = 86400
MAX_RETRIES = 100


_FALLBACKS = ListOf(MapOf(ListOf(Scalar(str)), key_what="a model name"), nullable=True)
_LITELLM_SETTINGS = FreeMapping(known={
    "num_retries": Scalar(int, min=0, max=MAX_RETRIES),
    "request_timeout": _seconds(600, 0, DAY),
    "drop_params": Scalar(bool),
    "set_verbose": Scalar(bool),
    "fallbacks": _FALLBACKS,
    "context_window_fallbacks": _FALLBACKS,
})
_ROUTER_SETTINGS = FreeMapping(known={
    "num_retries": Scalar(int, min=0, max=MAX_RETRIES),
    "timeout": _seconds(600, 0, DAY),
    "allowed_fails": Scalar(int, min=0),
    "routing_strategy": Scalar(str),
    "fallbacks": _FALLBACKS,
    "context_window_fallbacks": _FALLBACKS,
})
_GENERAL_SETTINGS = FreeMapping()

_MODEL = Mapping({
    "name": Scalar(str, required=True, name=MODEL_NAME),
    "via": Scalar(str, default="cliproxy", choices=("cliproxy", "direct")),
    "model": Scalar(str, nullable=True, default=None),
    "api_base": Scalar(str, nullable=True, default=None),
    "api_key_env": Scalar(str, nullable=True, default=None, name=ENV_NAME),
    "api_key_file": Scalar(str, nullable=True, default=None),
    # How LiteLLM speaks to CLIProxyAPI for this model; null = as the pattern routes do (claude-* Anthropic).
    "protocol": Scalar(str, nullable=True, default=None, choices=PROTOCOLS),
    "params": FreeMapping(),
    "model_info": FreeMapping(),
}, complete=True)
_MODELS = ListOf(_MODEL)
# `auto` (or null): chosen from what the accounts serve when `integrate:*` runs (tasks.catalog.choose).
_CLIENT = Mapping({"model": Scalar(str, nullable=True, default="auto"),
                   "fast_model": Scalar(str, nullable=True, default="auto")})
_CLIENTS = Mapping({"codex": _CLIENT, "claude": _CLIENT})

_LITELLM = Mapping({
    "host": Scalar(str, default="127.0.0.1"),
    "port": _port(4000),
    "allow_remote": Scalar(bool, default=False),
    "start_timeout": _seconds(180, 1),
    "stop_timeout": _seconds(10, 0, 600),
    "env": MapOf(Scalar(str, what="a string (quote numbers)"), key_rule=ENV_NAME),
    "replicas": REPLICAS,
    # The lean path in front of LiteLLM (tasks.gateway.leanpath): false sends every request to LiteLLM's own path.
    "lean_path": Scalar(bool, default=True),
})
_RELEASE = Mapping({
    "repo": Scalar(str, default=lines.MAINLINE_REPO, what="owner/name"),
    "version": Scalar(str, default=lines.MAINLINE_VERSION, what=f"a release tag like {lines.MAINLINE_VERSION}, or latest"),
    "api_url": Scalar(str, nullable=True, default=None),
    "check_interval_hours": Scalar((int, float), default=24, min=0, max=24 * 365),
    "allow_unverified": Scalar(bool, default=False),
})
_CLIPROXY = Mapping({
    "enabled": Scalar(bool, default=True),
    "host": Scalar(str, default="127.0.0.1"),
    "port": _port(8317),
    "allow_remote": Scalar(bool, default=False),
    "binary": Scalar(str, nullable=True, default=None),
    "release": _RELEASE,
    "start_timeout": _seconds(30, 1),
    "stop_timeout": _seconds(10, 0, 600),
    "settings": FreeMapping(known={
        "debug": Scalar(bool),
        "request-retry": Scalar(int, min=0, max=MAX_RETRIES),
        "proxy-url": Scalar(str),
    }),
    "store": STORE,
    "api_keys": API_KEYS,  # provider API keys beside the OAuth accounts (tasks/config/apikeys.py)
})
_PROFILE = Mapping({
    "description": Scalar(str, default=""),
    "litellm_settings": _LITELLM_SETTINGS,
    "router_settings": _ROUTER_SETTINGS,
    "general_settings": _GENERAL_SETTINGS,
    "models": _MODELS,
    "clients": _CLIENTS,
}, overlay=True)
SCHEMA = Mapping({
    "profile": Scalar(str, default="default", name=PROFILE_NAME),
    "litellm": _LITELLM,
    "cliproxy": _CLIPROXY,
    "models": _MODELS,  # only what the catalog does not serve: direct upstreams, aliases, limits
    "litellm_settings": _LITELLM_SETTINGS,
    "router_settings": _ROUTER_SETTINGS,
    "general_settings": _GENERAL_SETTINGS,
    "providers": PROVIDERS_SPEC,  # names or {name, route, flow, type}: tasks/accounts/provider_spec.py
    "clients": _CLIENTS,
    "profiles": MapOf(_PROFILE, key_rule=PROFILE_NAME),
    # Pass-through keys newer than tasks/config/passthrough_keys.json, e.g. litellm_settings.new_flag
    "unchecked_settings": ListOf(Scalar(str)),
    "redis": REDIS,
    "keys": KEYS,  # the member keys' store (tasks/config/teamspec.py)
    "postgres": POSTGRES,
    "deploy": DEPLOY,
    "usage": USAGE,  # usage history (tasks/config/usagespec.py)
    "accounts": ACCOUNTS,  # steering of the account pool (tasks/config/accountspec.py)
})
# Settings FlowGate owns: a user value would silently fight the generated one.
MANAGED = {
    ("general_settings", "master_key"): "the master key is generated by FlowGate in .router/secrets/litellm_master_key",
    ("general_settings", "custom_auth"): "FlowGate's key check (flowgate_auth.py) answers a wrong key with 401",
    ("cliproxy", "settings", "host"): "set cliproxy.host instead",
    ("cliproxy", "settings", "port"): "set cliproxy.port instead",
    ("cliproxy", "settings", "api-keys"): "FlowGate generates the client key",
    ("cliproxy", "settings", "auth-dir"): "accounts live in .router/auths",
    ("cliproxy", "settings", "remote-management"): "FlowGate manages the management API settings",
}

"""The services FlowGate runs, and which of them a config enables: the one place for both.

Tiny on purpose: every doit command imports it while loading dodo.py.
"""

from __future__ import annotations

from .view import cliproxy

LITELLM = "litellm"
CLIPROXY = "cliproxy"
REDIS = "redis"  # only with redis.managed: true (tasks.services.redis)
POSTGRES = "postgres"  # only with postgres.managed: true (tasks.services.postgres): the member keys' store
OPTIONAL = (REDIS, POSTGRES)  # services a config may leave out: they run only when managed
CLIPROXY_BRIDGE = f"{CLIPROXY}#bridge"  # a new CLIProxyAPI while a switch moves traffic to it (tasks.stack.swaps.bluegreen)
SERVICES = (LITELLM, CLIPROXY, REDIS, POSTGRES)  # LiteLLM first: it is the one clients talk to
RENDERED = (LITELLM, CLIPROXY)  # the services FlowGate renders a config for from templates/


def enabled_services(stack: dict | None) -> list[str]:
    """The services the config runs (all of them when the config is unknown)."""
    if stack is None:
        return list(SERVICES)
    return [s for s in SERVICES if (s != CLIPROXY or cliproxy(stack).enabled)
            and (s not in OPTIONAL or (stack.get(s) or {}).get("managed"))]


def litellm_instances(stack: dict | None) -> list[str]:
    """LiteLLM's instances (litellm.replicas): the first keeps the service's own name, so one replica
    is exactly what FlowGate always ran; the others are `litellm#2` ... `litellm#N`."""
    count = int((stack or {}).get(LITELLM, {}).get("replicas", 1) or 1)
    return [LITELLM] + [f"{LITELLM}#{i}" for i in range(2, count + 1)]


def service_of(name: str) -> str:
    """The service an instance name belongs to (`litellm#2` -> `litellm`)."""
    return name.split("#", 1)[0]

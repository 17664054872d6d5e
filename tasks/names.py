"""The services FlowGate runs, and which of them a config enables: the one place for both.

Stdlib-free and tiny on purpose: every doit command imports it while loading dodo.py.
"""

from __future__ import annotations

LITELLM = "litellm"
CLIPROXY = "cliproxy"
SERVICES = (LITELLM, CLIPROXY)  # LiteLLM first: it is the one clients talk to


def enabled_services(stack: dict | None) -> list[str]:
    """The services the config runs (all of them when the config is unknown)."""
    if stack is None:
        return list(SERVICES)
    return [s for s in SERVICES if s != CLIPROXY or stack["cliproxy"]["enabled"]]

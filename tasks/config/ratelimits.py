"""rpm / tpm on a model: LiteLLM enforces them only under a routing strategy that counts usage.

Under the default `simple-shuffle` a deployment's rpm/tpm are mere weights for picking between
deployments: a model at `rpm: 6` serves its seventh request of the minute as happily as the first.
`doit check` says so instead of letting a limit look enforced.
"""

from __future__ import annotations

ENFORCING = ("usage-based-routing-v2", "usage-based-routing")  # their pre-call checks refuse past a limit
DEFAULT_STRATEGY = "simple-shuffle"  # LiteLLM's Router default


def unenforced(stack: dict) -> list[str]:
    """One warning per model whose rpm/tpm the active routing strategy ignores."""
    strategy = (stack.get("router_settings") or {}).get("routing_strategy") or DEFAULT_STRATEGY
    if strategy in ENFORCING:
        return []
    out = []
    for index, model in enumerate(stack.get("models") or []):
        limits = [k for k in ("rpm", "tpm") if k in (model.get("params") or {})]
        if limits:
            out.append(f"models[{index}] ({model['name']}): {'/'.join(limits)} set, but not enforced under "
                       f"routing_strategy {strategy} (there it only weights the choice between deployments): "
                       f"set router_settings.routing_strategy: {ENFORCING[0]} to enforce it")
    return out

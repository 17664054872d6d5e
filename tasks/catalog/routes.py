"""How LiteLLM reaches what CLIProxyAPI serves: two pattern routes instead of a list of ids.

Measured (docs/models.md, "Why pattern routes"): a pattern route costs no more per request than a named
one, and serves an id the catalog gains at once, where a re-render would need a swap (~4 s) and a
trigger. Named models (`models:` in the config) win over the patterns, as LiteLLM matches names first.
"""

from __future__ import annotations

from ..config.view import cliproxy
from ..gateway.served_models import MARK  # the gateway tells the pattern routes apart by it

# (model_name pattern, LiteLLM provider): Claude ids on Anthropic Messages (count_tokens included),
# every other id on OpenAI chat completions and Responses. Order matters: the first match wins.
PATTERNS = (("claude-*", "anthropic"), ("*", "openai"))


def protocol_of(model_id: str) -> str:
    """The protocol LiteLLM speaks to CLIProxyAPI for a served id (what the patterns decide)."""
    return "anthropic" if model_id.startswith("claude-") else "openai"


def pattern_entries(cliproxy_root: str, key: str) -> list[dict]:
    """LiteLLM model_list entries routing every id to CLIProxyAPI on its native protocol."""
    out = []
    for pattern, provider in PATTERNS:
        api_base = cliproxy_root if provider == "anthropic" else cliproxy_root + "/v1"
        out.append({"name": pattern,
                    "litellm_params": {"model": f"{provider}/{pattern}", "api_base": api_base, "api_key": key},
                    "model_info": {"flowgate": MARK}})
    return out


def models_phrase(stack: dict) -> str:
    """How a config's models are described in one line (`doit check`, `doit doctor`)."""
    n = len(stack["models"])
    own = f"{n} model{'' if n == 1 else 's'} of its own"
    if not cliproxy(stack).enabled:
        return own
    return "every model the accounts serve" + (f" + {own}" if n else "")

"""tasks.catalog.choose: the client slots' automatic choice from what is served."""

from __future__ import annotations

from tasks.catalog import choose
from tasks.catalog.store import Served
from tests.catalog_support import catalog


def served(*ids: str, owner: str = "openai") -> list[Served]:
    return [Served(i, owner, n, "openai", ["codex"], []) for n, i in enumerate(ids)]


def test_codex_takes_the_newest_plain_gpt_and_the_newest_mini():
    assert choose.codex(catalog("codex-plus").models) == ("gpt-5.5", "gpt-5.4-mini")
    assert choose.codex(served("gpt-5.10", "gpt-5.9", "gpt-5.9-mini", "gpt-5.11-mini")) == ("gpt-5.10", "gpt-5.11-mini")


def test_codex_without_a_plain_id_takes_a_general_variant_never_a_small_one():
    assert choose.codex(served("gpt-6.1-sol", "gpt-6.1-spark", "gpt-6.2-nano", "gpt-6-astra")) == ("gpt-6.1-sol", None)
    assert choose.codex(served("gpt-5.5", owner="github-copilot")) == (None, None)  # not a Codex id


def test_claude_takes_the_newest_sonnet_and_haiku():
    assert choose.claude(catalog("claude").models) == ("claude-sonnet-5", "claude-haiku-4-5-20251001")
    only_opus = [m for m in catalog("claude").models if "opus" in m.id]
    assert choose.claude(only_opus) == ("claude-opus-5", "claude-opus-5")
    assert choose.claude([]) == (None, None)


def test_slots_keep_named_ids_and_resolve_auto():
    stack = {"clients": {"claude": {"model": "claude-opus-4-8", "fast_model": "auto"},
                         "codex": {"model": None, "fast_model": "gpt-5.5"}}}
    both = catalog("codex-plus", "claude")
    assert choose.slots(stack, both, "claude") == {"model": "claude-opus-4-8", "fast_model": "claude-haiku-4-5-20251001",
                                                   "auto": ["fast_model"]}
    assert choose.slots(stack, both, "codex") == {"model": "gpt-5.5", "fast_model": "gpt-5.5", "auto": ["model"]}
    assert choose.slots(stack, None, "codex")["model"] is None  # nothing read yet: nothing to choose from

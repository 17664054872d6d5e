"""tasks.catalog.choose: the client slots' automatic choice from what is served."""

from __future__ import annotations

from tasks.catalog import choose
from tasks.catalog.store import Served
from tests.catalog_support import catalog


def served(*ids: str, owner: str = "openai", ranks: dict | None = None) -> list[Served]:
    return [Served(i, owner, n, "openai", ["codex"], [], (ranks or {}).get(i)) for n, i in enumerate(ids)]


def test_codex_takes_the_newest_general_gpt_and_the_newest_mini():
    # codex-plus serves gpt-5.5 and gpt-5.6-sol/terra/luna: the newest version, first in Codex's own order
    assert choose.codex(catalog("codex-plus").models) == ("gpt-5.6-sol", "gpt-5.4-mini")
    assert choose.codex(catalog("codex-free").models) == ("gpt-5.6-terra", "gpt-5.4-mini")  # no Sol on that plan
    assert choose.codex(served("gpt-5.10", "gpt-5.9", "gpt-5.9-mini", "gpt-5.11-mini")) == ("gpt-5.10", "gpt-5.11-mini")


def test_codex_on_a_tie_plain_then_codexs_order_then_newest():
    assert choose.codex(served("gpt-6.1-sol", "gpt-6.1", "gpt-6"))[0] == "gpt-6.1"
    assert choose.codex(served("gpt-6.1-sol", "gpt-6.1-terra", ranks={"gpt-6.1-sol": 2, "gpt-6.1-terra": 1}))[0] == "gpt-6.1-terra"
    assert choose.codex(served("gpt-6.1-terra", "gpt-6.1-sol"))[0] == "gpt-6.1-sol"  # no order known: the newest


def test_codex_never_takes_a_small_variant_or_another_providers_id():
    assert choose.codex(served("gpt-6.1-sol", "gpt-6.2-spark", "gpt-6.2-nano", "gpt-6-astra")) == ("gpt-6.1-sol", None)
    assert choose.codex(served("gpt-5.5", owner="github-copilot")) == (None, None)  # not a Codex id


def test_the_reason_is_said():
    plus = catalog("codex-plus").models
    assert choose.why("codex", "model", plus, "gpt-5.6-sol") == (
        "the newest general GPT served for Codex (5.6), first in Codex's own order of gpt-5.6-sol, gpt-5.6-terra, gpt-5.6-luna")
    assert choose.why("codex", "model", served("gpt-5.5", "gpt-5.4"), "gpt-5.5") == "the newest general GPT served for Codex (5.5)"
    assert choose.why("claude", "model", [], "claude-opus-5") == "no Sonnet served: the newest Opus"


def test_claude_code_slots_are_the_newest_of_each_family():
    assert choose.claude_families(catalog("claude").models) == {
        "opus": "claude-opus-5", "sonnet": "claude-sonnet-5", "haiku": "claude-haiku-4-5-20251001"}


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
    assert choose.slots(stack, both, "codex") == {"model": "gpt-5.6-sol", "fast_model": "gpt-5.5", "auto": ["model"]}
    assert choose.slots(stack, None, "codex")["model"] is None  # nothing read yet: nothing to choose from

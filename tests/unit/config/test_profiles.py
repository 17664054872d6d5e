"""tasks.config.profiles: the choice made with `doit profile`, how it overrides the config, the listing."""

from __future__ import annotations

import pytest

from tasks.config import profiles
from tasks.config.load import load_stack
from tests.catalog_support import registry
from tasks.base.errors import FlowgateError


def test_no_choice_means_the_configs_profile(paths):
    stack = load_stack(paths)
    assert profiles.selected(paths) is None
    assert (stack["profile"], stack["profile_source"]) == ("default", "config")


def test_choice_overrides_config_and_clear_returns_to_it(paths):
    (paths.config_dir / "local.yaml").write_text("profile: cost\n")
    profiles.select(paths, "reliable")
    stack = load_stack(paths)
    assert (stack["profile"], stack["profile_source"]) == ("reliable", "selected")
    assert stack["router_settings"]["fallbacks"]  # the overlay is applied
    profiles.select(paths, None)
    assert load_stack(paths)["profile"] == "cost"


def test_choice_of_a_profile_removed_from_the_config_is_one_clear_error(paths):
    profiles.select(paths, "vanished")
    with pytest.raises(FlowgateError) as err:
        load_stack(paths)
    assert "'vanished'" in err.value.message and "default, reliable, cost" in err.value.message
    assert "--clear" in err.value.hint


def test_every_shipped_profile_is_described_and_listed_with_the_active_marked(paths):
    profiles.select(paths, "cost")
    stack = load_stack(paths)
    assert stack["profile_names"] == ["default", "reliable", "cost"]
    assert all(stack["profile_descriptions"][n] for n in stack["profile_names"])
    lines = profiles.listing(stack).splitlines()
    assert lines[2].startswith("* cost") and lines[0].startswith("  default")
    assert "selected with `doit profile`" in lines[-1]


def test_shipped_profiles_use_litellm_router_settings(paths):
    by_name = {}
    for name in ("default", "reliable", "cost"):
        profiles.select(paths, name)
        by_name[name] = load_stack(paths)
    retries = {n: s["router_settings"].get("num_retries", s["litellm_settings"]["num_retries"]) for n, s in by_name.items()}
    assert retries["reliable"] > retries["default"] > retries["cost"] == 0
    assert not by_name["default"]["router_settings"].get("fallbacks")
    chains = {k: v for entry in by_name["reliable"]["router_settings"]["fallbacks"] for k, v in entry.items()}
    assert chains["gpt-5.5"] == ["claude-sonnet-4-6"] and chains["claude-sonnet-4-6"] == ["gpt-5.5"]
    assert by_name["cost"]["clients"]["claude"]["model"] == "claude-haiku-4-5-20251001"
    # every id a shipped profile names is in the v7.2.140 catalog (tests/fakes/models.json)
    served = {m["id"] for ch in registry().values() for m in ch}
    for stack in by_name.values():
        named = [v for s in stack["clients"].values() for v in s.values() if v != "auto"]
        assert set(stack["profile_models"][stack["profile"]] + named) <= served

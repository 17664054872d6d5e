"""tasks.clients.codex: the merge keeps everything of the user's config.toml byte for byte."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path

import pytest

from tasks.clients.codex import PROFILE_FILE, merge_config, plan, profile_text
from tasks.clients.gateway import Gateway
from tasks.config.load import load_stack
from tasks.base.errors import FlowgateError
from tests.catalog_support import keep

FIXTURE = Path(__file__).parent / "fixtures" / "codex_config.toml"
GW = Gateway("http://127.0.0.1:4000", Path("/srv/flowgate/.router/secrets/litellm_master_key"))


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    """(old lines replaced or deleted, new lines added); every other line is kept, in order."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added


def test_merge_changes_only_what_flowgate_owns():
    old = FIXTURE.read_text()
    new, notices = merge_config(old, FIXTURE, "gpt-5-codex", GW)
    removed, added = changed_lines(old, new)
    assert removed == ["model   =   'o3'        # my usual model (a literal string)\n"]
    assert added[0] == "model   =   \"gpt-5-codex\"        # my usual model (a literal string)\n"
    assert 'model_provider = "flowgate"\n' in added and "[model_providers.flowgate]\n" in added
    data = tomllib.loads(new)
    assert data["model"] == "gpt-5-codex" and data["model_provider"] == "flowgate"
    assert data["model_providers"]["flowgate"] == {
        "name": "FlowGate", "base_url": "http://127.0.0.1:4000/v1", "wire_api": "responses",
        "model_catalog_url": "http://127.0.0.1:4000/v1/models",  # Codex lists what the gateway serves, only that
        "auth": {"command": "cat", "args": ["/srv/flowgate/.router/secrets/litellm_master_key"]}}
    assert data["model_providers"]["azure"]["env_key"] == "AZURE_KEY"  # another provider's settings are theirs
    assert data["profiles"]["fast"]["model"] == "o4-mini" and notices == []


def test_merge_is_idempotent_and_a_current_file_is_returned_unchanged():
    once, _ = merge_config(FIXTURE.read_text(), FIXTURE, "gpt-5-codex", GW)
    twice, _ = merge_config(once, FIXTURE, "gpt-5-codex", GW)
    assert twice == once


def test_existing_flowgate_provider_is_updated_in_place():
    old = ('[model_providers.flowgate]\nname = "Mine"\nenv_key = "OLD"  # to go\nrequest_max_retries = 7 # mine\n\n'
           "[tools]\nweb_search = true\n")
    new, notices = merge_config(old, Path("config.toml"), "gpt-5", GW)
    table = tomllib.loads(new)["model_providers"]["flowgate"]
    assert "env_key" not in table and table["request_max_retries"] == 7 and table["wire_api"] == "responses"
    assert "request_max_retries = 7 # mine\n" in new and new.endswith("\n[tools]\nweb_search = true\n")
    assert any("env_key" in n for n in notices)


def test_a_top_level_profile_is_pointed_out():
    _, notices = merge_config('profile = "work"\n', Path("config.toml"), "gpt-5", GW)
    assert any("'work'" in n for n in notices)


def test_broken_toml_names_file_and_line():
    with pytest.raises(FlowgateError) as info:
        merge_config('model = "x"\n\n[broken\nname = 1\n', Path("/c/config.toml"), "gpt-5", GW)
    assert info.value.message.startswith("/c/config.toml:3: cannot parse")
    assert "nothing was written" in info.value.hint


def test_profile_file_selects_the_gateway_without_a_key():
    data = tomllib.loads(profile_text("gpt-5-codex", GW))
    assert data["model_provider"] == "flowgate" and data["model"] == "gpt-5-codex"
    assert "sk-" not in profile_text("gpt-5-codex", GW)


def test_plan_reads_only_and_honours_profile_only(paths, tmp_path):
    keep(paths, "codex-plus")
    stack = load_stack(paths)
    env = {"CODEX_HOME": str(tmp_path / "codex")}
    changes, _ = plan(paths, stack, profile_only=True, environ=env)
    assert [c.path.name for c in changes] == [PROFILE_FILE]
    changes, _ = plan(paths, stack, profile_only=False, environ=env)
    assert [c.path.name for c in changes] == [PROFILE_FILE, "config.toml"] and all(c.old is None for c in changes)
    assert not (tmp_path / "codex").exists()


def test_client_model_must_be_served(paths, tmp_path):
    keep(paths, "codex-plus", "claude")
    stack = load_stack(paths)
    stack["clients"]["codex"]["model"] = "gpt-5-codex"  # never in the catalog
    with pytest.raises(FlowgateError) as info:
        plan(paths, stack, profile_only=False, environ={"CODEX_HOME": str(tmp_path)})
    assert "'gpt-5-codex', which no account serves now" in info.value.message and "gpt-5.5" in info.value.message


def test_auto_picks_the_newest_general_gpt_of_the_plan(paths, tmp_path):
    keep(paths, "codex-free")  # gpt-5.5, gpt-5.6-terra and -luna: Terra is first in Codex's own order
    changes, _ = plan(paths, load_stack(paths), profile_only=True, environ={"CODEX_HOME": str(tmp_path)})
    assert 'model = "gpt-5.6-terra"' in changes[0].new

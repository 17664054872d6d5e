"""tasks.clients.claude: settings.json keeps the user's keys, their order and the indentation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.clients.claude import merge_settings, plan, wanted_env
from tasks.clients.gateway import Gateway
from tasks.config.load import load_stack
from tasks.base.errors import FlowgateError
from tests.catalog_support import keep

FIXTURE = Path(__file__).parent / "fixtures" / "claude_settings.json"
GW = Gateway("http://127.0.0.1:4000", Path("/srv/flowgate/.router/secrets/litellm_master_key"))
HELPER = GW.key_shell_command
ENV = wanted_env(GW, "claude-sonnet-4-6", "claude-haiku-4-5-20251001")


def test_merge_keeps_every_other_key_in_order_with_the_file_indentation():
    old = FIXTURE.read_text(encoding="utf-8")
    new, notices = merge_settings(old, FIXTURE, HELPER, ENV)
    before, after = json.loads(old), json.loads(new)
    assert list(after) == [*before, "apiKeyHelper"]
    for key in ("permissions", "hooks", "statusLine", "includeCoAuthoredBy"):
        assert after[key] == before[key]
    assert after["apiKeyHelper"] == "cat /srv/flowgate/.router/secrets/litellm_master_key"
    assert list(after["env"]) == ["HTTPS_PROXY", "ANTHROPIC_MODEL", "ANTHROPIC_BASE_URL", "ANTHROPIC_DEFAULT_OPUS_MODEL",
                                  "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL",
                                  "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"]
    assert after["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4000"  # the root: no /v1
    assert after["env"]["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "claude-haiku-4-5-20251001"
    assert after["env"]["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"] == "1"  # the picker lists what is served
    assert new.startswith('{\n    "permissions": {\n        "allow"') and new.endswith("}\n")
    assert "echo ünïcode ✓" in new
    # The other gateway's token would win over the helper: removed, said, and never echoed.
    assert "ANTHROPIC_AUTH_TOKEN" not in after["env"]
    assert any("ANTHROPIC_AUTH_TOKEN" in n for n in notices) and "FGTEST" not in " ".join(notices)


def test_apply_twice_returns_the_text_unchanged():
    once, _ = merge_settings(FIXTURE.read_text(encoding="utf-8"), FIXTURE, HELPER, ENV)
    twice, notices = merge_settings(once, FIXTURE, HELPER, ENV)
    assert twice == once and notices == []


def test_current_settings_in_another_layout_are_left_alone():
    compact = json.dumps({"env": ENV, "apiKeyHelper": HELPER})  # same data, other order, one line, no newline
    assert merge_settings(compact, FIXTURE, HELPER, ENV)[0] == compact


def test_tabs_and_a_missing_final_newline_are_kept():
    new, _ = merge_settings('{\n\t"theme": "dark"\n}', FIXTURE, HELPER, ENV)
    assert new.startswith('{\n\t"theme": "dark",\n\t"apiKeyHelper"') and not new.endswith("\n")


def test_a_new_file_gets_two_spaces():
    new, _ = merge_settings(None, FIXTURE, HELPER, ENV)
    assert new.startswith('{\n  "apiKeyHelper"') and new.endswith("}\n")


@pytest.mark.parametrize("text, line", [('{\n  "env": {\n    "A": 1,\n  }\n}\n', 4), ("[1, 2]\n", 1)])
def test_unparseable_settings_name_file_and_line(text, line):
    with pytest.raises(FlowgateError) as info:
        merge_settings(text, Path("/h/.claude/settings.json"), HELPER, ENV)
    assert info.value.message.startswith(f"/h/.claude/settings.json:{line}: cannot parse")


def test_env_must_be_an_object():
    with pytest.raises(FlowgateError, match="`env` is not an object"):
        merge_settings('{"env": []}', FIXTURE, HELPER, ENV)


def test_plan_uses_claude_config_dir_and_the_automatic_choice(paths, tmp_path):
    keep(paths, "codex-plus", "claude")
    [change], _ = plan(paths, load_stack(paths), environ={"CLAUDE_CONFIG_DIR": str(tmp_path / "c")})
    assert change.path == tmp_path / "c" / "settings.json" and change.old is None
    env = json.loads(change.new)["env"]
    assert env["ANTHROPIC_MODEL"] == "claude-sonnet-5"  # the newest Sonnet of the v7.2.140 catalog
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "claude-haiku-4-5-20251001"
    # the picker's slots follow what is served: the Opus entry is the newest Opus, never a Sonnet
    assert (env["ANTHROPIC_DEFAULT_OPUS_MODEL"], env["ANTHROPIC_DEFAULT_SONNET_MODEL"]) == ("claude-opus-5", "claude-sonnet-5")
    assert str(paths.secret("litellm_master_key")) in json.loads(change.new)["apiKeyHelper"]


def test_a_pinned_model_takes_its_familys_slot(paths, tmp_path):
    keep(paths, "claude")
    stack = load_stack(paths)
    stack["clients"]["claude"]["model"] = "claude-opus-4-8"
    [change], _ = plan(paths, stack, environ={"CLAUDE_CONFIG_DIR": str(tmp_path)})
    env = json.loads(change.new)["env"]
    assert (env["ANTHROPIC_MODEL"], env["ANTHROPIC_DEFAULT_OPUS_MODEL"], env["ANTHROPIC_DEFAULT_SONNET_MODEL"]) == (
        "claude-opus-4-8", "claude-opus-4-8", "claude-sonnet-5")


def test_plan_without_a_claude_account_names_the_login(paths, tmp_path):
    keep(paths, "codex-plus")
    with pytest.raises(FlowgateError) as info:
        plan(paths, load_stack(paths), environ={"CLAUDE_CONFIG_DIR": str(tmp_path / "c")})
    assert "no account serves a claude model" in info.value.message and "doit login:claude" in info.value.hint


def test_plan_refuses_a_named_model_no_account_serves(paths, tmp_path):
    keep(paths, "claude")
    stack = load_stack(paths)
    stack["clients"]["claude"]["model"] = "claude-sonnet-4-5"  # retired: served only under its dated id
    with pytest.raises(FlowgateError, match="'claude-sonnet-4-5', which no account serves now"):
        plan(paths, stack, environ={"CLAUDE_CONFIG_DIR": str(tmp_path / "c")})

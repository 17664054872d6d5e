"""tasks.config.apikeys: `cliproxy.api_keys` validated, referenced and rendered (keys never stored elsewhere)."""

from __future__ import annotations

import pytest
import yaml

from tasks.base.errors import FlowgateError
from tasks.config import apikeys
from tasks.config.load import load_stack
from tasks.config.references import check_references
from tasks.services.cliproxy import render_cliproxy
from tests.unit.config.test_load import problems
from tests.unit.config.test_load import write_local as local

SECRETS = {"cliproxy_api_key": "client-key", "cliproxy_management_key": "mgmt-key", "litellm_master_key": "m"}


def test_each_entry_needs_one_key_source_and_openai_its_endpoint(paths):
    local(paths, """\
        cliproxy:
          api_keys:
            - {provider: codex}
            - {provider: claude, key_env: A, key_file: b.key}
            - {provider: openai, key_env: ACME}
            - {provider: codex, key_env: X, base_url: "ftp://x"}
            - {provider: gemini, key_env: X}
        """)
    found = "\n".join(problems(paths))
    assert "cliproxy.api_keys[0].key_env: give exactly one of key_env or key_file" in found
    assert "cliproxy.api_keys[1].key_env: give exactly one of key_env or key_file" in found
    assert "cliproxy.api_keys[2].name: missing" in found and "cliproxy.api_keys[2].base_url: missing" in found
    assert "cliproxy.api_keys[2].models: missing" in found
    assert "cliproxy.api_keys[3].base_url: 'ftp://x' is not an http(s) URL" in found
    assert "cliproxy.api_keys[4].provider" in found


def test_the_binarys_own_key_lists_are_refused_beside_api_keys(paths):
    local(paths, """\
        cliproxy:
          settings:
            codex-api-key: [{api-key: sk-in-a-tracked-file}]
          api_keys:
            - {provider: codex, key_env: OPENAI_API_KEY}
        """)
    assert any("cliproxy.settings.codex-api-key: is FlowGate's when cliproxy.api_keys is set" in p for p in problems(paths))


def test_references_name_a_missing_variable_and_a_bad_key_file(paths):
    local(paths, """\
        cliproxy:
          api_keys:
            - {provider: codex, key_env: NOT_SET_ANYWHERE}
            - {provider: claude, key_file: missing.key}
        """)
    lines = check_references(paths, load_stack(paths), environ={})
    assert "cliproxy.api_keys[0].key_env: environment variable NOT_SET_ANYWHERE is not set" in lines
    assert any(line.startswith("cliproxy.api_keys[1].key_file: ") and "does not exist" in line for line in lines)


def test_rendered_in_the_binarys_layout_with_the_keys_read_at_render(paths, monkeypatch):
    (paths.home / "claude.key").write_text("sk-from-file\n")
    local(paths, """\
        cliproxy:
          api_keys:
            - {provider: codex, key_env: CODEX_KEY_FOR_TEST}
            - {provider: claude, key_file: claude.key, base_url: "http://127.0.0.1:9/"}
            - {provider: openai, name: acme, base_url: "https://llm.acme.example/v1", key_env: CODEX_KEY_FOR_TEST,
               models: [acme-large]}
        """)
    monkeypatch.setenv("CODEX_KEY_FOR_TEST", "sk-from-env")
    doc = yaml.safe_load(render_cliproxy(paths, load_stack(paths), SECRETS))
    assert doc["codex-api-key"] == [{"api-key": "sk-from-env"}]
    assert doc["claude-api-key"] == [{"api-key": "sk-from-file", "base-url": "http://127.0.0.1:9/"}]
    assert doc["openai-compatibility"] == [{"name": "acme", "base-url": "https://llm.acme.example/v1",
                                            "api-key-entries": [{"api-key": "sk-from-env"}],
                                            "models": [{"name": "acme-large", "alias": "acme-large"}]}]
    assert doc["api-keys"] == ["client-key"]  # the client key list is untouched


def test_a_variable_unset_at_render_is_one_clear_error(paths):
    local(paths, "cliproxy:\n  api_keys:\n    - {provider: codex, key_env: SURELY_UNSET_VAR}\n")
    with pytest.raises(FlowgateError) as info:
        apikeys.rendered(paths, load_stack(paths)["cliproxy"]["api_keys"], environ={})
    assert "SURELY_UNSET_VAR is not set" in info.value.message and "export SURELY_UNSET_VAR" in info.value.hint


def test_the_fingerprint_follows_the_environment_and_the_label_never_holds_the_key():
    entries = [{"provider": "codex", "name": None, "key_env": "K", "key_file": None, "base_url": None, "models": []}]
    first, second = apikeys.fingerprint(entries, {"K": "one"}), apikeys.fingerprint(entries, {"K": "two"})
    assert first != second and "one" not in first and apikeys.fingerprint(entries, {"K": "one"}) == first
    assert apikeys.label(entries[0]) == "codex key ($K)"

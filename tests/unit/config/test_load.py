"""tasks.config.load: loading, validation messages, local overrides, profile merge semantics."""

from __future__ import annotations

import textwrap

import pytest

from tasks.config.load import is_loopback, load_stack
from tasks.config.references import check_references
from tasks.base.errors import FlowgateError
from tasks.config.merge import deep_merge


def write_local(paths, text):
    paths.local_config.write_text(textwrap.dedent(text))


def problems(paths) -> list[str]:
    with pytest.raises(FlowgateError) as info:
        load_stack(paths)
    return info.value.details or [info.value.message]


def test_shipped_config_is_valid(paths):
    stack = load_stack(paths)
    assert stack["profile"] == "default"
    assert stack["litellm"]["host"] == "127.0.0.1" and stack["cliproxy"]["host"] == "127.0.0.1"
    # no hand-kept ids: the models are what the accounts serve, the client slots chosen from them
    assert stack["models"] == [] and {stack["clients"][c][s] for c in ("codex", "claude") for s in ("model", "fast_model")} == {"auto"}
    assert "profiles" not in stack and "cost" in stack["profile_names"]


def test_every_shipped_profile_is_valid(paths):
    for name in load_stack(paths)["profile_names"]:
        write_local(paths, f"profile: {name}\n")
        assert load_stack(paths)["profile"] == name


def test_deep_merge_semantics():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {"f": 1}}
    overlay = {"a": {"c": [3]}, "d": None, "e": "scalar"}
    assert deep_merge(base, overlay) == {"a": {"b": 1, "c": [3]}, "d": None, "e": "scalar"}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {"f": 1}}  # inputs untouched


def test_local_yaml_merges_over_base(paths):
    write_local(paths, """
        litellm:
          port: 4100
        litellm_settings:
          num_retries: 5
    """)
    stack = load_stack(paths)
    assert stack["litellm"]["port"] == 4100
    assert stack["litellm"]["host"] == "127.0.0.1"  # sibling keys kept
    assert stack["litellm_settings"]["num_retries"] == 5
    assert stack["litellm_settings"]["drop_params"] is True


def test_profile_overlay_merges_maps_and_replaces_lists(paths):
    write_local(paths, """
        profile: mini
        profiles:
          mini:
            litellm_settings: {num_retries: 7}
            models:
              - name: only-one
            clients:
              codex: {model: only-one, fast_model: only-one}
              claude: {model: only-one, fast_model: only-one}
    """)
    stack = load_stack(paths)
    assert [m["name"] for m in stack["models"]] == ["only-one"]  # list replaced whole
    assert stack["litellm_settings"] == {"drop_params": True, "num_retries": 7, "request_timeout": 600}
    assert stack["clients"]["claude"]["model"] == "only-one"


def test_problem_in_profile_names_profile_path_and_file(paths):
    write_local(paths, """
        profiles:
          cost:
            litellm_settings:
              num_retries: many
    """)
    [line] = problems(paths)
    assert line.startswith("config/local.yaml:5: profiles.cost.litellm_settings.num_retries:")
    assert "expected an integer" in line and "found str 'many'" in line


def test_fallbacks_and_client_slots_may_name_any_id(paths):
    # the catalog's pattern routes serve whatever the accounts serve: only the running binary knows
    write_local(paths, """
        clients: {codex: {model: gpt-6-astra}}
        profiles:
          cost:
            router_settings:
              fallbacks:
                - gpt-6-astra: [claude-fable-5-1]
    """)
    stack = load_stack(paths)
    assert stack["profile_models"]["cost"] == ["gpt-6-astra", "claude-fable-5-1"]
    assert stack["profile_models"]["reliable"][:2] == ["gpt-5.5", "claude-sonnet-4-6"]


def test_adding_one_model_in_local_yaml_needs_nothing_else(paths):
    write_local(paths, "models:\n  - {name: fast, model: gpt-5.4-mini, params: {rpm: 60}}\n")
    assert [m["name"] for m in load_stack(paths)["models"]] == ["fast"]


def test_all_problems_reported_at_once(paths):
    write_local(paths, """
        litellm: {port: 0, hots: x}
        cliproxy: {port: "8317"}
    """)
    lines = problems(paths)
    assert len(lines) == 3
    assert any("litellm.hots: unknown key (did you mean 'host'?)" in l for l in lines)


def test_non_loopback_needs_opt_in(paths):
    write_local(paths, "litellm: {host: 0.0.0.0}\n")
    [line] = problems(paths)
    assert "litellm.host" in line and "allow_remote" in line
    write_local(paths, "litellm: {host: 0.0.0.0, allow_remote: true}\n")
    assert load_stack(paths)["litellm"]["host"] == "0.0.0.0"


@pytest.mark.parametrize("host,expected", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                           ("localhost", True), ("0.0.0.0", False), ("10.0.0.1", False),
                                           ("example.com", False)])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_disabled_cliproxy_needs_direct_models(paths):
    write_local(paths, "cliproxy: {enabled: false}\n")
    [line] = problems(paths)
    assert "models: is empty and cliproxy.enabled is false" in line
    write_local(paths, "cliproxy: {enabled: false}\nmodels: [{name: fast, model: gpt-5.4-mini}]\n")
    [line] = problems(paths)
    assert "models[0].via: routes through cliproxy, but cliproxy.enabled is false" in line


def test_references_checked_against_environment(paths, tmp_path):
    key = tmp_path / "key.txt"
    write_local(paths, f"""
        models:
          - {{name: a, via: direct, model: openai/gpt-4o, api_key_env: FG_TEST_KEY}}
          - {{name: b, via: direct, model: openai/gpt-4o, api_key_file: {key}}}
        clients: {{codex: {{model: a, fast_model: a}}, claude: {{model: b, fast_model: b}}}}
        profiles: null
    """)
    stack = load_stack(paths)
    missing = check_references(paths, stack, environ={})
    assert len(missing) == 2
    assert "FG_TEST_KEY is not set" in missing[0] and str(key) in missing[1]
    key.write_text("secret\n")
    assert check_references(paths, stack, environ={"FG_TEST_KEY": "x"}) == []


def test_managed_keys_are_refused(paths):
    write_local(paths, "general_settings: {master_key: sk-mine}\n")
    [line] = problems(paths)
    assert "general_settings.master_key" in line and "managed by FlowGate" in line

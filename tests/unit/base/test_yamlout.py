"""tasks.base.yamlout and the templates: hostile values come out exactly as written."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from tasks.services import secrets
from tasks.services import cliproxy, litellm
from tasks.config.load import load_stack
from tasks.base.yamlout import block, inline, scalar

HOSTILE = ['a"b', "it's", "a: b", "# not a comment", "x\ny\n", "{{ jinja }}", "{% raw %}", "yes", "No", "1.0",
           "", " lead", "trail ", "\t", "é☃\U0001F600", "\u2028x\x85", "- item", "@at", "%p", "*ref", "&anc",
           "!tag", "null", "~", "0x10", "1e3", "key:", "a #b", "\\back", "---", "...", "[x]", "{y}", ">", "|",
           "?", "07", "+1", ".inf", "a\r\nb", "\x00\x07", "'", '"']


@pytest.mark.parametrize("value", HOSTILE)
def test_scalar_round_trip(value):
    assert yaml.safe_load(f"v: {scalar(value)}") == {"v": value}
    assert yaml.safe_load(f"v: {inline([value, {value: value}])}") == {"v": [value, {value: value}]}


def test_block_round_trip_nested():
    data = {"k": HOSTILE, "n": {"a b": {"c:d": 'q"'}, "empty": {}, "el": [], "none": None, "f": 1.5, "i": -3,
                                "t": True}, "l": [{"x": 1, "y": [1, {"z": "w"}]}, [1, 2], []]}
    assert yaml.safe_load("root:" + block(data, 2) + "\n") == {"root": data}


def test_rendered_configs_keep_hostile_values(paths):
    hostile = 'model "x": #1 {{ y }}\nline2'  # free pass-through values may span lines
    one_line = 'model "x": #1 {{ y }}'  # typed values may not
    name = "a:b/c@d+e.f"  # the strictest name still holds YAML-significant characters
    paths.local_config.write_text(textwrap.dedent(f"""
        cliproxy:
          settings:
            proxy-url: {yaml.safe_dump(one_line, default_style='"').strip()}
            custom: {{"k: v": ["#", "{{{{x}}}}"]}}
        litellm_settings:
          weird: {yaml.safe_dump(hostile, default_style='"').strip()}
        unchecked_settings: [litellm_settings.weird, cliproxy.settings.custom]
        models:
          - name: "{name}"
            params: {{extra_headers: {{"X-A": "b: c"}}, extra_body: {yaml.safe_dump(hostile, default_style='"').strip()}}}
        clients: {{codex: {{model: null, fast_model: null}}, claude: {{model: null, fast_model: null}}}}
        profiles: null
    """))
    stack = load_stack(paths)
    values = secrets.placeholders()
    lite = yaml.safe_load(litellm.render_litellm(paths, stack, values))
    assert lite["model_list"][0]["model_name"] == name
    assert lite["model_list"][0]["litellm_params"]["model"] == f"openai/{name}"
    assert lite["model_list"][0]["litellm_params"]["extra_headers"] == {"X-A": "b: c"}
    assert lite["model_list"][0]["litellm_params"]["extra_body"] == hostile
    assert lite["litellm_settings"]["weird"] == hostile
    assert lite["general_settings"]["master_key"] == values[secrets.LITELLM_MASTER_KEY]
    cpa = yaml.safe_load(cliproxy.render_cliproxy(paths, stack, values))
    assert cpa["proxy-url"] == one_line
    assert cpa["custom"] == {"k: v": ["#", "{{x}}"]}
    assert cpa["api-keys"] == [values[secrets.CLIPROXY_API_KEY]]
    assert cpa["remote-management"]["secret-key"] == values[secrets.CLIPROXY_MANAGEMENT_KEY]
    assert cpa["host"] == "127.0.0.1" and cpa["auth-dir"] == str(paths.auths_dir)

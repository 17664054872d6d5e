"""tasks.services (common, litellm, cliproxy): launch specs, restart inputs and their reasons."""

from __future__ import annotations

import pytest

from tasks.services import secrets
from tasks.config.load import load_stack
from tasks.config.view import LiteLLM
from tasks.base.errors import FlowgateError
from tasks.base.paths import Paths
from tasks.services.litellm import LITELLM_DEFAULT_ENV, litellm_launch, litellm_params, model_entries, protocol, render_litellm
from tasks.services.common import base_url, connect_host, render_inputs, restart_reasons
from tasks.services.cliproxy import cliproxy_launch


def test_connect_host():
    assert connect_host("0.0.0.0") == "127.0.0.1"
    assert connect_host("::1") == "[::1]"
    assert connect_host("127.0.0.1") == "127.0.0.1"
    assert base_url(LiteLLM._make(["::", 1, False, 1, 1, {}, 1, True])) == "http://[::1]:1"


def test_litellm_launch_binds_configured_host_and_sets_offline_env(paths):
    stack = load_stack(paths)
    paths.litellm_config.parent.mkdir(parents=True)
    paths.litellm_config.write_text(render_litellm(paths, stack, secrets.placeholders()))
    launch = litellm_launch(paths, stack, environ={"PATH": "/bin"})
    served = launch.argv[launch.argv.index("--") + 1:]  # what the supervising launcher runs
    assert served[1:3] == ["-m", "tasks.gateway"]  # the gateway process's one entry point
    assert served[3:7] == ["--host", "127.0.0.1", "--port", "4000"]
    assert launch.env["CONFIG_FILE_PATH"] == str(paths.litellm_config)
    assert launch.env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True" and launch.env["PATH"] == "/bin"
    assert launch.parts["version"] and launch.parts["config"]
    assert launch.env["FLOWGATE_LEAN_UPSTREAM"] == "http://127.0.0.1:8317"  # CLIProxyAPI, for the lean path


def test_without_cliproxy_litellm_has_no_lean_path(paths):
    stack = load_stack(paths)
    stack["cliproxy"]["enabled"] = False
    assert "FLOWGATE_LEAN_UPSTREAM" not in litellm_launch(paths, stack, environ={}).env


def test_the_lean_path_switch_is_the_one_way_to_turn_it_off_and_restarts_litellm(paths):
    on = litellm_launch(paths, load_stack(paths), environ={})
    paths.local_config.write_text("litellm:\n  lean_path: false\n")
    off = litellm_launch(paths, load_stack(paths), environ={"FLOWGATE_LEAN_UPSTREAM": "http://127.0.0.1:8317"})
    assert "FLOWGATE_LEAN_UPSTREAM" not in off.env  # not even from the environment FlowGate runs in
    assert restart_reasons(on.parts, off.parts) == ["litellm.lean_path changed"]
    assert restart_reasons(off.parts, on.parts) == ["litellm.lean_path changed"]
    paths.local_config.write_text("litellm:\n  env: {FLOWGATE_LEAN_UPSTREAM: 'http://127.0.0.1:9'}\n")
    with pytest.raises(FlowgateError) as info:  # refused, not silently overridden
        load_stack(paths)
    assert ("litellm.env.FLOWGATE_LEAN_UPSTREAM: is FlowGate's own (where the lean path forwards); to turn the "
            "lean path off set litellm.lean_path: false") in "\n".join(info.value.details)


def test_litellm_restart_inputs_follow_config_env_and_key_values(paths):
    stack = load_stack(paths)
    paths.litellm_config.parent.mkdir(parents=True)
    paths.litellm_config.write_text("a: 1\n")
    stack["models"] = [{"name": "x", "via": "direct", "model": "openai/x", "api_base": None, "api_key_env": "FG_KEY",
                        "api_key_file": None, "protocol": None, "params": {}, "model_info": {}}]
    first = litellm_launch(paths, stack, environ={"FG_KEY": "secret-value-1"})
    assert litellm_launch(paths, stack, environ={"FG_KEY": "secret-value-1", "OTHER": "x"}).inputs_hash == first.inputs_hash
    second = litellm_launch(paths, stack, environ={"FG_KEY": "secret-value-2"})
    assert second.inputs_hash != first.inputs_hash
    assert restart_reasons(first.parts, second.parts) == ["upstream key variables changed"]
    assert "secret-value" not in str(first.parts) + str(second.parts)  # values are only hashed
    paths.litellm_config.write_text("a: 2\n")
    third = litellm_launch(paths, stack, environ={"FG_KEY": "secret-value-2"})
    assert restart_reasons(second.parts, third.parts) == ["config changed"]
    stack["litellm"]["env"] = {"LITELLM_LOCAL_MODEL_COST_MAP": "False"}
    assert restart_reasons(third.parts, litellm_launch(paths, stack, environ={"FG_KEY": "secret-value-2"}).parts) == [
        "environment changed"]
    assert set(LITELLM_DEFAULT_ENV) <= set(third.env)
    stack["litellm"]["port"] = 4999  # the port is on the command line too: one reason, named as such
    assert restart_reasons(third.parts, litellm_launch(paths, stack, environ={"FG_KEY": "secret-value-2"}).parts) == [
        "port changed", "environment changed"]


def test_cliproxy_restarts_only_for_binary_host_port(paths, tmp_path):
    stack = load_stack(paths)
    binary = tmp_path / "bin"
    base = cliproxy_launch(paths, stack, binary, "sha-a", environ={"MANAGEMENT_PASSWORD": "x"})
    assert "MANAGEMENT_PASSWORD" not in base.env  # would force remote management on
    stack["cliproxy"]["settings"]["request-retry"] = 9
    assert cliproxy_launch(paths, stack, binary, "sha-a", environ={}).inputs_hash == base.inputs_hash
    stack["cliproxy"]["port"] = 9999
    moved = cliproxy_launch(paths, stack, binary, "sha-b", environ={})
    assert restart_reasons(base.parts, moved.parts) == ["binary changed", "port changed"]


def test_render_inputs_split_by_service(paths):
    stack = load_stack(paths)
    lite, cpa = render_inputs(stack, "litellm"), render_inputs(stack, "cliproxy")
    assert "settings" in cpa and "models" not in cpa
    assert "models" in lite and lite["cliproxy"] == {"host": "127.0.0.1", "port": 8317}


def _named(name: str, **extra) -> dict:
    return {"name": name, "via": "cliproxy", "model": None, "api_base": None, "api_key_env": None,
            "api_key_file": None, "protocol": None, "params": {}, "model_info": {}, **extra}


def test_named_cliproxy_models_speak_their_own_protocol(paths):
    stack = load_stack(paths)
    values = secrets.placeholders()
    claude = litellm_params(paths, stack, _named("haiku", model="claude-haiku-4-5-20251001"), values)
    # LiteLLM's anthropic provider appends /v1/messages and /v1/messages/count_tokens to the root.
    assert claude["model"] == "anthropic/claude-haiku-4-5-20251001" and claude["api_base"] == "http://127.0.0.1:8317"
    codex = litellm_params(paths, stack, _named("gpt-5.5", params={"rpm": 6}), values)
    assert codex == {"model": "openai/gpt-5.5", "api_base": "http://127.0.0.1:8317/v1", "rpm": 6,
                     "api_key": values["cliproxy_api_key"]}
    assert protocol(_named("claude-x", protocol="openai")) == "openai"  # the config overrides
    assert protocol(_named("gpt-5.5", protocol="anthropic")) == "anthropic"


def test_every_served_id_is_routed_by_pattern_after_the_named_models(paths):
    stack = load_stack(paths)
    stack["models"] = [_named("fast", model="gpt-5.4-mini")]
    entries = model_entries(paths, stack, secrets.placeholders())
    assert [(e["name"], e["litellm_params"]["model"], e["litellm_params"]["api_base"]) for e in entries] == [
        ("fast", "openai/gpt-5.4-mini", "http://127.0.0.1:8317/v1"),  # LiteLLM matches names before patterns
        ("claude-*", "anthropic/claude-*", "http://127.0.0.1:8317"),
        ("*", "openai/*", "http://127.0.0.1:8317/v1")]
    assert 'model_name: "claude-*"' in render_litellm(paths, stack, secrets.placeholders())
    stack["cliproxy"]["enabled"] = False
    assert [e["name"] for e in model_entries(paths, stack, secrets.placeholders())] == ["fast"]


def test_protocol_is_checked_by_the_config(paths):
    clients = "clients: {codex: {model: a, fast_model: a}, claude: {model: a, fast_model: a}}\n"
    for model, expected in (("{name: a, protocol: grpc}", "models[0].protocol: expected one of anthropic, openai"),
                            ("{name: a, via: direct, model: openai/x, protocol: openai}", "models[0].protocol: only for via: cliproxy")):
        paths.local_config.write_text(f"models:\n  - {model}\n" + clients)
        with pytest.raises(FlowgateError) as info:
            load_stack(paths)
        assert expected in "\n".join(info.value.details)


def test_litellm_writes_its_bytecode_even_where_the_user_turned_it_off(paths):
    launch = litellm_launch(paths, load_stack(paths), environ={"PYTHONDONTWRITEBYTECODE": "1", "HOME": "/h"})
    assert "PYTHONDONTWRITEBYTECODE" not in launch.env and launch.env["HOME"] == "/h"


def test_litellm_env_values_reach_the_process_but_not_the_record(paths):
    stack = load_stack(paths)
    stack["litellm"]["env"] = {"UPSTREAM_TOKEN": "tok-very-secret-123"}
    launch = litellm_launch(paths, stack, environ={})
    assert launch.env["UPSTREAM_TOKEN"] == "tok-very-secret-123"
    assert "tok-very-secret" not in str(launch.parts) + str(launch.meta)  # the record keeps parts and meta
    stack["litellm"]["env"] = {"UPSTREAM_TOKEN": "tok-other"}
    assert restart_reasons(launch.parts, litellm_launch(paths, stack, environ={}).parts) == ["environment changed"]


def test_a_bare_value_in_a_template_is_escaped_too(paths, tmp_path):
    # A profile name can no longer carry a newline (the config refuses it), and even if one got
    # through, the template engine serialises every value: the comment stays one line.
    from tasks.services.render import render_template

    stack = load_stack(paths)
    stack["profile"] = "x\ninclude: /etc/passwd"
    text = render_litellm(paths, stack, secrets.placeholders())
    assert "\ninclude:" not in text and text.splitlines()[0].endswith('("x\\ninclude: /etc/passwd" profile).')
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.j2").write_text("# {{ v }} {{ v | yaml }}\n")
    bare = render_template(Paths(root=tmp_path, home=paths.home), "t.j2", {"v": "a\nb: c"})
    assert bare == '# "a\\nb: c" "a\\nb: c"\n'


def test_reading_the_usage_queue_renders_what_it_needs_and_the_users_values_win(paths):
    """Issue 29: with accounts.read_usage_queue the binary queues usage records (off by default) and
    keeps them past the steward's cycle; the render slice follows, so a change re-renders."""
    import yaml

    from tasks.services.cliproxy import render_cliproxy
    from tasks.services.common import QUEUE_SETTINGS
    from tests.unit.config.test_apikeys import SECRETS

    stack = load_stack(paths)
    plain = yaml.safe_load(render_cliproxy(paths, stack, SECRETS))
    assert "usage-statistics-enabled" not in plain
    reading = {**stack, "accounts": {"read_usage_queue": True}}
    doc = yaml.safe_load(render_cliproxy(paths, reading, SECRETS))
    assert {k: doc[k] for k in QUEUE_SETTINGS} == QUEUE_SETTINGS
    assert render_inputs(reading, "cliproxy") != render_inputs(stack, "cliproxy")
    slow = {**stack, "accounts": {"read_usage_queue": True, "refresh_seconds": 900}}
    assert yaml.safe_load(render_cliproxy(paths, slow, SECRETS))["redis-usage-queue-retention-seconds"] == 1800
    own = {**reading, "cliproxy": {**stack["cliproxy"], "settings": {"redis-usage-queue-retention-seconds": 3600}}}
    assert yaml.safe_load(render_cliproxy(paths, own, SECRETS))["redis-usage-queue-retention-seconds"] == 3600

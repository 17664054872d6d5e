"""tasks.clients.smoke over real HTTP: the CLIProxyAPIPlus double stands in for LiteLLM (it serves
the same client protocols), so both the passing checks and an upstream's error text are real."""

from __future__ import annotations

import json

import pytest

from tasks.clients import smoke
from tasks.config import load_stack
from tasks.errors import FlowgateError
from tests.unit.test_cliproxy_double import start_double  # noqa: F401  (the fixture)

KEY = "sk-gateway-key-FGTEST"


@pytest.fixture
def gateway(paths, start_double):  # noqa: F811
    double = start_double(api_keys=(KEY,), env={"CLIPROXY_DOUBLE_MODELS": "gpt-5-codex,gpt-5,claude-sonnet-4-5"})
    paths.secrets_dir.mkdir(parents=True)
    paths.secret("litellm_master_key").write_text(KEY + "\n")
    stack = load_stack(paths)
    stack["litellm"]["port"] = double.port
    return stack


def test_every_protocol_passes_for_a_served_model(paths, gateway):
    checks = smoke.run(paths, gateway, ["gpt-5"], timeout=10)
    assert [c.name for c in checks] == ["models", "chat", "chat (stream)", "responses", "responses (stream)",
                                        "messages", "messages (stream)"]
    assert all(c.ok and c.status == 200 for c in checks), [c.line() for c in checks]
    assert checks[1].detail == "double(gpt-5): Reply with the single word: ok"
    assert smoke.summary(checks) == "7 passed, 0 failed"


def test_failures_carry_the_upstream_error_text(paths, gateway):
    checks = smoke.run(paths, gateway, ["claude-haiku-4-5"], timeout=10)
    failed = {c.name: c for c in checks if not c.ok}
    assert set(failed) == {c.name for c in checks}  # the double serves no haiku, not even in /v1/models
    assert failed["models"].detail == "not listed: claude-haiku-4-5"
    assert failed["chat"].status == 400 and failed["chat"].detail == "unknown provider for model claude-haiku-4-5"
    assert failed["messages (stream)"].detail == "unknown provider for model claude-haiku-4-5"
    assert "count_tokens" in failed and failed["messages (dated id)"].model == "claude-haiku-4-5-20250101"
    assert smoke.summary(checks) == f"0 passed, {len(checks)} failed"
    assert failed["chat"].line().startswith("FAIL  400")
    data = json.loads(smoke.as_json(gateway, checks))
    assert data["failed"] == len(checks) and data["checks"][1]["detail"].startswith("unknown provider")


def test_a_gateway_that_is_down_fails_every_check(paths, gateway):
    gateway["litellm"]["port"] = 1  # nothing listens there
    checks = smoke.run(paths, gateway, ["gpt-5"], timeout=5)
    assert not any(c.ok for c in checks) and checks[0].status is None and "ConnectError" in checks[0].detail


def test_models_to_check(paths):
    stack = load_stack(paths)
    assert smoke.models_to_check(stack, None) == ["gpt-5-codex", "gpt-5", "claude-sonnet-4-5", "claude-haiku-4-5"]
    assert smoke.models_to_check(stack, "gpt-5") == ["gpt-5"]
    with pytest.raises(FlowgateError, match="'nope'.*gpt-5-codex"):
        smoke.models_to_check(stack, "nope")

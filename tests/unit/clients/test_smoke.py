"""tasks.clients.smoke over real HTTP: the CLIProxyAPI double stands in for LiteLLM as well (it
serves the same client protocols, refusing what no account serves), so both the passing checks
and an upstream's error text are real."""

from __future__ import annotations

import json

import pytest

from tasks.catalog import store
from tasks.clients import smoke
from tasks.config.load import load_stack
from tasks.base.errors import FlowgateError
from tests.catalog_support import registry
from tests.support import wait_for
from tests.unit.doubles.test_cliproxy_double import MGMT_KEY, model_ids, start_double, write_account  # noqa: F401

KEY = "sk-gateway-key-FGTEST"


@pytest.fixture
def double(start_double):  # noqa: F811
    return start_double(api_keys=(KEY,))


@pytest.fixture
def gateway(paths, double):
    paths.secrets_dir.mkdir(parents=True)
    for name, value in (("litellm_master_key", KEY), ("cliproxy_api_key", KEY), ("cliproxy_management_key", MGMT_KEY)):
        paths.secret(name).write_text(value + "\n")
    stack = load_stack(paths)
    stack["litellm"]["port"] = stack["cliproxy"]["port"] = double.port
    return stack


def log_in(double, *types: str) -> None:
    for t in types:
        write_account(double.auth_dir, f"{t}-u@example.com.json", {"type": t, "email": "u@example.com"})
    wait_for(lambda: len({m["owned_by"] for m in double.http.get(
        "/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()["data"]}) == len(types), what="accounts loaded")


def test_one_model_per_provider_on_its_own_protocols(paths, gateway, double):
    log_in(double, "codex", "claude")
    models, served = smoke.models_to_check(paths, gateway, None)
    # the client slots' automatic choices, one per provider; the catalog was read and kept on the way
    assert models == [("claude-sonnet-5", "anthropic"), ("gpt-5.6-sol", "openai")]
    assert set(served) == {m["id"] for ch in ("codex-pro", "claude") for m in registry()[ch]}
    assert set(store.read(paths).ids()) == set(served)
    checks = list(smoke.run(paths, gateway, models, served, timeout=10))
    assert [c.name for c in checks] == ["models", "messages", "messages (stream)", "count_tokens", "chat",
                                        "chat", "chat (stream)", "responses", "responses (stream)"]
    assert all(c.ok and c.status == 200 for c in checks), [c.line() for c in checks]
    assert checks[5].detail == "double(gpt-5.6-sol): Reply with the single word: ok"
    assert smoke.summary(checks) == "9 passed, 0 failed"


def test_no_account_is_a_clear_refusal_never_a_pass(paths, gateway):
    with pytest.raises(FlowgateError) as info:
        smoke.models_to_check(paths, gateway, None)
    assert info.value.message == "no account serves a model: nothing to smoke-test"
    assert "uv run doit login:codex" in info.value.hint


def test_failures_carry_the_upstream_error_text(paths, gateway, double):
    log_in(double, "codex")
    models, served = smoke.models_to_check(paths, gateway, "claude-sonnet-4-5")  # retired, and no claude account
    assert models == [("claude-sonnet-4-5", "anthropic")]
    checks = list(smoke.run(paths, gateway, models, served, timeout=10))
    failed = {c.name: c for c in checks if not c.ok}
    assert set(failed) == {c.name for c in checks}
    assert failed["models"].detail == "not listed: claude-sonnet-4-5"
    assert failed["chat"].status == 400 and failed["chat"].detail == "unknown provider for model claude-sonnet-4-5"
    assert failed["messages (stream)"].detail == "unknown provider for model claude-sonnet-4-5"
    assert smoke.summary(checks) == f"0 passed, {len(checks)} failed" and failed["chat"].line().startswith("FAIL  400")
    data = json.loads(smoke.as_json(gateway, checks))
    assert data["failed"] == len(checks) and data["checks"][1]["detail"].startswith("unknown provider")


def test_a_gateway_that_is_down_fails_every_check(paths, gateway, double):
    log_in(double, "codex")
    models, served = smoke.models_to_check(paths, gateway, None)
    gateway["litellm"]["port"] = 1  # nothing listens there
    checks = list(smoke.run(paths, gateway, models, served, timeout=5))
    assert not any(c.ok for c in checks) and checks[0].status is None and "ConnectError" in checks[0].detail


def test_a_hanging_gateway_fails_each_check_at_its_deadline(paths, gateway):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts (the kernel's queue) and never answers
    gateway["litellm"]["port"] = listener.getsockname()[1]
    try:
        checks = list(smoke.run(paths, gateway, [("gpt-5.5", "openai")], ["gpt-5.5"], timeout=0.5))
    finally:
        listener.close()
    # every check ends at its deadline with the reason (the default --timeout is 60 s, not minutes)
    assert [c.ok for c in checks] == [False] * 5 and all("Timeout" in c.detail for c in checks)


def test_peer_text_is_escaped_before_the_terminal():
    """Issue 31, item 9: reply text, upstream errors and model ids reached the terminal raw."""
    line = smoke.Check("chat", "gpt-\x1b[31mred", False, 400, 3, "upstream said \x1b]0;pwned\x07 and \r\x1b[2K").line()
    assert "\x1b" not in line and "\x07" not in line and "\r" not in line
    assert "gpt-\\x1b[31mred" in line and "\\x1b]0;pwned\\x07" in line

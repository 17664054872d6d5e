"""`doit smoke` and `doit models` against the shared real stack (logged in to codex and claude)."""

from __future__ import annotations

import json


def test_models_lists_what_the_accounts_serve(stack):
    result = stack.doit("models")
    assert result.returncode == 0, result.output
    for name in ("gpt-5.5", "gpt-5.4-mini", "claude-sonnet-4-6", "claude-haiku-4-5-20251001"):
        assert name in result.stdout
    assert "gpt-5-codex" not in result.stdout and "warning" not in result.stdout


def test_smoke_checks_one_model_per_provider_on_its_protocols(stack):
    result = stack.doit("smoke")
    assert result.returncode == 0, result.output
    lines = result.stdout.strip().splitlines()
    # /v1/models + codex's model on chat/Responses (4) + claude's on Messages, count_tokens and chat (4)
    assert lines[-1] == "9 passed, 0 failed"
    assert len([line for line in lines if line.startswith("ok ")]) == 9


def test_smoke_json_and_one_model(stack):
    result = stack.doit("smoke", "--json", "--model", "claude-haiku-4-5-20251001")
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    assert data["failed"] == 0 and data["passed"] == len(data["checks"]) == 5
    assert {c["model"] for c in data["checks"][1:]} == {"claude-haiku-4-5-20251001"}


def test_smoke_of_an_unserved_model_fails_with_the_reason(stack):
    result = stack.doit("smoke", "--model", "gpt-6", "--timeout", "20")
    assert result.returncode == 1 and "Traceback" not in result.output
    assert "FAIL  400" in result.stdout and "'gpt-6' is not served by any logged-in account" in result.stdout
    assert "smoke: 5 of 5 checks failed" in result.stderr

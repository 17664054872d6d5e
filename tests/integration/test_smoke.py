"""`doit smoke` and `doit models` against the shared real stack."""

from __future__ import annotations

import json


def test_models_lists_names_and_aliases(stack):
    result = stack.doit("models")
    assert result.returncode == 0, result.output
    for name in ("gpt-5-codex", "gpt-5", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-haiku-4-5-20*"):
        assert name in result.stdout


def test_smoke_passes_on_every_protocol(stack):
    result = stack.doit("smoke")
    assert result.returncode == 0, result.output
    lines = result.stdout.strip().splitlines()
    # /v1/models + 4 models x 6 protocol checks + count_tokens and a dated id for each Claude model
    assert lines[-1] == "29 passed, 0 failed"
    checks = [line for line in lines if line.startswith("ok ")]
    assert len(checks) == 29
    assert any("count_tokens" in line and "claude-haiku-4-5" in line for line in checks)


def test_smoke_json_and_one_model(stack):
    result = stack.doit("smoke", "--json", "--model", "claude-haiku-4-5")
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    assert data["failed"] == 0 and data["passed"] == len(data["checks"]) == 9
    assert {c["model"] for c in data["checks"][1:]} == {"claude-haiku-4-5", "claude-haiku-4-5-20250101"}


def test_smoke_unknown_model_names_the_known_ones(stack):
    result = stack.doit("smoke", "--model", "gpt-6")
    assert result.returncode == 1
    assert "'gpt-6'" in result.stderr and "claude-haiku-4-5" in result.stderr and "Traceback" not in result.output

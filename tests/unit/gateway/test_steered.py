"""tasks.gateway.steered and the gate's answer for a model whose provider has no account in rotation."""

from __future__ import annotations

import json
import os
import time

import pytest

from tasks.gateway import gate, steered
from tests.unit.gateway.test_gate import KEY, inner, run

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def write(path, models, updated=None):
    path.write_text(json.dumps({"updated": time.time() if updated is None else updated, "threshold": 90,
                                "steering": True, "accounts": [], "steered": models}))


class Tick:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0  # every lookup is past CHECK_SECONDS: the file is looked at each time
        return self.now


def test_reads_the_file_and_sees_it_change(tmp_path):
    path = tmp_path / "pool.json"
    s = steered.Steered(str(path), clock=Tick())
    assert s.lookup("gpt-5.5") is None  # no file: nothing steered
    write(path, {"gpt-5.5": {"provider": "codex", "resets_at": time.time() + 60, "fallback": "claude-x"}})
    assert s.lookup("gpt-5.5")["fallback"] == "claude-x" and s.lookup("other") is None
    write(path, {})
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert s.lookup("gpt-5.5") is None


@pytest.mark.parametrize("content", [b"not json", b"[1]", b'{"steered": []}', b"{" * 100000,
                                     b'{"steered": {"m": {"provider": "c", "resets_at": "x", "fallback": 5}}}'])
def test_damaged_files_never_raise(tmp_path, content):
    path = tmp_path / "pool.json"
    path.write_bytes(content)
    entry = steered.Steered(str(path), clock=Tick()).lookup("m")
    assert entry is None or (entry["resets_at"] is None and entry["fallback"] is None)


def test_oversized_or_stale_means_nothing_steered_and_a_past_reset_holds(tmp_path):
    path = tmp_path / "pool.json"
    path.write_bytes(b" " * (steered.MAX_BYTES + 1))
    assert steered.Steered(str(path), clock=Tick()).lookup("m") is None
    write(path, {"m": {"provider": "codex", "resets_at": None, "fallback": None}}, updated=time.time() - 600)
    assert steered.Steered(str(path), clock=Tick()).lookup("m") is None  # the steward stopped writing it
    write(path, {"m": {"provider": "codex", "resets_at": time.time() - 1, "fallback": None}})
    assert steered.Steered(str(path), clock=Tick()).lookup("m") is not None  # until the steward puts one back
    assert steered.answer("m", {"provider": "codex", "resets_at": time.time() - 1})[1] == 1


def door(path):
    return gate.Gate(inner, state=lambda: (KEY, object()), body_rule=lambda p, d: None,
                     steered=steered.Steered(str(path), clock=Tick()))


AUTH = [(b"authorization", b"Bearer " + KEY.encode())]


@pytest.mark.parametrize("path,shape", [("/v1/chat/completions", "openai"), ("/v1/responses", "openai"),
                                        ("/v1/messages", "anthropic")])
def test_no_fallback_is_a_429_in_the_clients_protocol_naming_the_reset(tmp_path, path, shape):
    pool = tmp_path / "pool.json"
    resets = time.time() + 600
    write(pool, {"gpt-5.5": {"provider": "codex", "resets_at": resets, "fallback": None}})
    out = run(door(pool), path, AUTH, b'{"model":"gpt-5.5","messages":[]}')
    assert out["status"] == 429
    assert 590 <= int(out["headers"][b"retry-after"]) <= 600
    data = json.loads(out["body"])
    error = data["error"]
    assert error["type"] == "rate_limit_error" and (data["type"] == "error" if shape == "anthropic" else error["code"] == "429")
    assert "every codex account is out of rotation" in error["message"]
    assert time.strftime("%H:%M", time.gmtime(resets)) in error["message"]


def test_a_fallback_carries_the_request_on_with_the_fallback_model(tmp_path):
    pool = tmp_path / "pool.json"
    write(pool, {"gpt-5.5": {"provider": "codex", "resets_at": time.time() + 600, "fallback": "claude-sonnet-4-6"}})
    seen = {}

    async def app(scope, receive, send):
        seen["parsed"] = scope[gate.BODY]
        await inner(scope, receive, send)

    g = gate.Gate(app, state=lambda: (KEY, object()), body_rule=lambda p, d: None,
                  steered=steered.Steered(str(pool), clock=Tick()))
    out = run(g, "/v1/chat/completions", AUTH, b'{"model":"gpt-5.5","messages":[]}')
    assert out["status"] == 200 and json.loads(out["body"]) == {"model": "claude-sonnet-4-6", "messages": []}
    assert seen["parsed"][0] == out["body"] and seen["parsed"][1]["model"] == "claude-sonnet-4-6"
    other = run(g, "/v1/chat/completions", AUTH, b'{"model":"gpt-5.4","messages":[]}')
    assert json.loads(other["body"])["model"] == "gpt-5.4"  # not steered: as it came


def test_count_tokens_is_never_refused(tmp_path):
    pool = tmp_path / "pool.json"
    write(pool, {"claude-x": {"provider": "claude", "resets_at": time.time() + 60, "fallback": None}})
    assert run(door(pool), "/v1/messages/count_tokens", AUTH, b'{"model":"claude-x","messages":[]}')["status"] == 200

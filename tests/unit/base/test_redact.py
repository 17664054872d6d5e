"""tasks.base.redact and tasks.base.terminal: keys masked, control characters escaped (issue 8: items 5, 11)."""

from __future__ import annotations

import pytest

from tasks.base.errors import FlowgateError
from tasks.base.redact import masked_if_key
from tasks.base.terminal import printable

KEYS = ["sk-proj-AbCdEf0123456789xyzXYZ", "sk-ant-api03-abcdefghijklmnop", "ghp_abcdefghijklmnopqrstuvwxyz0123",
        "AKIAABCDEFGHIJKLMNOP", "AIzaSyA1234567890abcdefghijklmnopqrstu", "hf_abcdefghijklmnopqrstuvwx",
        "Xk3vQ9zLm2Pq8Rt5Wn7Yb4Hc6Jd1Fg0Sa"]
NOT_KEYS = ["OPENAI_API_KEY", "3f786850e387550fdab836ed7e6dc881de23001b", "claude-haiku-4-5-20251001",
            "/tmp/pytest-of-user/pytest-12/test_broken_config_fails_clean0/home", "router-for-me/CLIProxyAPI"]


@pytest.mark.parametrize("key", KEYS)
def test_keys_are_masked(key):
    assert masked_if_key(key) != key
    shown = masked_if_key(f"models[0].api_key_env: found str '{key}'")
    assert key not in shown and key[:6] in shown and "…" in shown


@pytest.mark.parametrize("text", NOT_KEYS)
def test_ordinary_text_is_left_alone(text):
    assert masked_if_key(text) == text


def test_printable_escapes_control_characters():
    assert printable("a\x1b[2Jb\rc\x00") == "a\\x1b[2Jb\\rc\\x00"
    assert printable("one\ntwo") == "one\\ntwo"
    assert printable("one\ntwo", keep_newlines=True) == "one\ntwo"
    assert printable("tab\tstays") == "tab\tstays"


def test_error_blocks_go_through_printable():
    key = KEYS[0]
    text = FlowgateError(f"bad \x1b[31m{key}", "hint \x07", details=["line\nforged: ok"]).render()
    assert "\x1b" not in text and "\x07" not in text and key not in text
    assert text.count("\n") == 2  # message, one detail line, hint: a newline in a detail cannot add a line

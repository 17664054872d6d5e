"""tasks.config.valuerules: what any config value may be (issue 8: items 4, 5, 6, 12)."""

from __future__ import annotations

import datetime

import pytest

from tasks.config.valuerules import ENV_NAME, MAX_TEXT, MODEL_NAME, PROFILE_NAME, plain_problems, text_problem


@pytest.mark.parametrize("rule,good,bad", [
    (MODEL_NAME, ["gpt-5", "claude-haiku-4-5", "openai/gpt-4o", "llama3:8b", "a@b+c.d_e"],
     ["", "-x", "a b", "a\nb", "a\x1bb", "é", "x" * 129]),
    (PROFILE_NAME, ["default", "cost", "my_profile-2"], ["", "a.b", "cost\ninclude: x", "a/b", "x" * 65]),
    (ENV_NAME, ["OPENAI_API_KEY", "_x", "a1"], ["A=B", "1A", "", "sk-proj-abc", "A B", "A\x00"]),
])
def test_name_rules(rule, good, bad):
    assert all(rule.ok(v) for v in good)
    assert not any(rule.ok(v) for v in bad)


def test_text_problems():
    assert text_problem("fine\tvalue") is None
    assert "NUL" in text_problem("a\x00b", multiline=True)
    assert "control character" in text_problem("a\nb")
    assert text_problem("a\nb", multiline=True) is None
    assert "at most" in text_problem("x" * (MAX_TEXT + 1), multiline=True)


def test_plain_problems_walk_every_value():
    found = []
    value = {"ok": [1, 2.5, "s", None, True], "when": datetime.date(2024, 1, 1),
             "at": datetime.datetime(2024, 1, 1, 10, 0), "n": float("nan"), "i": [float("-inf")],
             "nul": "a\x00", "s": {1, 2}, "b": b"x", "o": [("k", "v")], "k": {"a\x1bb": 1}}
    plain_problems(value, ("x",), lambda path, why: found.append((path, why)))
    got = {path: why for path, why in found}
    assert set(got) == {("x", "when"), ("x", "at"), ("x", "n"), ("x", "i", 0), ("x", "nul"), ("x", "s"), ("x", "b"),
                        ("x", "o", 0), ("x", "k", "a\x1bb")}
    assert "YAML date (2024-01-01); quote it" in got[("x", "when")]
    assert "finite" in got[("x", "n")] and "finite" in got[("x", "i", 0)]

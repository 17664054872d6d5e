"""The command line itself (no services needed): options anywhere, `doit help`, quiet exits."""

from __future__ import annotations

import re

import pytest

USER_TASKS = ["up", "status", "down", "restart", "logs", "check", "render", "fetch", "doctor", "login:codex",
              "accounts", "import:codex", "integrate:codex", "integrate:claude", "smoke", "models"]


def test_options_after_a_service_name(doit, paths):
    paths.logs_dir.mkdir(parents=True)
    paths.log("litellm").write_text("one\ntwo\nthree\n")
    result = doit("logs", "litellm", "-n", "1")
    assert result.returncode == 0, result.output
    assert result.stdout.splitlines() == [f"==> {paths.log('litellm')} <==", "three"]
    mixed = doit("logs", "-n", "2", "litellm", "cliproxy", "--lines=1")
    assert mixed.returncode == 0, mixed.output
    assert "three" in mixed.stdout and "two" not in mixed.stdout and "cliproxy.log" in mixed.stdout


@pytest.mark.parametrize("args", [("logs", "litellm", "--bogus"), ("logs", "litellm", "-n", "many")])
def test_bad_option_after_a_positional_word_is_one_line(doit, args):
    result = doit(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.output and "unknown service" not in result.stderr
    assert result.stderr.startswith(f"error: doit {args[0]}: option ")


@pytest.mark.parametrize("task", USER_TASKS)
def test_help_names_options_with_an_example(doit, task):
    result = doit("help", task)
    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    usage = next(line for line in lines if line.startswith("usage: uv run doit "))
    assert any(line.startswith("example: uv run doit ") for line in lines), result.stdout
    for option in re.findall(r"^\s+(?:-\w ARG, |-\w, )?(--[\w-]+)", result.stdout, re.M):
        assert option in usage, f"{option} missing from {usage!r}"

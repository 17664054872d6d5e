"""The command line itself (no services needed): options anywhere, `doit help`, quiet exits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, base_env

USER_TASKS = ["up", "status", "down", "restart", "logs", "check", "render", "fetch", "outdated", "upgrade", "rollback", "doctor", "login:codex",
              "accounts", "import:codex", "integrate:codex", "integrate:claude", "smoke", "models", "keys"]


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


def _doit_popen(home, *args, **kw):
    return subprocess.Popen([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args], cwd=home,
                            env=base_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_closed_stdout_pipe_exits_quietly(home):
    for args in (("status", "--json"), ("status",), ("logs",)):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before anything is written: `| head` that already quit
        proc = subprocess.Popen([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args], cwd=home,
                                env=base_env(home), stdout=write_end, stderr=subprocess.PIPE, text=True)
        os.close(write_end)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert proc.returncode in (0, 1), (args, proc.returncode, err)


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02])
def test_ctrl_c_during_start_up_exits_quietly(home, delay):
    router = home / ".router"
    assert not router.exists()
    proc = _doit_popen(home, "status")
    deadline = time.monotonic() + 30
    while not router.exists():  # dodo.py is loading: FlowGate's code runs from here on
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in err and "interrupted" in err, err


def test_corrupt_state_db_is_moved_aside(home, doit, paths):
    paths.router.mkdir()
    paths.doit_db.write_bytes(b"this is not an sqlite database, it is a text file\n" * 100)
    status = doit("status")
    assert "Traceback" not in status.output
    assert status.returncode == 1 and "not ready" in status.stderr  # status ran: nothing is up
    assert f"state db {paths.doit_db} was unreadable (file is not a database)" in status.stderr
    aside = [p for p in paths.router.iterdir() if p.name.startswith("doit.sqlite3.corrupt-")]
    assert len(aside) == 1
    down = doit("down")
    assert down.returncode == 0 and "was unreadable" not in down.stderr, down.output
    # damage inside a valid file (pages overwritten) is caught too
    data = bytearray(paths.doit_db.read_bytes())
    data[100:] = bytes(len(data) - 100)
    paths.doit_db.write_bytes(bytes(data[:100]) + b"\x13" * (len(data) - 100))
    again = doit("down")
    assert again.returncode == 0 and "Traceback" not in again.output and "was unreadable" in again.stderr


def test_logs_are_shown_without_terminal_escapes(doit, paths):
    paths.logs_dir.mkdir(parents=True)
    paths.log("litellm").write_bytes(b"\x1b[32mINFO\x1b[0m:     Uvicorn running \x1b]0;title\x07on port 4000\n"
                                     b"\x1b[1;31mERROR\x1b[0m boom\x1b(B\n")
    result = doit("logs", "litellm", "-n", "2")
    assert result.returncode == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "INFO:     Uvicorn running on port 4000" in result.stdout and "ERROR boom" in result.stdout


@pytest.mark.parametrize("args, said", [
    (("status", "--jsn"), "doit status: unknown option --jsn (did you mean --json?)\n  usage: uv run doit status [--json]"),
    (("logs", "-n"), "doit logs: option -n requires argument\n  usage: uv run doit logs"),
    (("login:codex", "--timeout=abc"), "doit login:codex: option --timeout takes a number"),
    (("login:codex", "--callback-url"), "write --callback-url='URL' with the `=`"),
    (("integrate:codex", "--aply"), "unknown option --aply (did you mean --apply?)"),
    (("stauts",), "unknown task 'stauts': did you mean `uv run doit status`?"),
], ids=["typo", "missing value", "bad number", "callback url", "subtask", "task typo"])
def test_command_line_errors_name_the_option_and_the_usage(doit, args, said):
    result = doit(*args)
    assert result.returncode == 3, result.output
    assert said in result.stderr, result.stderr
    assert "CmdOption" not in result.output and "<class" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("how", ["python -m doit", "the doit script"])
def test_bare_help_points_to_flowgates_tasks(home, how):
    # doit reads [tool.doit] from pyproject.toml in the working directory: the checkout, as a user runs it.
    # `uv run doit` runs the environment's `doit` script, whose sys.path lacks the checkout: the help
    # plugin must import all the same (FlowGate is installed into its environment).
    doit = [sys.executable, "-m", "doit"] if how == "python -m doit" else [str(Path(sys.executable).parent / "doit")]
    for args, says in ((["help"], "FlowGate's tasks: `uv run doit list`"), (["help", "up"], "usage: uv run doit up")):
        proc = subprocess.run(doit + args, cwd=ROOT, env=base_env(home), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert says in proc.stdout


def test_redis_appears_only_when_configured(doit, home, paths):
    assert doit("secrets").returncode == 0
    assert not paths.secret("redis_password").exists()
    for args in (("down",), ("logs",)):
        result = doit(*args)
        assert result.returncode == 0, result.output
        assert "redis.log" not in result.output and "redis is" not in result.output, (args, result.output)
    paths.local_config.write_text("redis:\n  managed: true\n")
    assert doit("secrets").returncode == 0 and paths.secret("redis_password").exists()
    assert "redis.log" in doit("logs").stdout and "redis is not running" in doit("down").stdout

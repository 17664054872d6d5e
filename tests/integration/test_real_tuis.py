"""The interactive Codex CLI and Claude Code, as a person starts them after `integrate`: in tmux,
first-run dialogs answered with their defaults, a prompt answered through the gateway, the `/model`
picker read off the screen. Every wait is on what the screen shows. Run on the mainline stack only:
what the clients see does not depend on the CLIProxyAPI line (test_real_clients runs both).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import httpx
import psutil
import pytest

from tests.integration.test_real_clients import client_env, npm_clients  # noqa: F401  (the fixture)

PROMPT = "ping from the tui"


@pytest.fixture
def tui_env(stack, tmp_path):
    if stack.line.name != "mainline":
        pytest.skip("the interactive clients are driven on the mainline stack (the clients do not see the line)")
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: the interactive clients cannot be driven (.ci/run installs it)")
    env = client_env(tmp_path, TERM="xterm-256color")
    env.pop("NO_COLOR")
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)  # a project: the clients ask whether to trust it
    yield env, work
    # Codex leaves its app-server daemon running after the TUI quits: end the ones this test started
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if (proc.info["cmdline"] or [""])[0].startswith(str(tmp_path)):
            proc.terminate()


def codex_list(stack) -> list[dict]:
    answer = httpx.get(f"{stack.litellm_url}/v1/models", params={"client_version": "0.171.0"}, timeout=30,
                       headers={"Authorization": f"Bearer {stack.master_key}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["models"]


def test_codex_first_start_answers_and_its_picker_lists_what_is_served(stack, npm_clients, tui_env, tmp_path):
    from tests.integration.tmux_support import Screen

    env, work = tui_env
    assert stack.doit("integrate:codex", "--apply", env=env).returncode == 0
    screen = Screen([str(npm_clients / "codex")], work, env)
    try:
        # ready: the status line naming the session's model (the composer is drawn before the dialogs)
        seen = screen.answer_dialogs(("Trust and continue",), r"GPT-5\.6-Sol default · ")
        assert seen == ["Trust and continue"]  # no "Try new model" dialog: nothing unserved is offered
        screen.submit(PROMPT, "›", rf"double\(gpt-5\.6-sol\): {PROMPT}")  # integrate's choice, through the gateway
        screen.wait_for("Ask Codex to do anything")
        screen.type("/model")
        screen.wait_for("/model +choose what model")
        screen.send("Enter")
        screen.wait_for("Select Model and Effort")
        picker = [line.split(".", 1)[1].split("  ")[0].replace("(current)", "").strip()
                  for line in screen.text().splitlines() if line.strip()[:1] in "›0123456789" and ". " in line]
        served = [m["display_name"] for m in codex_list(stack) if m["visibility"] == "list" and m.get("supported_in_api", True)]
        assert picker == served and picker[0] == "GPT-5.6-Sol", screen.text()  # exactly the served, in Codex's order
        screen.send("Escape")
        screen.wait_gone("Select Model and Effort")
    finally:
        screen.close()
    config = tmp_path / "codex" / "config.toml"
    data = tomllib.loads(config.read_text())
    assert data["model"] == "gpt-5.6-sol"  # no dialog rewrote it
    assert data["projects"][str(work)] == {"trust_level": "trusted"}  # the trust Codex saved
    restored = stack.doit("integrate:codex", "--restore", env=env)
    assert restored.returncode == 0, restored.output
    assert tomllib.loads(config.read_text())["projects"][str(work)] == {"trust_level": "trusted"}  # kept by restore
    assert "flowgate" not in config.read_text()


def test_claude_first_start_answers_and_its_picker_has_each_familys_newest(stack, npm_clients, tui_env, tmp_path):
    from tests.integration.tmux_support import Screen

    env, work = tui_env
    assert stack.doit("integrate:claude", "--apply", env=env).returncode == 0
    screen = Screen([str(npm_clients / "claude")], work, env)
    try:
        seen = screen.answer_dialogs(("Choose the text style", "Press Enter to continue", "Yes, I trust this folder"),
                                     r"\? for shortcuts")
        assert "Yes, I trust this folder" in seen
        screen.wait_for("Sonnet 5")  # the model integrate chose, on the welcome box
        screen.submit(PROMPT, "❯", r"double\(claude-sonnet-5\):")  # integrate's choice, through the gateway
        screen.type("/model")
        screen.wait_for("❯ /model")
        screen.send("Enter")
        screen.wait_for("Select model")
        text = screen.text()
        slots = {family: next((re.search(r"\d+\.\s+(\S+)", line).group(1) for line in text.splitlines()
                               if f"Custom {family} model" in line), None) for family in ("Opus", "Sonnet", "Haiku")}
        # each slot the newest served id of its family (the Opus entry had been a Sonnet)
        assert slots == {"Opus": "claude-opus-5", "Sonnet": "claude-sonnet-5", "Haiku": "claude-haiku-4-5-20251001"}, text
        screen.send("Escape")
        screen.wait_gone("Select model")
    finally:
        screen.close()

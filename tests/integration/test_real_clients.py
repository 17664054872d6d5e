"""The real clients from npm (Codex CLI, Claude Code) through `integrate:* --apply` and the stack.

The packages are installed once into a cache directory (FLOWGATE_NPM_CLIENTS, default
~/.cache/flowgate-tests/npm-clients); without npm the test is skipped and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

PACKAGES = {"codex": "@openai/codex@^0.171", "claude": "@anthropic-ai/claude-code@^2.1"}


@pytest.fixture(scope="session")
def npm_clients() -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the real Codex CLI and Claude Code cannot be installed (.ci/run installs it)")
    prefix = Path(os.environ.get("FLOWGATE_NPM_CLIENTS") or Path.home() / ".cache" / "flowgate-tests" / "npm-clients")
    bins = prefix / "node_modules" / ".bin"
    if not all((bins / name).exists() for name in PACKAGES):
        prefix.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", *PACKAGES.values()],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"npm install failed:\n{proc.stdout}\n{proc.stderr}"
    return bins


def client_env(tmp_path: Path, **extra) -> dict:
    """A clean HOME and config dirs: nothing of the user's settings, no way to reach the internet quietly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "CODEX_", "CLAUDE_"))}
    env.update({
        "HOME": str(tmp_path / "home"),
        "CODEX_HOME": str(tmp_path / "codex"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no telemetry, update checks, error reports
        "DISABLE_AUTOUPDATER": "1",
        "NO_COLOR": "1",
        **extra,
    })
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def forget_upstream_requests(stack) -> None:
    httpx.delete(f"http://127.0.0.1:{stack.cliproxy_port}/_double/requests", timeout=10)


def lean_served(stack, path: str) -> list[bool]:
    """For each request the upstream received on `path`: whether the lean path forwarded it (LiteLLM's
    path sends its own user agent; the lean path sends none)."""
    seen = httpx.get(f"http://127.0.0.1:{stack.cliproxy_port}/_double/requests", timeout=10).json()
    return [not e["headers"].get("user-agent", "").startswith("litellm/") for e in seen if e["path"] == path]


def test_codex_exec_through_the_gateway(stack, npm_clients, tmp_path):
    env = client_env(tmp_path)
    forget_upstream_requests(stack)
    applied = stack.doit("integrate:codex", "--apply", env=env)
    assert applied.returncode == 0, applied.output
    proc = subprocess.run([str(npm_clients / "codex"), "exec", "--skip-git-repo-check", "ping from codex"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "double(gpt-5.5): ping from codex" in proc.stdout  # the automatic choice: what the account serves
    assert lean_served(stack, "/v1/responses") == [True]  # Codex's turn needs nothing of LiteLLM's path


def test_claude_print_through_the_gateway(stack, npm_clients, tmp_path):
    env = client_env(tmp_path)
    forget_upstream_requests(stack)
    applied = stack.doit("integrate:claude", "--apply", env=env)
    assert applied.returncode == 0, applied.output
    proc = subprocess.run([str(npm_clients / "claude"), "-p", "ping from claude"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Claude Code puts system reminders before the prompt in the same message; the double echoes it all.
    reply = proc.stdout.strip()
    assert reply.startswith("double(claude-sonnet-5): ") and reply.endswith("ping from claude"), reply
    assert lean_served(stack, "/v1/messages") and all(lean_served(stack, "/v1/messages"))  # nor Claude Code's

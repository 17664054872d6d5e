"""The real clients from npm (Codex CLI, Claude Code) through `integrate:* --apply` and the stack.

The packages are installed once into a cache directory (FLOWGATE_NPM_CLIENTS, default
~/.cache/flowgate-tests/npm-clients); without npm the test is skipped and says why.
"""

from __future__ import annotations

import json
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
    assert ("codex model: gpt-5.6-sol (auto: the newest general GPT served for Codex (5.6), first in Codex's own "
            "order of gpt-5.6-sol, gpt-5.6-terra, gpt-5.6-luna)") in applied.stdout
    proc = subprocess.run([str(npm_clients / "codex"), "exec", "--skip-git-repo-check", "ping from codex"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "double(gpt-5.6-sol): ping from codex" in proc.stdout  # the automatic choice: what the account serves
    assert "failed to refresh available models" not in proc.stderr  # the gateway's list decodes
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


def test_codex_lists_exactly_the_served_codex_models(stack, npm_clients, tmp_path):
    from tasks.catalog import store

    env = client_env(tmp_path)
    assert stack.doit("integrate:codex", "--apply", env=env).returncode == 0
    log_before = stack.paths.log("litellm").stat().st_size
    proc = subprocess.run([str(npm_clients / "codex"), "debug", "models"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "failed to refresh available models" not in proc.stderr, proc.stderr
    models = json.loads(proc.stdout)["models"]
    served = [m for m in store.read(stack.paths).models if m.owned_by == "openai"]
    assert sorted(m["slug"] for m in models) == sorted(m.id for m in served)  # nothing of Codex's built-in list
    by_slug = {m["slug"]: m for m in models}
    # CLIProxyAPI's metadata for each (its Codex catalog): context window, reasoning levels, no upgrade
    # to a model no account serves (Codex's "Try new model" dialog would rewrite config.toml to it)
    assert by_slug["gpt-5.5"]["context_window"] == 272000
    assert [level["effort"] for level in by_slug["gpt-5.5"]["supported_reasoning_levels"]] == ["low", "medium", "high", "xhigh"]
    assert all(m["upgrade"] is None or m["upgrade"]["model"] in by_slug for m in models)
    log = stack.paths.log("litellm").read_bytes()[log_before:].decode(errors="replace")
    assert "catalog cut" not in log and "Traceback" not in log


def test_claude_with_a_wrong_key_stops_at_once_with_the_gateways_words(stack, npm_clients, tmp_path):
    """The gateway's 401 is Anthropic-shaped and says not to retry: Claude Code had retried it for
    over a minute. With an ANTHROPIC_AUTH_TOKEN exported in the shell (it wins over the key helper as
    the bearer), integrate names the variable, and the gateway takes its key from the `x-api-key`
    the helper fills when Claude Code sends it: an answer, or at once the gateway's words."""
    import time

    env = client_env(tmp_path)
    assert stack.doit("integrate:claude", "--apply", env=env).returncode == 0
    settings = tmp_path / "claude" / "settings.json"
    wired = settings.read_text()
    settings.write_text(wired.replace(json.loads(wired)["apiKeyHelper"], "echo sk-wrong-0123456789"))
    started = time.monotonic()
    proc = subprocess.run([str(npm_clients / "claude"), "-p", "ping"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and time.monotonic() - started < 30, proc.stdout + proc.stderr
    assert "Invalid API key" in proc.stdout  # Claude Code's own words for a key helper's key refused

    settings.write_text(wired)
    env = client_env(tmp_path, ANTHROPIC_AUTH_TOKEN="sk-elsewhere-0123456789")
    applied = stack.doit("integrate:claude", "--apply", env=env)
    assert "note: ANTHROPIC_AUTH_TOKEN is set in your environment" in applied.stdout, applied.output
    started = time.monotonic()
    proc = subprocess.run([str(npm_clients / "claude"), "-p", "ping despite the token"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert time.monotonic() - started < 30, proc.stdout + proc.stderr
    answered = proc.returncode == 0 and proc.stdout.strip().endswith("ping despite the token")
    refused = proc.returncode == 1 and ("Invalid API key" in proc.stdout or "wrong gateway key" in proc.stdout + proc.stderr)
    assert answered or refused, proc.stdout + proc.stderr

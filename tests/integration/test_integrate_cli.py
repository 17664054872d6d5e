"""`doit integrate:*` on the command line, in a home of its own (no service is needed or started)."""

from __future__ import annotations

import json
import stat
import tomllib

import pytest

from tests.catalog_support import keep


@pytest.fixture(autouse=True)
def served(paths):
    """What `doit models` would have kept after logins to codex and claude (no service runs here)."""
    keep(paths, "codex-plus", "claude")


def test_without_a_catalog_integrate_names_the_login(doit, paths, tmp_path):
    paths.state_dir.joinpath("catalog.json").unlink()
    result = doit("integrate:claude", env=client_env(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.output
    assert "clients.claude.model is auto, but no model list was read from CLIProxyAPI yet" in result.stderr
    assert "uv run doit login:claude" in result.stderr


def client_env(tmp_path) -> dict:
    return {"CODEX_HOME": str(tmp_path / "codex"), "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}


def test_without_apply_it_prints_and_writes_nothing(doit, home, tmp_path):
    result = doit("integrate:codex", env=client_env(tmp_path))
    assert result.returncode == 0, result.output
    assert "+[model_providers.flowgate]" in result.stdout and "--apply" in result.stdout
    assert not (tmp_path / "codex").exists() and not (home / ".router" / "state" / "clients.json").exists()
    assert "sk-" not in result.output  # the key is never printed (it is read by a command)


def test_apply_twice_restore_and_status(doit, home, tmp_path):
    env = client_env(tmp_path)
    config = tmp_path / "codex" / "config.toml"
    config.parent.mkdir()
    original = "# mine\nmodel = 'o3'\n\n[tools]\nweb_search = true\n"
    config.write_text(original)
    first = doit("integrate:codex", "--apply", env=env)
    assert first.returncode == 0, first.output
    assert "flowgate.config.toml: written (0600), new file" in first.stdout
    assert "config.toml: written (0600), previous version in config.toml.flowgate-backup-" in first.stdout
    data = tomllib.loads(config.read_text())
    assert data["model_provider"] == "flowgate" and data["tools"] == {"web_search": True}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    key = str(home / ".router" / "secrets" / "litellm_master_key")
    assert data["model_providers"]["flowgate"]["auth"] == {"command": "cat", "args": [key]}

    second = doit("integrate:codex", "--apply", env=env)
    assert second.stdout.count("already up to date") == 2, second.output
    assert len(list(config.parent.glob("config.toml.flowgate-backup-*"))) == 1

    (home / "config" / "local.yaml").write_text("litellm:\n  port: 4111\n")
    assert doit("config").returncode == 0  # as `doit up` would after the edit
    status = doit("status", env=env)
    assert "codex settings are stale (gateway address changed since applied): " \
           "run `uv run doit integrate:codex --apply`" in status.stdout

    restored = doit("integrate:codex", "--restore", env=env)
    assert restored.returncode == 0, restored.output
    assert config.read_text() == original
    assert not (tmp_path / "codex" / "flowgate.config.toml").exists()  # FlowGate created it: removed
    assert "stale" not in doit("status", env=env).stdout


def test_profile_only_leaves_config_toml_alone(doit, tmp_path):
    result = doit("integrate:codex", "--apply", "--profile-only", env=client_env(tmp_path))
    assert result.returncode == 0, result.output
    assert [p.name for p in (tmp_path / "codex").iterdir()] == ["flowgate.config.toml"]


def test_broken_settings_fail_cleanly_and_change_nothing(doit, home, tmp_path):
    settings = tmp_path / "claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text('{\n  "env": {\n    "A": "1",\n  }\n}\n')
    before = sorted(p.name for p in settings.parent.iterdir())
    result = doit("integrate:claude", "--apply", env=client_env(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.output
    assert f"{settings}:4: cannot parse" in result.stderr
    assert sorted(p.name for p in settings.parent.iterdir()) == before
    assert not (home / ".router" / "state" / "clients.json").exists()


def test_claude_apply_removes_another_gateways_token(doit, tmp_path):
    settings = tmp_path / "claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"env": {"ANTHROPIC_API_KEY": "sk-ant-FGTEST-other"}, "model": "opus"}, indent=4))
    result = doit("integrate:claude", "--apply", env=client_env(tmp_path))
    assert result.returncode == 0, result.output
    assert "removed env.ANTHROPIC_API_KEY" in result.stdout and "FGTEST" not in result.output
    after = json.loads(settings.read_text())
    assert after["model"] == "opus" and "ANTHROPIC_API_KEY" not in after["env"]
    [backup] = settings.parent.glob("settings.json.flowgate-backup-*")
    assert "sk-ant-FGTEST-other" in backup.read_text() and stat.S_IMODE(backup.stat().st_mode) == 0o600


def users_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("existing", [False, True], ids=["created", "existing"])
def test_codex_restore_never_loses_a_users_line(doit, home, tmp_path, existing):
    """Apply, the user's edits, a port change and a second apply (as status asks), restore: every
    line the user wrote is there, before and after FlowGate's."""
    env = client_env(tmp_path)
    config = tmp_path / "codex" / "config.toml"
    config.parent.mkdir()
    before = "# mine\nmodel = 'o3'\napproval_policy = \"never\"\n\n[tools]\nweb_search = true\n" if existing else None
    if before:
        config.write_text(before)
    assert doit("integrate:codex", "--apply", env=env).returncode == 0
    added = '\n[projects."/home/me/src/app"]\ntrust_level = "trusted"\n'
    config.write_text(config.read_text() + added)
    (home / "config" / "local.yaml").write_text("litellm:\n  port: 4111\n")
    again = doit("integrate:codex", "--apply", env=env)
    assert again.returncode == 0 and "4111" in config.read_text(), again.output
    config.write_text(config.read_text().replace("# mine", "# mine, edited"))
    restored = doit("integrate:codex", "--restore", env=env)
    assert restored.returncode == 0, restored.output
    text = config.read_text()
    assert tomllib.loads(text)["projects"] == {"/home/me/src/app": {"trust_level": "trusted"}}
    assert "flowgate" not in text and "model_provider" not in text
    if existing:
        assert users_lines(text) == users_lines(before.replace("# mine", "# mine, edited") + added)
    else:
        assert users_lines(text) == users_lines(added)
    assert not (tmp_path / "codex" / "flowgate.config.toml").exists()
    assert "config.toml: restored (FlowGate's settings taken out, your own kept)" in restored.stdout
    assert not list(config.parent.glob("config.toml.flowgate-backup-*"))  # the file holds all the user's lines


@pytest.mark.parametrize("existing", [False, True], ids=["created", "existing"])
def test_claude_restore_never_loses_a_users_setting(doit, home, tmp_path, existing):
    env = client_env(tmp_path)
    settings = tmp_path / "claude" / "settings.json"
    settings.parent.mkdir()
    mine = {"theme": "dark", "env": {"ANTHROPIC_AUTH_TOKEN": "sk-other", "FOO": "1"},
            "apiKeyHelper": "pass show anthropic"} if existing else {}
    if existing:
        settings.write_text(json.dumps(mine, indent=4) + "\n")
    assert doit("integrate:claude", "--apply", env=env).returncode == 0
    data = json.loads(settings.read_text())
    data["permissions"] = {"allow": ["Bash(ls:*)"]}
    data["env"]["MY_VAR"] = "2"
    settings.write_text(json.dumps(data, indent=4) + "\n")
    (home / "config" / "local.yaml").write_text("litellm:\n  port: 4111\n")
    assert doit("integrate:claude", "--apply", env=env).returncode == 0
    restored = doit("integrate:claude", "--restore", env=env)
    assert restored.returncode == 0, restored.output
    expected = {**mine, "permissions": {"allow": ["Bash(ls:*)"]}, "env": {**mine.get("env", {}), "MY_VAR": "2"}}
    assert json.loads(settings.read_text()) == expected  # the token apply removed is back too


def test_integrate_says_what_it_chose_and_names_overriding_variables(doit, tmp_path):
    env = {**client_env(tmp_path), "ANTHROPIC_AUTH_TOKEN": "sk-elsewhere", "OPENAI_BASE_URL": "https://example.invalid/v1"}
    claude = doit("integrate:claude", env=env)
    assert claude.returncode == 0, claude.output
    assert "claude model: claude-sonnet-5 (auto: the newest Sonnet served)" in claude.stdout
    assert "claude fast model: claude-haiku-4-5-20251001 (auto: the newest Haiku served)" in claude.stdout
    assert ("note: ANTHROPIC_AUTH_TOKEN is set in your environment: Claude Code sends it instead of the gateway key "
            "(the gateway answers 401); unset it (`unset ANTHROPIC_AUTH_TOKEN`) to use the gateway") in claude.stdout
    assert "sk-elsewhere" not in claude.output and "OPENAI_BASE_URL" not in claude.stdout
    codex = doit("integrate:codex", "--apply", env=env)
    assert "codex model: gpt-5.6-sol (auto: the newest general GPT served for Codex (5.6)" in codex.stdout
    assert "note: OPENAI_BASE_URL is set in your environment" in codex.stdout

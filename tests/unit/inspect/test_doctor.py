"""tasks.inspect.doctor: read-only checks that never raise, each with a fix for what fails."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections import namedtuple

import pytest

from tasks.inspect import binarycheck, doctor
from tests.unit.doubles.test_cliproxy_double import start_double  # noqa: F401  (the fixture)
from tasks.services import secrets
from tasks.stack import process
from tests.support import free_port

NAMES = ["config", "litellm", "binary", "providers", "accounts", "ports", "secrets", "disk", "state", "usage", "keys", "clients"]
BANNER = "CLIProxyAPI Version: 6.8.16-0-plus, Commit: x, BuiltAt: y"
MAINLINE_BANNER = "CLIProxyAPI Version: 7.2.140, Commit: x, BuiltAt: y"


SHIPPED_MODELS = ["gpt-5-codex", "gpt-5", "claude-sonnet-4-5", "claude-haiku-4-5"]


def direct_models(**extra) -> list:
    """The shipped model names (clients and profiles refer to them), routed direct."""
    return [{"name": n, "via": "direct", "model": f"openai/{n}", **extra} for n in SHIPPED_MODELS]


def write_local(paths, data: dict) -> None:
    paths.local_config.write_text(json.dumps(data) + "\n", encoding="utf-8")  # JSON is YAML


def by_name(checks) -> dict:
    return {c.name: c for c in checks}


def clean_env(paths, **extra) -> dict:
    """The environment without the machine's own client settings and keys: the clients' files under the home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "CODEX_", "CLAUDE_"))}
    return {**env, "CODEX_HOME": str(paths.home / "codex"), "CLAUDE_CONFIG_DIR": str(paths.home / "claude"), **extra}


def run(paths, environ=None, **kwargs) -> dict:
    checks = doctor.run_checks(paths, environ=environ or clean_env(paths), **kwargs)
    assert [c.name for c in checks] == NAMES
    return by_name(checks)


def make_script(path, body: str, mode: int = 0o755):
    path.write_text(f"#!{sys.executable}\n{body}\n", encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
def free_ports(paths):
    """Point both services at ports nobody listens on (the machine may run a real FlowGate)."""
    return {"litellm": {"port": free_port()}, "cliproxy": {"port": free_port()}}


def test_shipped_config_without_binary(paths, free_ports):
    write_local(paths, free_ports)
    checks = run(paths)
    assert checks["config"].ok
    assert checks["config"].detail == "valid: profile default, every model the accounts serve"
    assert checks["litellm"].ok and checks["litellm"].detail[0].isdigit()
    binary = checks["binary"]
    assert not binary.ok
    assert str(paths.bin_dir / "cli-proxy-api") in binary.detail
    assert "uv run doit fetch" in binary.fix and "cliproxy.binary" in binary.fix
    assert checks["ports"].ok and "free" in checks["ports"].detail
    assert checks["secrets"].ok and "not generated yet" in checks["secrets"].detail
    assert checks["disk"].ok and "free" in checks["disk"].detail
    assert checks["state"].ok and not checks["state"].warn
    assert not paths.router.exists()  # read-only: not even .router/ is created


def test_broken_config_fails_but_the_other_checks_run(paths):
    write_local(paths, {"litellm": {"port": 0}})
    checks = run(paths)
    config = checks["config"]
    assert not config.ok
    assert "litellm.port" in config.detail and "config/local.yaml" in config.detail
    assert config.fix.startswith("`uv run doit check` lists every problem")  # not "the keys named above"
    # what needs a valid config is skipped, never called ok
    assert checks["providers"].status == checks["accounts"].status == "skip"
    # falls back to the default binary location and ports
    assert not checks["binary"].ok and "uv run doit fetch" in checks["binary"].fix
    assert "default" in checks["binary"].detail
    assert "4000" in checks["ports"].detail or "4000" in checks["ports"].fix
    assert checks["disk"].ok and checks["state"].ok


def test_missing_referenced_secret_fails_config(paths, free_ports):
    write_local(paths, {**free_ports, "models": direct_models(api_key_env="FLOWGATE_TEST_UNSET_KEY")})
    env = {k: v for k, v in os.environ.items() if k != "FLOWGATE_TEST_UNSET_KEY"}
    checks = by_name(doctor.run_checks(paths, environ=env))
    assert not checks["config"].ok
    assert "FLOWGATE_TEST_UNSET_KEY" in checks["config"].detail
    assert "export" in checks["config"].fix


def test_user_binary_runs_and_reports_version(paths, free_ports, tmp_path):
    script = make_script(tmp_path / "cpa", f"import sys\nprint({BANNER!r})\nsys.exit(0)")
    write_local(paths, {**free_ports, "cliproxy": {**free_ports["cliproxy"], "binary": str(script)}})
    binary = run(paths)["binary"]
    assert binary.ok and not binary.warn, binary
    assert "6.8.16-0-plus" in binary.detail
    assert str(script) in binary.detail


def test_binary_is_run_on_a_missing_config_in_a_temp_dir(paths, free_ports, tmp_path):
    seen = tmp_path / "seen.json"
    script = make_script(tmp_path / "cpa", "\n".join([
        "import json, os, sys",
        f"json.dump({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}, open({str(seen)!r}, 'w'))",
        f"print({BANNER!r})",
    ]))
    write_local(paths, {**free_ports, "cliproxy": {**free_ports["cliproxy"], "binary": str(script)}})
    assert run(paths)["binary"].ok
    info = json.loads(seen.read_text())
    assert info["argv"][0] == "-config" and not os.path.exists(info["argv"][1])
    assert not os.path.exists(info["cwd"])  # the temp dir is gone again
    assert str(paths.home) not in info["cwd"]


def install_mainline(paths, tag="v7.2.140"):
    paths.bin_dir.mkdir(parents=True, exist_ok=True)
    make_script(paths.bin_dir / "cli-proxy-api", f"print({MAINLINE_BANNER!r})")
    paths.manifest.write_text(json.dumps({"tag": tag, "repo": "router-for-me/CLIProxyAPI", "line": "mainline",
                                          "binary": "cli-proxy-api", "build": "glibc build"}), encoding="utf-8")


def test_installed_binary_with_manifest_tag(paths, free_ports):
    install_mainline(paths)
    write_local(paths, free_ports)
    checks = run(paths)
    binary = checks["binary"]
    assert binary.ok and not binary.warn, binary
    assert binary.detail.startswith("CLIProxyAPI 7.2.140 (mainline, release v7.2.140 of router-for-me/CLIProxyAPI")
    assert "glibc build" in binary.detail
    assert checks["providers"].ok and "codex, claude" in checks["providers"].detail
    # an installed release other than the pinned one is worth a look
    install_mainline(paths, tag="v7.2.100")
    binary = run(paths)["binary"]
    assert binary.ok and binary.warn and "uv run doit fetch" in binary.fix


def test_provider_the_binary_lacks_fails_with_the_line_that_has_it(paths, free_ports, tmp_path):
    install_mainline(paths)
    write_local(paths, {**free_ports, "providers": ["codex", "github-copilot"]})
    providers = run(paths)["providers"]
    assert not providers.ok
    assert "copilot needs the CLIProxyAPIPlus line" in providers.detail and "mainline" in providers.detail
    assert "kaitranntt/CLIProxyAPIPlus" in providers.fix
    # the same provider on a Plus binary is fine: the banner tells the line
    script = make_script(tmp_path / "cpa", f"print({BANNER!r})")
    write_local(paths, {**free_ports, "providers": ["codex", "github-copilot"],
                        "cliproxy": {**free_ports["cliproxy"], "binary": str(script)}})
    assert run(paths)["providers"].ok


def test_non_executable_binary_fails(paths, free_ports, tmp_path):
    script = make_script(tmp_path / "cpa", f"print({BANNER!r})", mode=0o644)
    write_local(paths, {**free_ports, "cliproxy": {**free_ports["cliproxy"], "binary": str(script)}})
    binary = run(paths)["binary"]
    assert not binary.ok
    assert "not executable" in binary.detail
    assert binary.fix == f"chmod +x {script}"


def test_binary_without_banner_fails(paths, free_ports, tmp_path):
    script = make_script(tmp_path / "cpa", "import sys\nprint('hello')\nsys.exit(3)")
    write_local(paths, {**free_ports, "cliproxy": {**free_ports["cliproxy"], "binary": str(script)}})
    binary = run(paths)["binary"]
    assert not binary.ok
    assert "banner" in binary.detail and "exit 3" in binary.detail and "hello" in binary.detail
    assert binary.fix


def test_hanging_binary_is_killed(paths, free_ports, tmp_path, monkeypatch):
    monkeypatch.setattr(binarycheck, "BINARY_TIMEOUT", 0.5)
    script = make_script(tmp_path / "cpa", "import time\ntime.sleep(60)")
    write_local(paths, {**free_ports, "cliproxy": {**free_ports["cliproxy"], "binary": str(script)}})
    binary = run(paths)["binary"]
    assert not binary.ok and "did not exit" in binary.detail


def test_cliproxy_disabled_skips_binary_and_its_port(paths, free_ports):
    write_local(paths, {"litellm": free_ports["litellm"], "cliproxy": {"enabled": False},
                        "models": direct_models()})
    checks = run(paths)
    assert checks["config"].ok, checks["config"]
    assert checks["binary"].ok and checks["binary"].detail == "cliproxy disabled"
    assert "cliproxy" not in checks["ports"].detail


@contextlib.contextmanager
def litellm_port_held(paths, free_ports):
    """A port this process listens on, configured as LiteLLM's."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        write_local(paths, {**free_ports, "litellm": {"port": port}})
        yield port


def test_port_held_by_a_foreign_process(paths, free_ports):
    with litellm_port_held(paths, free_ports) as port:
        ports = run(paths)["ports"]
    assert not ports.ok
    assert f"pid {os.getpid()}" in ports.detail and str(port) in ports.detail
    assert "litellm.port" in ports.fix and "config/local.yaml" in ports.fix


def test_port_held_by_our_own_recorded_service(paths, free_ports):
    with litellm_port_held(paths, free_ports):
        process.write_record(paths.record("litellm"), process.make_record(os.getpid(), service="litellm"))
        checks = run(paths)
    assert checks["ports"].ok, checks["ports"]
    assert "ours" in checks["ports"].detail
    assert checks["state"].ok and not checks["state"].warn
    assert f"litellm (pid {os.getpid()})" in checks["state"].detail


def test_port_check_error_does_not_stop_doctor(paths, free_ports, monkeypatch):
    def boom(host, port):
        raise PermissionError(13, "Permission denied", "/proc/net/tcp")

    monkeypatch.setattr(process, "port_holder", boom)
    write_local(paths, free_ports)
    checks = run(paths)
    assert not checks["ports"].ok and "Permission denied" in checks["ports"].detail
    assert checks["disk"].ok


def test_loose_secret_modes_fail(paths, free_ports):
    write_local(paths, free_ports)
    secrets.ensure_all(paths)
    assert run(paths)["secrets"].ok
    loose = paths.secret(secrets.LITELLM_MASTER_KEY)
    loose.chmod(0o644)
    paths.secrets_dir.chmod(0o755)
    check = run(paths)["secrets"]
    assert not check.ok
    assert str(loose) in check.detail
    assert f"chmod 700 {paths.secrets_dir}" in check.fix
    assert f"chmod 600 {loose}" in check.fix


def test_empty_secret_file_fails(paths, free_ports):
    write_local(paths, free_ports)
    secrets.ensure_all(paths)
    paths.secret(secrets.CLIPROXY_API_KEY).write_text("")
    check = run(paths)["secrets"]
    assert not check.ok and "empty" in check.detail and "doit secrets" in check.fix


Usage = namedtuple("Usage", "total used free")


@pytest.mark.parametrize("free, ok, warn", [
    (100 * doctor.MIB, False, False),
    (500 * doctor.MIB, True, True),
    (12.3 * doctor.GIB, True, False),
])
def test_disk_thresholds(paths, free_ports, monkeypatch, free, ok, warn):
    seen = []

    def usage(path):
        seen.append(path)
        return Usage(100 * doctor.GIB, 0, int(free))

    monkeypatch.setattr(doctor.shutil, "disk_usage", usage)
    write_local(paths, free_ports)
    disk = run(paths)["disk"]
    assert (disk.ok, disk.warn) == (ok, warn)
    assert seen == [paths.home]  # .router/ does not exist yet: its nearest existing parent
    if free >= doctor.GIB:
        assert disk.detail == "12.3 GiB free"
    else:
        assert "MiB free" in disk.detail and disk.fix



def test_usage_fails_on_a_full_disk_even_when_the_recorder_could_not_say_so(paths, free_ports, monkeypatch):
    """Issue 31, item 13: a full disk drops rows and the recorder's health file with them; usage said ok."""
    from tasks.gateway.usage import store

    write_local(paths, free_ports)
    store.connect(paths.usage_db).close()
    assert run(paths)["usage"].ok
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: Usage(100 * doctor.GIB, 0, 4 * doctor.MIB))
    usage = run(paths)["usage"]
    assert not usage.ok and "4.0 MiB free" in usage.detail and "not be recorded" in usage.detail and usage.fix

def test_stale_record_warns(paths, free_ports):
    write_local(paths, free_ports)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = process.make_record(child.pid, service="cliproxy")
    child.wait()
    process.write_record(paths.record("cliproxy"), record)
    state = run(paths)["state"]
    assert state.ok and state.warn
    assert "cliproxy" in state.detail and str(child.pid) in state.detail
    assert "uv run doit up" in state.fix and "uv run doit down" in state.fix


def test_corrupt_record_is_stale(paths, free_ports):
    write_local(paths, free_ports)
    paths.run_dir.mkdir(parents=True)
    paths.record("litellm").write_text("{not json")
    state = run(paths)["state"]
    assert state.ok and state.warn and "litellm" in state.detail


def test_format_checks():
    text = doctor.format_checks([
        doctor.Check("config", True, "valid: profile default, every model the accounts serve"),
        doctor.Check("ports", False, "litellm 127.0.0.1:4000 is in use by pid 1 (init)",
                     "stop that process or change litellm.port in config/local.yaml"),
        doctor.Check("disk", True, "800.0 MiB free", "free some space", warn=True),
        doctor.Check("state", True, "no services running", "ignored when ok"),
    ])
    lines = text.splitlines()
    assert lines[0] == "ok    config        valid: profile default, every model the accounts serve"
    assert lines[1] == "FAIL  ports         litellm 127.0.0.1:4000 is in use by pid 1 (init)"
    assert lines[2] == "      fix: stop that process or change litellm.port in config/local.yaml"
    assert lines[3].startswith("warn  disk ")
    assert lines[4] == "      fix: free some space"
    assert lines[5] == "ok    state         no services running"
    assert len(lines) == 6


def test_format_checks_of_a_real_run(paths):
    write_local(paths, {"litellm": {"port": 0}})
    text = doctor.format_checks(doctor.run_checks(paths, environ={}))
    assert "FAIL" in text and "fix:" in text
    assert "litellm.port" in text


def test_usage_database_problems_are_reported_with_the_fix(paths):
    from tasks.gateway.usage import store

    assert run(paths)["usage"].ok and "no usage.sqlite3 yet" in run(paths)["usage"].detail
    paths.router.mkdir(parents=True, exist_ok=True)
    paths.usage_db.write_bytes(b"garbage" * 1000)
    usage = run(paths)["usage"]
    assert not usage.ok and "cannot be read" in usage.detail and "move a corrupt" in usage.fix
    paths.usage_db.unlink()
    store.connect(paths.usage_db).close()
    store.write_health(paths, False, "OperationalError: database or disk is full")
    usage = run(paths)["usage"]
    assert not usage.ok and usage.detail == "the recorder reported: OperationalError: database or disk is full"


def test_no_account_logged_in_fails_with_the_login(paths, free_ports, start_double):  # noqa: F811
    from tasks.services import secrets as secret_files
    from tests.unit.doubles.test_cliproxy_double import CLIENT_KEY, MGMT_KEY, write_account

    double = start_double(api_keys=(CLIENT_KEY,), secret=MGMT_KEY, port=free_ports["cliproxy"]["port"])
    write_local(paths, free_ports)
    paths.secrets_dir.mkdir(parents=True, exist_ok=True)
    (paths.secrets_dir / secret_files.CLIPROXY_MANAGEMENT_KEY).write_text(MGMT_KEY + "\n")
    (paths.secrets_dir / secret_files.CLIPROXY_API_KEY).write_text(CLIENT_KEY + "\n")
    from tasks.stack import process

    process.write_record(paths.record("cliproxy"), process.make_record(
        double.proc.pid, service="cliproxy", meta={"host": "127.0.0.1", "port": double.port, "line": "plus"}))
    accounts = run(paths)["accounts"]
    assert accounts.status == "FAIL" and accounts.detail == "no account is logged in: no model can be served"
    assert "uv run doit login:codex" in accounts.fix
    write_account(double.auth_dir, "codex-a@example.com.json", {"type": "codex", "email": "a@example.com"})
    assert run(paths)["accounts"].detail == "codex: 1 active"


def test_clients_whose_own_settings_name_an_unserved_model_or_are_overridden(paths, tmp_path):
    from tasks.clients import codex, claude
    from tasks.clients.files import apply
    from tasks.config.load import load_stack
    from tests.catalog_support import keep

    keep(paths, "codex-plus", "claude")
    env = clean_env(paths)
    assert run(paths, env)["clients"].detail.startswith("no client is wired to the gateway")
    stack = load_stack(paths)
    apply(codex.plan(paths, stack, False, env)[0] + claude.plan(paths, stack, env)[0])
    check = run(paths, env)["clients"]
    assert check.ok and check.detail == ("claude: claude-haiku-4-5-20251001, claude-opus-5, claude-sonnet-5, "
                                         "codex: gpt-5.6-sol (served)"), check.detail
    # Codex's "Try new model" dialog rewrote config.toml to a model no account serves
    config = paths.home / "codex" / "config.toml"
    config.write_text(config.read_text().replace('model = "gpt-5.6-sol"', 'model = "gpt-6-sol"'))
    check = run(paths, env)["clients"]
    assert not check.ok and f"{config} names gpt-6-sol (model), which no account serves now" in check.detail
    assert check.fix == "`uv run doit integrate:codex --apply`"
    config.write_text(config.read_text().replace('model = "gpt-6-sol"', 'model = "gpt-5.6-sol"'))
    check = run(paths, clean_env(paths, ANTHROPIC_AUTH_TOKEN="sk-elsewhere"))["clients"]
    assert not check.ok and check.detail == "ANTHROPIC_AUTH_TOKEN is set in your environment: Claude Code sends it " \
        "instead of the gateway key (the gateway answers 401) (claude)"
    assert check.fix == "unset ANTHROPIC_AUTH_TOKEN" and "sk-elsewhere" not in check.detail


def test_key_database_problems_are_reported_with_the_fix(paths):
    from tasks.keys import manage

    assert run(paths)["keys"].ok and "no member keys" in run(paths)["keys"].detail
    manage.create(paths, "ana")
    manage.create(paths, "bo")
    manage.revoke(paths, "bo")
    assert run(paths)["keys"].ok and "1 active member key(s) of 2" in run(paths)["keys"].detail
    for suffix in ("", "-wal", "-shm"):
        paths.keys_db.with_name(paths.keys_db.name + suffix).unlink(missing_ok=True)
    paths.keys_db.write_bytes(b"garbage" * 1000)
    keys = run(paths)["keys"]
    assert not keys.ok and "member keys are refused" in keys.detail and "move a corrupt" in keys.fix

"""`doit render` / `doit check` through the real command line: incremental, modes, no writes."""

from __future__ import annotations

import json
import stat
import sys

from tasks.stack import process
from tests.conftest import run_doit
from tests.support import free_port, group_gone


def mtimes(paths):
    files = [paths.litellm_config, paths.cliproxy_rendered, paths.stack_json,
             *(paths.secret(n) for n in ("litellm_master_key", "cliproxy_api_key", "cliproxy_management_key"))]
    return {str(f): f.stat().st_mtime_ns for f in files}


def executed(result):
    return [line[3:] for line in result.stdout.splitlines() if line.startswith(".  ")]


def test_render_is_incremental(home, paths):
    first = run_doit(home, "render")
    assert first.returncode == 0, first.output
    assert set(executed(first)) == {"config", "secrets", "render:litellm", "render:cliproxy"}
    for f in (paths.litellm_config, paths.cliproxy_rendered):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.secrets_dir.stat().st_mode) == 0o700
    before = mtimes(paths)

    second = run_doit(home, "render")
    assert second.returncode == 0 and executed(second) == []

    # A comment-only edit: the config task re-validates, but nothing downstream is rewritten.
    paths.base_config.write_text(paths.base_config.read_text() + "\n# a comment\n")
    third = run_doit(home, "render")
    assert executed(third) == ["config"]
    assert mtimes(paths) == before

    # A real edit reaches exactly the service it concerns.
    paths.local_config.write_text("litellm_settings: {num_retries: 4}\n")
    fourth = run_doit(home, "render")
    assert fourth.returncode == 0, fourth.output
    assert executed(fourth) == ["config", "render:litellm"]
    after = mtimes(paths)
    assert after[str(paths.litellm_config)] != before[str(paths.litellm_config)]
    assert after[str(paths.cliproxy_rendered)] == before[str(paths.cliproxy_rendered)]
    assert "num_retries: 4" in paths.litellm_config.read_text()


def test_a_new_redis_password_in_its_file_is_rendered(home, paths):
    """redis.password_file's content goes into LiteLLM's config: a changed file re-renders it."""
    (home / "keys").mkdir()
    (home / "keys" / "redis.txt").write_text("first-password\n")
    paths.local_config.write_text("redis: {url: 'redis://127.0.0.1:6399', password_file: keys/redis.txt}\n")
    assert run_doit(home, "render").returncode == 0
    assert "first-password" in paths.litellm_config.read_text()
    (home / "keys" / "redis.txt").write_text("second-password\n")
    assert RERENDER in pending_for_a_running_litellm(home, paths)  # `status` says what `up` would do
    again = run_doit(home, "render")
    assert again.returncode == 0, again.output
    assert executed(again) == ["render:litellm"]
    assert "second-password" in paths.litellm_config.read_text()
    assert RERENDER not in pending_for_a_running_litellm(home, paths)


RERENDER = "re-render litellm's config, then restart it if it changed"


def pending_for_a_running_litellm(home, paths) -> list[str]:
    """`doit status --json`'s pending list while a process is recorded as a running litellm."""
    record = process.spawn([sys.executable, "-c", "import time; time.sleep(60)"], env=None, cwd=home,
                           log_path=paths.log("litellm"), record_path=paths.record("litellm"), service="litellm",
                           inputs_hash="x", meta={"host": "127.0.0.1", "port": free_port()})
    try:
        result = run_doit(home, "status", "--json")
        assert "Traceback" not in result.output
        return json.loads(result.stdout)["pending"]
    finally:
        process.stop(paths.record("litellm"), timeout=5)
        assert group_gone(record.pid)


def test_check_writes_nothing(home, paths):
    result = run_doit(home, "check")
    assert result.returncode == 0, result.output
    assert "config OK" in result.stdout
    assert sorted(p.name for p in paths.router.iterdir()) == ["doit.sqlite3"]


def test_list_documents_every_task(home):
    result = run_doit(home, "list")
    assert result.returncode == 0
    docs = dict(line.split(None, 1) if " " in line.strip() else (line.strip(), "")
                for line in result.stdout.strip().splitlines())
    expected = {"up", "down", "status", "restart", "logs", "check", "render", "fetch", "outdated", "doctor", "config",
                "secrets", "login", "accounts", "import", "integrate", "smoke", "models"}
    assert expected <= set(docs), f"missing from `doit list`: {expected - set(docs)}"
    assert not [name for name, doc in docs.items() if not doc.strip()], docs


def test_secrets_never_printed(home, paths):
    result = run_doit(home, "render")
    for name in ("litellm_master_key", "cliproxy_api_key", "cliproxy_management_key"):
        assert paths.secret(name).read_text().strip() not in result.output

"""`doit export:k8s` / `doit export:compose` through the real command line (no service is started)."""

from __future__ import annotations

import stat
import textwrap

import yaml

from tests.conftest import run_doit
from tests.manifests import NAMED_MODELS, by_kind, files_holding, k8s_docs, validate_compose, validate_k8s

UPSTREAM_KEY = "sk-team-upstream-key-0123456789"
REDIS_PW = "team-redis-password-0123456789"
PG_DSN = "postgres://flowgate:pg-team-secret-0123456789@db.internal:5432/flowgate"
ENV = {"TEAM_OPENAI_KEY": UPSTREAM_KEY, "TEAM_REDIS_PASSWORD": REDIS_PW}
TEAM_LOCAL = """
    litellm: {replicas: 2}
    redis: {url: "redis://redis.team.internal:6379", password_env: TEAM_REDIS_PASSWORD}
    cliproxy:
      store: {type: postgres, dsn_file: pg.dsn}
    models:
""" + NAMED_MODELS + """      - {name: gpt-4o-direct, via: direct, model: openai/gpt-4o, api_key_env: TEAM_OPENAI_KEY}
"""


def executed(result) -> list[str]:
    return [line[3:] for line in result.stdout.splitlines() if line.startswith(".  ")]


def mtimes(directory):
    return {str(p): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def generated_keys(paths) -> list[str]:
    return [p.read_text().strip() for p in paths.secrets_dir.iterdir()]


def test_default_export_validates_and_is_idempotent(home, paths):
    first = run_doit(home, "export:k8s")
    assert first.returncode == 0, first.output
    out = home / "deploy" / "k8s"
    assert sorted(p.name for p in out.iterdir()) == ["cliproxy.yaml", "litellm.yaml", "secret.yaml"]
    assert stat.S_IMODE((out / "secret.yaml").stat().st_mode) == 0o600
    validate_k8s(k8s_docs(out))
    assert "kubectl apply -f" in first.stdout

    compose = run_doit(home, "export:compose")
    assert compose.returncode == 0, compose.output
    cdir = home / "deploy" / "compose"
    validate_compose(yaml.safe_load((cdir / "compose.yaml").read_text()))
    assert stat.S_IMODE((cdir / ".env").stat().st_mode) == 0o600

    for key in generated_keys(paths):
        assert key not in first.output + compose.output
        assert files_holding(home / "deploy", key) in ([], ["compose/.env", "k8s/secret.yaml"])
    before = mtimes(home / "deploy")
    again = run_doit(home, "export:k8s")
    assert again.returncode == 0 and "export:k8s" not in executed(again), again.output  # up to date
    assert run_doit(home, "export:compose").returncode == 0
    assert mtimes(home / "deploy") == before

    # A file that changed behind FlowGate's back makes the task run, and only that file is rewritten.
    (out / "cliproxy.yaml").write_text("edited by hand\n")
    fixed = run_doit(home, "export:k8s")
    assert executed(fixed)[-1] == "export:k8s" and "wrote" in fixed.stdout and "cliproxy.yaml" in fixed.stdout
    assert "litellm.yaml" not in fixed.stdout
    validate_k8s(k8s_docs(out))

    # A config edit reaches the export: LiteLLM's config (and its checksum) change, CLIProxyAPI's file does not.
    before = mtimes(out)
    paths.local_config.write_text("litellm_settings: {num_retries: 4}\n")
    edited = run_doit(home, "export:k8s")
    assert edited.returncode == 0, edited.output
    after = mtimes(out)
    assert after[str(out / "litellm.yaml")] != before[str(out / "litellm.yaml")]
    assert after[str(out / "cliproxy.yaml")] == before[str(out / "cliproxy.yaml")]


def test_team_export_keeps_every_key_in_the_secret(home, paths, tmp_path):
    (home / "pg.dsn").write_text(PG_DSN + "\n")
    paths.local_config.write_text(textwrap.dedent(TEAM_LOCAL))
    out = tmp_path / "manifests"
    result = run_doit(home, "export:k8s", "--out", str(out), env=ENV)
    assert result.returncode == 0, result.output
    docs = k8s_docs(out)
    validate_k8s(docs)
    assert by_kind(docs, "Deployment", "flowgate-litellm")["spec"]["replicas"] == 2
    compose = run_doit(home, "export:compose", "--out", str(tmp_path / "compose"), env=ENV)
    assert compose.returncode == 0, compose.output
    validate_compose(yaml.safe_load((tmp_path / "compose" / "compose.yaml").read_text()))
    used = [k for k in generated_keys(paths) if not k.startswith("redis-")]  # the Redis is external here
    for key in [*used, UPSTREAM_KEY, REDIS_PW, PG_DSN]:
        assert files_holding(out, key) == ["secret.yaml"], key
        assert files_holding(tmp_path / "compose", key) == [".env"], key
        assert key not in result.output + compose.output

    # Another key value: the export is out of date, though no file changed.
    changed = run_doit(home, "export:k8s", "--out", str(out), env={**ENV, "TEAM_OPENAI_KEY": "sk-rotated-0123456789"})
    assert "export:k8s" in executed(changed) and "secret.yaml" in changed.stdout

    # An existing Secret: no key read (none exported here), none written, the old secret.yaml removed.
    existing = run_doit(home, "export:k8s", "--out", str(out), "--existing-secret", "team-keys")
    assert existing.returncode == 0, existing.output
    assert not (out / "secret.yaml").exists() and "removed" in existing.stdout
    validate_k8s(k8s_docs(out))
    for key in [*used, UPSTREAM_KEY, REDIS_PW, PG_DSN]:
        assert files_holding(out, key) == []
    assert "team-keys" in (out / "litellm.yaml").read_text()


def test_missing_key_fails_cleanly(home, paths):
    (home / "pg.dsn").write_text(PG_DSN + "\n")
    paths.local_config.write_text(textwrap.dedent(TEAM_LOCAL))
    result = run_doit(home, "export:k8s", env={"TEAM_OPENAI_KEY": UPSTREAM_KEY})
    assert result.returncode != 0
    assert "TEAM_REDIS_PASSWORD is not set" in result.stderr and "--existing-secret" in result.stderr
    assert "Traceback" not in result.output
    assert not (home / "deploy").exists()


def test_invalid_team_key_is_reported_by_check(home, paths):
    for local, expected in (("litellm: {replicas: 0}", "litellm.replicas: expected a whole number of at least 1"),
                            ("redis: {url: 'redis://:pw@h:6379'}", "redis.url: holds a password")):
        paths.local_config.write_text(local + "\n")
        result = run_doit(home, "check")
        assert result.returncode == 1 and expected in result.stderr, result.output

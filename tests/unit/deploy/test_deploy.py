"""tasks.deploy: Kubernetes manifests and the Compose file, validated against the published schemas."""

from __future__ import annotations

import copy
import stat
import textwrap

import pytest
import yaml

from tasks.services import secrets
from tasks.config.load import load_stack
from tasks.deploy import cluster, compose, k8s
from tasks.base.errors import FlowgateError
from tests.manifests import NAMED_MODELS, by_kind, files_holding, k8s_docs, validate_compose, validate_k8s

ALL_SECRETS = {"redis": {"managed": True}}  # every secret generated, Redis's password included

UPSTREAM_KEY = "sk-upstream-from-env-0123456789"
FILE_KEY = "sk-upstream-from-file-0123456789"
REDIS_PW = "redis-external-password-0123456789"
PG_DSN = "postgres://flowgate:pg-secret-0123456789@db.internal:5432/flowgate"
TEAM_ENV = {"OPENAI_API_KEY": UPSTREAM_KEY, "TEAM_REDIS_PASSWORD": REDIS_PW}

TEAM_LOCAL = """
    litellm: {replicas: 3, env: {LITELLM_LOG: "$INFO"}}
    redis: {url: "redis://redis.internal:6379/0", password_env: TEAM_REDIS_PASSWORD}
    cliproxy:
      store: {type: postgres, dsn_file: keys/pg.dsn, schema: flowgate}
    models:
""" + NAMED_MODELS + """      - {name: gpt-4o-direct, via: direct, model: openai/gpt-4o, api_key_env: OPENAI_API_KEY}
      - {name: mini.direct, via: direct, model: openai/gpt-4o-mini, api_key_file: keys/mini.key}
"""


@pytest.fixture

def out(tmp_path):
    return tmp_path / "out"  # beside the home (tmp_path/home): searching it never finds .router/secrets


@pytest.fixture
def stack(paths):
    secrets.ensure_all(paths, ALL_SECRETS)
    return load_stack(paths)


@pytest.fixture
def team(paths):
    (paths.home / "keys").mkdir()
    (paths.home / "keys" / "pg.dsn").write_text(PG_DSN + "\n")
    (paths.home / "keys" / "mini.key").write_text(FILE_KEY + "\n")
    paths.local_config.write_text(textwrap.dedent(TEAM_LOCAL))
    secrets.ensure_all(paths, ALL_SECRETS)
    return load_stack(paths)


def all_secret_values(paths) -> list[str]:
    """Every key the team config's export needs (its Redis is external: the generated password is unused)."""
    generated = {k: v for k, v in secrets.read_all(paths, ALL_SECRETS).items() if k != secrets.REDIS_PASSWORD}
    return [*generated.values(), UPSTREAM_KEY, FILE_KEY, REDIS_PW, PG_DSN]


def test_default_manifests_validate(paths, stack, out):
    result = k8s.export(paths, stack, out)
    assert sorted(result.written) == ["cliproxy.yaml", "litellm.yaml", "secret.yaml"]  # no Redis configured
    docs = k8s_docs(out)
    validate_k8s(docs)
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "Deployment", "PersistentVolumeClaim",
                                                 "Secret", "Service", "Service"]
    deployment = by_kind(docs, "Deployment", cluster.LITELLM_NAME)
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/berriai/litellm:main-v1.108.14"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert container["readinessProbe"]["httpGet"]["path"] == container["startupProbe"]["httpGet"]["path"] == "/health/readiness"
    assert container["args"][container["args"].index("--host") + 1] == "0.0.0.0"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    env = {e["name"]: e for e in container["env"]}
    assert env["LITELLM_MASTER_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "flowgate-secrets", "key": "LITELLM_MASTER_KEY"}
    config_text = by_kind(docs, "ConfigMap")["data"]["config.yaml"]
    assert pod["metadata"]["annotations"]["checksum/config"] == cluster.checksum(config_text)
    config = yaml.safe_load(config_text)
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert {m["litellm_params"]["api_base"].split("/")[2] for m in config["model_list"]} == {"flowgate-cliproxy:8317"}
    cliproxy = by_kind(docs, "Deployment", cluster.CLIPROXY_NAME)
    assert cliproxy["spec"]["replicas"] == 1
    assert cliproxy["spec"]["template"]["spec"]["containers"][0]["image"] == "eceasy/cli-proxy-api:v7.2.140"
    volumes = {v["name"]: v for v in cliproxy["spec"]["template"]["spec"]["volumes"]}
    assert volumes["auths"]["persistentVolumeClaim"]["claimName"] == by_kind(docs, "PersistentVolumeClaim")["metadata"]["name"]
    secret = by_kind(docs, "Secret")
    cp_config = yaml.safe_load(secret["stringData"][cluster.CLIPROXY_CONFIG_KEY])
    assert cp_config["host"] == "0.0.0.0" and cp_config["auth-dir"] == cluster.CLIPROXY_AUTH_DIR
    assert cp_config["api-keys"] == [secrets.read(paths, secrets.CLIPROXY_API_KEY)]
    assert stat.S_IMODE((out / "secret.yaml").stat().st_mode) == 0o600
    for value in secrets.read_all(paths, ALL_SECRETS).values():
        assert files_holding(out, value) in (["secret.yaml"], [])


def test_team_manifests_validate_and_keep_keys_in_the_secret(paths, team, out):
    k8s.export(paths, team, out, environ=TEAM_ENV)
    docs = k8s_docs(out)
    validate_k8s(docs)
    assert by_kind(docs, "Deployment", cluster.LITELLM_NAME)["spec"]["replicas"] == 3
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]  # accounts live in the store
    assert not (out / "redis.yaml").exists()  # an external Redis
    config = yaml.safe_load(by_kind(docs, "ConfigMap")["data"]["config.yaml"])
    assert config["router_settings"]["redis_url"] == "redis://redis.internal:6379/0"
    assert config["router_settings"]["redis_password"] == "os.environ/REDIS_PASSWORD"
    params = {m["model_name"]: m["litellm_params"] for m in config["model_list"]}
    assert params["gpt-4o-direct"]["api_key"] == "os.environ/OPENAI_API_KEY"
    assert params["mini.direct"]["api_key"] == "os.environ/FLOWGATE_KEY_MINI_DIRECT"
    cp = by_kind(docs, "Deployment", cluster.CLIPROXY_NAME)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in cp["env"]}
    assert env["PGSTORE_DSN"] == {"secretKeyRef": {"name": "flowgate-secrets", "key": "PGSTORE_DSN"}}
    assert env["PGSTORE_SCHEMA"] == "flowgate" and env["PGSTORE_LOCAL_PATH"] == cluster.CLIPROXY_STORE_SPOOL
    data = by_kind(docs, "Secret")["stringData"]
    assert data["PGSTORE_DSN"] == PG_DSN and data["FLOWGATE_KEY_MINI_DIRECT"] == FILE_KEY
    assert data["OPENAI_API_KEY"] == UPSTREAM_KEY and data["REDIS_PASSWORD"] == REDIS_PW
    for value in all_secret_values(paths):
        assert files_holding(out, value) == ["secret.yaml"], value


def test_managed_redis_runs_in_the_cluster(paths, stack, out):
    paths.local_config.write_text("litellm: {replicas: 2}\nredis: {managed: true}\n")
    k8s.export(paths, load_stack(paths), out)
    docs = k8s_docs(out)
    validate_k8s(docs)
    redis = by_kind(docs, "Deployment", cluster.REDIS_NAME)
    assert redis["spec"]["template"]["spec"]["containers"][0]["image"] == "redis:7"
    config = yaml.safe_load(by_kind(docs, "ConfigMap")["data"]["config.yaml"])
    assert config["router_settings"]["redis_host"] == by_kind(docs, "Service", cluster.REDIS_NAME)["metadata"]["name"]
    password = secrets.read(paths, secrets.REDIS_PASSWORD)
    assert files_holding(out, password) == ["secret.yaml"]


def test_a_managed_postgres_key_store_runs_in_the_cluster_and_its_url_stays_in_the_secret(paths, out):
    paths.local_config.write_text("keys: {store: postgres}\npostgres: {managed: true}\n")
    stack = load_stack(paths)
    secrets.ensure_all(paths, stack)
    result = k8s.export(paths, stack, out)
    docs = k8s_docs(out)
    validate_k8s(docs)
    pg = by_kind(docs, "StatefulSet", cluster.POSTGRES_NAME)["spec"]
    assert pg["template"]["spec"]["containers"][0]["image"] == "postgres:15" and pg["volumeClaimTemplates"]
    lite = by_kind(docs, "Deployment", cluster.LITELLM_NAME)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in lite["env"]}
    assert env["FLOWGATE_KEYS_STORE"] == "postgres" and env["FLOWGATE_KEYS_PG_URL_ENV"] == cluster.KEYS_PG_URL_VAR
    assert env[cluster.KEYS_PG_URL_VAR] == {"secretKeyRef": {"name": "flowgate-secrets", "key": cluster.KEYS_PG_URL_VAR}}
    password = secrets.read(paths, secrets.POSTGRES_PASSWORD)
    url = by_kind(docs, "Secret")["stringData"][cluster.KEYS_PG_URL_VAR]
    assert url == f"postgresql://flowgate:{password}@{cluster.POSTGRES_NAME}:5432/postgres"
    assert files_holding(out, password) == ["secret.yaml"]
    assert any("keys.store is postgres" in note for note in result.notes)
    paths.local_config.write_text("keys: {store: postgres}\npostgres: {url_env: TEAM_PG_URL}\n")
    k8s.export(paths, load_stack(paths), out, environ={"TEAM_PG_URL": PG_DSN})
    assert not (out / "postgres.yaml").exists()  # a PostgreSQL the team runs: its URL only
    assert by_kind(k8s_docs(out), "Secret")["stringData"][cluster.KEYS_PG_URL_VAR] == PG_DSN


def test_compose_carries_a_managed_postgres_key_store(paths, out):
    paths.local_config.write_text("keys: {store: postgres}\npostgres: {managed: true}\n")
    stack = load_stack(paths)
    secrets.ensure_all(paths, stack)
    files, _ = compose.render(paths, stack)
    doc = yaml.safe_load(files["compose.yaml"][0])
    validate_compose(doc)
    assert doc["services"][cluster.POSTGRES_NAME]["image"] == "postgres:15"
    assert cluster.POSTGRES_NAME in doc["services"][cluster.LITELLM_NAME]["depends_on"]
    assert "postgres-data" in doc["volumes"]
    password = secrets.read(paths, secrets.POSTGRES_PASSWORD)
    assert password not in files["compose.yaml"][0] and password in files[".env"][0]


def test_existing_secret_reads_and_writes_no_key(paths, team, out):
    k8s.export(paths, team, out, environ=TEAM_ENV)
    (paths.home / "keys" / "pg.dsn").unlink()  # nothing is read: a missing key file does not matter
    result = k8s.export(paths, team, out, existing_secret="team-keys", environ={})
    assert result.removed == ["secret.yaml"] and not (out / "secret.yaml").exists()
    docs = k8s_docs(out)
    validate_k8s(docs)
    refs = [e["valueFrom"]["secretKeyRef"]["name"] for d in docs if d["kind"] == "Deployment"
            for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", []) if "valueFrom" in e]
    assert refs and set(refs) == {"team-keys"}
    for value in all_secret_values(paths):
        assert files_holding(out, value) == []


def test_existing_secret_name_is_checked(paths, stack, out):
    with pytest.raises(FlowgateError, match="not a Kubernetes object name"):
        k8s.export(paths, stack, out, existing_secret="Team_Keys")


def test_missing_key_is_a_clean_error(paths, team, out):
    with pytest.raises(FlowgateError, match="OPENAI_API_KEY is not set"):
        k8s.export(paths, team, out, environ={"TEAM_REDIS_PASSWORD": REDIS_PW})
    assert not out.exists()  # nothing written


def test_config_change_rolls_the_pods(paths, stack):
    before = k8s.context(cluster.plan(paths, stack), "s")
    changed = copy.deepcopy(stack)
    changed["litellm_settings"]["num_retries"] = 7
    after = k8s.context(cluster.plan(paths, changed), "s")
    assert before["litellm"]["checksum"] != after["litellm"]["checksum"]
    assert before["cliproxy"]["checksum"] == after["cliproxy"]["checksum"]


def test_validators_do_reject_a_broken_manifest(paths, stack, out):
    """The schemas are really applied: a wrong type and an unknown field fail."""
    import jsonschema

    k8s.export(paths, stack, out)
    deployment = by_kind(k8s_docs(out), "Deployment", cluster.LITELLM_NAME)
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s([deployment])
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["replica"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s([deployment])
    doc = yaml.safe_load(compose.render(paths, stack)[0]["compose.yaml"][0])
    doc["services"][cluster.LITELLM_NAME]["replica"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate_compose(doc)


def test_compose_default_and_team(paths, team, out):
    result = compose.export(paths, team, out, environ=TEAM_ENV)
    assert sorted(result.written) == [".env", "compose.yaml"]
    doc = yaml.safe_load((out / "compose.yaml").read_text())
    validate_compose(doc)
    lite = doc["services"][cluster.LITELLM_NAME]
    assert lite["deploy"]["replicas"] == 3 and lite["ports"] == ["4000-4002:4000"]
    assert lite["environment"]["LITELLM_LOG"].startswith("${LITELLM_LOG:?")  # litellm.env: from .env, like a key
    assert lite["environment"]["OPENAI_API_KEY"].startswith("${OPENAI_API_KEY:?")
    cp_config = doc["configs"]["cliproxy_config"]["content"]
    assert "${CLIPROXY_API_KEY:?" in cp_config and "FLOWGATE_REF" not in cp_config
    assert stat.S_IMODE((out / ".env").stat().st_mode) == 0o600
    env_lines = dict(line.split("=", 1) for line in (out / ".env").read_text().splitlines() if "=" in line
                     and not line.startswith("#"))
    assert env_lines["PGSTORE_DSN"] == f"'{PG_DSN}'"
    assert env_lines["LITELLM_LOG"] == "'$INFO'"  # single-quoted in .env: a literal `$` survives interpolation
    for value in all_secret_values(paths):
        assert files_holding(out, value) == [".env"], value


def test_compose_default_validates_and_managed_redis(paths, stack, out):
    validate_compose(yaml.safe_load(compose.render(paths, stack)[0]["compose.yaml"][0]))
    paths.local_config.write_text("redis: {managed: true}\n")
    doc = yaml.safe_load(compose.render(paths, load_stack(paths))[0]["compose.yaml"][0])
    validate_compose(doc)
    assert doc["services"][cluster.REDIS_NAME]["image"] == "redis:7"
    assert cluster.REDIS_NAME in doc["services"][cluster.LITELLM_NAME]["depends_on"]


def test_second_export_rewrites_nothing(paths, team, out):
    first = k8s.export(paths, team, out, environ=TEAM_ENV)
    mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    second = k8s.export(paths, team, out, environ=TEAM_ENV)
    assert second.written == [] and sorted(second.unchanged) == sorted(first.written)
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


def test_env_file_refuses_a_quote(paths, team, out):
    with pytest.raises(FlowgateError, match="OPENAI_API_KEY"):
        compose.render(paths, team, environ={**TEAM_ENV, "OPENAI_API_KEY": "it's"})


def test_object_store_and_notes(paths, stack, out):
    paths.local_config.write_text(textwrap.dedent("""
        litellm: {replicas: 2}
        cliproxy:
          release: {repo: someone/CLIProxyAPIPlus, version: v6.9.8-0}
          store: {type: object, endpoint: "https://s3.internal", bucket: tokens,
                  access_key_env: OBJ_ACCESS, secret_key_env: OBJ_SECRET}
    """))
    result = k8s.export(paths, load_stack(paths), out, environ={"OBJ_ACCESS": "access-0123456789", "OBJ_SECRET": "secret-0123456789"})
    docs = k8s_docs(out)
    validate_k8s(docs)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in
           by_kind(docs, "Deployment", cluster.CLIPROXY_NAME)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OBJECTSTORE_ENDPOINT"] == "https://s3.internal" and env["OBJECTSTORE_BUCKET"] == "tokens"
    assert env["OBJECTSTORE_SECRET_KEY"] == {"secretKeyRef": {"name": "flowgate-secrets", "key": "OBJECTSTORE_SECRET_KEY"}}
    assert files_holding(out, "secret-0123456789") == ["secret.yaml"]
    assert any("without Redis" in n for n in result.notes) and any("deploy.images.cliproxy" in n for n in result.notes)


def test_litellm_env_values_travel_only_in_the_secret(paths, tmp_path):
    """litellm.env values may be secrets: never in the Deployment, compose.yaml or any 0644 file."""
    value = "env-secret-value-0123456789"
    paths.local_config.write_text(f"litellm:\n  env: {{LANGFUSE_SECRET_KEY: {value}, LITELLM_MODE: DEV}}\n")
    secrets.ensure_all(paths, ALL_SECRETS)
    stack = load_stack(paths)
    k8s.export(paths, stack, tmp_path / "k8s")
    assert files_holding(tmp_path / "k8s", value) == ["secret.yaml"]
    container = by_kind(k8s_docs(tmp_path / "k8s"), "Deployment", cluster.LITELLM_NAME)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["LANGFUSE_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "LANGFUSE_SECRET_KEY"
    assert "value" not in env["LITELLM_MODE"]  # the user's override comes from the Secret, not the default
    compose.export(paths, stack, tmp_path / "compose")
    assert files_holding(tmp_path / "compose", value) == [".env"]


def test_a_key_file_that_is_a_fifo_is_refused_without_reading_it(paths, team, tmp_path):
    import os

    key = paths.home / "keys" / "mini.key"
    key.unlink()
    os.mkfifo(key)  # an export that read it would wait for a writer forever
    with pytest.raises(FlowgateError, match=r"models: mini.direct: .*mini.key is not a regular file \(a FIFO\)"):
        k8s.export(paths, team, tmp_path / "k8s", environ=TEAM_ENV)

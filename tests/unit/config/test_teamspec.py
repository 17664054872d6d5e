"""tasks.config.teamspec: the team keys (replicas, redis, keys.store and postgres, cliproxy.store, deploy.images)
and their messages."""

from __future__ import annotations

import pytest

from tasks.config import teamspec
from tasks.config.load import load_stack
from tests.unit.config.test_load import problems, write_local


def test_defaults(paths):
    stack = load_stack(paths)
    assert stack["litellm"]["replicas"] == 1
    assert stack["redis"] == {"url": None, "password_env": None, "password_file": None, "managed": False, "binary": None,
                              "port": 6399, "start_timeout": 10.0, "stop_timeout": 10.0, "host": "127.0.0.1"}
    assert stack["cliproxy"]["store"]["type"] is None
    assert stack["keys"] == {"store": "sqlite"}  # member keys in the SQLite file unless a team says otherwise
    assert stack["postgres"] == {"managed": False, "url_env": None, "url_file": None, "port": 5433, "start_timeout": 30.0,
                                 "stop_timeout": 10.0, "bindir": None, "run_as": "postgres", "host": "127.0.0.1"}
    assert stack["deploy"]["images"] == {"litellm": "ghcr.io/berriai/litellm:main-v1.108.14",
                                         "cliproxy": "eceasy/cli-proxy-api:v7.2.140", "redis": "redis:7",
                                         "postgres": "postgres:15"}


def test_a_postgres_url_the_config_names_must_exist(paths, tmp_path):
    from tasks.config.references import check_references

    write_local(paths, "keys: {store: postgres}\npostgres: {url_env: TEAM_PG_URL}\n")
    assert check_references(paths, load_stack(paths), environ={}) == [
        "postgres.url_env: environment variable TEAM_PG_URL is not set (the member keys' store)"]
    assert check_references(paths, load_stack(paths), environ={"TEAM_PG_URL": "postgresql://h/db"}) == []
    write_local(paths, f"keys: {{store: postgres}}\npostgres: {{url_file: {tmp_path / 'none'}}}\n")
    assert check_references(paths, load_stack(paths), environ={})[0].startswith("postgres.url_file: ")


@pytest.mark.parametrize("local", ["keys: {store: postgres}\npostgres: {managed: true}",
                                   "keys: {store: postgres}\npostgres: {url_env: FLOWGATE_PG_URL}"])
def test_a_postgres_key_store_is_managed_or_given_by_url(paths, local):
    write_local(paths, local + "\n")
    stack = load_stack(paths)
    assert stack["keys"]["store"] == "postgres"


def test_valid_team_config(paths):
    write_local(paths, """
        litellm: {replicas: 3}
        redis: {url: "rediss://cache.internal:6380/0", password_env: REDIS_PW}
        cliproxy:
          store: {type: postgres, dsn_file: secrets/pg.dsn, schema: flowgate}
        deploy:
          images: {litellm: "registry.example.com/litellm:v1.108.7-custom"}
    """)
    stack = load_stack(paths)
    assert stack["litellm"]["replicas"] == 3
    assert stack["redis"]["url"] == "rediss://cache.internal:6380/0"
    assert stack["cliproxy"]["store"]["dsn_file"] == "secrets/pg.dsn"
    assert stack["deploy"]["images"]["redis"] == "redis:7"  # untouched defaults kept


@pytest.mark.parametrize("local, expected", [
    ("litellm: {replicas: 0}", "litellm.replicas: expected a whole number of at least 1, found int 0"),
    ("litellm: {replicas: two}", "litellm.replicas: expected a whole number of at least 1"),
    ("redis: {url: 'redis://h:6379', managed: true}", "redis.managed: give either redis.url"),
    ("redis: {url: 'http://h:6379'}", "redis.url: expected redis://host:port or rediss://host:port"),
    ("redis: {url: 'redis://:hunter2@h:6379'}", "redis.url: holds a password: move it to redis.password_env"),
    ("redis: {url: 'redis://h:99999'}", "redis.url: is not a valid URL"),
    ("redis: {password_env: PW}", "redis.password_env: only with redis.url"),
    ("redis: {url: 'redis://h', password_env: A, password_file: b}", "redis.password_file: give either password_env"),
    ("redis: {binary: /usr/bin/redis-server}", "redis.binary: only with redis.managed: true"),
    ("redis: {manged: true}", "redis.manged: unknown key (did you mean 'managed'?)"),
    ("cliproxy: {store: {type: mysql}}", "cliproxy.store.type: expected one of postgres, object"),
    ("cliproxy: {store: {dsn_env: PG}}", "cliproxy.store.dsn_env: set cliproxy.store.type"),
    ("cliproxy: {store: {type: postgres}}", "cliproxy.store.dsn_env: missing: a Postgres store needs dsn_env or dsn_file"),
    ("cliproxy: {store: {type: postgres, dsn_env: A, bucket: b}}", "cliproxy.store.bucket: not used by a Postgres store"),
    ("cliproxy: {store: {type: object, endpoint: e, bucket: b, access_key_env: A}}",
     "cliproxy.store.secret_key_env: missing: an object store needs secret_key_env or secret_key_file"),
    ("keys: {store: mysql}", "keys.store: expected one of sqlite, postgres"),
    ("keys: {store: postgres}", "keys.store: postgres needs postgres.managed: true"),
    ("postgres: {managed: true, url_env: PG}", "postgres.url_env: give either postgres.url_env/url_file"),
    ("postgres: {url_env: PG, url_file: pg.url}", "postgres.url_file: give either url_env or url_file"),
    ("postgres: {bindir: /usr/lib/postgresql/15/bin}", "postgres.bindir: only with postgres.managed: true"),
    ("deploy: {images: {cliproxy: 'has space:1'}}", "deploy.images.cliproxy: expected an image reference"),
    ("deploy: {images: {redis: 7}}", "deploy.images.redis: expected an image reference like repo/name:tag, found int 7"),
])
def test_bad_team_keys(paths, local, expected):
    found = problems_of(paths, local)
    assert any(expected in line for line in found), found
    assert all(line.startswith("config/local.yaml:") for line in found), found


def problems_of(paths, local):
    write_local(paths, local + "\n")
    return problems(paths)


def test_image_defaults_follow_the_pins():
    from tasks.release import lines
    from tasks.services.litellm import litellm_version

    assert teamspec.CLIPROXY_IMAGE.endswith(":" + lines.MAINLINE_VERSION)
    assert teamspec.LITELLM_IMAGE.endswith("-v" + litellm_version())

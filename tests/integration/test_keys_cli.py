"""`doit keys`: a key printed once and stored hashed, the listing without a secret, one-line errors."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.postgres_server import running as postgres_running


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    """A real PostgreSQL (tests.postgres_server) and a 0600 file with its URL: the external store (postgres.url_file)."""
    from tasks.base.paths import ROOT, Paths
    from tasks.services.postgres import password
    from tests.conftest import make_home

    base = tmp_path_factory.mktemp("keys-cli-pg")
    server = Paths(root=ROOT, home=make_home(base / "server"))
    server.router.mkdir(parents=True, mode=0o700)
    with postgres_running(server) as env:
        port = env["FLOWGATE_KEYS_PG_CONNINFO"].split("port=")[1].split()[0]
        url = base / "url"
        url.write_text(f"postgresql://flowgate:{password(server)}@127.0.0.1:{port}/postgres\n")
        url.chmod(0o600)
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, paths):
    """Each test once per key store: the SQLite file, and PostgreSQL (emptied first)."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        import psycopg

        with psycopg.connect(url.read_text().strip(), autocommit=True) as db:
            db.execute("DROP TABLE IF EXISTS flowgate_keys, flowgate_keys_version")
        paths.local_config.parent.mkdir(parents=True, exist_ok=True)
        paths.local_config.write_text(f"keys:\n  store: postgres\npostgres:\n  url_file: {url}\n")
    return request.param


def test_create_list_rotate_revoke(doit, paths, store):
    made = doit("keys", "create", "ana", "--models", "gpt-5*", "--rpm", "3", "--models", "claude-*,o3")
    assert made.returncode == 0, made.output
    key = made.stdout.splitlines()[1]
    assert key.startswith("fg-") and "only its hash" in made.stdout
    if store == "sqlite":
        assert stat.S_IMODE(os.stat(paths.keys_db).st_mode) == 0o600
    else:
        assert not paths.keys_db.exists()
    listed = doit("keys")
    assert listed.returncode == 0 and "ana" in listed.stdout and "gpt-5*,claude-*,o3" in listed.stdout
    assert key not in listed.stdout and key[:10] in listed.stdout
    rotated = doit("keys", "rotate", "ana", "--json")
    assert rotated.returncode == 0, rotated.output
    new = json.loads(rotated.stdout)["key"]
    assert new != key and new.startswith("fg-")
    assert doit("keys", "revoke", "ana").returncode == 0
    rows = json.loads(doit("keys", "list", "--json").stdout)["keys"]
    assert [(r["name"], r["state"]) for r in rows] == [("ana", "revoked")]
    assert new not in json.dumps(rows)


@pytest.mark.parametrize("args,said", [
    (("keys", "create"), "takes one name"), (("keys", "revoke", "nobody"), "no key named nobody"),
    (("keys", "frob"), "unknown action"), (("keys", "create", "bo", "--rpm", "many"), "option --rpm takes a number, not 'many'"),
    (("keys", "create", "bo", "--expires", "2001-01-01"), "in the past"), (("keys", "create", "b/o"), "bad key name"),
])
def test_mistakes_are_one_line_without_a_traceback(doit, args, said, store):
    result = doit(*args)
    assert result.returncode == 1 and said in result.stderr and "Traceback" not in result.output


def test_a_linked_key_database_is_refused(doit, paths, tmp_path):
    paths.router.mkdir(parents=True, exist_ok=True)
    paths.keys_db.symlink_to(tmp_path / "elsewhere")
    result = doit("keys", "create", "ana")
    assert result.returncode == 1 and "symbolic link" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "elsewhere").exists()


def test_spend_per_key_in_the_listing_and_in_usage_by_key(doit, paths, store):
    import time

    from tasks.gateway.usage import store

    assert doit("keys", "create", "ana", "--budget", "5", "--period", "day").returncode == 0
    assert doit("keys", "create", "bo").returncode == 0
    db = store.connect(paths.usage_db)
    now = time.time()
    store.insert(db, [
        {"ts": now - 5, "route": "/v1/chat/completions", "model": "gpt-5", "status": 200, "tokens_in": 100000,
         "tokens_out": 5000, "tokens_cached": 0, "member": "ana"},
        {"ts": now - 4, "route": "/v1/chat/completions", "model": "unpriced-model", "status": 200, "tokens_in": 10,
         "tokens_out": 5, "member": "bo"},
        {"ts": now - 3, "route": "/v1/chat/completions", "model": "gpt-5", "status": 200, "tokens_in": 1, "tokens_out": 1}])
    db.close()
    listed = json.loads(doit("keys", "list", "--json").stdout)["keys"]
    by_name = {r["name"]: r for r in listed}
    assert by_name["ana"]["spend_usd"] > 0 and by_name["ana"]["last_use"] == pytest.approx(now - 5)
    assert by_name["bo"]["spend_usd"] == 0 and by_name["bo"]["spend_unpriced_tokens"] == 15
    usage = json.loads(doit("usage", "--by", "key", "--json").stdout)
    assert [(g["key"], g["requests"]) for g in usage["by"]["key"]] == [("ana", 1), ("bo", 1)]
    assert usage["totals"]["requests"] == 3  # the master key's request counts in the totals, in no key's row
    text = doit("usage", "--by", "key,model")
    assert text.returncode == 0 and "unpriced tokens" in text.stdout and "fg-" not in text.stdout


def test_the_keys_are_listed_when_the_usage_database_cannot_be_read(doit, paths, store):
    assert doit("keys", "create", "ana").returncode == 0
    paths.usage_db.write_bytes(b"garbage" * 1000)
    listed = doit("keys")
    assert listed.returncode == 0 and "ana" in listed.stdout and "spend unknown: cannot read" in listed.stdout
    assert json.loads(doit("keys", "list", "--json").stdout)["keys"][0]["spend_usd"] is None

"""tasks.keys.pg and the PostgreSQL key store (tasks.gateway.keys.pgstore, pgbook) against a real
PostgreSQL run by FlowGate's own code (tests.postgres_server): the same commands as on SQLite, only
the hash stored, a change seen by the gateway's book, and fail closed when the store cannot be read."""

from __future__ import annotations

import json

import pytest

from tasks.base.errors import FlowgateError
from tasks.base.paths import ROOT, Paths
from tasks.gateway.keys import pgstore, store
from tasks.gateway.keys.book import Unavailable
from tasks.gateway.keys.pgbook import STALE_S, PgKeyBook
from tasks.keys import manage
from tasks.services.postgres import control_env
from tests.conftest import make_home
from tests.postgres_server import running
from tests.support import free_port


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def use_postgres(paths: Paths, port: int) -> None:
    paths.local_config.write_text(f"keys:\n  store: postgres\npostgres:\n  managed: true\n  port: {port}\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    paths = Paths(root=ROOT, home=make_home(tmp_path_factory.mktemp("keypg") / "home"))
    paths.router.mkdir(parents=True, mode=0o700)
    port = free_port()
    with running(paths, port) as env:
        use_postgres(paths, port)
        yield paths, env


S: dict = {}  # where the store is, as `doit keys` finds it from the config (tasks.services.postgres.control_env)


@pytest.fixture
def pgpaths(server):
    paths, env = server
    db = pgstore.connect(env)
    if pgstore.version(db) is not None:
        db.execute(f"TRUNCATE {pgstore.TABLE}")
    db.close()
    S.clear()
    S.update(control_env(paths))
    return paths


def test_the_commands_write_postgres_and_only_the_hash_is_stored(pgpaths, server):
    env = server[1]
    key = manage.create(pgpaths, "ana", rpm=3, models=["gpt-*"], store=S)
    assert not pgpaths.keys_db.exists()  # nothing in the SQLite file
    db = pgstore.connect(env)
    assert db.execute(f"SELECT hash, shown FROM {pgstore.TABLE}").fetchall() == [(store.digest(key), key[:store.SHOWN])]
    db.close()
    rotated = manage.rotate(pgpaths, "ana", store=S)
    manage.revoke(pgpaths, "ana", store=S)
    rows = manage.listing(pgpaths, store=S)
    assert [(r["name"], r["state"], r["models"], r["rpm"]) for r in rows] == [("ana", "revoked", ["gpt-*"], 3)]
    assert key not in json.dumps(rows) and rotated not in json.dumps(rows)
    manage.create(pgpaths, "bo", store=S)
    with pytest.raises(FlowgateError, match="a key named bo exists"):
        manage.create(pgpaths, "bo", store=S)
    assert manage.check(pgpaths, store=S) == (True, f"1 active member key(s) of 2 in {pgstore.described(env)}")


def test_the_book_sees_a_change_at_its_next_read(pgpaths, server):
    key = manage.create(pgpaths, "ana", store=S)
    clock = Clock()
    book = PgKeyBook(server[1], clock, start_thread=False)
    assert book.find(key).name == "ana" and book.find("fg-nobody") is None
    manage.revoke(pgpaths, "ana", store=S)
    clock.now += 0.3
    assert book.find(key).revoked is not None


def test_a_key_made_a_moment_ago_is_found_on_its_first_request_through_the_thread(pgpaths, server):
    book = PgKeyBook(server[1])
    assert book.needs_read(["fg-nobody"])  # nothing read yet
    book.wait_fresh()
    assert book.find("fg-nobody") is None and book.needs_read(["fg-nobody"])  # unknown: worth a fresh read
    key = manage.create(pgpaths, "cy", store=S)
    book.wait_fresh()  # the gate awaits this in a worker thread: the miss woke the reader
    assert book.find(key).name == "cy" and not book.needs_read([key])


def test_an_unreachable_store_keeps_the_copy_for_a_moment_then_refuses_member_keys(pgpaths, server):
    key = manage.create(pgpaths, "dee", store=S)
    clock = Clock()
    env = dict(server[1])
    book = PgKeyBook(env, clock, start_thread=False)
    assert book.find(key).name == "dee"
    book._close()
    env[pgstore.CONNINFO_ENV] = env[pgstore.CONNINFO_ENV].replace(f"port={_port(env)}", f"port={free_port()}")
    clock.now += 0.3
    assert book.find(key).name == "dee" and "cannot be read" in book.broken  # within STALE_S: the copy stands
    clock.now += STALE_S
    with pytest.raises(Unavailable, match="PostgreSQL key store .* cannot be read .*member keys are refused"):
        book.find(key)
    env[pgstore.CONNINFO_ENV] = server[1][pgstore.CONNINFO_ENV]
    clock.now += 0.3
    assert book.find(key).name == "dee"


def _port(env) -> int:
    return int(env[pgstore.CONNINFO_ENV].split("port=")[1].split()[0])


def test_the_commands_say_in_one_line_when_postgres_cannot_be_reached(tmp_path):
    paths = Paths(root=ROOT, home=make_home(tmp_path / "home"))
    use_postgres(paths, free_port())
    from tasks.services.secrets import POSTGRES_PASSWORD, ensure

    ensure(paths, POSTGRES_PASSWORD)
    store = control_env(paths)
    with pytest.raises(FlowgateError, match="PostgreSQL key store at 127.0.0.1:.* cannot be reached") as caught:
        manage.create(paths, "ana", store=store)
    assert "doit up" in caught.value.one_line()
    ok, said = manage.check(paths, store)
    assert not ok and "member keys are refused" in said
    assert control_env(Paths(root=ROOT, home=tmp_path / "none")) is None  # no config: SQLite
    paths.local_config.write_text("keys: {store: sqlite}\n")
    assert control_env(paths) is None

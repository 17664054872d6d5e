"""tasks.keys.manage: keys shown once and stored hashed, in a private WAL database; revoke, rotate, list."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from tasks.base.errors import FlowgateError
from tasks.gateway.keys import store
from tasks.keys import manage


def test_a_key_is_returned_once_and_only_its_hash_is_stored(paths):
    key = manage.create(paths, "ana", rpm=10, models=["gpt-*"])
    assert key.startswith("fg-") and len(key) > 40
    raw = paths.keys_db.read_bytes() + (paths.keys_db.with_name("keys.sqlite3-wal").read_bytes()
                                        if paths.keys_db.with_name("keys.sqlite3-wal").exists() else b"")
    assert key.encode() not in raw and key[store.SHOWN:].encode() not in raw
    db = sqlite3.connect(paths.keys_db)
    assert db.execute("SELECT hash, shown FROM keys").fetchone() == (store.digest(key), key[:store.SHOWN])
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(os.stat(paths.keys_db).st_mode) == 0o600


def test_the_listing_holds_no_secret_and_says_each_keys_state(paths):
    key = manage.create(paths, "ana", budget=5.0, rpm=3, models=["claude-*"])
    manage.create(paths, "bo")
    manage.revoke(paths, "bo")
    rows = {r["name"]: r for r in manage.listing(paths)}
    assert rows["ana"]["state"] == "active" and rows["bo"]["state"] == "revoked"
    assert rows["ana"]["models"] == ["claude-*"] and rows["ana"]["rpm"] == 3 and rows["ana"]["period"] == "month"
    assert key not in repr(rows)


def test_rotate_replaces_the_hash_and_keeps_the_limits(paths):
    old = manage.create(paths, "ana", rpm=7)
    new = manage.rotate(paths, "ana")
    db = sqlite3.connect(paths.keys_db)
    assert db.execute("SELECT hash, rpm FROM keys WHERE name='ana'").fetchone() == (store.digest(new), 7)
    assert store.digest(old) != store.digest(new)


@pytest.mark.parametrize("step,message", [
    (lambda p: manage.create(p, "ana"), "exists"), (lambda p: manage.revoke(p, "zed"), "no key named zed"),
    (lambda p: manage.rotate(p, "gone"), "revoked"), (lambda p: manage.create(p, "bad name"), "bad key name"),
    (lambda p: manage.create(p, "x", period="year", budget=1), "--period"),
    (lambda p: manage.parse_expiry("2001-01-01"), "in the past"), (lambda p: manage.parse_expiry("soon"), "takes a date"),
])
def test_mistakes_are_one_clear_error(paths, step, message):
    manage.create(paths, "ana")
    manage.create(paths, "gone")
    manage.revoke(paths, "gone")
    with pytest.raises(FlowgateError, match=message):
        step(paths)


def test_a_revoked_name_can_be_given_a_new_key(paths):
    manage.create(paths, "ana")
    manage.revoke(paths, "ana")
    key = manage.create(paths, "ana")
    assert [r["state"] for r in manage.listing(paths)] == ["active"]
    assert sqlite3.connect(paths.keys_db).execute("SELECT hash FROM keys").fetchone()[0] == store.digest(key)


def test_a_linked_database_is_never_opened(paths, tmp_path):
    paths.keys_db.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path / "elsewhere.sqlite3", paths.keys_db)
    with pytest.raises(FlowgateError, match="symbolic link"):
        manage.create(paths, "ana")
    assert not (tmp_path / "elsewhere.sqlite3").exists()
    with pytest.raises(FlowgateError, match="symbolic link"):
        manage.listing(paths)


def test_an_expiry_date_ends_with_that_day():
    assert manage.parse_expiry("2100-01-01") == pytest.approx(4102531200.0)

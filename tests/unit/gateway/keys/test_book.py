"""tasks.gateway.keys.book: lookups by hash, a change seen at the next refresh, fail closed."""

from __future__ import annotations

import pytest

from tasks.gateway.keys.book import KeyBook, Unavailable
from tasks.keys import manage


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_key_is_found_by_its_hash_and_a_revocation_is_seen_at_the_next_refresh(paths):
    key = manage.create(paths, "ana", rpm=5)
    clock = Clock()
    book = KeyBook(paths.keys_db, clock)
    assert book.find(key).name == "ana" and book.find(key).rpm == 5
    assert book.find(key + "x") is None
    manage.revoke(paths, "ana")
    clock.now += 1.0  # past REFRESH_S (+ the reader's wait): the book asks the database again
    assert book.find(key).revoked is not None


def test_a_rotation_retires_the_old_key(paths):
    old = manage.create(paths, "ana")
    clock = Clock()
    book = KeyBook(paths.keys_db, clock)
    assert book.find(old) is not None
    new = manage.rotate(paths, "ana")
    clock.now += 1.0
    assert book.find(old) is None and book.find(new).name == "ana"


def test_no_database_means_no_member_key(paths):
    assert KeyBook(paths.keys_db).find("fg-anything") is None


def test_a_database_moved_aside_and_made_again_is_read_again(paths):
    first = manage.create(paths, "ana")
    clock = Clock()
    book = KeyBook(paths.keys_db, clock)
    assert book.find(first) is not None
    for suffix in ("", "-wal", "-shm"):
        paths.keys_db.with_name(paths.keys_db.name + suffix).unlink(missing_ok=True)
    second = manage.create(paths, "bo")
    clock.now += 1.0
    assert book.find(first) is None and book.find(second).name == "bo"


@pytest.mark.parametrize("damage", ["corrupt", "link", "directory"])
def test_an_unreadable_database_refuses_member_keys_until_it_reads_again(paths, tmp_path, damage):
    key = manage.create(paths, "ana")
    clock = Clock()
    book = KeyBook(paths.keys_db, clock)
    assert book.find(key) is not None
    saved = tmp_path / "saved"
    paths.keys_db.rename(saved)
    for suffix in ("-wal", "-shm"):
        paths.keys_db.with_name(paths.keys_db.name + suffix).unlink(missing_ok=True)
    if damage == "corrupt":
        paths.keys_db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    elif damage == "link":
        paths.keys_db.symlink_to(saved)
    else:
        paths.keys_db.mkdir()
    clock.now += 1.0
    with pytest.raises(Unavailable, match="member keys are refused"):
        book.find(key)
    if damage == "directory":
        paths.keys_db.rmdir()
    else:
        paths.keys_db.unlink()
    saved.rename(paths.keys_db)
    clock.now += 1.0
    assert book.find(key).name == "ana"


def test_a_key_made_a_moment_ago_is_found_on_its_first_request(paths):
    manage.create(paths, "ana")
    clock = Clock()
    book = KeyBook(paths.keys_db, clock)
    assert book.find("fg-unknown") is None  # the book is current
    key = manage.create(paths, "bo")
    assert book.find(key).name == "bo"  # no time passed: the miss asked the database

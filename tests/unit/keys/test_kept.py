"""tasks.keys.kept through tasks.keys.manage: a key kept for clients only with --keep, private
(0600 in 0700), replaced by rotate, deleted by revoke; never written through a link."""

from __future__ import annotations

import os
import stat

import pytest

from tasks.base.errors import FlowgateError
from tasks.keys import kept, manage


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_key_is_kept_only_when_asked(paths):
    manage.create(paths, "ana")
    assert not kept.is_kept(paths, "ana") and not kept.key_path(paths, "ana").parent.exists()
    key = manage.create(paths, "bo", keep=True)
    path = kept.key_path(paths, "bo")
    assert path.read_text() == key + "\n" and kept.is_kept(paths, "bo")
    assert mode(path) == 0o600 and mode(path.parent) == 0o700 and mode(paths.secrets_dir) == 0o700


def test_rotate_replaces_a_kept_copy_and_revoke_deletes_it(paths):
    manage.create(paths, "ana", keep=True)
    new = manage.rotate(paths, "ana")  # kept before: kept still, with the new key
    assert kept.key_path(paths, "ana").read_text() == new + "\n"
    manage.revoke(paths, "ana")
    assert not kept.key_path(paths, "ana").exists()
    again = manage.create(paths, "ana")  # a new key for the name, not kept: no copy of an older one
    assert not kept.is_kept(paths, "ana")
    newest = manage.rotate(paths, "ana", keep=True)  # a key made before: rotated to be kept
    assert newest != again and kept.key_path(paths, "ana").read_text() == newest + "\n"


def test_a_link_in_place_of_the_copy_is_refused(paths, tmp_path):
    manage.create(paths, "ana", keep=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("theirs")
    path = kept.key_path(paths, "ana")
    path.unlink()
    path.symlink_to(elsewhere)
    with pytest.raises(FlowgateError, match="not kept for clients: .* is a symbolic link"):
        manage.rotate(paths, "ana", keep=True)
    assert elsewhere.read_text() == "theirs"


def test_the_listing_says_which_keys_are_kept(paths):
    from tasks.graph.keys import format_rows

    manage.create(paths, "ana", keep=True)
    manage.create(paths, "bo")
    rows = manage.listing_with_spend(paths)
    assert {r["name"]: r["kept"] for r in rows} == {"ana": True, "bo": False}
    table = format_rows(rows).splitlines()
    assert "(kept)" in table[1] and "(kept)" not in table[2]

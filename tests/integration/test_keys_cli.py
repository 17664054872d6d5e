"""`doit keys`: a key printed once and stored hashed, the listing without a secret, one-line errors."""

from __future__ import annotations

import json
import os
import stat

import pytest


def test_create_list_rotate_revoke(doit, paths):
    made = doit("keys", "create", "ana", "--models", "gpt-5*", "--rpm", "3", "--models", "claude-*,o3")
    assert made.returncode == 0, made.output
    key = made.stdout.splitlines()[1]
    assert key.startswith("fg-") and "only its hash" in made.stdout
    assert stat.S_IMODE(os.stat(paths.keys_db).st_mode) == 0o600
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
    (("keys", "frob"), "unknown action"), (("keys", "create", "bo", "--rpm", "many"), "option rpm takes a number"),
    (("keys", "create", "bo", "--expires", "2001-01-01"), "in the past"), (("keys", "create", "b/o"), "bad key name"),
])
def test_mistakes_are_one_line_without_a_traceback(doit, args, said):
    result = doit(*args)
    assert result.returncode == 1 and said in result.stderr and "Traceback" not in result.output


def test_a_linked_key_database_is_refused(doit, paths, tmp_path):
    paths.router.mkdir(parents=True, exist_ok=True)
    paths.keys_db.symlink_to(tmp_path / "elsewhere")
    result = doit("keys", "create", "ana")
    assert result.returncode == 1 and "symbolic link" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "elsewhere").exists()

"""tasks.release.store: kept releases, restored without a download, verified before use, pruned."""

from __future__ import annotations

import json

from tasks import release
from tasks.release import store
from tasks.release.settings import valid_tag
from tests.unit.release.support import (EXE, FORK, REPO, V1, V2, _clean_env, gh_fixture, publish,  # noqa: F401
                                        rpaths_fixture, script, settings)


def test_every_installed_release_is_kept_and_comes_back_with_no_request(gh, rpaths, tmp_path):
    publish(gh, tmp_path, V1)
    publish(gh, tmp_path, V2)
    release.fetch(rpaths, settings(gh, V1))
    release.fetch(rpaths, settings(gh, V2))
    assert {(e["repo"], e["tag"]) for e in store.kept(rpaths)} == {(REPO, V1), (REPO, V2)}
    gh.reset_counts()
    back = release.fetch(rpaths, settings(gh, V1))
    assert (back.action, gh.total_requests) == ("restored", 0)
    assert (rpaths.bin_dir / EXE).read_bytes() == script(V1)
    assert release.is_current(rpaths, settings(gh, V1))  # the restored binary is the one its manifest describes
    assert json.loads(rpaths.manifest.read_text())["tag"] == V1


def test_a_kept_copy_that_changed_is_not_used(gh, rpaths, tmp_path):
    publish(gh, tmp_path, V1)
    publish(gh, tmp_path, V2)
    release.fetch(rpaths, settings(gh, V1))
    release.fetch(rpaths, settings(gh, V2))
    kept = store.entry_dir(rpaths, REPO, V1) / EXE
    kept.write_bytes(b"#!/bin/sh\necho not the release\n")
    assert store.find(rpaths, REPO, V1) is None
    again = release.fetch(rpaths, settings(gh, V1))
    assert again.action == "installed" and (rpaths.bin_dir / EXE).read_bytes() == script(V1)


def test_three_per_line_are_kept_and_the_active_one_always(gh, rpaths, tmp_path):
    tags = [f"v6.9.{n}-0" for n in range(1, 6)]
    for tag in tags:
        publish(gh, tmp_path, tag)
        release.fetch(rpaths, settings(gh, tag))
    kept = [e["tag"] for e in store.kept(rpaths)]
    assert len(kept) == store.KEEP_PER_LINE and tags[-1] in kept
    publish(gh, tmp_path, V1, repo=FORK)  # another repository of the same line counts with it
    release.fetch(rpaths, settings(gh, V1, FORK))
    assert len(store.kept(rpaths)) == store.KEEP_PER_LINE and store.find(rpaths, FORK, V1) is not None


def test_hostile_names_are_never_paths(rpaths):
    for tag in ("../../etc", "v1/../../x", "", "v" * 200, ".hidden"):
        assert not valid_tag(tag)
        assert store.find(rpaths, REPO, tag) is None
    assert store.find(rpaths, "no-slash", V1) is None


def test_a_kept_release_whose_release_json_was_edited_with_it_is_refused(gh, rpaths, tmp_path):
    """Issue 31, item 19: the reference hash lives outside the release folders (.router/state)."""
    import hashlib
    import pytest
    from tasks.base.errors import FlowgateError

    publish(gh, tmp_path, V1)
    publish(gh, tmp_path, V2)
    release.fetch(rpaths, settings(gh, V1))
    release.fetch(rpaths, settings(gh, V2))
    where = store.entry_dir(rpaths, REPO, V1)
    forged = b"#!/bin/sh\necho not the release\n"
    (where / EXE).write_bytes(forged)
    entry = json.loads((where / "release.json").read_text())
    entry["binary_sha256"] = hashlib.sha256(forged).hexdigest()
    (where / "release.json").write_text(json.dumps(entry))
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V1))
    assert "was changed after FlowGate kept it" in err.value.message and "doit fetch" in err.value.hint
    assert (rpaths.bin_dir / EXE).read_bytes() == script(V2)  # the active binary untouched
    assert (rpaths.state_dir / "kept-releases.json").stat().st_mode & 0o777 == 0o600

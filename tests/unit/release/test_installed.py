"""tasks.release.installed: the warm check (is_current) and a user-installed binary (locate_binary)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import release
from tasks.base.errors import FlowgateError
from tasks.release import ReleaseSettings
from tests.unit.release.support import EXE, FORK, REPO, ROOT, V1, V2, publish, script, settings
from tests.unit.release.support import _clean_env, gh_fixture, rpaths_fixture  # noqa: F401  (fixtures: autouse, gh, rpaths)

# ------------------------------------------------------------------------------------------------
# the warm check


def test_is_current_tracks_config_and_binary(gh, rpaths, tmp_path):
    publish(gh, tmp_path)
    s = settings(gh)
    release.fetch(rpaths, s)
    assert not release.is_current(rpaths, settings(gh, version=V2))
    assert not release.is_current(rpaths, settings(gh, repo=FORK))

    target = rpaths.bin_dir / EXE
    # touched, same content: rehash says fine and the new fingerprint is remembered
    os.utime(target, ns=(1, 1))
    assert release.is_current(rpaths, s)
    assert release.read_manifest(rpaths)["binary_stat"]["mtime_ns"] == 1
    # replaced by something else: not current, and fetch puts the kept, verified copy back (no download)
    target.write_bytes(b"#!/bin/sh\necho tampered\n")
    assert not release.is_current(rpaths, s)
    gh.reset_counts()
    assert release.fetch(rpaths, s).action == "restored" and gh.total_requests == 0
    assert target.read_bytes() == script(V1)
    # ... and when the kept copy was tampered with too, it downloads the release again
    target.write_bytes(b"#!/bin/sh\necho tampered\n")
    next((rpaths.bin_dir / "releases").glob("*/" + EXE)).write_bytes(b"#!/bin/sh\necho tampered too\n")
    assert release.fetch(rpaths, s).action == "installed"
    assert target.read_bytes() == script(V1)
    # deleted
    target.unlink()
    assert not release.is_current(rpaths, s)


def test_is_current_does_not_import_httpx(gh, rpaths, tmp_path):
    publish(gh, tmp_path)
    release.fetch(rpaths, settings(gh))
    code = (
        "import sys; from pathlib import Path; from tasks import release; from tasks.base.paths import Paths;"
        f"p = Paths(root=Path({str(ROOT)!r}), home=Path({str(rpaths.home)!r}));"
        f"s = release.ReleaseSettings(repo={REPO!r}, version={V1!r}, api_url='http://127.0.0.1:9');"
        "assert release.is_current(p, s); assert 'httpx' not in sys.modules, 'httpx imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------
# user-installed binary


def test_user_binary_skips_fetching(gh, rpaths, tmp_path):
    mine = tmp_path / "mybin"
    mine.write_bytes(script("mine"))
    mine.chmod(0o755)
    s = ReleaseSettings(repo=REPO, version=V1, api_url=gh.api_url, binary=str(mine))
    result = release.fetch(rpaths, s)
    assert result.action == "user-binary" and result.binary == mine and result.requests == 0
    assert gh.total_requests == 0
    assert release.is_current(rpaths, s)
    assert release.locate_binary(rpaths, s).path == mine


def test_user_binary_missing(rpaths, tmp_path):
    s = ReleaseSettings(repo=REPO, version=V1, binary=str(tmp_path / "nope"))
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, s)
    assert "does not exist" in err.value.message and str(tmp_path / "nope") in err.value.message
    assert not release.is_current(rpaths, s)


def test_user_binary_not_executable(rpaths, tmp_path):
    mine = tmp_path / "mybin"
    mine.write_bytes(b"data")
    mine.chmod(0o644)
    s = ReleaseSettings(repo=REPO, version=V1, binary=str(mine))
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, s)
    assert "not executable" in err.value.message and "chmod +x" in err.value.hint


def test_user_binary_relative_to_home(rpaths):
    rel = Path("bin/cpa")
    (rpaths.home / "bin").mkdir(parents=True)
    (rpaths.home / rel).write_bytes(b"#!/bin/sh\n")
    (rpaths.home / rel).chmod(0o755)
    s = ReleaseSettings(repo=REPO, version=V1, binary=str(rel))
    assert release.fetch(rpaths, s).binary == rpaths.home / rel

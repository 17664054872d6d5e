"""tasks.release.install: fetch end to end: install, warm fetch, latest/ETag, HTTP failures, replacing a running binary."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tasks import release
from tasks.base.errors import FlowgateError
from tasks.release import ReleaseSettings
from tests.fakes.archives import asset_name
from tests.fakes.github import sha256_hex
from tests.unit.release.support import EXE, FORK, HOST_ARCH, HOST_OS, REPO, V1, V2
from tests.unit.release.support import assert_untouched, bin_dir_leftovers, install_v1, publish, script, settings
from tests.unit.release.support import _clean_env, gh_fixture, rpaths_fixture  # noqa: F401  (fixtures: autouse, gh, rpaths)

# ------------------------------------------------------------------------------------------------
# happy path and incremental behaviour


def test_happy_path_installs_binary_and_manifest(gh, rpaths, tmp_path, capfd):
    archive = publish(gh, tmp_path)
    result = release.fetch(rpaths, settings(gh))

    target = rpaths.bin_dir / EXE
    assert result.action == "installed" and result.tag == V1
    assert result.sha256 == sha256_hex(archive.read_bytes())
    assert result.requests == gh.total_requests > 0
    assert target.read_bytes() == script(V1)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert bin_dir_leftovers(rpaths) == []

    manifest = release.read_manifest(rpaths)
    st = target.stat()
    assert manifest["repo"] == REPO and manifest["tag"] == V1
    assert manifest["asset"] == archive.name
    assert manifest["sha256"] == result.sha256
    assert manifest["binary_sha256"] == sha256_hex(script(V1))
    assert manifest["binary_stat"] == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino,
                                       "ctime_ns": st.st_ctime_ns}
    assert manifest["verified_by"] == ["checksums.txt", "digest"]
    assert manifest["source_url"].endswith(f"/releases/download/{V1}/{archive.name}")
    assert manifest["api_url"] == gh.api_url
    assert datetime.fromisoformat(manifest["installed_at"]).tzinfo is not None
    assert "etag" not in manifest  # only for `latest`

    # GitHub's download redirect was followed to the object store (another origin)
    assert [r.server for r in gh.log].count("objects") == 2  # archive + checksums.txt
    assert any(r.status == 302 for r in gh.log)
    api_hits = [r for r in gh.log if r.path.startswith("/repos/")]
    assert api_hits[0].headers["accept"] == "application/vnd.github+json"
    assert "flowgate" in api_hits[0].headers["user-agent"]
    assert "authorization" not in api_hits[0].headers
    # not a terminal: no progress bar
    assert capfd.readouterr().err == ""


def test_second_fetch_makes_zero_requests_and_is_current(gh, rpaths, tmp_path):
    publish(gh, tmp_path)
    s = settings(gh)
    assert not release.is_current(rpaths, s)
    release.fetch(rpaths, s)
    gh.reset_counts()

    assert release.is_current(rpaths, s)
    again = release.fetch(rpaths, s)
    assert again.action == "unchanged" and again.tag == V1 and again.requests == 0
    assert gh.total_requests == 0
    assert release.locate_binary(rpaths, s).path == rpaths.bin_dir / EXE


# ------------------------------------------------------------------------------------------------
# latest, ETag, check interval


def test_latest_uses_check_interval_and_etag(gh, rpaths, tmp_path):
    publish(gh, tmp_path, V1)
    s = settings(gh, "latest")
    first = release.fetch(rpaths, s)
    assert first.action == "installed" and first.tag == V1
    manifest = release.read_manifest(rpaths)
    assert manifest["requested"] == "latest" and manifest["etag"].startswith('W/"')
    assert manifest["checked_at"]

    # within the interval: no request at all
    gh.reset_counts()
    assert release.is_current(rpaths, s)
    assert release.fetch(rpaths, s).requests == 0 and gh.total_requests == 0

    # interval elapsed: one conditional request, answered 304, counts nothing
    old = (datetime.now(timezone.utc) - timedelta(hours=25)).isoformat(timespec="seconds")
    rpaths.manifest.write_text(json.dumps({**manifest, "checked_at": old}))
    assert not release.is_current(rpaths, s)
    result = release.fetch(rpaths, s)
    assert result.action == "unchanged" and result.requests == 1
    assert gh.statuses() == [304]
    assert gh.log[0].headers["if-none-match"] == manifest["etag"]
    assert release.is_current(rpaths, s)  # checked_at refreshed
    assert release.read_manifest(rpaths)["checked_at"] > old

    # a new latest release: the ETag no longer matches, v2 gets installed
    publish(gh, tmp_path, V2)
    gh.reset_counts()
    s0 = settings(gh, "latest", check_interval_hours=0)
    assert not release.is_current(rpaths, s0)
    result = release.fetch(rpaths, s0)
    assert result.action == "installed" and result.tag == V2
    assert gh.statuses()[0] == 200
    assert (rpaths.bin_dir / EXE).read_bytes() == script(V2)


def test_switch_from_pinned_to_latest_same_tag_downloads_nothing(gh, rpaths, tmp_path):
    publish(gh, tmp_path, V1)
    release.fetch(rpaths, settings(gh, V1))
    gh.reset_counts()
    result = release.fetch(rpaths, settings(gh, "latest"))
    assert result.action == "unchanged" and result.tag == V1 and result.requests == 1
    assert release.is_current(rpaths, settings(gh, "latest"))
    assert release.is_current(rpaths, settings(gh, V1))


# ------------------------------------------------------------------------------------------------
# HTTP failures


def test_rate_limit_message_shows_reset_time_and_token_hint(gh, rpaths):
    reset = int(time.time()) + 600
    gh.rate_limit_reset = reset
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh))
    local = datetime.fromtimestamp(reset).astimezone().strftime("%H:%M:%S")
    assert "rate limit" in err.value.message and local in err.value.message
    assert "local time" in err.value.message
    assert "GITHUB_TOKEN" in err.value.hint


def test_token_is_sent_to_api_only_and_401_explained(gh, rpaths, tmp_path, monkeypatch):
    publish(gh, tmp_path)
    gh.required_token = "good-token"
    monkeypatch.setenv("GITHUB_TOKEN", "good-token")
    release.fetch(rpaths, settings(gh))
    api = [r for r in gh.log if r.server == "api"]
    assert api and all(r.headers.get("authorization") == "Bearer good-token" for r in api)
    assert all("authorization" not in r.headers for r in gh.log if r.server == "objects")

    monkeypatch.setenv("GITHUB_TOKEN", "bad-token")
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V2))
    assert "401" in err.value.message and "GITHUB_TOKEN" in err.value.message
    assert "GITHUB_TOKEN" in err.value.hint


def test_404_names_repo_and_fork_hint(gh, rpaths):
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh))
    assert REPO in err.value.message and "404" in err.value.message
    assert "2026-04" in err.value.hint and f"cliproxy.release.repo: {FORK}" in err.value.hint
    assert "api_url" in err.value.hint and "to use the mainline (router-for-me/CLIProxyAPI)" in err.value.hint


def test_404_unknown_tag_in_fork(gh, rpaths, tmp_path):
    publish(gh, tmp_path, V1, repo=FORK)
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, "v0.0.0-9", repo=FORK))
    assert FORK in err.value.message and "v0.0.0-9" in err.value.message
    assert release.fetch(rpaths, settings(gh, V1, repo=FORK)).action == "installed"


def test_offline_names_url_and_hints(rpaths):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, ReleaseSettings(repo=REPO, version=V1, api_url=url))
    assert f"{url}/repos/{REPO}/releases/tags/{V1}" in err.value.message
    assert "cliproxy.release.api_url" in err.value.hint and "cliproxy.binary" in err.value.hint


def test_api_url_from_environment(gh, rpaths, tmp_path, monkeypatch):
    publish(gh, tmp_path)
    monkeypatch.setenv("GITHUB_API_URL", gh.api_url + "/")
    result = release.fetch(rpaths, ReleaseSettings(repo=REPO, version=V1))
    assert result.action == "installed"
    assert release.read_manifest(rpaths)["api_url"] == gh.api_url


def test_timeout_is_a_flowgate_error(gh, rpaths):
    import httpx

    gh.stall = True
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh), client_factory=lambda: httpx.Client(timeout=0.3))
    assert "timed out" in err.value.message and gh.api_url in err.value.message


def test_truncated_download_leaves_previous_binary(gh, rpaths, tmp_path):
    before = install_v1(gh, rpaths, tmp_path)
    archive = publish(gh, tmp_path, V2, truncate=[asset_name(V2, HOST_OS, HOST_ARCH)])
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V2))
    assert archive.name in err.value.message
    assert "truncated" in err.value.message or "cut off" in err.value.message
    assert_untouched(rpaths, before)


def test_disk_full_is_reported_and_cleaned_up(gh, rpaths, tmp_path, monkeypatch):
    before = install_v1(gh, rpaths, tmp_path)
    publish(gh, tmp_path, V2)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V2))
    monkeypatch.undo()
    assert "disk full" in err.value.message
    assert_untouched(rpaths, before)


# ------------------------------------------------------------------------------------------------
# replacing a running binary


@pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/bin/sleep").is_file(),
                    reason="needs Linux and an ELF /bin/sleep")
def test_replace_running_binary(gh, rpaths, tmp_path):
    elf = Path(os.path.realpath("/bin/sleep")).read_bytes()
    publish(gh, tmp_path, V1, binary=elf)
    release.fetch(rpaths, settings(gh, V1))
    target = rpaths.bin_dir / EXE
    proc = subprocess.Popen([str(target), "300"])
    try:
        # writing the running ELF in place is what failed before ("Text file busy")
        with pytest.raises(OSError) as busy:
            open(target, "r+b").close()
        assert busy.value.errno == errno.ETXTBSY

        publish(gh, tmp_path, V2)
        result = release.fetch(rpaths, settings(gh, V2))
        assert result.action == "installed" and target.read_bytes() == script(V2)
        assert proc.poll() is None  # the old process still runs from its (now unlinked) inode
    finally:
        proc.kill()
        proc.wait(10)


def test_an_archive_larger_than_the_cap_is_refused_and_leaves_nothing(gh, rpaths, tmp_path, monkeypatch):
    before = install_v1(gh, rpaths, tmp_path)
    publish(gh, tmp_path, V2)
    monkeypatch.setattr("tasks.release.install.MAX_ARCHIVE_BYTES", 64)  # an endless archive, in small
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V2))
    assert "larger than 64 bytes" in err.value.message and "nothing installed" in err.value.message
    assert_untouched(rpaths, before)
    assert bin_dir_leftovers(rpaths) == []


def test_a_partial_download_left_by_a_killed_fetch_is_removed_by_the_next(gh, rpaths, tmp_path):
    install_v1(gh, rpaths, tmp_path)
    partial = rpaths.bin_dir / f".{asset_name(V2, HOST_OS, HOST_ARCH)}.k1ll3d.tmp"
    partial.write_bytes(b"\0" * 4096)
    publish(gh, tmp_path, V2)
    release.fetch(rpaths, settings(gh, V2))
    assert not partial.exists() and bin_dir_leftovers(rpaths) == []

"""`doit fetch` core (tasks/release.py) against a fake GitHub Releases server over 127.0.0.1."""

from __future__ import annotations

import errno
import io
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
from tasks.errors import FlowgateError
from tasks.paths import Paths
from tasks.release import ReleaseSettings
from tests.fakes.archives import (
    Dir,
    File,
    Hardlink,
    Special,
    Symlink,
    asset_name,
    binary_name,
    build_archive,
    release_files,
)
from tests.fakes.github import FakeGitHub, sha256_hex

ROOT = Path(__file__).resolve().parents[2]
REPO = "router-for-me/CLIProxyAPIPlus"
FORK = "kaitranntt/CLIProxyAPIPlus"
V1, V2 = "v6.8.16-0", "v6.9.8-0"
HOST_OS, HOST_ARCH = release.host_platform()
EXE = binary_name(HOST_OS)  # these tests publish Plus-line releases unless they say otherwise


def script(version: str) -> bytes:
    return f"#!/bin/sh\necho 'CLIProxyAPI Version: {version}-plus'\n".encode()


@pytest.fixture
def rpaths(tmp_path) -> Paths:
    return Paths(root=ROOT, home=tmp_path / "home")


@pytest.fixture
def gh():
    with FakeGitHub() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("GITHUB_TOKEN", "GITHUB_API_URL", "CI"):
        monkeypatch.delenv(var, raising=False)


def publish(gh, tmp_path, tag=V1, repo=REPO, binary=None, files=None, arch=HOST_ARCH, **kw):
    files = files if files is not None else release_files(binary if binary is not None else script(tag), HOST_OS)
    archive = build_archive(tmp_path / "dist" / tag, tag, files, HOST_OS, arch)
    gh.add_release(repo, tag, [archive], **kw)
    return archive


def settings(gh, version=V1, repo=REPO, **kw) -> ReleaseSettings:
    return ReleaseSettings(repo=repo, version=version, api_url=gh.api_url, **kw)


def bin_dir_leftovers(paths: Paths) -> list[str]:
    if not paths.bin_dir.exists():
        return []
    return sorted(p.name for p in paths.bin_dir.iterdir() if p.name not in (EXE, "manifest.json"))


def error_text(exc: FlowgateError) -> str:
    return exc.render()


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
    # replaced by something else: not current, and fetch reinstalls it
    target.write_bytes(b"#!/bin/sh\necho tampered\n")
    assert not release.is_current(rpaths, s)
    assert release.fetch(rpaths, s).action == "installed"
    assert target.read_bytes() == script(V1)
    # deleted
    target.unlink()
    assert not release.is_current(rpaths, s)


def test_is_current_does_not_import_httpx(gh, rpaths, tmp_path):
    publish(gh, tmp_path)
    release.fetch(rpaths, settings(gh))
    code = (
        "import sys; from pathlib import Path; from tasks import release; from tasks.paths import Paths;"
        f"p = Paths(root=Path({str(ROOT)!r}), home=Path({str(rpaths.home)!r}));"
        f"s = release.ReleaseSettings(repo={REPO!r}, version={V1!r}, api_url='http://127.0.0.1:9');"
        "assert release.is_current(p, s); assert 'httpx' not in sys.modules, 'httpx imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_x86_64_spelling_is_accepted(gh, rpaths, tmp_path):
    alias = {"amd64": "x86_64", "arm64": "aarch64"}.get(HOST_ARCH, HOST_ARCH)
    publish(gh, tmp_path, arch=alias)
    result = release.fetch(rpaths, settings(gh))
    assert result.asset == asset_name(V1, HOST_OS, alias)
    assert alias in result.asset


def test_parse_asset_understands_both_lines():
    plus = release.parse_asset("CLIProxyAPIPlus_6.8.16-0_linux_x86_64.tar.gz")
    assert (plus.line.name, plus.version, plus.os, plus.arch, plus.static) == ("plus", "6.8.16-0", "linux", "amd64", False)
    assert plus.binary == "cli-proxy-api-plus"
    main = release.parse_asset("CLIProxyAPI_7.2.140_linux_aarch64_no-plugin.tar.gz")
    assert (main.line.name, main.version, main.arch, main.static) == ("mainline", "7.2.140", "arm64", True)
    assert main.binary == "cli-proxy-api" and main.build == "static no-plugin build"
    assert release.parse_asset("CLIProxyAPI_7.2.140_windows_amd64.zip").binary == "cli-proxy-api.exe"
    for name in ("checksums.txt", "Other_1.0_linux_amd64.tar.gz", "CLIProxyAPI_7.2.140_linux_amd64.tar.gz.sig"):
        assert release.parse_asset(name) is None


def mainline_release(*names):
    return {"tag_name": "v7.2.140", "assets": [{"name": n, "browser_download_url": "http://x/" + n} for n in names]}


GLIBC = "CLIProxyAPI_7.2.140_linux_amd64.tar.gz"
STATIC = "CLIProxyAPI_7.2.140_linux_amd64_no-plugin.tar.gz"


@pytest.mark.parametrize("libc, expected", [
    (("glibc", (2, 36)), GLIBC),
    (("glibc", (2, 17)), GLIBC),
    (("glibc", (2, 12)), STATIC),  # older than the glibc build's baseline
    (("musl", None), STATIC),
])
def test_pick_asset_chooses_the_build_this_machine_runs(libc, expected):
    raw, info = release.pick_asset(mainline_release(STATIC, GLIBC), os="linux", arch="x86_64", libc=libc)
    assert raw["name"] == expected and info.static == (expected == STATIC)


def test_pick_asset_falls_back_to_static_but_never_to_glibc_on_musl():
    _, info = release.pick_asset(mainline_release(STATIC), os="linux", arch="amd64", libc=("glibc", (2, 36)))
    assert info.static
    with pytest.raises(FlowgateError) as err:
        release.pick_asset(mainline_release(GLIBC), os="linux", arch="amd64", libc=("musl", None))
    assert "static build" in err.value.message and GLIBC in error_text(err.value)


def test_pick_asset_matches_whole_names_not_substrings():
    def rel(*names):
        return {"tag_name": V1, "assets": [{"name": n, "browser_download_url": "http://x/" + n} for n in names]}

    good = "CLIProxyAPIPlus_6.8.16-0_linux_amd64.tar.gz"
    decoys = [good + ".sbom.json", "CLIProxyAPIPlus_6.8.16-0_linux_amd64v3.tar.gz",
              "CLIProxyAPIPlus_6.8.16-01_linux_amd64.tar.gz"]
    assert release.pick_asset(rel(*decoys, good), os="linux", arch="amd64")[0]["name"] == good
    with pytest.raises(FlowgateError):
        release.pick_asset(rel(*decoys), os="linux", arch="amd64")


def test_no_matching_asset_lists_what_exists(gh, rpaths, tmp_path):
    other = "arm64" if HOST_ARCH != "arm64" else "amd64"
    archive = build_archive(tmp_path / "dist", V1, release_files(script(V1)), "plan9", other)
    gh.add_release(REPO, V1, [archive])
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh))
    text = error_text(err.value)
    assert archive.name in text and "checksums.txt" in text
    assert f"{HOST_OS}/{HOST_ARCH}" in text
    assert not (rpaths.bin_dir / EXE).exists()


# ------------------------------------------------------------------------------------------------
# verification


def install_v1(gh, rpaths, tmp_path):
    publish(gh, tmp_path, V1)
    release.fetch(rpaths, settings(gh, V1))
    return (rpaths.bin_dir / EXE).read_bytes(), rpaths.manifest.read_bytes()


def assert_untouched(rpaths, before):
    binary, manifest = before
    assert (rpaths.bin_dir / EXE).read_bytes() == binary
    assert rpaths.manifest.read_bytes() == manifest
    assert bin_dir_leftovers(rpaths) == []


def test_digest_mismatch_refused(gh, rpaths, tmp_path):
    before = install_v1(gh, rpaths, tmp_path)
    publish(gh, tmp_path, V2, digest="corrupt", checksums=False)
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V2))
    assert "SHA-256" in err.value.message and "digest" in err.value.message
    assert_untouched(rpaths, before)


def test_checksums_txt_mismatch_refused(gh, rpaths, tmp_path):
    before = install_v1(gh, rpaths, tmp_path)
    publish(gh, tmp_path, V2, digest=False, checksums="corrupt")
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V2))
    assert "SHA-256" in err.value.message and "checksums.txt" in err.value.message
    assert_untouched(rpaths, before)


def test_checksums_txt_alone_is_enough(gh, rpaths, tmp_path):
    publish(gh, tmp_path, digest=False, checksums=True)
    result = release.fetch(rpaths, settings(gh))
    assert result.action == "installed" and result.verified_by == ("checksums.txt",)


def test_digest_and_checksums_disagreeing_is_refused(gh, rpaths, tmp_path):
    publish(gh, tmp_path, digest=True, checksums="corrupt")
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh))
    assert "disagree" in err.value.message
    assert not (rpaths.bin_dir / EXE).exists()


@pytest.mark.parametrize("checksums", [False, "incomplete"])
def test_no_checksum_refused_unless_allowed(gh, rpaths, tmp_path, checksums):
    publish(gh, tmp_path, digest=False, checksums=checksums)
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh))
    assert "unverified" in err.value.message
    assert "allow_unverified" in err.value.hint
    assert not (rpaths.bin_dir / EXE).exists()
    assert not any(r.server == "objects" and "CLIProxyAPIPlus" in r.path for r in gh.log)  # nothing downloaded

    result = release.fetch(rpaths, settings(gh, allow_unverified=True))
    assert result.action == "installed" and result.verified_by == ()
    assert (rpaths.bin_dir / EXE).read_bytes() == script(V1)
    assert release.read_manifest(rpaths)["verified_by"] == []


# ------------------------------------------------------------------------------------------------
# malicious archives


@pytest.mark.parametrize("files, why", [
    ({EXE: script(V1), "../evil": b"pwned"}, "`..`"),
    ({EXE: script(V1), "docs/../../evil": b"pwned"}, "`..`"),
    ({EXE: script(V1), "/tmp/flowgate-evil": b"pwned"}, "absolute"),
    ({EXE: Symlink("/bin/sh")}, "link"),
    ({EXE: script(V1), "LICENSE": Symlink("/etc/passwd")}, "link"),
    ({"real": File(script(V1), 0o755), EXE: Hardlink("real")}, "link"),
    ({EXE: script(V1), "pipe": Special("fifo")}, "special"),
    ({EXE: script(V1), "tty": Special("chr")}, "special"),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-binary", "symlink-other", "hardlink", "fifo", "chardev"])
def test_malicious_archive_installs_nothing(gh, rpaths, tmp_path, files, why):
    before = install_v1(gh, rpaths, tmp_path)
    publish(gh, tmp_path, V2, files=files)
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V2))
    assert "refusing" in err.value.message and why in err.value.message
    assert_untouched(rpaths, before)
    assert not (rpaths.bin_dir.parent / "evil").exists() and not Path("/tmp/flowgate-evil").exists()


def test_archive_without_binary_at_root(gh, rpaths, tmp_path):
    publish(gh, tmp_path, files={"sub": Dir(), f"sub/{EXE}": script(V1), "LICENSE": b"x"})
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh))
    assert "no cli-proxy-api-plus at its root" in err.value.message
    assert bin_dir_leftovers(rpaths) == []


def test_dot_slash_member_names_are_fine(gh, rpaths, tmp_path):
    publish(gh, tmp_path, files={".": Dir(), f"./{EXE}": File(script(V1), 0o755), "./LICENSE": b"x"})
    assert release.fetch(rpaths, settings(gh)).action == "installed"


def test_zip_extraction_windows_layout(tmp_path):
    good = build_archive(tmp_path / "a", V1, release_files(b"MZ-fake-exe", "windows"), "windows", "amd64")
    out = tmp_path / "out"
    out.mkdir()
    tmp, digest = release.extract_binary(good, out, good.name, "cli-proxy-api-plus.exe")
    assert tmp.read_bytes() == b"MZ-fake-exe" and digest == sha256_hex(b"MZ-fake-exe")
    for files in ({"cli-proxy-api-plus.exe": b"x", "../evil.exe": b"x"},
                  {"cli-proxy-api-plus.exe": Symlink("C:/Windows/notepad.exe")}):
        bad = build_archive(tmp_path / "b", V1, files, "windows", "amd64")
        with pytest.raises(FlowgateError, match="refusing"):
            release.extract_binary(bad, out, bad.name, "cli-proxy-api-plus.exe")
    assert sorted(p.name for p in out.iterdir()) == [tmp.name]


def test_corrupt_archive_with_allow_unverified(gh, rpaths, tmp_path):
    gh.add_release(REPO, V1, {asset_name(V1, HOST_OS, HOST_ARCH): b"\x1f\x8b not really gzip"},
                   digest=False, checksums=False)
    with pytest.raises(FlowgateError, match="not a valid archive"):
        release.fetch(rpaths, settings(gh, allow_unverified=True))
    assert bin_dir_leftovers(rpaths) == []


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


# ------------------------------------------------------------------------------------------------
# progress bar


def test_progress_bar_quiet_off_terminal_and_under_ci():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert release.progress_enabled(Tty(), environ={})
    assert not release.progress_enabled(Tty(), environ={"CI": "true"})
    assert not release.progress_enabled(io.StringIO(), environ={})


def test_progress_bar_renders_bytes_rate_eta():
    out = io.StringIO()
    now = [100.0]
    bar = release.ProgressBar("CLIProxyAPIPlus.tar.gz", out, clock=lambda: now[0], width=100)
    now[0] = 102.0
    bar(4 * 1024 * 1024, 8 * 1024 * 1024)
    line = out.getvalue()
    assert " 50%" in line and "4.0 MiB/8.0 MiB" in line and "2.0 MiB/s" in line and "ETA 0:02" in line
    bar.close()
    assert out.getvalue().endswith("\n")


def test_progress_callable_receives_bytes(gh, rpaths, tmp_path):
    archive = publish(gh, tmp_path)
    seen = []
    release.fetch(rpaths, settings(gh), progress=lambda done, total: seen.append((done, total)))
    size = archive.stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size)


# ------------------------------------------------------------------------------------------------
# the two lines


MAINLINE_REPO, MAINLINE_TAG = "router-for-me/CLIProxyAPI", "v7.2.140"


def publish_mainline(gh, tmp_path, tag=MAINLINE_TAG):
    body = f"#!/bin/sh\necho 'CLIProxyAPI Version: {tag[1:]}'\n".encode()
    archives = [build_archive(tmp_path / "dist" / tag, tag, release_files(body, HOST_OS, "mainline"), HOST_OS,
                              HOST_ARCH, line="mainline", static=static) for static in (False, True)]
    gh.add_release(MAINLINE_REPO, tag, archives)
    return body


def test_mainline_release_installs_cli_proxy_api_and_says_which_build(gh, rpaths, tmp_path):
    body = publish_mainline(gh, tmp_path)
    result = release.fetch(rpaths, settings(gh, MAINLINE_TAG, MAINLINE_REPO))
    assert result.action == "installed" and result.line == "mainline"
    assert result.build == ("glibc build" if HOST_OS == "linux" else "standard build")
    assert result.describe() == f"CLIProxyAPI 7.2.140 (mainline, {result.build})"
    assert (rpaths.bin_dir / "cli-proxy-api").read_bytes() == body
    manifest = release.read_manifest(rpaths)
    assert (manifest["line"], manifest["version"], manifest["binary"]) == ("mainline", "7.2.140", "cli-proxy-api")
    assert release.locate_binary(rpaths, settings(gh, MAINLINE_TAG, MAINLINE_REPO)).path == rpaths.bin_dir / "cli-proxy-api"
    assert release.installed_line(rpaths).name == "mainline"


def test_switching_lines_replaces_the_binary(gh, rpaths, tmp_path):
    publish(gh, tmp_path, repo=FORK)
    release.fetch(rpaths, settings(gh, repo=FORK))
    assert (rpaths.bin_dir / EXE).exists()
    publish_mainline(gh, tmp_path)
    release.fetch(rpaths, settings(gh, MAINLINE_TAG, MAINLINE_REPO))
    assert sorted(p.name for p in rpaths.bin_dir.iterdir()) == ["cli-proxy-api", "manifest.json"]
    back = release.fetch(rpaths, settings(gh, repo=FORK))
    assert back.action == "installed" and back.line == "plus"
    assert sorted(p.name for p in rpaths.bin_dir.iterdir()) == [EXE, "manifest.json"]

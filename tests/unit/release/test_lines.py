"""tasks.release.lines: the two lines (mainline / Plus) through fetch: which binary, which build, switching."""

from __future__ import annotations

from tasks import release
from tests.fakes.archives import build_archive, release_files
from tests.unit.release.support import EXE, FORK, HOST_ARCH, HOST_OS, publish, settings
from tests.unit.release.support import _clean_env, gh_fixture, rpaths_fixture  # noqa: F401  (fixtures: autouse, gh, rpaths)

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
    assert sorted(p.name for p in rpaths.bin_dir.iterdir()) == ["cli-proxy-api", "manifest.json", "releases"]
    # back to the fork: its binary was kept, so no request is made (offline works)
    gh.reset_counts()
    back = release.fetch(rpaths, settings(gh, repo=FORK))
    assert back.action == "restored" and back.line == "plus" and gh.total_requests == 0
    assert sorted(p.name for p in rpaths.bin_dir.iterdir()) == [EXE, "manifest.json", "releases"]
    assert len(list((rpaths.bin_dir / "releases").iterdir())) == 2  # both lines stay kept

"""Shared by the tests/unit/release/ files: the fake GitHub, a FlowGate home, publishing and installing.

The fixtures are imported by those files (`from tests.unit.release.support import gh_fixture, ...`); each
has a `name=` so that a test's `gh` / `rpaths` parameter does not shadow the imported function.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import release
from tasks.base.errors import FlowgateError
from tasks.base.paths import Paths
from tasks.release import ReleaseSettings
from tests.fakes.archives import binary_name, build_archive, release_files
from tests.fakes.github import FakeGitHub

ROOT = Path(__file__).resolve().parents[3]
REPO = "router-for-me/CLIProxyAPIPlus"
FORK = "kaitranntt/CLIProxyAPIPlus"
V1, V2 = "v6.8.16-0", "v6.9.8-0"
HOST_OS, HOST_ARCH = release.host_platform()
EXE = binary_name(HOST_OS)  # these tests publish Plus-line releases unless they say otherwise


def script(version: str) -> bytes:
    return f"#!/bin/sh\necho 'CLIProxyAPI Version: {version}-plus'\n".encode()


@pytest.fixture(name="rpaths")
def rpaths_fixture(tmp_path) -> Paths:
    return Paths(root=ROOT, home=tmp_path / "home")


@pytest.fixture(name="gh")
def gh_fixture():
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
    """Stray files of an install; the kept releases (tasks.release.store) are not strays: their
    files are checked to be whole releases, never temporary ones."""
    if not paths.bin_dir.exists():
        return []
    kept = paths.bin_dir / "releases"
    strays = [p.name for p in paths.bin_dir.iterdir() if p.name not in (EXE, "manifest.json", "releases")]
    if kept.is_dir():
        strays += [f"releases/{e.name}/{f.name}" for e in kept.iterdir() for f in e.iterdir()
                   if f.name != "release.json" and not f.name.startswith("cli-proxy-api")]
    return sorted(strays)


def error_text(exc: FlowgateError) -> str:
    return exc.render()


def install_v1(gh, rpaths, tmp_path):
    publish(gh, tmp_path, V1)
    release.fetch(rpaths, settings(gh, V1))
    return (rpaths.bin_dir / EXE).read_bytes(), rpaths.manifest.read_bytes()


def assert_untouched(rpaths, before):
    binary, manifest = before
    assert (rpaths.bin_dir / EXE).read_bytes() == binary
    assert rpaths.manifest.read_bytes() == manifest
    assert bin_dir_leftovers(rpaths) == []

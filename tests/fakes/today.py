"""Today's GitHub for CLIProxyAPI, as the reference sheet describes it, on a FakeGitHub.

- `router-for-me/CLIProxyAPIPlus` is gone: it is never published, so it answers 404.
- The mainline `router-for-me/CLIProxyAPI` publishes v7 releases: `CLIProxyAPI_<v>_<os>_<arch>` (glibc
  build) and `..._no-plugin` (static build) for linux amd64/aarch64, plus darwin; binary `cli-proxy-api`.
- A community fork, `kaitranntt/CLIProxyAPIPlus`, continues the Plus line: `CLIProxyAPIPlus_<v>_<os>_<arch>`,
  binary `cli-proxy-api-plus`.

Every archive holds the CLIProxyAPI test double under the line's executable name, so the double runs
as the edition the archive belongs to.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.fakes.archives import build_archive, release_files
from tests.fakes.github import FakeGitHub

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "tests" / "fakes" / "cliproxy_double.py"

DELETED_REPO = "router-for-me/CLIProxyAPIPlus"
MAINLINE_REPO = "router-for-me/CLIProxyAPI"
MAINLINE_TAGS = ("v7.2.100", "v7.2.140")  # the newest the reference sheet describes is v7.2.140
PLUS_FORK = "kaitranntt/CLIProxyAPIPlus"
PLUS_TAG = "v6.9.8-0"

_MAINLINE_BUILDS = [("linux", "amd64", False), ("linux", "amd64", True), ("linux", "arm64", False),
                    ("linux", "arm64", True), ("darwin", "amd64", False), ("darwin", "arm64", False)]
_PLUS_BUILDS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")]


def double_binary(release: str = "", quirk: str = "") -> bytes:
    """The double as an executable script for this interpreter; each release's build differs and reports
    its own version, as real ones do. `quirk` "no-listener": a broken build that never listens."""
    trailer = f"\n# build of {release}\n" + (f"# quirk: {quirk}\n" if quirk else "")
    return f"#!{sys.executable}\n".encode() + DOUBLE.read_bytes() + trailer.encode()


def publish_mainline(gh: FakeGitHub, dist: Path, tag: str, quirk: str = "", latest: bool = True) -> None:
    """One more mainline release (all of its builds): e.g. a newer tag for `doit upgrade`."""
    binary = double_binary(f"{MAINLINE_REPO} {tag}", quirk)
    archives = [build_archive(dist / tag, tag, release_files(binary, os, "mainline"), os, arch,
                              line="mainline", static=static) for os, arch, static in _MAINLINE_BUILDS]
    gh.add_release(MAINLINE_REPO, tag, archives, latest=latest)


def publish_today(gh: FakeGitHub, dist: Path) -> FakeGitHub:
    for tag in MAINLINE_TAGS:
        publish_mainline(gh, dist, tag)
    binary = double_binary(f"{PLUS_FORK} {PLUS_TAG}")
    archives = [build_archive(dist / PLUS_TAG, PLUS_TAG, release_files(binary, os, "plus"), os, arch, line="plus")
                for os, arch in _PLUS_BUILDS]
    gh.add_release(PLUS_FORK, PLUS_TAG, archives)
    return gh

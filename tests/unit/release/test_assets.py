"""tasks.release.assets: which release archive a machine runs (parse_asset, pick_asset), alone and through fetch."""

from __future__ import annotations

import pytest

from tasks import release
from tasks.base.errors import FlowgateError
from tests.fakes.archives import asset_name, build_archive, release_files
from tests.unit.release.support import EXE, HOST_ARCH, HOST_OS, REPO, V1, error_text, publish, script, settings
from tests.unit.release.support import _clean_env, gh_fixture, rpaths_fixture  # noqa: F401  (fixtures: autouse, gh, rpaths)


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

"""tasks.release.archive: safe extraction (malicious members, layout, zip, corrupt archives), alone and through fetch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import release
from tasks.base.errors import FlowgateError
from tests.fakes.archives import (
    Dir,
    File,
    Hardlink,
    Special,
    Symlink,
    asset_name,
    build_archive,
    release_files,
)
from tests.fakes.github import sha256_hex
from tests.unit.release.support import EXE, HOST_ARCH, HOST_OS, REPO, V1, V2
from tests.unit.release.support import assert_untouched, bin_dir_leftovers, install_v1, publish, script, settings
from tests.unit.release.support import _clean_env, gh_fixture, rpaths_fixture  # noqa: F401  (fixtures: autouse, gh, rpaths)


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


def test_an_archive_with_too_many_members_is_refused(gh, rpaths, tmp_path):
    before = install_v1(gh, rpaths, tmp_path)
    files = {EXE: script(V2), **{f"filler/{i}": b"" for i in range(1001)}}
    publish(gh, tmp_path, V2, files=files)
    with pytest.raises(FlowgateError) as err:
        release.fetch(rpaths, settings(gh, V2))
    assert "more than 1000 entries" in err.value.message
    assert_untouched(rpaths, before)

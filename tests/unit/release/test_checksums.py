"""tasks.release.checksums: the asset's `digest` and `checksums.txt` vouching for a download, through fetch."""

from __future__ import annotations

import pytest

from tasks import release
from tasks.base.errors import FlowgateError
from tests.unit.release.support import EXE, V1, V2, assert_untouched, install_v1, publish, script, settings
from tests.unit.release.support import _clean_env, gh_fixture, rpaths_fixture  # noqa: F401  (fixtures: autouse, gh, rpaths)


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

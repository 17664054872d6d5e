"""tasks.release.pypi: which versions count (final, not all yanked), lines, and the index URL."""

from __future__ import annotations

import pytest

from tasks.base.errors import FlowgateError
from tasks.release import pypi
from tests.fakes.pypi import FakePyPI


def test_final_versions_leave_out_prereleases_yanked_and_garbage():
    wheel, yanked = [{"yanked": False}], [{"yanked": True}]
    releases = {"1.108.7": wheel, "1.108.10": wheel, "1.108.9": yanked + wheel, "1.108.11": yanked,
                "1.108.12rc1": wheel, "1.109.0.dev1": wheel, "1.108.13": [], "1.67.0.post1": wheel,
                "1.108.14+local": wheel, "1.108.15": "files", "v1.108.16": wheel}
    assert pypi.final_versions(releases) == ["1.108.10", "1.108.9", "1.108.7", "1.67.0.post1"]
    assert pypi.final_versions(["1.0.0"]) == []


def test_lines_and_the_newest_patch_of_one():
    versions = ["1.108.10", "1.108.9", "1.110.2", "1.109.0"]
    assert pypi.line_of("1.108.7") == "1.108" and pypi.line_of("1.109.0rc1") == "1.109" and pypi.line_of("x") is None
    assert pypi.newest(versions, "1.108") == "1.108.10" and pypi.newest(versions) == "1.110.2"
    assert pypi.newest(versions, "2.0") is None
    assert pypi.version_key("1.109.0rc1") < pypi.final_key("1.109.0") and pypi.final_key("1.109.0rc1") is None


def test_the_index_url_is_pypi_unless_the_environment_names_another():
    assert pypi.index_url({}) == "https://pypi.org"
    assert pypi.index_url({"FLOWGATE_PYPI_URL": "http://mirror:8080/"}) == "http://mirror:8080"
    with pytest.raises(FlowgateError) as err:
        pypi.index_url({"FLOWGATE_PYPI_URL": "mirror"})
    assert "FLOWGATE_PYPI_URL" in err.value.message


def test_an_unknown_project_is_a_clear_error():
    with FakePyPI() as index, pytest.raises(FlowgateError) as err:
        pypi.fetch_versions(index.url, "litellm")
    assert err.value.message == f"the index has no project litellm (404 from {index.url}/pypi/litellm/json)"

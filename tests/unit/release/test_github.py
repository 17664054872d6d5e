"""tasks.release.github: the GitHub Releases client against the fake GitHub over 127.0.0.1."""

from __future__ import annotations

import io
import time

import pytest

from tasks.base.errors import FlowgateError
from tasks.release import github
from tests.fakes.github import FakeGitHub, sha256_hex


@pytest.fixture
def gh():
    with FakeGitHub() as server:
        yield server


def test_api_base_precedence_and_validation():
    assert github.api_base("https://ghe.example/api/v3/", {"GITHUB_API_URL": "http://other"}) == "https://ghe.example/api/v3"
    assert github.api_base(None, {"GITHUB_API_URL": "http://mirror:8080"}) == "http://mirror:8080"
    assert github.api_base(None, {}) == "https://api.github.com"
    with pytest.raises(FlowgateError) as err:
        github.api_base("ftp://nope", {})
    assert "cliproxy.release.api_url" in err.value.hint


def test_release_download_and_the_token_goes_to_the_api_origin_only(gh, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_token_for_the_api")
    gh.add_release("o/r", "v1", {"a.tar.gz": b"archive-bytes"})
    with github.GitHub(gh.api_url, "o/r") as client:
        release, etag = client.get_release("v1")
        [asset] = [a for a in release["assets"] if a["name"] == "a.tar.gz"]
        out = io.BytesIO()
        sha, size = client.download(asset["browser_download_url"], out)
    assert (sha, size, out.getvalue()) == (sha256_hex(b"archive-bytes"), 13, b"archive-bytes")
    assert etag and client.requests == 3  # the release, then the download: its 302 and the object store
    sent = {(r.server, r.path.split("?")[0]): r.headers.get("authorization") for r in gh.log}
    assert [v for (server, _), v in sent.items() if server == "api"][0] == "Bearer ghp_token_for_the_api"
    assert all(v is None for (server, _), v in sent.items() if server == "objects")


def test_rate_limit_names_the_reset_time_and_the_token_fix(gh, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    gh.rate_limit_reset = int(time.time()) + 600
    with github.GitHub(gh.api_url, "o/r") as client, pytest.raises(FlowgateError) as err:
        client.get_release(None)
    assert "rate limit exceeded (60 requests an hour)" in err.value.message and "resets at" in err.value.message
    assert "GITHUB_TOKEN" in err.value.hint


def test_a_wrong_token_is_named(gh, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong")
    gh.required_token = "ghp_right"
    with github.GitHub(gh.api_url, "o/r") as client, pytest.raises(FlowgateError) as err:
        client.get_release("v1")
    assert "GitHub rejected GITHUB_TOKEN (401" in err.value.message and "unset it" in err.value.hint


def test_the_deleted_plus_repository_points_at_the_mainline_and_a_fork(gh):
    with github.GitHub(gh.api_url, "router-for-me/CLIProxyAPIPlus") as client, pytest.raises(FlowgateError) as err:
        client.get_release("v6.8.16-0")
    assert "deleted on 2026-04-22" in err.value.hint
    assert "router-for-me/CLIProxyAPI)" in err.value.hint and "kaitranntt/CLIProxyAPIPlus" in err.value.hint


def test_text_assets_are_capped(gh):
    gh.add_release("o/r", "v1", {"big.txt": b"x" * 2048})
    with github.GitHub(gh.api_url, "o/r") as client:
        [asset] = [a for a in client.get_release("v1")[0]["assets"] if a["name"] == "big.txt"]
        with pytest.raises(FlowgateError) as err:
            client.get_text(asset["browser_download_url"], limit=1024)
    assert "larger than 1024 bytes" in err.value.message


def test_the_release_list_is_newest_first_one_page_with_the_fakes_paging(gh):
    for tag, day in (("v1.1", "04"), ("v1.4", None), ("v1.3", "02"), ("v1.2", "03")):  # published out of order
        gh.add_release("o/r", tag, {}, published_at=day and f"2026-04-{day}T00:00:00Z")  # None: 2026-03-01
    with github.GitHub(gh.api_url, "o/r") as client:
        listed = client.list_releases(2)
    assert [(r["tag_name"], r["published_at"]) for r in listed] == [("v1.1", "2026-04-04T00:00:00Z"),
                                                                   ("v1.2", "2026-04-03T00:00:00Z")]
    assert client.requests == 1 and gh.log[-1].path == "/repos/o/r/releases?per_page=2"
    import httpx

    page = httpx.get(f"{gh.api_url}/repos/o/r/releases?per_page=2&page=2")
    assert [r["tag_name"] for r in page.json()] == ["v1.3", "v1.4"] and "link" not in page.headers
    assert 'page=2>; rel="next"' in httpx.get(f"{gh.api_url}/repos/o/r/releases?per_page=2").headers["link"]
    assert httpx.get(f"{gh.api_url}/repos/o/r/releases?page=9").json() == []


def test_listing_a_missing_repository_names_it(gh):
    with github.GitHub(gh.api_url, "router-for-me/CLIProxyAPIPlus") as client, pytest.raises(FlowgateError) as err:
        client.list_releases()
    assert err.value.message.startswith("GitHub has no repository router-for-me/CLIProxyAPIPlus (404 from ")
    assert "deleted on 2026-04-22" in err.value.hint

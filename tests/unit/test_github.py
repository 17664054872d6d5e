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

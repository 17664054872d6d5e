"""`doit outdated` through the real command line, against today's GitHub imitation serving a newer tag
and a fake PyPI: no service is started, nothing but the config task runs before it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_home, run_doit
from tests.fakes import today
from tests.fakes.github import FakeGitHub
from tests.fakes.pypi import FakePyPI

NEWER, NEWER_DATE = "v7.2.150", "2026-05-02T09:30:00Z"


@pytest.fixture
def sources(tmp_path):
    with FakeGitHub() as gh, FakePyPI() as index:
        today.publish_today(gh, tmp_path / "dist")
        from tasks.services.litellm import litellm_version

        index.add("litellm", litellm_version())
        yield gh, index


def test_outdated_lists_a_newer_tag_and_then_answers_from_its_cache(tmp_path, sources):
    gh, index = sources
    home = make_home(tmp_path / "home")
    env = {"CI": "true", "GITHUB_API_URL": gh.api_url, "FLOWGATE_PYPI_URL": index.url}

    fresh = run_doit(home, "outdated", env=env)  # a fresh home: no .router/ yet
    assert fresh.returncode == 0, fresh.output
    pinned = today.MAINLINE_TAGS[-1]
    assert (f"CLIProxyAPI: not installed yet: `uv run doit fetch` (or `uv run doit up`) installs {pinned} "
            f"from {today.MAINLINE_REPO}") in fresh.stdout
    assert gh.total_requests == 0

    assert run_doit(home, "fetch", env=env).returncode == 0
    gh.add_release(today.MAINLINE_REPO, NEWER, {}, published_at=NEWER_DATE)
    gh.reset_counts()
    result = run_doit(home, "outdated", env=env)
    assert result.returncode == 0, result.output
    print(result.stdout)  # the done-when case, as a user sees it (-s)
    assert f"CLIProxyAPI: 1 newer release (checked just now):\n  {NEWER}  published 2026-05-02\n" in result.stdout
    assert f"config pins {pinned}" in result.stdout
    assert f"CLIProxyAPI: to move: `uv run doit upgrade` (to {NEWER})" in result.stdout
    assert "LiteLLM: " in result.stdout and "up to date with its line" in result.stdout
    assert gh.total_requests == 1 and "Traceback" not in result.output
    home_paths = home / ".router" / "run"
    assert not home_paths.exists() or not any(home_paths.iterdir())  # no service was started

    asked = index.total_requests
    cached = run_doit(home, "outdated", "--json", env=env)
    assert cached.returncode == 0, cached.output
    data = json.loads(cached.stdout)
    assert data["cliproxy"]["source"] == data["litellm"]["source"] == "cache"
    assert [r["tag"] for r in data["cliproxy"]["newer"]] == [NEWER] and data["cliproxy"]["outdated"] is True
    assert gh.total_requests == 1 and index.total_requests == asked  # the cache answered: no request

    assert run_doit(home, "outdated", "--refresh", env=env).returncode == 0
    assert gh.total_requests == 2 and index.total_requests == asked + 1

    gh.rate_limit_reset = 2_000_000_000
    limited = run_doit(home, "outdated", "--refresh", env=env)
    assert limited.returncode == 0, limited.output  # informational: a source that cannot answer is no failure
    assert "CLIProxyAPI: cannot check for newer releases: GitHub API rate limit exceeded" in limited.stdout
    assert "(cached)" in limited.stdout and f"  {NEWER}  published 2026-05-02" in limited.stdout


def test_outdated_refuses_a_bad_config_in_one_line(tmp_path, sources):
    gh, index = sources
    home = make_home(tmp_path / "home")
    (home / "config" / "local.yaml").write_text("cliproxy:\n  release:\n    repo: not a repository\n")
    result = run_doit(home, "outdated", env={"GITHUB_API_URL": gh.api_url, "FLOWGATE_PYPI_URL": index.url})
    assert result.returncode == 1 and "Traceback" not in result.output
    assert "cliproxy.release.repo 'not a repository' is not of the form owner/name" in result.stderr
    assert gh.total_requests == index.total_requests == 0

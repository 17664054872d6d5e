"""tasks.release.outdated: `doit outdated`'s check against the fake GitHub and the fake PyPI: newer
releases with their dates, up to date, the cache (fresh: no request; stale, another repository,
`refresh`: asks), offline and rate-limited sources, hostile and broken answers, the deadline."""

from __future__ import annotations

import json
import time

import pytest

from tasks.release import outdated, outdated_text, pypi
from tasks.release.installed import read_manifest
from tests.fakes.github import FakeGitHub
from tests.fakes.pypi import FakePyPI
from tests.unit.release.support import EXE, FORK, V1, V2, publish, settings
from tests.unit.release.support import _clean_env, gh_fixture, rpaths_fixture  # noqa: F401  (fixtures: autouse, gh, rpaths)

LITELLM = "1.108.7"
V2_DATE = "2026-05-02T09:30:00Z"
DAY = 86400.0


@pytest.fixture
def index():
    with FakePyPI() as server:
        for version in ("1.107.3", "1.108.5", LITELLM):
            server.add("litellm", version)
        yield server


@pytest.fixture
def installed(gh, rpaths, tmp_path):
    """V1 of the fork installed by a real fetch; the counts start from zero."""
    from tasks import release

    publish(gh, tmp_path, V1, repo=FORK)
    release.fetch(rpaths, settings(gh, V1, repo=FORK), progress=False)
    gh.reset_counts()
    return read_manifest(rpaths)


def check(rpaths, gh, index, version=V1, repo=FORK, litellm=LITELLM, **kw):
    if "environ" not in kw:
        kw["environ"] = {"FLOWGATE_PYPI_URL": index.url}
    return outdated.check(rpaths, settings(gh, version, repo=repo, **kw.pop("release", {})), litellm_installed=litellm,
                          **kw)


def text(report, **kw) -> str:
    return "\n".join(outdated_text.report_lines(report, **kw))


def tags(report) -> list[str]:
    return [r["tag"] for r in report["cliproxy"]["newer"]]


# -- what is newer -----------------------------------------------------------------------------------
def test_a_newer_release_is_listed_with_its_date_and_the_command_to_move(gh, index, rpaths, tmp_path, installed):
    publish(gh, tmp_path, V2, repo=FORK, published_at=V2_DATE)
    report = check(rpaths, gh, index)
    c = report["cliproxy"]
    assert c["state"] == "installed" and c["source"] == "network" and c["outdated"] is True
    assert c["newer"] == [{"tag": V2, "published_at": V2_DATE, "prerelease": False}] and c["newest"] == V2
    assert c["installed"]["tag"] == V1 and c["pinned"] == V1 and c["repo"] == FORK
    out = text(report)
    assert f"installed CLIProxyAPIPlus {installed['version']} (plus" in out and f"config pins {V1}" in out
    assert f"  {V2}  published 2026-05-02" in out
    assert f"CLIProxyAPI: to move: `uv run doit upgrade` (to {V2})\n" in out + "\n"
    assert gh.total_requests == 1 and index.total_requests == 1
    assert json.loads(json.dumps(report)) == report  # what --json prints


def test_a_release_rolled_back_here_is_named_and_never_recommended(gh, index, rpaths, tmp_path, installed):
    """Issue 31, item 23: right after v8.0.24 was rolled back, `outdated` still recommended it."""
    from tasks.release import refused

    publish(gh, tmp_path, V2, repo=FORK, published_at=V2_DATE)
    refused.remember(rpaths, FORK, V2, "the new CLIProxyAPI did not become ready")
    report = check(rpaths, gh, index)
    c = report["cliproxy"]
    assert c["outdated"] is False and c["newest"] == V1 and c["newer"][0]["rolled_back"]["reason"].startswith("the new")
    out = text(report)
    assert f"  {V2}  published 2026-05-02  (rolled back here " in out and "did not become ready" in out
    assert "to move:" not in out
    refused.forget(rpaths, FORK, V2)  # a later upgrade to it that worked
    assert check(rpaths, gh, index)["cliproxy"]["outdated"] is True


def test_up_to_date_says_so(gh, index, rpaths, installed):
    report = check(rpaths, gh, index)
    assert report["cliproxy"]["newer"] == [] and report["cliproxy"]["outdated"] is False
    assert report["cliproxy"]["newest"] == V1
    assert f"CLIProxyAPI: up to date: no release of {FORK} is newer than {V1} (checked just now)" in text(report)


def test_drafts_are_left_out_and_prereleases_marked_without_making_it_outdated(gh, index, rpaths, tmp_path, installed):
    gh.add_release(FORK, "v6.9.9-0", {}, published_at="2026-05-04T00:00:00Z", draft=True)
    gh.add_release(FORK, "v7.0.0-rc1", {}, published_at="2026-05-03T00:00:00Z", prerelease=True)
    report = check(rpaths, gh, index)
    assert tags(report) == ["v7.0.0-rc1"] and report["cliproxy"]["newer"][0]["prerelease"] is True
    assert report["cliproxy"]["outdated"] is False and report["cliproxy"]["newest"] == V1
    out = text(report)
    assert "  v7.0.0-rc1  published 2026-05-03  (pre-release)" in out and "v6.9.9-0" not in out
    assert "to try a pre-release: `uv run doit upgrade --to v7.0.0-rc1`" in out


def test_newer_releases_are_ordered_by_version_and_only_a_few_are_printed(gh, index, rpaths, installed):
    patches = [f"v6.8.{n}-0" for n in range(17, 17 + outdated.SHOWN + 2)]
    for n, tag in enumerate(reversed(patches)):  # published out of order: the version decides
        gh.add_release(FORK, tag, {}, published_at=f"2026-04-{10 + n:02d}T00:00:00Z")
    report = check(rpaths, gh, index)
    assert tags(report) == list(reversed(patches))
    out = text(report)
    assert f"{len(patches)} newer releases" in out and "… and 2 more (`--json` lists them)" in out
    assert f"to move: `uv run doit upgrade` (to {patches[-1]}), or `uv run doit upgrade --to TAG` with another" in out
    assert sum(line.startswith("  v6.8.") for line in out.splitlines()) == outdated.SHOWN


def test_the_pin_and_a_pin_not_yet_installed_are_named(gh, index, rpaths, tmp_path, installed):
    publish(gh, tmp_path, V2, repo=FORK, published_at=V2_DATE)
    assert "config pins latest (`doit up` moves" in text(check(rpaths, gh, index, version="latest"))
    pinned = text(check(rpaths, gh, index, version=V2))
    assert f"the config pins {V2}, not the installed {V1}: `uv run doit fetch` installs the pin" in pinned


# -- LiteLLM -----------------------------------------------------------------------------------------
def test_litellm_newest_patch_of_its_line_ignores_prereleases_and_yanked(gh, index, rpaths, installed):
    index.add("litellm", "1.108.9")
    index.add("litellm", "1.108.10", yanked=True)
    index.add("litellm", "1.108.11rc1")
    index.add("litellm", "1.108.12", files=0)
    index.add("litellm", "1.109.0.dev3")
    report = check(rpaths, gh, index)
    lite = report["litellm"]
    assert (lite["line"], lite["newest_patch"], lite["newest"]) == ("1.108", "1.108.9", "1.108.9")
    assert lite["outdated"] is True and lite["newer_line"] is False
    out = text(report)
    assert "LiteLLM: a newer patch of 1.108: 1.108.9" in out and "`litellm[proxy]==1.108.9`" in out
    assert "newest release overall" not in out


def test_litellm_a_newer_line_is_mentioned_once(gh, index, rpaths, installed):
    index.add("litellm", "1.110.2")
    report = check(rpaths, gh, index)
    assert report["litellm"]["outdated"] is False and report["litellm"]["newer_line"] is True
    out = text(report)
    assert "LiteLLM: up to date with its line 1.108" in out
    assert [line for line in out.splitlines() if "1.110.2" in line] == [
        "LiteLLM: newest release overall: 1.110.2 (a newer line; informational)"]


# -- the cache ---------------------------------------------------------------------------------------
def test_a_fresh_cache_makes_no_request(gh, index, rpaths, tmp_path, installed):
    first = check(rpaths, gh, index)
    publish(gh, tmp_path, V2, repo=FORK, published_at=V2_DATE)  # out now, but the last check is younger than 24 h
    gh.reset_counts()
    asked = index.total_requests
    again = check(rpaths, gh, index, now=time.time() + 23 * 3600)
    assert gh.total_requests == 0 and index.total_requests == asked
    assert again["cliproxy"]["source"] == again["litellm"]["source"] == "cache"
    assert again["cliproxy"]["newer"] == first["cliproxy"]["newer"] == []
    assert "checked 23 h ago, cached; `--refresh` asks now" in text(again, now=time.time() + 23 * 3600)
    assert json.loads(rpaths.outdated_cache.read_text())["github"]["repo"] == FORK


def test_a_stale_cache_or_refresh_asks_again(gh, index, rpaths, tmp_path, installed):
    check(rpaths, gh, index)
    publish(gh, tmp_path, V2, repo=FORK, published_at=V2_DATE)
    gh.reset_counts()
    stale = check(rpaths, gh, index, now=time.time() + 25 * 3600)
    assert gh.total_requests == 1 and stale["cliproxy"]["source"] == "network" and tags(stale) == [V2]
    refreshed = check(rpaths, gh, index, refresh=True)
    assert gh.total_requests == 2 and refreshed["litellm"]["source"] == "network"
    every_time = check(rpaths, gh, index, release={"check_interval_hours": 0})
    assert gh.total_requests == 3 and every_time["cliproxy"]["source"] == "network"


def test_another_repository_or_index_asks_again(gh, index, rpaths, installed):
    check(rpaths, gh, index)
    gh.add_release("someone/CLIProxyAPIPlus", "v6.9.0-0", {}, published_at=V2_DATE)
    gh.reset_counts()
    other = check(rpaths, gh, index, repo="someone/CLIProxyAPIPlus")
    assert gh.total_requests == 1 and tags(other) == ["v6.9.0-0"]
    assert "the config names someone/CLIProxyAPIPlus now: `uv run doit fetch` installs" in text(other)
    with FakePyPI() as mirror:
        mirror.add("litellm", "1.108.8")
        moved = check(rpaths, gh, index, repo="someone/CLIProxyAPIPlus", environ={"FLOWGATE_PYPI_URL": mirror.url})
        assert mirror.total_requests == 1 and moved["litellm"]["newest_patch"] == "1.108.8"
    assert gh.total_requests == 1  # the repository's answer was still fresh


@pytest.mark.parametrize("content", [b"not json", b'{"schema": 1, "github": []}', b"[" * 100_000, None])
def test_a_damaged_cache_is_asked_again(gh, index, rpaths, installed, content):
    rpaths.outdated_cache.parent.mkdir(parents=True, exist_ok=True)
    if content is None:  # larger than a cache can be: never read whole
        with open(rpaths.outdated_cache, "wb") as fh:
            fh.truncate(outdated.CACHE_LIMIT + 1)
    else:
        rpaths.outdated_cache.write_bytes(content)
    report = check(rpaths, gh, index)
    assert gh.total_requests == 1 and report["cliproxy"]["source"] == "network"


# -- when the sources cannot be asked ----------------------------------------------------------------
def test_offline_says_so_in_one_line_and_shows_what_was_kept(rpaths, index, tmp_path):
    from tasks import release

    with FakeGitHub() as server:
        publish(server, tmp_path, V1, repo=FORK)
        publish(server, tmp_path, V2, repo=FORK, published_at=V2_DATE, latest=False)
        release.fetch(rpaths, settings(server, V1, repo=FORK), progress=False)
        check(rpaths, server, index)
    # the API's port is closed now: connection refused
    later = time.time() + 2 * DAY
    report = check(rpaths, server, index, now=later)
    c = report["cliproxy"]
    assert c["source"] == "offline" and "cannot connect to" in c["error"] and c["newer"][0]["tag"] == V2
    out = text(report, now=later)
    [line] = [line for line in out.splitlines() if "cannot check" in line]
    assert line.startswith("CLIProxyAPI: cannot check for newer releases: cannot connect to ")
    assert line.endswith("(2 days ago) (cached)") and "last checked 20" in line
    assert f"  {V2}  published 2026-05-02" in out and "(as of the last check)" in out
    assert report["litellm"]["source"] == "network"  # the index still answers


def test_offline_with_nothing_kept_and_pypi_unreachable(gh, rpaths, installed):
    with FakePyPI() as gone:
        url = gone.url
    report = check(rpaths, gh, None, environ={"FLOWGATE_PYPI_URL": url})
    assert report["litellm"]["source"] == "offline" and report["litellm"]["newest_patch"] is None
    out = text(report)
    assert f"LiteLLM: cannot check for newer releases: cannot connect to {url}/pypi/litellm/json" in out
    assert out.endswith("no earlier answer is kept") and "FLOWGATE_PYPI_URL" in out
    assert not rpaths.outdated_cache.exists() or "pypi" not in json.loads(rpaths.outdated_cache.read_text())


def test_a_rate_limit_is_reported_not_raised(gh, index, rpaths, installed):
    gh.rate_limit_reset = int(time.time()) + 600
    report = check(rpaths, gh, index)
    assert report["cliproxy"]["source"] == "offline"
    assert "rate limit exceeded (60 requests an hour)" in report["cliproxy"]["error"]
    assert "GITHUB_TOKEN" in text(report)


def test_the_whole_check_has_a_deadline(gh, index, rpaths, installed):
    gh.stall = True
    index.stall = True
    started = time.monotonic()
    report = check(rpaths, gh, index, deadline=0.5)
    assert time.monotonic() - started < 5
    for section in ("cliproxy", "litellm"):
        assert report[section]["source"] == "offline" and "within 0.5 s" in report[section]["error"]


def test_a_missing_repository_is_named(gh, index, rpaths, installed):
    report = check(rpaths, gh, index, repo="nobody/nothing")
    assert "GitHub has no repository nobody/nothing (404" in report["cliproxy"]["error"]


# -- hostile and broken answers ----------------------------------------------------------------------
def test_hostile_tags_are_refused_and_peer_text_escaped(gh, index, rpaths, installed):
    for n, tag in enumerate(["v9.9.9\x1b[2J", "v9.9.9 ; rm -rf ~", "v" + "9" * 200, "../../v9"]):
        gh.add_release(FORK, tag, {}, published_at=f"2026-05-0{n + 1}T00:00:00Z")
    gh.add_release(FORK, "v9.9.9", {}, published_at="not a date \x1b[31m")
    index.status, index.message = 500, "\x1b]0;pwned\x07 the index is down"
    report = check(rpaths, gh, index)
    assert tags(report) == ["v9.9.9"] and report["cliproxy"]["newer"][0]["published_at"] is None
    assert report["cliproxy"]["refused"] == 4
    out = text(report)
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned\\x07 the index is down" in out
    assert "rm -rf" not in out and "../../" not in out and "9" * 200 not in out
    assert "4 release(s) in the answer had no usable tag and were left out" in out
    assert "  v9.9.9  no publication date" in out


@pytest.mark.parametrize("answer, error", [
    (b"not json", "did not answer with JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "did not answer with JSON"),  # nested too deeply to parse
    (b'{"message": "a mapping"}', "did not answer with a list of releases"),
    (b"[" + b" " * 4096 + b"]", "answered more than 1 KiB: refused"),
])
def test_garbage_and_huge_release_lists_are_refused(gh, index, rpaths, installed, monkeypatch, answer, error):
    from tasks.release import github

    if len(answer) < 10_000:
        monkeypatch.setattr(github, "MAX_RELEASE_LIST", 1024)
    gh.releases_answer = answer
    report = check(rpaths, gh, index)
    assert report["cliproxy"]["source"] == "offline" and error in report["cliproxy"]["error"]
    assert report["cliproxy"]["newer"] == [] and report["litellm"]["source"] == "network"


def test_garbage_entries_in_a_list_are_skipped(gh, index, rpaths, installed):
    gh.releases_answer = json.dumps([1, "v9", None, {"tag_name": 5}, {"tag_name": "v9.0.0-0", "prerelease": "yes"},
                                     {"tag_name": "v9.1.0-0", "published_at": 12},
                                     {"tag_name": "v9.2.0-0", "published_at": "0001-01-01T00:00:00+01:00"}]).encode()
    report = check(rpaths, gh, index)
    assert tags(report) == ["v9.2.0-0", "v9.1.0-0", "v9.0.0-0"] and report["cliproxy"]["refused"] == 4
    assert [(r["prerelease"], r["published_at"]) for r in report["cliproxy"]["newer"]] == [(False, None)] * 3


@pytest.mark.parametrize("answer, error", [
    (b"<html>maintenance</html>", "did not answer with JSON"),
    (b'{"info": {}}', "no `releases` mapping"),
    (b"{" + b" " * 4096 + b"}", "answered more than 1 KiB: refused"),
])
def test_garbage_and_huge_pypi_answers_are_refused(gh, index, rpaths, installed, monkeypatch, answer, error):
    monkeypatch.setattr(pypi, "MAX_ANSWER", 1024)
    index.answer = answer
    report = check(rpaths, gh, index)
    assert report["litellm"]["source"] == "offline" and error in report["litellm"]["error"]


def test_garbage_versions_on_pypi_are_ignored(gh, index, rpaths, installed):
    index.answer = json.dumps({"releases": {"1.108.9": "files?", "1.108.8\x1b[2J": [{}], "../1.108.99": [{}],
                                            "1.108.8": [{"yanked": "no"}], "9" * 50: [{}]}}).encode()
    report = check(rpaths, gh, index)
    assert report["litellm"]["newest_patch"] == "1.108.8" and report["litellm"]["newest"] == "1.108.8"


# -- nothing to compare ------------------------------------------------------------------------------
def test_not_installed_user_binary_and_disabled_say_so_without_asking_github(gh, index, rpaths, tmp_path):
    report = check(rpaths, gh, index)
    assert report["cliproxy"]["state"] == "not-installed"
    assert f"CLIProxyAPI: not installed yet: `uv run doit fetch` (or `uv run doit up`) installs {V1} from {FORK}" \
        in text(report)
    mine = tmp_path / "cli-proxy-api"
    mine.write_text("#!/bin/sh\n")
    mine.chmod(0o755)
    user = check(rpaths, gh, index, release={"binary": str(mine)})
    assert user["cliproxy"]["state"] == "user-binary" and f"you run your own binary ({mine}" in text(user)
    off = outdated.check(rpaths, settings(gh, V1, repo=FORK), enabled=False, litellm_installed=LITELLM,
                         environ={"FLOWGATE_PYPI_URL": index.url})
    assert "CLIProxyAPI: disabled in the config (cliproxy.enabled: false): nothing to check" in text(off)
    assert gh.total_requests == 0
    assert "LiteLLM: not installed in this environment" in text(check(rpaths, gh, index, litellm=None))


def test_a_manifest_whose_binary_is_gone_counts_as_not_installed(gh, index, rpaths, installed):
    (rpaths.bin_dir / EXE).unlink()
    assert check(rpaths, gh, index)["cliproxy"]["state"] == "not-installed" and gh.total_requests == 0


@pytest.mark.parametrize("release, env, key", [
    ({"version": "v1 with spaces"}, {}, "cliproxy.release.version"),
    ({"repo": "not a repo"}, {}, "cliproxy.release.repo"),
    ({"api_url": "ftp://mirror"}, {}, "cliproxy.release.api_url"),
    ({}, {"FLOWGATE_PYPI_URL": "pypi.example"}, "FLOWGATE_PYPI_URL"),
])
def test_bad_settings_are_an_error(gh, index, rpaths, installed, release, env, key):
    from tasks.base.errors import FlowgateError

    base = settings(gh, V1, repo=FORK)._replace(**release)
    with pytest.raises(FlowgateError) as err:
        outdated.check(rpaths, base, litellm_installed=LITELLM, environ={"FLOWGATE_PYPI_URL": index.url, **env})
    assert key in err.value.render()
    assert gh.total_requests == 0 and index.total_requests == 0


# -- how tags compare --------------------------------------------------------------------------------
def test_tags_compare_by_version():
    key = outdated.version_key
    assert key("v7.2.140") > key("v7.2.99") and key("v6.9.8-1") > key("v6.9.8-0")
    assert key("v7.3.0") > key("v7.3.0-rc1") > key("v7.2.140")
    assert key("nightly") is None and outdated.valid_tag("v7.2.140") and not outdated.valid_tag("v7\n")
    releases = [outdated.Release(t, None, False) for t in ("nightly-3", "nightly-2", "nightly-1")]
    assert [r.tag for r in outdated.newer_than(releases, "nightly-2")] == ["nightly-3"]

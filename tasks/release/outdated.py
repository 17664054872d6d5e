"""`doit outdated`: the installed CLIProxyAPI and LiteLLM against the newest releases of their sources.

CLIProxyAPI: the install manifest's release against the configured repository's releases on GitHub
(one page of the list: drafts left out, pre-releases marked), the pin in the config, and the command
that moves. LiteLLM: the installed version against the newest patch of its line (same major.minor)
on PyPI, and the newest release overall when a newer line exists.

What was learnt is kept in .router/state/outdated.json, keyed by the repository and the API URL
(the index URL for PyPI): younger than `cliproxy.release.check_interval_hours`, it is the answer and
no request is made (`refresh` asks anyway). The network part has one overall deadline; a source
that cannot be asked (offline, rate limit, a broken answer) is reported with what was kept, never
raised: only a bad config or setting is an error. Every string from a peer is checked (tags by
length and charset, dates parsed, versions matched) before it is used; the text for a terminal is
tasks.release.outdated_text's, which escapes every line.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import namedtuple
from datetime import datetime, timezone
from typing import Any, Callable

from ..base.errors import FlowgateError
from ..base.fsutil import atomic_write, load_json
from ..base.paths import Paths
from . import lines, pypi
from . import settings as settings_rules
from .installed import installed_binary, installed_line, parse_time, read_manifest
from .settings import ReleaseSettings

DEADLINE = 15.0  # seconds for the whole network part, both sources together
PER_PAGE = 30  # releases asked for: the newest page of the list
SHOWN = 5  # newer releases listed in the text (all of them in the JSON)
CACHE_SCHEMA = 1
CACHE_LIMIT = 1 << 20
PROJECT = "litellm"
UPGRADE = "uv run doit upgrade"

_VERSION = r"[vV]?(\d{1,9}(?:[.-]\d{1,9})*)(.*)"


class Release(namedtuple("Release", "tag published_at prerelease")):
    """One release of the list: its tag (checked), `published_at` as 2026-05-02T09:30:00Z (None
    when GitHub gave none usable), and whether GitHub marks it a pre-release."""

    __slots__ = ()

    def as_json(self) -> dict:
        return {"tag": self.tag, "published_at": self.published_at, "prerelease": self.prerelease}


def valid_tag(value: Any) -> str | None:
    """`value` when it is a tag FlowGate may print and pass on (tasks.release.settings), else None."""
    return value if settings_rules.valid_tag(value) else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_releases(data: Any) -> tuple[list[Release], int]:
    """The releases of GitHub's list (or of the cache, kept in the same shape) that may be used,
    drafts left out; and how many entries were refused (no usable tag, not an object)."""
    found, refused = [], 0
    for entry in data if isinstance(data, list) else ():
        if not isinstance(entry, dict):
            refused += 1
            continue
        if entry.get("draft") is True:
            continue
        tag = valid_tag(entry.get("tag_name"))
        if tag is None:
            refused += 1
            continue
        ts = parse_time(entry.get("published_at"))
        found.append(Release(tag, None if ts is None else _iso(ts), entry.get("prerelease") is True))
    return found, refused


def version_key(tag: str) -> tuple | None:
    """How tags compare: v7.2.140 < v7.2.150, v6.9.8-0 < v6.9.8-1, v7.3.0-rc1 < v7.3.0; None when
    the tag has no leading version number."""
    m = re.fullmatch(_VERSION, tag)
    if not m:
        return None
    numbers = tuple(int(n) for n in re.split(r"[.-]", m[1]))
    return numbers, 0 if m[2] else 1, m[2]


def newer_than(releases: list[Release], installed: str) -> list[Release]:
    """The releases newer than the `installed` tag, newest first: by version number, else (a tag
    without one) by their place in GitHub's newest-first list."""
    mine = version_key(installed)
    place = next((i for i, r in enumerate(releases) if r.tag == installed), None)
    newer = []
    for i, release in enumerate(releases):
        theirs = version_key(release.tag)
        if mine is not None and theirs is not None:
            if theirs > mine:
                newer.append(release)
        elif place is not None and i < place:
            newer.append(release)
    return sorted(newer, key=_order, reverse=True)


def _order(release: Release) -> tuple:
    key = version_key(release.tag)
    return key is not None, key or ((), 0, ""), release.published_at or ""


def newest_release(releases: list[Release]) -> Release | None:
    """The newest release that is not a pre-release."""
    final = [r for r in releases if not r.prerelease]
    return max(final, key=_order) if final else None


# -- the cache -------------------------------------------------------------------------------------
def read_cache(paths: Paths) -> dict:
    try:
        data = load_json(paths.outdated_cache, CACHE_LIMIT)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("schema") == CACHE_SCHEMA else {}


def _kept(cache: dict, section: str, **key: str) -> tuple[Any, float] | None:
    """A cache section's data and when it was asked, when it was asked of the same source."""
    entry = cache.get(section)
    if not isinstance(entry, dict) or any(str(entry.get(k, "")).lower() != v.lower() for k, v in key.items()):
        return None
    checked = parse_time(entry.get("checked_at"))
    return (entry.get("data"), checked) if checked is not None else None


def _fresh(kept: tuple[Any, float] | None, interval_hours: float, now: float) -> bool:
    return kept is not None and 0 <= now - kept[1] < max(0.0, float(interval_hours)) * 3600


def write_cache(paths: Paths, cache: dict) -> None:
    atomic_write(paths.outdated_cache, json.dumps({**cache, "schema": CACHE_SCHEMA}, indent=1, sort_keys=True) + "\n")


# -- asking, within one deadline -------------------------------------------------------------------
def _ask_all(jobs: dict[str, tuple[str, Callable[[], Any]]], deadline) -> dict[str, tuple[bool, Any]]:
    """Run each job (name: (its URL, the call)) in a thread of its own; (True, answer) or (False,
    FlowgateError) per job. A job still asking when the deadline passes is left behind (a daemon
    thread: a DNS lookup obeys no timeout) and reported as late."""
    results: dict[str, tuple[bool, Any]] = {}

    def run(name: str, job: Callable[[], Any]) -> None:
        try:
            results[name] = (True, job())
        except FlowgateError as exc:
            results[name] = (False, exc)
        except Exception as exc:  # a bug: raised again in the caller's thread, with its traceback
            results[name] = (None, exc)  # type: ignore[assignment]

    threads = {name: threading.Thread(target=run, args=(name, job), daemon=True, name=f"outdated-{name}")
               for name, (_, job) in jobs.items()}
    for thread in threads.values():
        thread.start()
    for name, thread in threads.items():
        thread.join(max(0.0, deadline.left()) + 1.0)  # the requests end by the deadline themselves
        if name not in results:
            results[name] = (False, deadline.error(jobs[name][0]))
        elif results[name][0] is None:
            raise results[name][1]
    return results


def _ask_github(api: str, repo: str, client_factory, deadline) -> dict:
    from .github import GitHub

    with GitHub(api, repo, client_factory) as gh:
        data = gh.list_releases(PER_PAGE, deadline=deadline)
    releases, refused = parse_releases(data)
    return {"releases": [{"tag_name": r.tag, "published_at": r.published_at, "prerelease": r.prerelease}
                         for r in releases], "refused": refused}


def _ask_pypi(index: str, client_factory, deadline) -> dict:
    return {"versions": pypi.fetch_versions(index, PROJECT, deadline=deadline, client_factory=client_factory)}


# -- the check -------------------------------------------------------------------------------------
def check(paths: Paths, settings: ReleaseSettings, *, enabled: bool = True, litellm_installed: str | None,
          refresh: bool = False, environ: dict | None = None, now: float | None = None,
          deadline: float = DEADLINE, client_factory: Callable[[], Any] | None = None) -> dict:
    """What `doit outdated` reports, as the JSON `--json` prints. Asks GitHub and PyPI only what the
    cache cannot answer (everything with `refresh`); raises FlowgateError only for bad settings."""
    from .github import api_base
    from .webjson import Deadline

    now = time.time() if now is None else now
    manifest = read_manifest(paths)
    state = _state(paths, settings, enabled, manifest)
    api = None
    if state != "disabled":  # the settings `doit fetch` would use: wrong ones are a config error here too
        settings_rules.validate(settings)
        api = api_base(settings.api_url, environ)
    repo, index = settings.repo.strip(), pypi.index_url(environ)
    cache = read_cache(paths)
    kept = {"github": _kept(cache, "github", repo=repo, api_url=api or ""), "pypi": _kept(cache, "pypi", index=index)}
    limit, jobs = Deadline(deadline), {}
    if state == "installed" and (refresh or not _fresh(kept["github"], settings.check_interval_hours, now)):
        jobs["github"] = (f"{api}/repos/{repo}/releases", lambda: _ask_github(api, repo, client_factory, limit))
    if litellm_installed and (refresh or not _fresh(kept["pypi"], settings.check_interval_hours, now)):
        jobs["pypi"] = (f"{index}/pypi/{PROJECT}/json", lambda: _ask_pypi(index, client_factory, limit))
    answers = _ask_all(jobs, limit) if jobs else {}

    sections = {}
    for name, key in (("github", {"repo": repo, "api_url": api}), ("pypi", {"index": index})):
        asked = name in jobs
        ok, answer = answers.get(name, (False, None))
        if ok:
            cache[name] = {**key, "checked_at": _iso(now), "data": answer}
            kept[name] = (answer, now)
        source = "network" if ok else "offline" if asked else "cache" if kept[name] else None
        sections[name] = (kept[name], source, answer if asked and not ok else None)
    notes = []
    if any(ok for ok, _ in answers.values()):
        try:
            write_cache(paths, cache)
        except (FlowgateError, OSError) as exc:  # informational: the answer is shown all the same
            notes.append(f"the answers could not be kept for next time: {getattr(exc, 'message', exc)}")
    line = installed_line(paths, manifest) if state == "installed" else None
    from . import refused as rolled_back

    report = {"cliproxy": _cliproxy(settings, state, manifest, line, repo, api, *sections["github"],
                                    rolled_back=rolled_back.load(paths)),
              "litellm": _litellm(litellm_installed, index, *sections["pypi"])}
    if notes:
        report["notes"] = notes
    return report


def _state(paths: Paths, settings: ReleaseSettings, enabled: bool, manifest: dict | None) -> str:
    if not enabled:
        return "disabled"
    if settings.binary:
        return "user-binary"
    if not manifest or valid_tag(manifest.get("tag")) is None or not installed_binary(paths, manifest).is_file():
        return "not-installed"
    return "installed"


def _checked(kept) -> str | None:
    return _iso(kept[1]) if kept else None


def _cliproxy(settings: ReleaseSettings, state: str, manifest: dict | None, line: lines.Line | None, repo: str,
              api: str | None, kept, source: str | None, error: FlowgateError | None,
              rolled_back: dict | None = None) -> dict:
    out: dict[str, Any] = {"state": state, "repo": repo, "api_url": api, "pinned": settings.version.strip(),
                           "binary": settings.binary or None, "installed": None, "newest": None, "newer": [],
                           "outdated": False, "upgrade": None, "refused": 0, "checked_at": None,
                           "source": source if state == "installed" else None,
                           "error": error.one_line() if error else None}
    if state != "installed":
        return out
    out["installed"] = {"tag": manifest["tag"], "repo": str(manifest.get("repo") or ""),
                        "line": line.name if line else None, "title": (line or lines.MAINLINE).title,
                        "version": str(manifest.get("version") or ""), "build": str(manifest.get("build") or "")}
    if kept is None:
        return out
    data = kept[0] if isinstance(kept[0], dict) else {}
    releases, refused = parse_releases(data.get("releases"))
    newer = newer_than(releases, manifest["tag"])
    # a release rolled back here is named with why, never recommended again (`upgrade --to` still takes it)
    failed_here = {tag: why for (r, tag), why in (rolled_back or {}).items() if r == repo.lower()}
    usable = [r for r in releases if r.tag not in failed_here]
    newest = newest_release(usable)
    outdated = any(not r.prerelease and r.tag not in failed_here for r in newer)
    count = data.get("refused")
    listed = [{**r.as_json(), **({"rolled_back": failed_here[r.tag]} if r.tag in failed_here else {})} for r in newer]
    out.update(newest=newest.tag if newest else None, newer=listed, outdated=outdated,
               upgrade=UPGRADE if outdated else None, checked_at=_checked(kept),
               refused=refused + (count if isinstance(count, int) and not isinstance(count, bool) else 0))
    return out


def _litellm(installed: str | None, index: str, kept, source: str | None, error: FlowgateError | None) -> dict:
    line = pypi.line_of(installed) if installed else None
    out: dict[str, Any] = {"installed": installed, "line": line, "newest_patch": None, "newest": None,
                           "outdated": False, "newer_line": False, "index": index, "checked_at": _checked(kept),
                           "source": source, "error": error.one_line() if error else None}
    if kept is None or not installed:
        return out
    data = kept[0] if isinstance(kept[0], dict) else {}
    versions = data.get("versions") if isinstance(data.get("versions"), list) else []
    patch, overall = pypi.newest(versions, line), pypi.newest(versions)
    mine = pypi.version_key(installed)
    out.update(newest_patch=patch, newest=overall,
               outdated=bool(patch and mine and pypi.final_key(patch) > mine),
               newer_line=bool(overall and mine and pypi.line_of(overall) != line and pypi.final_key(overall) > mine))
    return out

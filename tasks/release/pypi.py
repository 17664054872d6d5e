"""A project's released versions from a PyPI index's JSON API (`GET {index}/pypi/{project}/json`),
for `doit outdated`: final releases only (no pre-, dev- or local versions), a version whose every
file is yanked left out.

The index is https://pypi.org unless FLOWGATE_PYPI_URL names another (a mirror, or a test's fake).
The answer is a peer's: read up to a size limit, within the caller's deadline, each version string
checked before it is used. httpx is imported inside functions only.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable
from urllib.parse import quote, urlsplit

from ..base.errors import FlowgateError
from . import webjson

DEFAULT_INDEX = "https://pypi.org"
INDEX_ENV = "FLOWGATE_PYPI_URL"
USER_AGENT = "flowgate-outdated/0.1 (+python-httpx)"
MAX_ANSWER = 32 << 20  # LiteLLM's answer lists every file of ~1,500 versions: a few MiB
HINT = f"check your network connection, or set {INDEX_ENV} to a reachable PyPI mirror"

_FINAL = r"(\d{1,6})\.(\d{1,6})(?:\.(\d{1,6}))?(?:\.post(\d{1,6}))?"  # 1.108.7, 1.67.0.post1
_LEADING = r"(\d{1,6})\.(\d{1,6})(?:\.(\d{1,6}))?"


def index_url(environ: dict | None = None) -> str:
    """The index's base URL: FLOWGATE_PYPI_URL, else https://pypi.org."""
    env = os.environ if environ is None else environ
    base = (env.get(INDEX_ENV) or DEFAULT_INDEX).strip()
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FlowgateError(f"{INDEX_ENV} {base!r} is not an http(s) URL",
                            f"set it to a PyPI index's base URL, e.g. {DEFAULT_INDEX}, or unset it")
    return base.rstrip("/")


def final_key(version: object) -> tuple | None:
    """(major, minor, patch, post) of a final release's version string; None for anything else."""
    if not isinstance(version, str):
        return None
    m = re.fullmatch(_FINAL, version)
    return tuple(int(g or 0) for g in m.groups()) if m else None


def version_key(version: str) -> tuple | None:
    """Like final_key, and a pre-release (1.109.0rc1) sorts just before its final release."""
    key = final_key(version)
    if key is not None:
        return key
    m = re.match(_LEADING, version)
    return (int(m[1]), int(m[2]), int(m[3] or 0), -1) if m else None


def line_of(version: str) -> str | None:
    """'1.108' for 1.108.7: the line whose patches change nothing else."""
    m = re.match(_LEADING, version)
    return f"{int(m[1])}.{int(m[2])}" if m else None


def final_versions(releases: Any) -> list[str]:
    """The `releases` mapping's final versions with at least one file not yanked, newest first."""
    if not isinstance(releases, dict):
        return []
    kept = []
    for version, files in releases.items():
        if final_key(version) is None or not isinstance(files, list):
            continue
        if any(isinstance(f, dict) and f.get("yanked") is not True for f in files):
            kept.append(version)
    return sorted(kept, key=final_key, reverse=True)


def newest(versions: list[str], line: str | None = None) -> str | None:
    """The newest of `versions` (final ones), or of those on `line`."""
    found = [v for v in versions if final_key(v) is not None and (line is None or line_of(v) == line)]
    return max(found, key=final_key) if found else None


def fetch_versions(index: str, project: str, *, deadline: webjson.Deadline | None = None,
                   client_factory: Callable[[], Any] | None = None) -> list[str]:
    """`project`'s final versions on `index`, newest first; FlowgateError when the index cannot say."""
    import httpx

    url = f"{index}/pypi/{quote(project, safe='')}/json"
    client = (client_factory or (lambda: webjson.make_client(USER_AGENT)))()
    try:
        with client, client.stream("GET", url, headers={"Accept": "application/json"}, follow_redirects=True,
                                   timeout=webjson.request_timeout(client, deadline, url, HINT)) as response:
            status = response.status_code
            if status != 200:
                try:
                    message = webjson.message_of(webjson.read_body(response, url, webjson.ERROR_BODY_LIMIT, deadline))
                except FlowgateError:
                    message = ""
                raise _status_error(status, message, url, project)
            body = webjson.read_body(response, url, MAX_ANSWER, deadline, HINT)
    except httpx.HTTPError as exc:
        raise webjson.transport_error(exc, url, client, HINT, deadline=deadline) from None
    data = webjson.parse(body, url, "PyPI's JSON API", HINT)
    if not isinstance(data, dict) or not isinstance(data.get("releases"), dict):
        raise FlowgateError(f"{url} did not answer like PyPI's JSON API (no `releases` mapping)",
                            f"{INDEX_ENV} must name a PyPI-compatible index, e.g. {DEFAULT_INDEX}")
    return final_versions(data["releases"])


def _status_error(status: int, message: str, url: str, project: str) -> FlowgateError:
    detail = f": {message}" if message else ""
    if status == 404:
        return FlowgateError(f"the index has no project {project} (404 from {url})",
                             f"{INDEX_ENV} must name a PyPI-compatible index, e.g. {DEFAULT_INDEX}")
    if status == 429:
        return FlowgateError(f"the index is rate limiting (429{detail}) {url}", "try again later")
    if status >= 500:
        return FlowgateError(f"the index answered HTTP {status}{detail} for {url}", "try again later; " + HINT)
    return FlowgateError(f"unexpected HTTP {status}{detail} for {url}", HINT)

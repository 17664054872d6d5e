"""A small GitHub Releases client for `doit fetch`: API calls, downloads, and error translation.

httpx is imported inside functions only: every doit command imports the `tasks` package, and the
warm path (`release.is_current`) must never pay for it. Every expected failure (offline, DNS,
refused, timeout, 401/403/404, rate limit, truncated body) becomes a FlowgateError naming the URL.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime
from typing import Any, BinaryIO, Callable
from urllib.parse import quote, urlsplit

from ..base.errors import FlowgateError
from . import webjson
from .lines import DELETED_PLUS_REPO, EXAMPLE_PLUS_FORK, MAINLINE_REPO

DEFAULT_API_URL = "https://api.github.com"
USER_AGENT = "flowgate-fetch/0.1 (+python-httpx)"
ACCEPT_JSON = "application/vnd.github+json"
API_VERSION = "2022-11-28"

CHUNK = 256 * 1024
MAX_TEXT_ASSET = 1024 * 1024  # checksums.txt is a few hundred bytes
MAX_RELEASE_LIST = 8 << 20  # a page of 30 releases with their assets: well under 1 MiB

OFFLINE_HINT = (
    "check your network connection; or set `cliproxy.release.api_url` to a reachable mirror, "
    "or `cliproxy.binary` to a CLIProxyAPI binary you installed yourself"
)

Progress = Callable[[int, "int | None"], None]


def api_base(explicit: str | None = None, environ: dict | None = None) -> str:
    """API base URL: explicit (config) > env GITHUB_API_URL > https://api.github.com."""
    env = os.environ if environ is None else environ
    base = (explicit or env.get("GITHUB_API_URL") or DEFAULT_API_URL).strip()
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FlowgateError(
            f"the GitHub API URL {base!r} is not an http(s) URL",
            "set `cliproxy.release.api_url` (or GITHUB_API_URL) to e.g. https://api.github.com",
        )
    return base.rstrip("/")


def github_token(environ: dict | None = None) -> str | None:
    env = os.environ if environ is None else environ
    token = (env.get("GITHUB_TOKEN") or "").strip()
    return token or None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def default_client_factory():
    return webjson.make_client(USER_AGENT)


def _reset_text(reset: str | None) -> str:
    """'at 14:05:09 CEST (in 12 min)' from an X-RateLimit-Reset epoch, in local time."""
    try:
        when = datetime.fromtimestamp(int(reset)).astimezone()  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return "later"
    minutes = max(0, round((when.timestamp() - time.time()) / 60))
    clock = when.strftime("%H:%M:%S %Z").strip()
    return f"at {clock} on {when:%Y-%m-%d} (local time, in {minutes} min)"


def _message_of(response) -> str:
    try:
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return data["message"]
    except Exception:
        pass
    return ""


class GitHub:
    """One session against a GitHub-compatible API. Counts every HTTP request (redirects too)."""

    def __init__(self, api_url: str, repo: str, client_factory: Callable[[], Any] | None = None):
        self.api_url = api_url.rstrip("/")
        self.repo = repo
        self.requests = 0
        self._factory = client_factory or default_client_factory
        self._client = None
        self._token = github_token()

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> "GitHub":
        client = self._factory()
        hooks = dict(client.event_hooks)
        hooks["request"] = list(hooks.get("request", [])) + [self._count]
        client.event_hooks = hooks
        self._client = client
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _count(self, request) -> None:
        self.requests += 1

    def _headers(self, url: str, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if accept == ACCEPT_JSON:
            headers["X-GitHub-Api-Version"] = API_VERSION
        # The token goes to the API's own origin only, never to a mirror's or object store's host.
        if self._token and _origin(url) == _origin(self.api_url):
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    # -- error translation ---------------------------------------------------------------------
    def _transport_error(self, exc: Exception, url: str, deadline: webjson.Deadline | None = None) -> FlowgateError:
        return webjson.transport_error(
            exc, url, self._client, OFFLINE_HINT,
            "the network or the server is slow or unreachable; try again, or set "
            "`cliproxy.release.api_url` to a mirror or `cliproxy.binary` to a binary you installed", deadline)

    def _status_error(self, response, url: str, *, tag: str | None, what: str,
                      message: str | None = None) -> FlowgateError:
        """`what`: "resolving" (a release), "listing" (the releases) or "downloading"; `message`: the
        error body's message when the caller read the body itself (a streamed answer)."""
        status = response.status_code
        msg = _message_of(response) if message is None else message
        detail = f": {msg}" if msg else ""
        headers = response.headers
        if status in (403, 429) and (headers.get("x-ratelimit-remaining") == "0" or status == 429
                                     or "rate limit" in msg.lower()):
            reset = headers.get("x-ratelimit-reset")
            if reset is None and headers.get("retry-after", "").isdigit():
                reset = str(int(time.time()) + int(headers["retry-after"]))
            limit = headers.get("x-ratelimit-limit")
            limit_txt = f" ({limit} requests an hour)" if limit else ""
            if self._token:
                hint = "wait until then, or use a GITHUB_TOKEN with quota left"
            else:
                hint = ("set GITHUB_TOKEN to a GitHub token (authenticated requests get 5000 an hour "
                        "instead of 60), or wait until then")
            return FlowgateError(
                f"GitHub API rate limit exceeded{limit_txt} for {url}; it resets {_reset_text(reset)}", hint
            )
        if status == 401:
            where = "GITHUB_TOKEN" if self._token else "the request"
            return FlowgateError(
                f"GitHub rejected {where} (401{detail or ' Bad credentials'}) for {url}",
                "fix GITHUB_TOKEN or unset it (public releases need no token)" if self._token
                else "this server wants a token: set GITHUB_TOKEN",
            )
        if status == 403:
            return FlowgateError(
                f"GitHub refused access (403{detail}) to {url}",
                "check that GITHUB_TOKEN may read this repository, or unset it",
            )
        if status == 404 and what in ("resolving", "listing"):
            release = f"release {tag}" if tag else "latest release"
            has = f"release {tag}" if tag else "a published (non-prerelease) release"
            found = f"GitHub has no {release} for repository {self.repo} (404 from {url}): the repository " \
                    "or the release does not exist there"
            if what == "listing":  # the list of a repository that exists is never a 404
                has, found = "releases", f"GitHub has no repository {self.repo} (404 from {url})"
            if self.repo.lower() == DELETED_PLUS_REPO.lower():
                hint = (
                    f"{DELETED_PLUS_REPO} was deleted on 2026-04-22: remove `cliproxy.release.repo` and "
                    f"`cliproxy.release.version` from config/local.yaml to use the mainline ({MAINLINE_REPO}), "
                    f"or point it at a Plus fork, e.g. `cliproxy.release.repo: {EXAMPLE_PLUS_FORK}` with one of "
                    "its tags (or at a mirror with `cliproxy.release.api_url`), or set `cliproxy.binary` to "
                    "a binary you installed"
                )
            else:
                hint = (
                    f"check that {self.repo} exists and has {has} (`cliproxy.release.repo` / "
                    f"`cliproxy.release.version`); the mainline is {MAINLINE_REPO}, Plus forks include "
                    f"{EXAMPLE_PLUS_FORK}"
                )
            if tag and not tag[:1] in ("v", "V") and tag[:1].isdigit():
                hint += f"; release tags usually start with v (v{tag})"
            return FlowgateError(found, hint)
        if status >= 500:
            return FlowgateError(
                f"the server answered HTTP {status}{detail} for {url}",
                "GitHub or the mirror has a problem; try again later",
            )
        if status == 404:
            return FlowgateError(
                f"{url} was not found (404)",
                "the release lists a file the server does not have; try again later, or use a mirror "
                "(`cliproxy.release.api_url`) or a binary you installed (`cliproxy.binary`)",
            )
        return FlowgateError(f"unexpected HTTP {status}{detail} for {url}", OFFLINE_HINT)

    # -- API -------------------------------------------------------------------------------------
    def release_url(self, tag: str | None) -> str:
        base = f"{self.api_url}/repos/{self.repo}/releases"
        return f"{base}/latest" if tag is None else f"{base}/tags/{quote(tag, safe='')}"

    def get_release(self, tag: str | None, etag: str | None = None) -> tuple[dict | None, str | None]:
        """The release JSON for `tag` (None = latest) and its ETag; (None, etag) on 304."""
        import httpx

        url = self.release_url(tag)
        headers = self._headers(url, ACCEPT_JSON)
        if etag:
            headers["If-None-Match"] = etag
        try:
            response = self._client.get(url, headers=headers, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url) from None
        if response.status_code == 304 and etag:
            return None, response.headers.get("etag") or etag
        if response.status_code != 200:
            raise self._status_error(response, url, tag=tag, what="resolving")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("tag_name"), str) \
                or not isinstance(data.get("assets"), list):
            raise FlowgateError(
                f"{url} did not answer with a GitHub release (JSON with tag_name and assets)",
                "check `cliproxy.release.api_url`: it must point at a GitHub-compatible API",
            )
        return data, response.headers.get("etag")

    def list_releases(self, per_page: int = 30, *, deadline: webjson.Deadline | None = None,
                      limit: int | None = None) -> list:
        """The repository's releases as GitHub lists them (newest first, drafts a token may see
        included): one page of `per_page` (at most 100), the raw JSON list. The answer is read up to
        `limit` bytes (MAX_RELEASE_LIST) and within `deadline`; the caller checks each entry."""
        import httpx

        limit = limit or MAX_RELEASE_LIST
        url = f"{self.api_url}/repos/{self.repo}/releases?per_page={max(1, min(100, per_page))}"
        hint = "check `cliproxy.release.api_url`: it must point at a GitHub-compatible API"
        try:
            with self._client.stream("GET", url, headers=self._headers(url, ACCEPT_JSON), follow_redirects=True,
                                     timeout=webjson.request_timeout(self._client, deadline, url, OFFLINE_HINT)) \
                    as response:
                if response.status_code != 200:
                    try:
                        message = webjson.message_of(webjson.read_body(response, url, webjson.ERROR_BODY_LIMIT,
                                                                       deadline))
                    except FlowgateError:
                        message = ""
                    raise self._status_error(response, url, tag=None, what="listing", message=message)
                body = webjson.read_body(response, url, limit, deadline, hint)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url, deadline) from None
        data = webjson.parse(body, url, "a list of releases", hint)
        if not isinstance(data, list):
            raise FlowgateError(f"{url} did not answer with a list of releases", hint)
        return data

    def get_text(self, url: str, limit: int = MAX_TEXT_ASSET) -> str:
        """A small text asset (checksums.txt), following redirects."""
        import io

        buf = io.BytesIO()
        self.download(url, buf, limit=limit, too_large="it is not a checksum list")
        return buf.getvalue().decode("utf-8", errors="replace")

    def download(self, url: str, out: BinaryIO, progress: Progress | None = None, *,
                 limit: int | None = None, too_large: str = "refusing to download more") -> tuple[str, int]:
        """Stream `url` into `out`; return (sha256 hex, bytes). Raises on truncation and past `limit`.

        OSError from writing `out` (disk full) propagates unchanged for the caller to translate.
        """
        import httpx

        digest = hashlib.sha256()
        received = 0
        streaming = False
        try:
            with self._client.stream("GET", url, headers=self._headers(url, "application/octet-stream"),
                                     follow_redirects=True) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._status_error(response, url, tag=None, what="downloading")
                total = _content_length(response)
                streaming = True
                if progress:
                    progress(0, total)
                for chunk in response.iter_bytes(CHUNK):
                    received += len(chunk)
                    if limit is not None and received > limit:
                        raise FlowgateError(f"{url} is larger than {limit} bytes; {too_large}")
                    out.write(chunk)
                    digest.update(chunk)
                    if progress:
                        progress(received, total)
                _check_complete(response, url)
        except httpx.HTTPError as exc:
            if streaming and isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
                raise FlowgateError(
                    f"download of {url} is truncated: the connection closed early ({exc})",
                    "the connection broke mid-download; run the command again. Nothing was installed",
                ) from None
            raise self._transport_error(exc, url) from None
        return digest.hexdigest(), received


def _content_length(response) -> int | None:
    if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return None
    try:
        value = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _check_complete(response, url: str) -> None:
    expected = _content_length(response)
    got = response.num_bytes_downloaded
    if expected is not None and got != expected:
        raise FlowgateError(
            f"download of {url} is truncated: got {got} of {expected} bytes",
            "the connection broke mid-download; run the command again. Nothing was installed",
        )

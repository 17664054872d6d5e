"""A fake GitHub Releases API (plus object store) on 127.0.0.1 for tests.

    with FakeGitHub() as gh:
        gh.add_release("router-for-me/CLIProxyAPIPlus", "v6.8.16-0", [archive_path])
        settings = ReleaseSettings(repo=..., version="v6.8.16-0", api_url=gh.api_url)
        ...
        assert gh.total_requests == 0

Imitates what FlowGate relies on:
- `GET /repos/{owner}/{repo}/releases/tags/{tag}` and `/releases/latest`: release JSON with
  `tag_name` and `assets: [{name, size, digest?, browser_download_url, url, ...}]`, an ETag
  (weak, like GitHub's), and 304 on a matching If-None-Match.
- `GET /repos/{owner}/{repo}/releases?per_page=N&page=P`: the list, newest first (by `published_at`,
  then the later published), `per_page` 30 by default and at most 100, a `Link: rel="next"` header
  while more pages follow, `[]` past the last page (an unknown repository: 404). Drafts and
  prereleases are listed with their flags, as GitHub lists them to a token that may see drafts.
  `releases_answer` (raw bytes) replaces the list's body: garbage, huge or hostile JSON.
- `browser_download_url` (`/{owner}/{repo}/releases/download/{tag}/{name}`) answers 302 to a second
  server on another port (another origin, like GitHub's object store), which serves the bytes.
- `checksums.txt` as a release asset (correct, corrupt, without our entry, or absent).
- 403 with `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` when `rate_limit_reset` is set;
  401 when `required_token` is set and a different Bearer token is sent; 404 for unknown repos/tags.
- `truncate`: a Content-Length larger than the body, then the connection is closed.
- `stall`: hold every request until the server closes (for timeout tests).
Every request is counted per path (`requests`, `total_requests`) and logged with its status.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.fakes.serving import ServedFake


@dataclass
class FakeAsset:
    id: int
    name: str
    data: bytes
    digest: str | None  # "sha256:<hex>" or None (omitted from the JSON)
    truncate: bool = False
    content_type: str = "application/gzip"


@dataclass
class FakeRelease:
    id: int
    repo: str
    tag: str
    assets: list[FakeAsset] = field(default_factory=list)
    published_at: str = "2026-03-01T00:00:00Z"
    prerelease: bool = False
    draft: bool = False


@dataclass
class LoggedRequest:
    server: str  # "api" | "objects"
    method: str
    path: str
    status: int
    headers: dict


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: "FakeGitHub", role: str):
        self.fake = fake
        self.role = role
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # keep test output clean
        pass

    # -- plumbing --------------------------------------------------------------------------------
    def _record(self, status: int) -> None:
        fake = self.server.fake
        with fake._lock:
            fake.log.append(LoggedRequest(self.server.role, self.command, self.path, status,
                                          {k.lower(): v for k, v in self.headers.items()}))

    def _send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
              content_type: str = "application/json; charset=utf-8") -> None:
        self._record(status)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD" and status != 304:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _not_found(self) -> None:
        self._json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

    # -- dispatch --------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        fake = self.server.fake
        path = fake.arrive(self)
        if path is None:
            return
        if self.server.role == "objects":
            return self._object(path)
        if fake.rate_limit_reset is not None and path.startswith("/repos/"):
            return self._json(403, {"message": "API rate limit exceeded for 127.0.0.1. (But here's the good "
                                               "news: Authenticated requests get a higher rate limit.)"},
                              {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Used": "60", "X-RateLimit-Reset": str(fake.rate_limit_reset)})
        auth = self.headers.get("Authorization")
        if fake.required_token is not None and auth is not None and auth != f"Bearer {fake.required_token}":
            return self._json(401, {"message": "Bad credentials"})

        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/releases", path)
        if m:
            return self._list(f"{m[1]}/{m[2]}".lower(), parse_qs(urlsplit(self.path).query))
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/releases/latest", path)
        if m:
            repo = f"{m[1]}/{m[2]}".lower()
            tag = fake.latest.get(repo)
            return self._release(fake.releases.get((repo, tag)) if tag else None)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/releases/tags/([^/]+)", path)
        if m:
            return self._release(fake.releases.get((f"{m[1]}/{m[2]}".lower(), unquote(m[3]))))
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/releases/assets/(\d+)", path)
        if m:
            found = fake._asset_by_id(int(m[3]))
            if found is None:
                return self._not_found()
            return self._json(200, fake._asset_json(*found))
        m = re.fullmatch(r"/([^/]+)/([^/]+)/releases/download/([^/]+)/([^/]+)", path)
        if m:
            release = fake.releases.get((f"{m[1]}/{m[2]}".lower(), unquote(m[3])))
            asset = next((a for a in release.assets if a.name == unquote(m[4])), None) if release else None
            if asset is None:
                return self._not_found()
            location = f"{fake.objects_url}/objects/{asset.id}/{quote(asset.name)}?X-Amz-Signature=fake"
            return self._send(302, b"", {"Location": location}, "text/html")
        return self._not_found()

    def _release(self, release: FakeRelease | None) -> None:
        if release is None:
            return self._not_found()
        fake = self.server.fake
        body = json.dumps(fake._release_json(release), sort_keys=True).encode()
        etag = f'W/"{sha256_hex(body)[:32]}"'
        candidates = [t.strip() for t in (self.headers.get("If-None-Match") or "").split(",") if t.strip()]
        if etag in candidates or etag.removeprefix("W/") in candidates:
            return self._send(304, b"", {"ETag": etag})
        self._send(200, body, {"ETag": etag, "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"})

    def _list(self, repo: str, query: dict) -> None:
        fake = self.server.fake
        if fake.releases_answer is not None:
            return self._send(200, fake.releases_answer)
        with fake._lock:
            found = [r for (name, _), r in fake.releases.items() if name == repo]
        if not found:
            return self._not_found()

        def number(key: str, default: int) -> int:
            try:
                return max(1, int(query.get(key, [default])[0]))
            except ValueError:
                return default
        per_page, page = min(100, number("per_page", 30)), number("page", 1)
        found.sort(key=lambda r: (r.published_at, r.id), reverse=True)
        chunk = found[(page - 1) * per_page: page * per_page]
        headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"}
        if page * per_page < len(found):
            owner, name = repo.split("/", 1)
            headers["Link"] = (f'<{fake.api_url}/repos/{owner}/{name}/releases?per_page={per_page}&page={page + 1}>; '
                               'rel="next"')
        self._json(200, [fake._release_json(r) for r in chunk], headers)

    def _object(self, path: str) -> None:
        fake = self.server.fake
        m = re.fullmatch(r"/objects/(\d+)/(.+)", path)
        found = fake._asset_by_id(int(m[1])) if m else None
        if found is None:
            return self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", None, "application/xml")
        _, asset = found
        if asset.truncate or fake.truncate_all:
            self._record(200)
            self.send_response(200)
            self.send_header("Content-Type", asset.content_type)
            self.send_header("Content-Length", str(len(asset.data)))
            self.end_headers()
            self.wfile.write(asset.data[: len(asset.data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(200, asset.data, None, asset.content_type)


class FakeGitHub(ServedFake):
    def __init__(self) -> None:
        super().__init__()
        self.releases: dict[tuple[str, str], FakeRelease] = {}
        self.latest: dict[str, str] = {}  # repo (lower) -> tag
        self.log: list[LoggedRequest] = []
        self.rate_limit_reset: int | None = None
        self.required_token: str | None = None
        self.truncate_all = False
        self.releases_answer: bytes | None = None  # the list route's body, when set
        self._next_id = 1000
        self._api: _Server | None = None
        self._objects: _Server | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def _make_servers(self) -> list[_Server]:
        self._api = _Server(self, "api")
        self._objects = _Server(self, "objects")
        return [self._api, self._objects]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._api.server_address[1]}"

    @property
    def objects_url(self) -> str:
        return f"http://127.0.0.1:{self._objects.server_address[1]}"

    # -- counting --------------------------------------------------------------------------------
    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.log.clear()

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.log]

    # -- content ---------------------------------------------------------------------------------
    def add_release(self, repo: str, tag: str, assets: Mapping[str, bytes] | Iterable[Path], *,
                    digest: bool | str = True, checksums: bool | str = True, latest: bool | None = None,
                    truncate: Iterable[str] = (), published_at: str | None = None, prerelease: bool = False,
                    draft: bool = False) -> FakeRelease:
        """Publish a release.

        digest: True (correct sha256 per asset), False (field omitted), "corrupt" (wrong value).
        checksums: True (correct checksums.txt), False (no checksums.txt), "corrupt" (wrong values),
                   "incomplete" (a checksums.txt that lists none of the archives).
        truncate: names of assets whose download is cut off halfway.
        latest: whether `/releases/latest` answers with it; by default when it is neither a draft nor
                a prerelease (as on GitHub).
        published_at: e.g. "2026-05-02T09:30:00Z" (default 2026-03-01T00:00:00Z); the list is ordered by it.
        """
        files = dict(assets) if isinstance(assets, Mapping) else {Path(p).name: Path(p).read_bytes() for p in assets}
        truncate = set(truncate)
        with self._lock:
            release = FakeRelease(self._new_id(), repo, tag, prerelease=prerelease, draft=draft)
            if published_at is not None:
                release.published_at = published_at
            for name, data in files.items():
                if digest is True:
                    d = f"sha256:{sha256_hex(data)}"
                elif digest == "corrupt":
                    d = f"sha256:{sha256_hex(data + b'corrupt')}"
                else:
                    d = None
                release.assets.append(FakeAsset(self._new_id(), name, data, d, name in truncate))
            if checksums:
                lines = []
                for name, data in files.items():
                    if checksums == "incomplete":
                        continue
                    value = sha256_hex(data + b"corrupt") if checksums == "corrupt" else sha256_hex(data)
                    lines.append(f"{value}  {name}\n")
                if checksums == "incomplete":
                    lines.append(f"{sha256_hex(b'other')}  something_else.tar.gz\n")
                body = "".join(lines).encode()
                release.assets.append(FakeAsset(self._new_id(), "checksums.txt", body,
                                                f"sha256:{sha256_hex(body)}" if digest is True else None,
                                                "checksums.txt" in truncate, "text/plain"))
            self.releases[(repo.lower(), tag)] = release
            if latest or (latest is None and not (draft or prerelease)):
                self.latest[repo.lower()] = tag
        return release

    def set_latest(self, repo: str, tag: str) -> None:
        with self._lock:
            self.latest[repo.lower()] = tag

    def remove_repo(self, repo: str) -> None:
        with self._lock:
            for key in [k for k in self.releases if k[0] == repo.lower()]:
                del self.releases[key]
            self.latest.pop(repo.lower(), None)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _asset_by_id(self, asset_id: int):
        with self._lock:
            for release in self.releases.values():
                for asset in release.assets:
                    if asset.id == asset_id:
                        return release, asset
        return None

    def _asset_json(self, release: FakeRelease, asset: FakeAsset) -> dict:
        owner, name = release.repo.split("/", 1)
        obj = {
            "url": f"{self.api_url}/repos/{owner}/{name}/releases/assets/{asset.id}",
            "id": asset.id,
            "name": asset.name,
            "label": "",
            "content_type": asset.content_type,
            "state": "uploaded",
            "size": len(asset.data),
            "download_count": 0,
            "browser_download_url": f"{self.api_url}/{owner}/{name}/releases/download/"
                                    f"{quote(release.tag)}/{quote(asset.name)}",
        }
        if asset.digest is not None:
            obj["digest"] = asset.digest
        return obj

    def _release_json(self, release: FakeRelease) -> dict:
        owner, name = release.repo.split("/", 1)
        return {
            "url": f"{self.api_url}/repos/{owner}/{name}/releases/{release.id}",
            "html_url": f"https://github.com/{owner}/{name}/releases/tag/{release.tag}",
            "id": release.id,
            "tag_name": release.tag,
            "name": release.tag,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "created_at": release.published_at,
            "published_at": None if release.draft else release.published_at,
            "assets": [self._asset_json(release, a) for a in release.assets],
        }

"""A fake PyPI JSON API on 127.0.0.1 for tests (stdlib http.server, like tests/fakes/github.py).

    with FakePyPI() as index:
        index.add("litellm", "1.108.7")
        index.add("litellm", "1.108.9", yanked=True)
        env = {"FLOWGATE_PYPI_URL": index.url}
        ...
        assert index.total_requests == 0

Imitates what FlowGate relies on: `GET /pypi/{project}/json` answers `{"info": {...}, "releases":
{version: [file, ...]}, "urls": [...]}`, each file with `filename`, `packagetype`, `yanked` and
`yanked_reason`; 404 `{"message": "Not Found"}` for an unknown project. `answer` (raw bytes)
replaces the body (garbage, huge or hostile JSON); `status` answers every request with that HTTP
status (and `message`); `stall` holds every request until the server closes (for deadline tests).
Every request is counted per path (tests.fakes.serving).
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from tests.fakes.serving import ServedFake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        fake = self.server.fake
        path = fake.arrive(self)
        if path is None:
            return
        if fake.status is not None:
            return self._send(fake.status, json.dumps({"message": fake.message or f"HTTP {fake.status}"}).encode())
        if fake.answer is not None:
            return self._send(200, fake.answer)
        parts = path.strip("/").split("/")
        project = unquote(parts[1]).lower() if len(parts) == 3 and parts[0] == "pypi" and parts[2] == "json" else None
        if project not in fake.projects:
            return self._send(404, json.dumps({"message": "Not Found"}).encode())
        self._send(200, json.dumps(fake.project_json(project)).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: "FakePyPI"):
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


class FakePyPI(ServedFake):
    def __init__(self) -> None:
        super().__init__()
        self.projects: dict[str, dict[str, list[dict]]] = {}
        self.answer: bytes | None = None
        self.status: int | None = None
        self.message: str | None = None  # the error's message with `status`

    def _make_servers(self) -> list[_Server]:
        return [_Server(self)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    def add(self, project: str, version: str, *, yanked: bool = False, files: int = 2) -> None:
        """Publish `version` with `files` files (a wheel, then an sdist), all yanked or none; 0 files
        is a release whose files were deleted."""
        kinds = [("bdist_wheel", f"{project}-{version}-py3-none-any.whl"), ("sdist", f"{project}-{version}.tar.gz")]
        entries = [{"filename": name, "packagetype": kind, "yanked": yanked,
                    "yanked_reason": "broken" if yanked else None, "upload_time_iso_8601": "2026-03-01T00:00:00Z"}
                   for kind, name in (kinds * files)[:files]]
        with self._lock:
            self.projects.setdefault(project.lower(), {})[version] = entries

    def project_json(self, project: str) -> dict:
        with self._lock:
            releases = dict(self.projects[project])
        last = next(reversed(releases), "")  # the last one published, as `info` names the newest
        return {"info": {"name": project, "version": last}, "releases": releases, "urls": releases.get(last, [])}

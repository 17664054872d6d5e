"""A small client for CLIProxyAPI's management API (`/v0/management/...`).

It sends the management key FlowGate generated, and turns every failure into one FlowgateError
saying which failure and what to do. Nothing is retried: a wrong key stays wrong, and an earlier
tool that retried 401s and 404s until its timeout left users staring at a spinner.

http.client, not httpx: `doit status` asks for the account list on every run, and httpx costs
~0.25 s of imports there against ~0.02 s (the requests are tiny JSON calls to loopback).
"""

from __future__ import annotations

import json
import urllib.parse
from collections import namedtuple

from ..base.errors import FlowgateError
from ..base.paths import Paths

PREFIX = "/v0/management"
RESTART_HINT = "run `uv run doit restart cliproxy` (FlowGate delivers its own config again)"


class ManagementError(FlowgateError):
    """The management API answered with an error. `status` and `error` as the binary sent them."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None, error: str = ""):
        super().__init__(message, hint)
        self.status = status
        self.error = error


class RouteMissing(ManagementError):
    """This binary has no such route, while the management API itself answers (an older/newer line)."""

    def __init__(self, route: str):
        super().__init__(f"this CLIProxyAPI binary has no /{route} management route",
                         "a newer or different binary line may have it", status=404)
        self.route = route


class Management(namedtuple("Management", "host port key timeout", defaults=(5.0,))):
    """A client of CLIProxyAPI's management API (key: the management key, never shown)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Management(host={self.host!r}, port={self.port!r}, key=<hidden>, timeout={self.timeout!r})"

    @classmethod
    def for_stack(cls, paths: Paths, stack: dict, timeout: float = 5.0) -> "Management":
        """The client for this home's CLIProxyAPI; FlowgateError when another process holds its port."""
        from ..services.secrets import CLIPROXY_MANAGEMENT_KEY, read
        from ..config.view import cliproxy
        from ..services.common import connect_host

        from ..stack.launch.owner import require_own

        cp = cliproxy(stack)
        require_own(paths, stack)  # another checkout's CLIProxyAPI on this port must never get our calls
        return cls(connect_host(cp.host).strip("[]"), int(cp.port), read(paths, CLIPROXY_MANAGEMENT_KEY), timeout)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def get(self, route: str, **query) -> dict:
        return self.request("GET", route, query=query)

    def get_list(self, route: str, **query) -> list:
        """GET of a route that answers a JSON array (the usage queue); a ManagementError otherwise."""
        status, text = self._send("GET", route, query, None)
        try:
            data = json.loads(text) if 200 <= status < 300 else None
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, list):
            return data
        if 200 <= status < 300:
            raise ManagementError(f"CLIProxyAPI's answer to GET /{route.strip('/')} is not the expected JSON list",
                                  "see `uv run doit logs cliproxy`", status=status)
        if status == 404 and _json_object(text) is None:
            raise self._missing(route)
        raise _translate(status, str((_json_object(text) or {}).get("error") or "").strip(), "GET", route)

    def request(self, method: str, route: str, *, query: dict | None = None, body: dict | None = None) -> dict:
        """One call; the answer's JSON object, or a ManagementError. Never retried."""
        status, text = self._send(method, route, query, body)
        data = _json_object(text)
        if 200 <= status < 300:
            if data is None and text.strip():  # garbage, a list or a bomb: never read as "nothing there"
                raise ManagementError(f"CLIProxyAPI's answer to {method} /{route.strip('/')} is not the expected "
                                      "JSON object", "see `uv run doit logs cliproxy`", status=status)
            return data if data is not None else {}
        error = str((data or {}).get("error") or "").strip()
        if status == 404 and data is None:  # a bare 404: the route does not exist here
            raise self._missing(route)
        raise _translate(status, error, method, route)

    def send_early(self, route: str) -> bool:
        """Send `GET route` now; a `get(route)` later in this process reads its answer (see
        tasks.localhttp.send_early). False when it could not be sent; never raises."""
        from ..base.localhttp import send_early

        return send_early(self.host, self.port, self._path(route, None), headers=self._headers())

    def _path(self, route: str, query: dict | None) -> str:
        path = f"{PREFIX}/{route.strip('/')}"
        if query:
            path += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return path

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}

    def _send(self, method: str, route: str, query: dict | None, body: dict | None) -> tuple[int, str]:
        from ..base.localhttp import exchange

        path = self._path(route, query)
        headers = self._headers()
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            status, answer = exchange(self.host, self.port, method, path, headers=headers, body=payload,
                                      timeout=self.timeout)
        except OSError as exc:
            raise self._unreachable(exc) from None
        return status, answer.decode("utf-8", "replace")

    def _unreachable(self, exc: OSError) -> FlowgateError:
        from ..base.localhttp import TooLarge

        if isinstance(exc, TooLarge):
            return FlowgateError(f"CLIProxyAPIPlus at {self.url} sent an answer too large to read ({exc})",
                                 "see `uv run doit logs cliproxy`; is something else listening on its port? "
                                 "(`uv run doit doctor`)")
        if isinstance(exc, ConnectionRefusedError):
            return FlowgateError(f"CLIProxyAPI is not running at {self.url} (connection refused)",
                                 "start it with `uv run doit up`")
        if isinstance(exc, TimeoutError):
            return FlowgateError(f"CLIProxyAPI at {self.url} did not answer within {self.timeout:g} s",
                                 "see `uv run doit logs cliproxy`; `uv run doit restart cliproxy` if it hangs")
        return FlowgateError(f"cannot reach CLIProxyAPI at {self.url}: {exc}", "check `uv run doit status`")

    def _missing(self, route: str) -> ManagementError:
        """One route missing (fallback material), or the whole management API disabled."""
        if route.strip("/") != "config":
            status, text = self._send("GET", "config", None, None)
            if not (status == 404 and _json_object(text) is None):
                return RouteMissing(route.strip("/"))
        return ManagementError(
            "the management API of CLIProxyAPI is disabled (every management route answers 404)",
            "FlowGate enables it with the key in .router/secrets/cliproxy_management_key; if "
            f".router/cliproxy/config.yaml was edited by hand, {RESTART_HINT}", status=404)


def _json_object(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # a deeply nested answer is no answer
        return None
    return data if isinstance(data, dict) else None


def _translate(status: int, error: str, method: str, route: str) -> ManagementError:
    said = f" ({status} {error})" if error else f" ({status})"
    if status == 401:
        return ManagementError(
            "CLIProxyAPI refused FlowGate's management key" + said,
            "the running binary's key no longer matches .router/secrets/cliproxy_management_key (was its "
            f"config edited by hand?): {RESTART_HINT}", status=status, error=error)
    if status == 403:
        if "not set" in error:
            return ManagementError("the management API of CLIProxyAPI is disabled: it has no management key" + said,
                                   RESTART_HINT, status=status, error=error)
        if "remote" in error:
            return ManagementError("CLIProxyAPI refuses management calls from this address" + said,
                                   "FlowGate must reach it on loopback: keep cliproxy.host at 127.0.0.1",
                                   status=status, error=error)
        return ManagementError("CLIProxyAPI refused the management call" + said, status=status, error=error)
    return ManagementError(f"CLIProxyAPI answered {method} /{route.strip('/')} with an error" + said,
                           "see `uv run doit logs cliproxy`", status=status, error=error)


def cliproxy_ready(paths: Paths, stack: dict, timeout: float = 0.5) -> bool:
    """Cheap: our recorded CLIProxyAPI process is alive and answers its probe."""
    from ..config.names import CLIPROXY
    from ..stack.watch.readiness import is_ready

    return is_ready(paths, stack, CLIPROXY, timeout)

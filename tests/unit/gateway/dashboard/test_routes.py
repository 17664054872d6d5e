"""tasks.gateway.dashboard: the token (file, check), the routes' refusals and headers, the page's embedded data."""

from __future__ import annotations

import asyncio
import json

from tasks.base.paths import Paths
from tasks.gateway.dashboard import page, routes, token
from tests.conftest import ROOT


def _get(app, path: str, query: bytes = b"", headers=()) -> tuple[int, dict, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "path": path, "method": "GET", "query_string": query, "headers": list(headers)},
                    receive, send))
    return sent[0]["status"], dict(sent[0].get("headers", [])), b"".join(m.get("body", b"") for m in sent[1:])


async def _inner(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"litellm"})


def test_token_file_is_private_and_made_once(tmp_path):
    paths = Paths(root=ROOT, home=tmp_path)
    first = token.ensure(paths)
    assert token.ensure(paths) == first and len(first) >= 24
    assert (paths.dashboard_token.stat().st_mode & 0o777) == 0o600 and (paths.secrets_dir.stat().st_mode & 0o777) == 0o700
    checker = token.Checker(paths)
    assert (checker.verdict(None), checker.verdict("x" * 32), checker.verdict(first)) == (401, 403, 200)
    paths.dashboard_token.write_text("short\n")  # not a token: nothing matches
    assert checker.verdict("short") == 403


def test_routes_refuse_without_the_token_and_pass_everything_else(tmp_path, monkeypatch):
    paths = Paths(root=ROOT, home=tmp_path)
    secret = token.ensure(paths)
    async def hostile(_paths):
        return {"usage": {}, "hostile": "</script><b>x</b>"}

    app = routes.with_dashboard(_inner, paths, gathered=hostile)
    assert _get(app, "/v1/models")[2] == b"litellm"
    assert _get(app, "/flowgate/dashboard")[0] == 401
    status, headers, body = _get(app, "/flowgate/dashboard", b"token=nope-nope-nope-nope")
    assert status == 403 and "doit dashboard" in json.loads(body)["error"] and headers[b"cache-control"] == b"no-store"
    status, headers, body = _get(app, "/flowgate/dashboard", b"token=" + secret.encode())
    assert status == 200 and headers[b"content-type"].startswith(b"text/html")
    csp = headers[b"content-security-policy"].decode()
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp and headers[b"referrer-policy"] == b"no-referrer"
    assert b"</script><b>x</b>" not in body and b"\\u003c/script\\u003e\\u003cb\\u003ex" in body
    status, _, body = _get(app, "/flowgate/dashboard/data", headers=[(b"x-flowgate-token", secret.encode())])
    assert status == 200 and json.loads(body)["hostile"] == "</script><b>x</b>"
    assert _get(app, "/flowgate/dashboard/nope", b"token=" + secret.encode())[0] == 404


def test_embedded_data_cannot_close_its_element():
    text = page.render({"x": "</script><!-- & -->"}, "n0nce")
    assert "</script><!--" not in text and 'nonce="n0nce"' in text


def test_the_data_comes_from_a_child_process_and_a_failing_one_is_said(tmp_path, monkeypatch):
    """The gateway's process never imports the control plane: the data is gathered by
    `python -m tasks.inspect.dashboard_data`, whose failure each section of the page names."""
    import asyncio
    import sys

    paths = Paths(root=ROOT, home=tmp_path)
    data = asyncio.run(routes.gather(paths))
    assert {"services", "quota", "usage", "generated_at"} <= set(data)
    assert data["usage"].get("error") is None and data["usage"]["24h"]["totals"]["requests"] == 0
    monkeypatch.setattr(sys, "executable", "/bin/false")
    broken = asyncio.run(routes.gather(paths))
    assert broken["usage"]["error"].startswith("gathering the data failed") and broken["services"] == []
    assert broken["quota"]["error"] == broken["usage"]["error"]


def test_requests_together_share_one_child_and_a_flood_of_output_is_cut(tmp_path, monkeypatch):
    import asyncio
    import sys

    paths = Paths(root=ROOT, home=tmp_path)
    starts = tmp_path / "starts"
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\necho x >> {starts}\nsleep 0.3\nprintf '{{\"usage\": {{}}, \"n\": 1}}'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))

    async def three():
        return await asyncio.gather(*(routes.gather(paths) for _ in range(3)))

    assert [d["n"] for d in asyncio.run(three())] == [1, 1, 1]
    assert starts.read_text().count("x") == 1  # one child answered all three
    fake.write_text("#!/bin/sh\nexec yes\n")  # an endless answer
    monkeypatch.setattr(routes, "GATHER_MAX", 1000)
    flood = asyncio.run(routes.gather(paths))
    assert flood["usage"]["error"] == "the data was larger than 1000 bytes"

"""Usage history through the real LiteLLM (its recorder writing a real SQLite database) and the real
`doit` command line: `doit usage` counts what the requests produced, after `down` / `up` and after a
crash of LiteLLM; `doit dashboard` shows it in a real headless Chromium. One stack of its own."""

from __future__ import annotations

import json
import os
import signal

import httpx
import pytest

from tests.integration.conftest import make_stack
from tests.support import wait_for

MODELS = """models:
  - {name: gpt-broken, model: double-fail-x, protocol: openai}
litellm_settings: {num_retries: 0}
router_settings: {num_retries: 0}
"""


@pytest.fixture(scope="module")
def st(tmp_path_factory, github):
    st = make_stack(tmp_path_factory, github, "usage")
    # no steward: pool_and_ledger writes the state file a steward would (it would rewrite it every pass)
    st.paths.local_config.write_text(st.paths.local_config.read_text() + MODELS + "accounts: {steering: false}\n")
    st.seed_accounts("codex", "claude")  # what they serve is routable (tests/fakes/models.json)
    up = st.doit("up")
    assert up.returncode == 0, up.output
    yield st
    st.doit("down")
    st.kill_all()


def usage(st, *args) -> dict:
    result = st.doit("usage", "--json", *args)
    assert result.returncode == 0, result.output
    return json.loads(result.stdout)


def by_model(data: dict) -> dict:
    return {g["model"]: g for g in data["by"]["model"]}


def send(st, path: str, body: dict, stream: bool = False) -> httpx.Response:
    headers = {"Authorization": f"Bearer {st.master_key}"}
    with httpx.Client(base_url=st.litellm_url, timeout=60) as http:
        if not stream:
            return http.post(path, json=body, headers=headers)
        with http.stream("POST", path, json=body, headers=headers) as r:
            r.read()
            return r


def recorded(st, count: int) -> dict:
    return wait_for(lambda: (d := usage(st, "--since", "1h")) and d["totals"]["requests"] >= count and d,
                    timeout=30, what=f"{count} recorded request(s)")


def test_requests_are_counted_per_model_with_tokens(st):
    msg = [{"role": "user", "content": "one two three"}]
    assert send(st, "/v1/chat/completions", {"model": "gpt-5.5", "messages": msg}).status_code == 200
    assert send(st, "/v1/chat/completions", {"model": "gpt-5.5", "messages": msg, "stream": True,
                                             "stream_options": {"include_usage": True}}, stream=True).status_code == 200
    assert send(st, "/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": msg},
                stream=True).status_code == 200
    assert send(st, "/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": msg,
                                     "stream": True}, stream=True).status_code == 200
    assert send(st, "/v1/chat/completions", {"model": "gpt-broken", "messages": msg}).status_code >= 500
    data = recorded(st, 5)
    models = by_model(data)
    assert models["gpt-5.5"]["requests"] == 2 and models["gpt-5.5"]["errors"] == 0
    assert models["gpt-5.5"]["tokens_in"] > 0 and models["gpt-5.5"]["tokens_out"] > 0
    assert models["claude-sonnet-4-6"]["requests"] == 2 and models["claude-sonnet-4-6"]["tokens_out"] > 0
    assert models["gpt-broken"]["errors"] == 1
    assert data["totals"]["p50_ms"] > 0
    table = st.doit("usage", "--since", "24h", "--by", "model")
    assert table.returncode == 0 and "gpt-5.5" in table.stdout and "p95 ms" in table.stdout
    csv = st.doit("usage", "--csv", "--by", "hour")
    assert csv.stdout.splitlines()[0] == "hour,requests,errors,tokens_in,tokens_out,tokens_cached,p50_ms,p95_ms"


def test_counts_survive_down_up_and_a_crash_of_litellm(st):
    before = by_model(usage(st))
    assert st.doit("down").returncode == 0
    assert by_model(usage(st)) == before  # read without the stack
    assert st.doit("up").returncode == 0
    assert by_model(usage(st)) == before
    msg = [{"role": "user", "content": "after the restart"}]
    assert send(st, "/v1/chat/completions", {"model": "gpt-5.4-mini", "messages": msg}).status_code == 200
    total = sum(g["requests"] for g in before.values())
    recorded(st, total + 1)
    # kill -9 of LiteLLM's server: what it recorded is there, and its launcher brings it back
    from tasks.stack.launch.launcher_files import worker_path

    os.kill(json.loads(worker_path(st.paths, "litellm", st.pid("litellm")).read_text())["pid"], signal.SIGKILL)
    assert by_model(usage(st))["gpt-5.4-mini"]["requests"] == before.get("gpt-5.4-mini", {}).get("requests", 0) + 1
    def serves():
        try:
            return send(st, "/v1/chat/completions", {"model": "gpt-5.4-mini", "messages": msg}).status_code == 200
        except httpx.TransportError:
            return False
    wait_for(serves, timeout=120, interval=0.5, what="LiteLLM serving again")
    recorded(st, total + 2)
    assert st.doit("doctor").stdout.count("usage") >= 1


def chromium(*args: str, tmp) -> str:
    import shutil
    import subprocess

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp}/profile",
            "--virtual-time-budget=4000", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def account(st, name: str, data: dict) -> None:
    path = st.paths.auths_dir / name
    path.write_text(json.dumps(data))
    path.chmod(0o600)


def test_the_docs_screenshot_comes_from_this_run(st, tmp_path):
    """Issue 31, item 26: docs/dashboard.png is this scripted run's page (the requests above, the real
    LiteLLM, this stack's events), written only with FLOWGATE_WRITE_SCREENSHOT=1; otherwise nothing
    timing-dependent is compared."""
    from tests.conftest import ROOT

    recorded(st, 1)
    opened = st.doit("dashboard", "--no-browser")
    assert opened.returncode == 0, opened.output
    url = opened.stdout.split("dashboard: ", 1)[1].split()[0]
    shot = tmp_path / "dashboard.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", url, tmp=tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if os.environ.get("FLOWGATE_WRITE_SCREENSHOT") == "1":
        (ROOT / "docs" / "dashboard.png").write_bytes(shot.read_bytes())


def pool_and_ledger(st) -> None:
    """What the steward leaves (issue 29): its pool.json, the accounts' counters and queue records."""
    import time

    from tasks.usage import ledger

    now = time.time()
    windows = [{"name": "5h", "used_percent": 78.0, "resets_at": now + 7000, "full_at": now + 3000}]
    pool = {"updated": now, "threshold": 90, "steering": True, "steered": {}, "accounts": [
        {"name": "codex-dash@example.com.json", "provider": "codex", "label": "dash@example.com", "auth_index": "i-dash",
         "state": "in", "reason": "", "until": None, "windows": windows},
        {"name": "codex-b.json", "provider": "codex", "label": "b@example.com", "auth_index": "i-b", "state": "out",
         "reason": "5h window 92 % >= 90 %", "until": now + 5000, "windows": []},
        {"name": "claude-hostile.json", "provider": "claude", "label": "x", "state": "disabled-by-user", "windows": []}]}
    (st.paths.state_dir / "pool.json").write_text(json.dumps(pool))
    listing = [{"name": "codex-dash@example.com.json", "type": "codex", "email": "dash@example.com", "auth_index": "i-dash",
                "success": 0, "failed": 0}]
    ledger.note_counters(st.paths, listing)
    listing[0].update(success=2, failed=1)
    ledger.note_counters(st.paths, listing)

    class Queue:
        records = [{"timestamp": "2026-12-07T10:00:00Z", "auth_index": "i-dash", "auth_type": "oauth", "model": m,
                    "tokens": {"input_tokens": 20, "output_tokens": 10}, "failed": False}
                   for m in ("gpt-5", "no-such-model-x")]

        def get_list(self, route, count):
            out, self.records = self.records, []
            return out

        def get(self, route):
            return {"files": listing}

    Queue.records = [dict(r, timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))) for r in Queue.records]
    assert ledger.drain_queue(st.paths, Queue()) == 2


def test_dashboard_in_a_real_browser_shows_health_quota_usage_and_failures(st, tmp_path):
    from tests.fakes.cliproxy_double import CLAUDE_WINDOWS, CODEX_WINDOWS

    hostile = "<img src=x onerror=alert(1)>\x1b[31m"
    account(st, "codex-dash@example.com.json", {"type": "codex", "email": "dash@example.com", "access_token": "tc",
                                                "account_id": "acc-dash"})
    account(st, "claude-hostile.json", {"type": "claude", "email": hostile, "access_token": "tk"})
    assert send(st, "/v1/chat/completions", {"model": "<script>alert(2)</script>",
                                             "messages": [{"role": "user", "content": "x"}]}).status_code >= 400
    listed = httpx.get(f"{st.litellm_url}/v1/models", headers={"Authorization": f"Bearer {st.master_key}"}, timeout=30)
    served = sorted(m["id"] for m in listed.json()["data"])
    assert len(served) >= 10, served
    for model in served[:10]:  # more models than the palette has colours (item 25); served: no failure row
        assert send(st, "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "x"}]}).status_code == 200
    from tasks.stack import events

    events.record(st.paths, "upgrade", "cliproxy", "rolled-back", "upgrade to v9: <img src=y onerror=alert(3)>")
    counted = by_model(recorded(st, 11))
    pool_and_ledger(st)
    per_account = {g["account"]: g for g in usage(st, "--by", "account")["by"]["account"]}
    assert per_account["dash@example.com"]["requests"] == 3 and per_account["dash@example.com"]["tokens_in"] == 40
    assert per_account["dash@example.com"]["usd"] > 0 and per_account["dash@example.com"]["unpriced_tokens"] == 30
    text = st.doit("usage", "--by", "account")
    assert "dash@example.com" in text.stdout and "unknown" not in text.stdout, text.output
    assert "your subscriptions served <$0.01 of API-priced tokens this week" in text.stdout and "no-such-model-x (30 tokens)" in text.stdout
    opened = st.doit("dashboard", "--no-browser")
    assert opened.returncode == 0, opened.output
    url = opened.stdout.split("dashboard: ", 1)[1].split()[0]
    assert url.startswith(f"{st.litellm_url}/flowgate/dashboard?token=") and "(opened" not in opened.stdout
    assert (st.paths.dashboard_token.stat().st_mode & 0o777) == 0o600
    base = url.split("?")[0]
    assert httpx.get(base, timeout=30).status_code == 401
    assert httpx.get(base + "?token=wrong-token-wrong-token", timeout=30).status_code == 403
    assert httpx.get(base + "/data", headers={"x-flowgate-token": "nope-nope-nope-nope"}, timeout=30).status_code == 403
    data = httpx.get(url.replace("/dashboard?", "/dashboard/data?"), timeout=30)
    assert data.status_code == 200 and data.json()["usage"]["7d"]["totals"]["requests"] >= 5

    dom = chromium("--dump-dom", url, tmp=tmp_path)
    assert 'data-service="litellm"' in dom and 'data-service="cliproxy"' in dom
    assert dom.count('class="ok">yes</td>') >= 2  # both services ready, as status says
    assert f"{CODEX_WINDOWS['primary_window'][0]:g}% used, resets in 1h59m" in dom
    assert f"{CLAUDE_WINDOWS['five_hour'][0]:g}% used, resets in 2h59m" in dom
    row = dom.split('data-model="gpt-5.5"', 1)[1].split("</tr>", 1)[0]
    assert f"<td>{counted['gpt-5.5']['requests']}</td>" in row  # the per-model table: what `doit usage` counts
    assert "upstream failure for double-fail-x" in dom  # the latest failures, with the upstream's message
    assert 'aria-label="requests per hour, last 24h: ' in dom
    # hostile text is text: escaped in the DOM, never an element
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom and "<img" not in dom
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in dom and "<script>alert(2)" not in dom
    assert "\x1b" not in dom and "alert(1)&gt;\\x1b[31m" in dom  # a terminal escape shows as text too

    # issue 29: each account's state, windows with the forecast, requests served; what it saved
    table = dom.split('id="accounts"', 1)[1].split("</table>", 1)[0]
    row = table.split('data-account="codex-dash@example.com.json"', 1)[1].split("</tr>", 1)[0]
    assert "dash@example.com" in row and "in rotation" in row and "5h window 78 %, full at ~" in row
    assert "at this pace" in row and "<td>3</td>" in row  # 3 requests from the binary's counters
    assert "out until " in table and "disabled by you" in table
    assert "% used, resets in 1h59m, full at ~" in dom  # the quota bars carry the forecast too
    saved = dom.split('id="savings"', 1)[1].split("</section>", 1)[0]
    assert "this week your subscriptions served &lt;$0.01 of API-priced tokens" in saved and 'data-model="gpt-5"' in saved
    assert "no price in LiteLLM's map: no-such-model-x (30 tokens)" in saved

    # every model its own colour, past the palette's eight too (item 25)
    import re

    legend = dom.split('id="chart-24h-requests"', 1)[1].split('id="chart-24h-tokens"', 1)[0]
    colours = re.findall(r'class="sw" style="background: ([^;"]+);', legend)
    assert len(colours) > 10 and len(set(colours)) == len(colours), colours
    # the stack's events, newest first, as text (item 25)
    table = dom.split('id="events"', 1)[1].split("</table>", 1)[0]
    assert "upgrade to v9: &lt;img src=y onerror=alert(3)&gt;" in table and "rolled-back" in table


def test_the_browser_is_opened_without_the_token_in_its_command_line(st, tmp_path):
    """Issue 31, item 16: `doit dashboard` put the token in the browser's argv, readable by every local user."""
    seen = tmp_path / "argv.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\n')
    browser.chmod(0o755)
    opened = st.doit("dashboard", env={"CI": "", "DISPLAY": ":99", "BROWSER": str(browser)})
    assert opened.returncode == 0 and "(opened your browser)" in opened.stdout, opened.output
    secret = st.paths.dashboard_token.read_text().strip()
    argv = wait_for(lambda: seen.exists() and seen.read_text(), timeout=10, what="the browser started")
    assert secret not in argv and argv.strip().startswith("file://") and argv.strip().endswith("dashboard-open.html")
    page = st.paths.state_dir / "dashboard-open.html"
    assert (page.stat().st_mode & 0o777) == 0o600 and f"token={secret}" in page.read_text()

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
  - {name: gpt-5-codex}
  - {name: gpt-5}
  - {name: claude-sonnet-4-5}
  - {name: claude-haiku-4-5}
  - {name: gpt-broken, model: double-fail-x, protocol: openai}
litellm_settings: {num_retries: 0}
router_settings: {num_retries: 0}
"""


@pytest.fixture(scope="module")
def st(tmp_path_factory, github):
    st = make_stack(tmp_path_factory, github, "usage")
    st.paths.local_config.write_text(st.paths.local_config.read_text() + MODELS)
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
    assert send(st, "/v1/chat/completions", {"model": "gpt-5-codex", "messages": msg}).status_code == 200
    assert send(st, "/v1/chat/completions", {"model": "gpt-5-codex", "messages": msg, "stream": True,
                                             "stream_options": {"include_usage": True}}, stream=True).status_code == 200
    assert send(st, "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": msg},
                stream=True).status_code == 200
    assert send(st, "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": msg,
                                     "stream": True}, stream=True).status_code == 200
    assert send(st, "/v1/chat/completions", {"model": "gpt-broken", "messages": msg}).status_code >= 500
    data = recorded(st, 5)
    models = by_model(data)
    assert models["gpt-5-codex"]["requests"] == 2 and models["gpt-5-codex"]["errors"] == 0
    assert models["gpt-5-codex"]["tokens_in"] > 0 and models["gpt-5-codex"]["tokens_out"] > 0
    assert models["claude-sonnet-4-5"]["requests"] == 2 and models["claude-sonnet-4-5"]["tokens_out"] > 0
    assert models["gpt-broken"]["errors"] == 1
    assert data["totals"]["p50_ms"] > 0
    table = st.doit("usage", "--since", "24h", "--by", "model")
    assert table.returncode == 0 and "gpt-5-codex" in table.stdout and "p95 ms" in table.stdout
    csv = st.doit("usage", "--csv", "--by", "hour")
    assert csv.stdout.splitlines()[0] == "hour,requests,errors,tokens_in,tokens_out,tokens_cached,p50_ms,p95_ms"


def test_counts_survive_down_up_and_a_crash_of_litellm(st):
    before = by_model(usage(st))
    assert st.doit("down").returncode == 0
    assert by_model(usage(st)) == before  # read without the stack
    assert st.doit("up").returncode == 0
    assert by_model(usage(st)) == before
    msg = [{"role": "user", "content": "after the restart"}]
    assert send(st, "/v1/chat/completions", {"model": "gpt-5", "messages": msg}).status_code == 200
    total = sum(g["requests"] for g in before.values())
    recorded(st, total + 1)
    # kill -9 of LiteLLM's server: what it recorded is there, and its launcher brings it back
    from tasks.stack.launcher_files import worker_path

    os.kill(json.loads(worker_path(st.paths, "litellm", st.pid("litellm")).read_text())["pid"], signal.SIGKILL)
    assert by_model(usage(st))["gpt-5"]["requests"] == before.get("gpt-5", {}).get("requests", 0) + 1
    def serves():
        try:
            return send(st, "/v1/chat/completions", {"model": "gpt-5", "messages": msg}).status_code == 200
        except httpx.TransportError:
            return False
    wait_for(serves, timeout=120, interval=0.5, what="LiteLLM serving again")
    recorded(st, total + 2)
    assert st.doit("doctor").stdout.count("usage") >= 1

"""The usage recorder's cost per request (issue 18): LiteLLM's latency with and without it.

One stack (the CLIProxyAPI double behind the real LiteLLM), sequential requests on one keep-alive
connection, medians. Recording is switched with `litellm.env: {FLOWGATE_USAGE: "off"}` (a config
change `doit up` applies by a swap); rounds alternate off / on to spread the machine's drift over
both. Plain and streamed chat completions.

    cd bench && uv run python recorder.py        (BENCH_REQUESTS=300 BENCH_ROUNDS=2 by default)
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import time

from _harness import ROOT, doit_argv
from stack import installed_home, run

sys.path.insert(0, str(ROOT))
from tests.fakes.github import FakeGitHub  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def configure(home, lport: int, cport: int, recording: bool) -> None:
    env = "" if recording else "  env: {FLOWGATE_USAGE: \"off\"}\n"
    (home / "config/local.yaml").write_text(f"litellm:\n  port: {lport}\n{env}cliproxy:\n  port: {cport}\n")


def latencies(port: int, key: str, stream: bool) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"model": "gpt-5.5", "messages": [{"role": "user", "content": "one two three"}], "stream": stream})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    out = []
    for i in range(REQUESTS + 10):
        start = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body, headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"request failed: {resp.status}")
        if resp.getheader("connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        if i >= 10:  # warm-up
            out.append((time.perf_counter() - start) * 1000)
    conn.close()
    return out


def on_path_cost(n: int = 5000) -> tuple[float, float]:
    """Microseconds per request of a trivial ASGI app, bare and wrapped (the writer thread running)."""
    import asyncio
    import tempfile
    from pathlib import Path

    from tasks.base.paths import Paths
    from tasks.gateway.usage.recorder import BATCH_WAIT, record_usage

    body = json.dumps({"model": "gpt-5.5", "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
    answer = json.dumps({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 3}}).encode()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    async def receive():
        return {"type": "http.request", "body": body}

    async def send(message):
        pass

    scope = {"type": "http", "path": "/v1/chat/completions", "method": "POST"}
    wrapped = record_usage(app, Paths(root=ROOT, home=Path(tempfile.mkdtemp(prefix="fg-rec-"))))

    async def loop(target) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await target(scope, receive, send)
        return (time.perf_counter() - start) / n * 1e6

    def drained() -> None:  # below the queue's bound: nothing dropped, the writer keeps up between runs
        while wrapped.writer.pending:
            time.sleep(0.05)
        time.sleep(BATCH_WAIT * 2)

    bare, recorded = [], []
    for _ in range(5):
        bare.append(asyncio.run(loop(app)))
        drained()
        recorded.append(asyncio.run(loop(wrapped)))
    assert wrapped.writer.dropped == 0
    return statistics.median(bare), statistics.median(recorded)


def main() -> None:
    bare, recorded = on_path_cost()
    print(f"on the request path (trivial ASGI app, in process): bare {bare:.1f} us, recorded {recorded:.1f} us, "
          f"+{recorded - bare:.1f} us per request")
    if os.environ.get("BENCH_MICRO_ONLY"):
        return
    with FakeGitHub() as gh:
        home, env, lport = installed_home(gh)
        cport = int((home / "config/local.yaml").read_text().split("cliproxy: {port: ")[1].split("}")[0])
        key = None
        results: dict[tuple[bool, bool], list[float]] = {}
        try:
            for _ in range(ROUNDS):
                for recording in (False, True):
                    configure(home, lport, cport, recording)
                    run(doit_argv("up"), env, home)
                    key = key or (home / ".router/secrets/litellm_master_key").read_text().strip()
                    for stream in (False, True):
                        results.setdefault((recording, stream), []).extend(latencies(lport, key, stream))
            time.sleep(1.0)  # the writer's last batch (it writes every 0.5 s)
            rows = subprocess.run(doit_argv("usage", "--json", "--since", "1h"), env=env, cwd=home,
                                  capture_output=True, text=True)
            recorded = json.loads(rows.stdout)["totals"]["requests"] if rows.returncode == 0 else "?"
        finally:
            subprocess.run(doit_argv("down"), env=env, cwd=home, capture_output=True)
    for stream in (False, True):
        off, on = results[(False, stream)], results[(True, stream)]
        kind = "streamed" if stream else "plain"
        print(f"{kind:8} without recorder: median {statistics.median(off):.2f} ms (p90 {statistics.quantiles(off, n=10)[-1]:.2f}), "
              f"with: median {statistics.median(on):.2f} ms (p90 {statistics.quantiles(on, n=10)[-1]:.2f}), "
              f"difference {statistics.median(on) - statistics.median(off):+.2f} ms  [{len(off)} + {len(on)} requests]")
    print(f"rows recorded while it was on: {recorded} (expected {2 * ROUNDS * (REQUESTS + 10)})")


if __name__ == "__main__":
    main()

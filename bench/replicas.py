"""Replicas and the shared Redis (issue 12): requests per second through 1 vs 2 LiteLLM replicas to
the CLIProxyAPI test double under the same client load, in the same run, and the per-request cost
of pointing the router at a Redis (the managed one).

Load: BENCH_CLIENTS worker processes (default 6), each one keep-alive connection sending
non-streamed chat completions back to back for BENCH_SECONDS (default 10); the kernel spreads the
connections over the replicas. Latency: one client, one request at a time, BENCH_SEQUENTIAL (200)
requests; the median is compared without and with Redis.

    cd bench && uv run python replicas.py
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time

import httpx
from _harness import doit_argv
from stack import FakeGitHub, installed_home, run

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "6"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "200"))
BODY = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


def _worker(args) -> tuple[int, int, set]:
    url, key, until = args
    ok = failed = 0
    pids = set()
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        while time.time() < until:
            resp = client.post("/v1/chat/completions", json=BODY)
            if resp.status_code == 200:
                ok += 1
                pids.add(resp.headers.get("x-flowgate-instance"))
            else:
                failed += 1
    return ok, failed, pids


def throughput(url: str, key: str) -> tuple[float, int, int]:
    """Requests per second over the run, failures, and how many instances answered."""
    with multiprocessing.Pool(CLIENTS) as pool:
        until = time.time() + SECONDS
        results = pool.map(_worker, [(url, key, until)] * CLIENTS)
    ok = sum(r[0] for r in results)
    return ok / SECONDS, sum(r[1] for r in results), len(set().union(*(r[2] for r in results)))


def latency(url: str, key: str) -> list[float]:
    samples = []
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(20):  # warm-up
            client.post("/v1/chat/completions", json=BODY)
        for _ in range(SEQUENTIAL):
            start = time.perf_counter()
            resp = client.post("/v1/chat/completions", json=BODY)
            samples.append(time.perf_counter() - start)
            assert resp.status_code == 200, resp.text
    return samples


def main() -> None:
    with FakeGitHub() as gh:
        home, env, lport = installed_home(gh)
        local = home / "config/local.yaml"
        base = local.read_text().replace("litellm: {", "litellm: {replicas: REPLICAS, ")
        url = f"http://127.0.0.1:{lport}"
        rows = []
        try:
            for replicas, redis in ((1, False), (2, False), (2, True)):
                local.write_text(base.replace("REPLICAS", str(replicas))
                                 + ("redis: {managed: true, port: %d}\n" % (lport + 7) if redis else ""))
                run(doit_argv("up"), env, home)
                key = (home / ".router/secrets/litellm_master_key").read_text().strip()
                latency(url, key)  # warm both replicas' code paths
                rps, failed, answered = throughput(url, key)
                lat = latency(url, key)
                rows.append((replicas, redis, rps, failed, answered, statistics.median(lat) * 1000,
                             sorted(lat)[int(len(lat) * 0.9)] * 1000))
        finally:
            run(doit_argv("down"), env, home)
    print(f"load: {CLIENTS} clients x keep-alive, {SECONDS:g} s each; latency: {SEQUENTIAL} sequential requests; "
          f"{os.cpu_count()} CPUs")
    for replicas, redis, rps, failed, answered, median, p90 in rows:
        print(f"  replicas={replicas} redis={'managed' if redis else 'none':7}  {rps:7.1f} req/s  failed={failed}  "
              f"instances answering={answered}  latency median {median:.1f} ms  p90 {p90:.1f} ms")
    one, two, shared = rows
    print(f"2 vs 1 replica: {two[2] / one[2]:.2f}x requests per second")
    print(f"Redis overhead per request (median, 2 replicas): {shared[5] - two[5]:+.2f} ms")


if __name__ == "__main__":
    main()

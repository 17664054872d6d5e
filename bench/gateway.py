"""The gateway's own cost (issue 19): what a request pays for going through LiteLLM, in one run, on
three paths to the same instant upstream (bench/_upstream.py):

- direct: the upstream alone;
- bare: `litellm --config` (one worker process, as FlowGate runs by default);
- flowgate: FlowGate's launcher (`python -m tasks.gateway`), the same config with
  FlowGate's key hook, told where CLIProxyAPI is (here: the bench upstream) as `doit up` tells it;
- fg-litellm: the same launcher on a config that sends every request to LiteLLM's path (fallbacks for
  both models, as the `reliable` profile has: tasks.gateway.leanpolicy), so the cost of the lean path's
  check and the body's replay in front of LiteLLM shows beside bare LiteLLM.

Load comes from `wrk` (Debian package `wrk`; one thread, a Lua body); stream timings from a client
here that reads the first body bytes. Per path: added latency p50/p99 on one connection
(BENCH_LATENCY_SECONDS, default 5, for chat, Responses and Messages), throughput at 32 connections
(BENCH_SECONDS, default 10), time to the first body byte of streamed and plain requests alternating
on one connection (BENCH_STREAMS of each per API, default 200: a stream's overhead is compared with
a plain request's as the same client sees both), failed requests; then the RSS of FlowGate's LiteLLM
process before and after BENCH_RSS_REQUESTS (default 50,000) requests at 8 connections (only on
FlowGate's path: at bare LiteLLM's ~100 req/s, 50,000 requests take ~8 minutes).

Then, in process, what the gate (tasks.gateway.gate: the key from the headers, the repeated-key and
refused-key checks, issue 31) and the lean path's watch for a departed client cost per request in
front of a trivial app, for a one-line body and an ~80 KB Codex-like one, compact (as Codex, Claude
Code and the OpenAI SDKs send) and spaced (Python's json.dumps); and what a member's key adds over
the master key (issue 30: the lookup by hash, the model patterns, the rpm window). `BENCH_ONLY=gate`
runs only that.

    cd bench && uv run python gateway.py
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT

LATENCY_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "5"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
STREAMS = int(os.environ.get("BENCH_STREAMS", "200"))
RSS_REQUESTS = int(os.environ.get("BENCH_RSS_REQUESTS", "50000"))
RSS_DEADLINE = 300  # seconds: the RSS run stops there whatever it reached (and says so)
KEY = "sk-bench-" + "0" * 32
APIS = {  # name -> (path, body, stream body)
    "chat": ("/v1/chat/completions", '{"model":"gpt-5","messages":[{"role":"user","content":"hi"}]}'),
    "responses": ("/v1/responses", '{"model":"gpt-5","input":"hi"}'),
    "messages": ("/v1/messages", '{"model":"claude-sonnet-4-5","max_tokens":16,'
                                 '"messages":[{"role":"user","content":"hi"}]}'),
}
CONFIG = """model_list:
  - model_name: gpt-5
    litellm_params: {{model: openai/gpt-5, api_base: "{root}/v1", api_key: sk-upstream}}
  - model_name: claude-sonnet-4-5
    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{root}", api_key: sk-upstream}}
litellm_settings: {{drop_params: true, num_retries: 1, request_timeout: 600}}
router_settings: {{routing_strategy: simple-shuffle}}
general_settings:
  master_key: {key}
  custom_auth: flowgate_auth.user_api_key_auth
"""
# Fallbacks for both models: the lean path stands aside for them (LiteLLM falls back on a 400 too).
TO_LITELLM = CONFIG.replace("router_settings: {{routing_strategy: simple-shuffle}}",
                            "router_settings: {{routing_strategy: simple-shuffle, fallbacks: "
                            "[{{gpt-5: [claude-sonnet-4-5]}}, {{claude-sonnet-4-5: [gpt-5]}}]}}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A process in its own session, stopped (the whole group) on exit."""

    def __init__(self, argv, port: int, ready: str, env=None, cwd=None, log=None):
        self.port = port
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=True,
                                     stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{argv[:3]} exited with {self.proc.returncode} (log: {log.name if log else '-'})")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", ready)
                if conn.getresponse().status < 500:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{argv[:3]} not ready after 180 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def lua(tmp: Path, api: str, stop_after: int = 0) -> Path:
    path, body = APIS[api]
    text = f'wrk.method = "POST"\nwrk.body = [[{body}]]\nwrk.headers["Content-Type"] = "application/json"\n'
    if stop_after:  # count answers; stop the thread at the count
        text += f"local n = 0\nfunction response(status, headers, body)\n  n = n + 1\n" \
                f"  if n >= {stop_after} then wrk.thread:stop() end\nend\n"
    out = tmp / f"{api}-{stop_after}.lua"
    out.write_text(text)
    return out


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, script: Path, connections: int, seconds: float, auth: bool) -> dict:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "30s", "-s", str(script)]
    if auth:
        argv += ["-H", f"Authorization: Bearer {KEY}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    pct = {int(p): float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    bad += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"p50": pct.get(50), "p99": pct.get(99), "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "total": total, "failed": bad}


def ttfb(port: int, api: str, auth: bool) -> tuple[list[float], list[float], int]:
    """Milliseconds from sending a request to its first body bytes, streamed and not, alternating on
    one keep-alive connection (the same client and conditions for both); failures."""
    path, body = APIS[api]
    bodies = {True: body[:-1] + ',"stream":true}', False: body}
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {KEY}"} if auth else {})}
    conn, samples, failed = http.client.HTTPConnection("127.0.0.1", port, timeout=30), {True: [], False: []}, 0
    for i in range(2 * (STREAMS + 10)):
        stream = i % 2 == 0
        start = time.perf_counter()
        conn.request("POST", path, bodies[stream], headers)
        resp = conn.getresponse()
        first = resp.read1(65536)
        took = time.perf_counter() - start
        whole = first + resp.read()
        if resp.status != 200 or (stream and not any(end in whole for end in (b"[DONE]", b"_stop", b"response.completed"))):
            failed += 1
        elif i >= 20:  # warm-up
            samples[stream].append(took * 1000)
    conn.close()
    return samples[True], samples[False], failed


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def measure(name: str, port: int, tmp: Path, auth: bool) -> dict:
    url = f"http://127.0.0.1:{port}"
    for api in APIS:  # warm every route and the streams
        wrk(url + APIS[api][0], lua(tmp, api), 4, 2, auth)
        ttfb(port, api, auth)
    row = {"name": name, "failed": 0}
    for api in APIS:
        res = wrk(url + APIS[api][0], lua(tmp, api), 1, LATENCY_SECONDS, auth)
        row[api], row["failed"] = res, row["failed"] + res["failed"]
    res = wrk(url + APIS["chat"][0], lua(tmp, "chat"), 32, SECONDS, auth)
    row["throughput"], row["failed"] = res, row["failed"] + res["failed"]
    for api in APIS:
        streamed, plain, failed = ttfb(port, api, auth)
        row[f"ttfb_{api}"], row[f"plain_{api}"] = statistics.median(streamed), statistics.median(plain)
        row["failed"] += failed
    print(f"  {name}: done ({row['failed']} failed)", flush=True)
    return row


def served_path(port: int) -> str:
    """Which path answered a chat request (`x-flowgate-path`), so a row measures what it names."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", APIS["chat"][0], body=APIS["chat"][1],
                 headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.getheader("x-flowgate-path") or "litellm"


def rss_run(pid: int, port: int, tmp: Path) -> tuple[float, float, int, int, float]:
    """wrk runs for its whole -d even when a script stops its thread: rounds of 10 s until the count."""
    before, start, total, failed = rss_mb(pid), time.perf_counter(), 0, 0
    url = f"http://127.0.0.1:{port}{APIS['chat'][0]}"
    while total < RSS_REQUESTS and time.perf_counter() - start < RSS_DEADLINE:
        res = wrk(url, lua(tmp, "chat", RSS_REQUESTS - total), 8, 10, True)
        total, failed = total + res["total"], failed + res["failed"]
    return before, rss_mb(pid), total, failed, time.perf_counter() - start


def workdir(prefix: str, config: str) -> tuple[Path, int, str]:
    """A temp dir holding LiteLLM's config (for an upstream on a free port), FlowGate's key hook and
    the key: (dir, upstream port, upstream root URL)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    up_port = free_port()
    root = f"http://127.0.0.1:{up_port}"
    (tmp / "config.yaml").write_text(config.format(root=root, key=KEY))
    shutil.copy(ROOT / "templates" / "flowgate_auth.py", tmp / "flowgate_auth.py")
    (tmp / "key").write_text(KEY + "\n")
    return tmp, up_port, root


def litellm_env(tmp: Path, root: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION", "CONFIG_FILE_PATH": str(tmp / "config.yaml"),
                "FLOWGATE_GATEWAY_KEY_FILE": str(tmp / "key"), "FLOWGATE_LEAN_UPSTREAM": root,
                "PYTHONPATH": str(ROOT)})
    return env


def report(rows: list[dict], rss) -> None:
    direct, bare, fg, to_litellm = rows
    print(f"\n{os.cpu_count()} CPUs; latency: 1 connection x {LATENCY_SECONDS:g} s per API; throughput: 32 connections x "
          f"{SECONDS:g} s (chat); first bytes: {STREAMS} streamed + {STREAMS} plain per API; one LiteLLM process per gateway")
    print(f"{'path':9} {'chat p50/p99 ms':>17} {'responses p50':>14} {'messages p50':>13} {'req/s @32':>10} "
          f"{'stream TTFB chat/resp/msg ms':>29} {'failed':>7}")
    for r in rows:
        print(f"{r['name']:9} {r['chat']['p50']:8.2f}/{r['chat']['p99']:<8.2f} {r['responses']['p50']:14.2f} "
              f"{r['messages']['p50']:13.2f} {r['throughput']['rps']:10.0f} "
              f"{r['ttfb_chat']:8.2f}/{r['ttfb_responses']:.2f}/{r['ttfb_messages']:.2f} {r['failed']:7d}")

    def added(r, api="chat", q="p50"):
        return r[api][q] - direct[api][q]
    for api in APIS:
        print(f"added latency p50, {api:9}: bare {added(bare, api):6.2f} ms, flowgate {added(fg, api):6.2f} ms "
              f"= {added(fg, api) / added(bare, api):.2f}x bare")
    print(f"added latency p99, chat     : bare {added(bare, q='p99'):6.2f} ms, flowgate {added(fg, q='p99'):6.2f} ms")
    print(f"throughput at 32 connections: flowgate {fg['throughput']['rps']:.0f} / bare {bare['throughput']['rps']:.0f} "
          f"req/s = {fg['throughput']['rps'] / bare['throughput']['rps']:.2f}x")
    for api in APIS:
        print(f"on LiteLLM's path (fg-litellm), {api:9}: added p50 {added(to_litellm, api):6.2f} ms = "
              f"{added(to_litellm, api) - added(bare, api):+.2f} ms over bare LiteLLM")
    print(f"throughput on LiteLLM's path: fg-litellm {to_litellm['throughput']['rps']:.0f} / bare "
          f"{bare['throughput']['rps']:.0f} req/s = {to_litellm['throughput']['rps'] / bare['throughput']['rps']:.2f}x")
    def over(r, api, kind):
        return r[f"{kind}_{api}"] - direct[f"{kind}_{api}"]
    for api in APIS:  # both from the same alternating client (ttfb)
        print(f"stream TTFB overhead, {api:9}: flowgate {over(fg, api, 'ttfb'):6.2f} ms vs non-stream "
              f"{over(fg, api, 'plain'):.2f} ms (bare {over(bare, api, 'ttfb'):.2f} vs {over(bare, api, 'plain'):.2f})")
    print(f"failed: direct {direct['failed']}, bare {bare['failed']}, flowgate {fg['failed']}, "
          f"fg-litellm {to_litellm['failed']}")
    before, after, total, failed, took = rss
    print(f"RSS of FlowGate's LiteLLM process: {before:.1f} MB before, {after:.1f} MB after {total} requests "
          f"({failed} failed, {took:.0f} s) = {after - before:+.1f} MB")


def gate_cost() -> None:
    """Microseconds per request the gate and the departed-client watch add in front of a trivial app."""
    import asyncio
    import json
    import timeit

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from tasks.gateway import gate
    from tasks.gateway import leanpath

    turns = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "héllo wörld " * 25}]}
             for _ in range(200)]
    big = {"model": "gpt-5", "instructions": "You are Codex. " * 200, "input": turns, "stream": True,
           "tools": [{"type": "function", "name": f"t{i}", "parameters": {"type": "object"}} for i in range(20)]}
    bodies = {"one line": json.loads(APIS["chat"][1]), "80 KB": big}

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def watched(scope, receive, send):  # the lean path's watch for a client that leaves, around app
        await leanpath.LeanPath._unless_gone(app(scope, receive, send), receive)

    door = gate.Gate(watched, state=lambda: (KEY, None))
    scope = {"type": "http", "method": "POST", "path": "/v1/responses",
             "headers": [(b"authorization", f"Bearer {KEY}".encode()), (b"content-type", b"application/json")]}

    def per_request(asgi, raw: bytes, n: int, scope=scope) -> float:
        async def many():
            done = asyncio.Event()

            async def send(message):
                if message["type"] == "http.response.body":
                    done.set()
            for _ in range(n):
                parts = [{"type": "http.request", "body": raw, "more_body": False}]
                done.clear()

                async def receive():
                    if parts:
                        return parts.pop()
                    await done.wait()
                    return {"type": "http.disconnect"}
                await asyncio.wait_for(asyncio.ensure_future(asyncio.shield(asgi(dict(scope), receive, send))), 10)
        return min(timeit.repeat(lambda: asyncio.run(many()), number=1, repeat=5)) / n * 1e6

    for name, body in bodies.items():
        for form, raw in (("compact", json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()),
                          ("spaced", json.dumps(body).encode())):
            n = 2000 if name == "one line" else 200
            bare, gated = per_request(app, raw, n), per_request(door, raw, n)
            print(f"gate + watch, {name:8} {form:7} ({len(raw) / 1024:5.1f} KB): {bare:7.1f} -> {gated:7.1f} µs "
                  f"per request = +{gated - bare:.1f} µs")
    member_cost(per_request, door, json.dumps(bodies["one line"], separators=(",", ":")).encode(), scope)
    steered_cost(per_request, door, json.dumps(bodies["one line"], separators=(",", ":")).encode(), scope)


def steered_cost(per_request, master_door, raw: bytes, scope: dict) -> None:
    """What the account pool's check (issue 29: tasks.gateway.steered) adds when the steward's state file
    is present and steers another model: the lookup alone (p50 of single calls), and whole requests
    against a gate with no state file."""
    import statistics
    import tempfile
    import time

    import json

    from tasks.gateway import gate, steered

    with tempfile.TemporaryDirectory() as tmp:
        pool = Path(tmp) / "pool.json"
        pool.write_text(json.dumps({"updated": time.time() + 3600, "threshold": 90, "steering": True, "accounts": [],
                                    "steered": {f"other-{i}": {"provider": "codex", "resets_at": time.time() + 3600,
                                                               "fallback": None} for i in range(20)}}))
        none = gate.Gate(master_door.app, state=master_door.state, steered=steered.Steered(str(Path(tmp) / "missing")))
        present = gate.Gate(master_door.app, state=master_door.state, steered=steered.Steered(str(pool)))
        look = steered.Steered(str(pool))
        times = []
        for _ in range(20000):
            t0 = time.perf_counter()
            look.lookup("gpt-5")
            times.append(time.perf_counter() - t0)
        bare, with_file = per_request(none, raw, 2000), per_request(present, raw, 2000)
    print(f"steered lookup, state file present, model not steered: {statistics.median(times) * 1e6:.2f} µs (p50)")
    print(f"gate + watch, no state file -> state file steering 20 other models: {bare:7.1f} -> {with_file:7.1f} µs "
          f"per request = {with_file - bare:+.1f} µs")


def member_cost(per_request, master_door, raw: bytes, scope: dict) -> None:
    """What a member's key (issue 30) adds over the master key on the gate's path: the lookup by hash
    in the book, the model's patterns, the rpm window (p50 of single calls), and whole requests."""
    import statistics
    import tempfile
    import time

    from tasks.base.paths import Paths
    from tasks.gateway import gate
    from tasks.gateway.keys import enforce
    from tasks.gateway.keys.book import KeyBook
    from tasks.gateway.keys.budget import Budgets
    from tasks.keys import manage

    with tempfile.TemporaryDirectory(prefix="bench-keys-") as home:
        paths = Paths(root=ROOT, home=Path(home))
        for i in range(200):  # a team's worth of keys in the book
            manage.create(paths, f"member{i}", rpm=10**9, models=["claude-*", "gpt-*"])
        key = manage.create(paths, "bench", rpm=10**9, tpm=10**9, budget=10**6, period="month",
                            models=["claude-*", "gpt-*"])
        book, window, sums = KeyBook(paths.keys_db), enforce.Window(), Budgets(paths, start_thread=False)
        member = enforce.admit(book, (key,))
        sums.refusal(member)  # the periods in use, summed once (the thread's work, off the request path)
        sums.refresh()
        times = []
        for _ in range(20000):
            began = time.perf_counter_ns()
            member = enforce.admit(book, (key,))
            enforce.model_refusal(member, "gpt-5") or sums.refusal(member) or window.take(member)
            times.append(time.perf_counter_ns() - began)
        print(f"member key, lookup + model + budget + tpm + rpm: p50 {statistics.median(times) / 1000:.2f} µs, "
              f"p99 {statistics.quantiles(times, n=100)[98] / 1000:.2f} µs (single calls; 201 keys in the book)")
        checks = []
        for _ in range(2000):  # every REFRESH_S, and on a key the book does not know: the database unchanged
            began = time.perf_counter_ns()
            book.refresh()
            checks.append(time.perf_counter_ns() - began)
        print(f"member key, the book's check of the database (every 0.25 s, and per unknown key): "
              f"p50 {statistics.median(checks) / 1000:.2f} µs")
        door = gate.Gate(master_door.app, state=master_door.state, book=book, spent=sums)
        as_member = {**scope, "path": "/v1/chat/completions",
                     "headers": [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")]}
        as_master = {**scope, "path": "/v1/chat/completions"}
        master = min(per_request(door, raw, 2000, as_master) for _ in range(3))
        by_member = min(per_request(door, raw, 2000, as_member) for _ in range(3))
        print(f"gate + watch, one line, master key {master:7.1f} µs, member key {by_member:7.1f} µs per request "
              f"= +{by_member - master:.1f} µs")
        shared_cost(per_request, door, raw, as_member, member)


def shared_cost(per_request, door, raw: bytes, as_member: dict, member) -> None:
    """What counting rpm/tpm in Redis (replicas: tasks.gateway.keys.shared) adds: one script per request
    on the process's one connection, to a local redis-server (p50 of single calls, and whole requests)."""
    import asyncio
    import statistics
    import subprocess
    import time

    from tasks.gateway import gate
    from tasks.gateway.keys import resp, shared

    binary = shutil.which("redis-server")
    if not binary:
        print("member key, shared counters: skipped (no redis-server: apt-get install redis-server)")
        return
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "bench",
                               "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        counters = shared.Counters(resp.Client("127.0.0.1", port, "bench", scripts=(shared.CHECK, shared.ADD)))

        async def singles(n: int) -> list[int]:
            for _ in range(200):  # until it answers
                try:
                    await counters.take(member)
                    break
                except resp.Down:
                    counters.client.down_until = 0.0
                    await asyncio.sleep(0.02)
            times = []
            for _ in range(n):
                began = time.perf_counter_ns()
                await counters.take(member)
                times.append(time.perf_counter_ns() - began)
            return times

        try:  # the gateway's loop: uvicorn takes uvloop when it is installed (LiteLLM's dependencies bring it)
            import uvloop

            times = uvloop.run(singles(20000))
        except ImportError:
            times = asyncio.run(singles(20000))
        print(f"member key, shared counters (rpm + tpm in Redis, one round trip, uvloop): p50 "
              f"{statistics.median(times) / 1000:.2f} µs, p99 {statistics.quantiles(times, n=100)[98] / 1000:.2f} µs")
        in_process = min(per_request(door, raw, 2000, as_member) for _ in range(3))
        door = gate.Gate(door.app, state=door.state, book=door.book, spent=door.spent, shared=counters)
        with_redis = min(per_request(door, raw, 2000, as_member) for _ in range(3))
        print(f"gate + watch, one line, member key counted in process {in_process:7.1f} µs, in Redis "
              f"{with_redis:7.1f} µs per request = +{with_redis - in_process:.1f} µs")
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    if os.environ.get("BENCH_ONLY") == "gate":
        return gate_cost()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    tmp, up_port, root = workdir("bench-gateway-", CONFIG)
    (tmp / "config.litellm.yaml").write_text(TO_LITELLM.format(root=root, key=KEY))
    bare_port, fg_port, fgl_port = free_port(), free_port(), free_port()
    env, services, rows = litellm_env(tmp, root), [], []
    try:
        up = Service([sys.executable, str(Path(__file__).with_name("_upstream.py")), str(up_port)], up_port, "/")
        services.append(up)
        rows.append(measure("direct", up_port, tmp, False))
        with open(tmp / "bare.log", "w") as log:
            bare = Service([str(Path(sys.executable).with_name("litellm")), "--config", str(tmp / "config.yaml"),
                            "--host", "127.0.0.1", "--port", str(bare_port), "--num_workers", "1"],
                           bare_port, "/health/liveliness", env, tmp, log)
        services.append(bare)
        rows.append(measure("bare", bare_port, tmp, True))
        bare.stop()
        with open(tmp / "flowgate.log", "w") as log:
            fg = Service([sys.executable, "-m", "tasks.gateway", "--host", "127.0.0.1",
                          "--port", str(fg_port), "--grace", "5"], fg_port, "/health/liveliness", env, tmp, log)
        services.append(fg)
        assert served_path(fg_port) == "lean", "the default config is not on the lean path"
        rows.append(measure("flowgate", fg_port, tmp, True))
        rss = rss_run(fg.proc.pid, fg_port, tmp)
        fg.stop()
        with open(tmp / "fg-litellm.log", "w") as log:
            fgl = Service([sys.executable, "-m", "tasks.gateway", "--host", "127.0.0.1",
                           "--port", str(fgl_port), "--grace", "5"], fgl_port, "/health/liveliness",
                          {**env, "CONFIG_FILE_PATH": str(tmp / "config.litellm.yaml")}, tmp, log)
        services.append(fgl)
        assert served_path(fgl_port) == "litellm", "the fallback config is not on LiteLLM's path"
        rows.append(measure("fg-litellm", fgl_port, tmp, True))
    finally:
        for s in services:
            s.stop()
    report(rows, rss)
    shutil.rmtree(tmp, ignore_errors=True)
    gate_cost()


if __name__ == "__main__":
    main()

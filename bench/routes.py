"""Pattern routes or named models: what routing an id by LiteLLM's pattern (`*` -> `openai/*`,
`claude-*` -> `anthropic/claude-*`, how FlowGate routes every id the accounts serve) costs per
request against a model named in the config, on the same instant upstream (bench/_upstream.py), in
one run, on bare `litellm --config` (LiteLLM's own path) and on FlowGate's launcher (the lean path).

Sequential requests on one keep-alive connection, the named and the pattern-routed id alternating
(BENCH_ROUTE_REQUESTS of each, default 400, after 40 of warm-up), for chat completions and Anthropic
Messages; prints the medians and p90 and the difference. A re-render would instead cost a LiteLLM
swap per catalog change (bench/swap.py: ~3.5 s until the new config serves).

    cd bench && uv run python routes.py
"""

from __future__ import annotations

import http.client
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from gateway import KEY, Service, free_port, litellm_env, workdir

REQUESTS = int(os.environ.get("BENCH_ROUTE_REQUESTS", "400"))
CONFIG = """model_list:
  - model_name: gpt-named
    litellm_params: {{model: openai/gpt-named, api_base: "{root}/v1", api_key: sk-upstream}}
  - model_name: claude-named
    litellm_params: {{model: anthropic/claude-named, api_base: "{root}", api_key: sk-upstream}}
  - model_name: "claude-*"
    litellm_params: {{model: "anthropic/claude-*", api_base: "{root}", api_key: sk-upstream}}
    model_info: {{flowgate: flowgate-catalog}}
  - model_name: "*"
    litellm_params: {{model: "openai/*", api_base: "{root}/v1", api_key: sk-upstream}}
    model_info: {{flowgate: flowgate-catalog}}
litellm_settings: {{drop_params: true, num_retries: 1, request_timeout: 600}}
router_settings: {{routing_strategy: simple-shuffle}}
general_settings:
  master_key: {key}
  custom_auth: flowgate_auth.user_api_key_auth
"""
PAIRS = {  # api -> (path, named id, an id only the pattern routes, the body with {model})
    "chat": ("/v1/chat/completions", "gpt-named", "gpt-9-pattern",
             '{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}'),
    "messages": ("/v1/messages", "claude-named", "claude-pattern-9",
                 '{{"model":"{model}","max_tokens":16,"messages":[{{"role":"user","content":"hi"}}]}}'),
}


def alternate(port: int, api: str) -> tuple[list[float], list[float]]:
    """Milliseconds per request for the named id and the pattern-routed one, alternating."""
    path, named, pattern, body = PAIRS[api]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    samples: dict[str, list[float]] = {named: [], pattern: []}
    for i in range(2 * (REQUESTS + 20)):
        model = named if i % 2 == 0 else pattern
        start = time.perf_counter()
        conn.request("POST", path, body.format(model=model), headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"{api} {model}: HTTP {resp.status}")
        if i >= 40:
            samples[model].append((time.perf_counter() - start) * 1000)
    conn.close()
    return samples[named], samples[pattern]


def line(path: str, api: str, named: list[float], pattern: list[float]) -> str:
    p90 = lambda xs: sorted(xs)[int(len(xs) * 0.9)]  # noqa: E731
    return (f"  {path:<9} {api:<9} named {statistics.median(named):6.2f} ms (p90 {p90(named):6.2f})   "
            f"pattern {statistics.median(pattern):6.2f} ms (p90 {p90(pattern):6.2f})   "
            f"difference {statistics.median(pattern) - statistics.median(named):+.2f} ms")


def main() -> None:
    tmp, up_port, root = workdir("bench-routes-", CONFIG)
    port = free_port()
    env, services, lines = litellm_env(tmp, root), [], []
    try:
        services.append(Service([sys.executable, str(Path(__file__).with_name("_upstream.py")), str(up_port)], up_port, "/"))
        launches = {
            "bare": [str(Path(sys.executable).with_name("litellm")), "--config", str(tmp / "config.yaml"),
                     "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
            "flowgate": [sys.executable, "-m", "tasks.gateway", "--host", "127.0.0.1",
                         "--port", str(port), "--grace", "5"],
        }
        for name, argv in launches.items():
            with open(tmp / f"{name}.log", "w") as log:
                service = Service(argv, port, "/health/liveliness", env, tmp, log)
            try:
                for api in PAIRS:
                    lines.append(line(name, api, *alternate(port, api)))
            finally:
                service.stop()
    finally:
        for s in services:
            s.stop()
    print(f"{REQUESTS} sequential requests per id, named and pattern-routed alternating; {os.cpu_count()} CPUs")
    print("\n".join(lines))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

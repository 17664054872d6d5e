"""Stack figures (issues 3 and 4), same machine, same run, doit's floor measured alongside:

- warm `doit fetch`: HTTP requests made (target 0) and wall time vs the floor
- no-op `doit up` and `doit status` on a healthy stack vs the floor (target <= 1.5x)
- `doit down` with both services running
- cold `doit up` (binary already fetched) until both ready vs `litellm --config <same file>` alone
  until ready (target <= 1.10x)

Uses the CLIProxyAPI double from tests/fakes, installed (mainline, as the shipped config says)
through the fake of today's GitHub Releases API (tests/fakes/today.py).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _harness import ROOT, doit_argv, doit_floor_dir, floor_argv, flowgate_env, flowgate_home, summary, timed

sys.path.insert(0, str(ROOT))
from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.fakes.today import publish_today  # noqa: E402
from tests.support import free_port, seed_accounts  # noqa: E402

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "3"))


def run(argv, env, cwd):
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} not ready in {timeout} s")


def litellm_alone(config: Path, port: int) -> float:
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    start = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "litellm"), "--config", str(config),
                             "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness")
        return time.perf_counter() - start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def installed_home(gh: FakeGitHub, extra_local: str = "") -> tuple[Path, dict, int]:
    """A FlowGate home on free ports with the CLIProxyAPI double fetched (mainline, from today's GitHub,
    as the shipped config says): (home, env, litellm port)."""
    home = flowgate_home()
    env = flowgate_env(home)
    env.update(CI="true", CLIPROXY_DOUBLE_CATALOG=str(ROOT / "tests" / "fakes" / "models.json"))
    seed_accounts(home / ".router" / "auths", "codex", "claude")  # as after `doit login:codex` and `login:claude`
    publish_today(gh, home / "dist")
    env["GITHUB_API_URL"] = gh.api_url
    lport, cport = free_port(), free_port()
    (home / "config/local.yaml").write_text(f"litellm: {{port: {lport}}}\ncliproxy: {{port: {cport}}}\n" + extra_local)
    run(doit_argv("fetch"), env, home)
    return home, env, lport


def main() -> None:
    floor_dir = doit_floor_dir()
    with FakeGitHub() as gh:
        home, env, lport = installed_home(gh)
        gh.reset_counts()
        fetch_t = timed(doit_argv("fetch"), cwd=home, env=env, runs=10)
        fetch_requests = gh.total_requests

        cold, alone, down = [], [], []
        try:
            for _ in range(COLD_RUNS):
                run(doit_argv("down"), env, home)
                start = time.perf_counter()
                run(doit_argv("up"), env, home)
                cold.append(time.perf_counter() - start)
                start = time.perf_counter()
                run(doit_argv("down"), env, home)
                down.append(time.perf_counter() - start)
                alone.append(litellm_alone(home / ".router/litellm/config.yaml", lport))
            run(doit_argv("up"), env, home)
            floor, up, status = [], [], []
            for _ in range(5):
                floor += timed(floor_argv(), cwd=floor_dir, runs=4, warmup=1)
                up += timed(doit_argv("up"), cwd=home, env=env, runs=4, warmup=1)
                status += timed(doit_argv("status"), cwd=home, env=env, runs=4, warmup=1)
        finally:
            subprocess.run(doit_argv("down"), env=env, cwd=home, capture_output=True)
    f = statistics.median(floor)
    print(f"doit floor (1 up-to-date task):   {summary(floor)}")
    print(f"warm doit fetch:                   {summary(fetch_t)}  {statistics.median(fetch_t) / f:.2f}x floor, "
          f"{fetch_requests} HTTP requests in {len(fetch_t) + 2} runs")
    print(f"no-op doit up (healthy stack):     {summary(up)}  {statistics.median(up) / f:.2f}x floor (target <= 1.2x)")
    print(f"doit status (healthy stack):       {summary(status)}  {statistics.median(status) / f:.2f}x floor (target <= 1.2x)")
    print(f"cold doit up until both ready:     {summary(cold)}")
    print(f"litellm --config alone until ready:{summary(alone)}")
    print(f"doit down (both running):          {summary(down)}")
    print(f"cold up / litellm alone:           {statistics.median(cold) / statistics.median(alone):.3f}x (target <= 1.10x)")


if __name__ == "__main__":
    main()

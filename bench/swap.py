"""Switches under load: requests failed while

- `doit profile NAME` applies a new LiteLLM config, with the zero-downtime swap and with
  stop-then-start, and how long until the new config serves;
- CLIProxyAPI changes underneath (`doit restart cliproxy`, `doit upgrade` to a newer release,
  `doit rollback`, `doit upgrade --to` a kept release): each moves LiteLLM to a bridge instance and back.

A client sends 10 requests per second (every third one streamed) over keep-alive connections, as
SDKs do, for the whole switch. Stop-then-start is what FlowGate falls back to where no swap is
possible; it is forced by marking the running instance's record as not sharing its port (as an
instance started by an earlier FlowGate would be).

    cd bench && uv run python swap.py      (BENCH_SWITCHES=3 by default, each way; BENCH_WHAT=profile|cliproxy)
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from pathlib import Path

import httpx
from _harness import doit_argv
from stack import FakeGitHub, installed_home, run

SWITCHES = int(os.environ.get("BENCH_SWITCHES", "3"))
WHAT = os.environ.get("BENCH_WHAT", "profile,cliproxy").split(",")
NEWER = "v7.3.0"  # published for the upgrade rows (tests/fakes/today.publish_mainline)
PROFILES = ("reliable", "default")


class Load:
    """Open loop: a request starts every 100 ms whatever the previous ones are doing."""

    def __init__(self, url: str, key: str):
        self.client = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"},
                                   limits=httpx.Limits(max_connections=50))
        self.results: list[tuple[float, str | None]] = []
        self.stop = threading.Event()
        self.workers: list[threading.Thread] = []

    def __enter__(self):
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.ticker.join()
        for worker in self.workers:
            worker.join()
        self.client.close()

    def _tick(self):
        n, start = 0, time.monotonic()
        while not self.stop.is_set():
            n += 1
            worker = threading.Thread(target=self._one, args=(n,), daemon=True)
            worker.start()
            self.workers.append(worker)
            self.stop.wait(max(0.0, start + n * 0.1 - time.monotonic()))

    def _one(self, n: int) -> None:
        began = time.monotonic()
        body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": f"bench {n}"}], "stream": n % 3 == 0}
        try:
            with self.client.stream("POST", "/v1/chat/completions", json=body) as resp:
                text = resp.read().decode()
            error = None if resp.status_code == 200 and "double(gpt-5.5)" in text else f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        self.results.append((began, error))


def switch(home, env, url, key, *command: str) -> tuple[int, int, float, dict]:
    """(failed, sent during the switch, command seconds, the last swap event or {}) for `doit COMMAND`."""
    with Load(url, key) as load:
        time.sleep(1.0)  # steady traffic before the switch
        began = time.monotonic()
        run(doit_argv(*command), env, home)
        ended = time.monotonic()
        time.sleep(1.0)
    during = [r for r in load.results if began - 0.5 <= r[0] <= ended]
    failed = [r for r in load.results if r[1]]
    events = [json.loads(line) for line in (home / ".router/events.jsonl").read_text().splitlines()]
    swaps = [e for e in events if e["event"] == "swap" and e["result"] == "ok" and e["ts"] >= _iso(began)]
    return len(failed), len(during), ended - began, swaps[-1] if swaps else {}


def _iso(monotonic_t: float) -> str:
    from datetime import datetime, timezone

    wall = time.time() - (time.monotonic() - monotonic_t)
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")


def force_stop_then_start(home) -> None:
    record = home / ".router/run/litellm.json"
    data = json.loads(record.read_text())
    data["meta"]["shared_port"] = False
    record.write_text(json.dumps(data))


def profile_rows(home, env, url, key) -> dict:
    rows = {"swap": [], "stop-then-start": []}
    for i in range(SWITCHES * 2):
        how = "swap" if i % 2 == 0 else "stop-then-start"
        if how == "stop-then-start":
            force_stop_then_start(home)
        rows[how].append(switch(home, env, url, key, "profile", PROFILES[i % 2]))
    return rows


def cliproxy_rows(gh, home, env, url, key) -> dict:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.fakes.today import publish_mainline

    publish_mainline(gh, home / "dist", NEWER)
    rows = {"restart cliproxy": [], "upgrade": [], "rollback": []}
    for _ in range(SWITCHES):
        rows["restart cliproxy"].append(switch(home, env, url, key, "restart", "cliproxy"))
    for i in range(SWITCHES):  # the first upgrade downloads; the later ones restore the kept copy
        rows["upgrade"].append(switch(home, env, url, key, "upgrade", *(["--to", NEWER] if i else [])))
        rows["rollback"].append(switch(home, env, url, key, "rollback"))
    return rows


def main() -> None:
    rows = {}
    with FakeGitHub() as gh:
        home, env, lport = installed_home(gh)
        url = f"http://127.0.0.1:{lport}"
        try:
            run(doit_argv("up"), env, home)
            key = (home / ".router/secrets/litellm_master_key").read_text().strip()
            if "profile" in WHAT:
                rows.update(profile_rows(home, env, url, key))
            if "cliproxy" in WHAT:
                rows.update(cliproxy_rows(gh, home, env, url, key))
        finally:
            run(doit_argv("down"), env, home)
    for how, results in rows.items():
        failed = [r[0] for r in results]
        sent = [r[1] for r in results]
        command = [r[2] for r in results]
        line = (f"{how:<16} failed {failed} of {sent} requests sent during the switch; "
                f"the command {statistics.median(command):.2f} s ({min(command):.2f}-{max(command):.2f})")
        ready = [r[3]["seconds_to_ready"] for r in results if r[3]]
        if ready:
            drained = [r[3].get("drained") for r in results]
            line += (f"; new instance ready after {statistics.median(ready):.2f} s ({min(ready):.2f}-{max(ready):.2f}),"
                     f" old one drained {drained} requests")
        print(line)


if __name__ == "__main__":
    main()

"""`doit usage` and the dashboard's data on a large usage database (issue 31, items 2 and 3).

Writes N rows spread over 7 days into a scratch `.router/usage.sqlite3` (20 models, 3 accounts,
latencies 5 ms - 60 s, 4 % failures), then times, each in a fresh process, with its peak memory:
- `doit usage --json --by model,day` as the command runs it (`report.query`: summed by SQLite);
- the dashboard's data (`inspect.dashboard_data.usage`), as the gateway computes it every 15 s;
- for comparison at sizes where it fits, the former way: every row loaded, grouped in Python;
- usage per account and the savings (issue 29: `tasks.usage.accounts`, what `doit usage` adds to
  every run and the dashboard reads), with as many usage-queue records as rows: the worst case, a
  user whose every request went through an OAuth account with `accounts.read_usage_queue: true`.

    cd bench && uv run python usage.py            (BENCH_ROWS=1000000,10000000 by default;
                                                  BENCH_KEEP=DIR keeps the databases for the next run)
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tasks.base.paths import Paths  # noqa: E402
from tasks.gateway.usage import store  # noqa: E402
from tasks.usage import ledger  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRICED = ["gpt-5", "gpt-5-codex", "gpt-5.1-codex", "claude-sonnet-4-5", "no-such-model"]  # the queue's models
SIZES = [int(n) for n in os.environ.get("BENCH_ROWS", "1000000,10000000").split(",")]
KEEP = os.environ.get("BENCH_KEEP", "")  # a directory keeping the filled databases between runs
OLD_UP_TO = int(os.environ.get("BENCH_OLD_UP_TO", "1000000"))  # the former way past this: minutes and GBs

PROGRAMS = {
    "doit usage (SQL)": "from tasks.usage import report; r = report.query(P, 7 * 86400, ['model', 'day']); "
                        "assert r['totals']['requests'] > 0",
    "dashboard data (SQL)": "from tasks.inspect import dashboard_data as data; d = data.usage(P); assert d['error'] is None",
    "per account + savings": "from tasks.usage import accounts; r = accounts.read(P, 7 * 86400); "
                             "assert r['savings']['usd'] > 0",
    "dashboard per account": "from tasks.usage import accounts; r = accounts.dashboard(P); assert r['7d']['accounts']",
    "former: rows in Python": "from tests import usage_reference as r; rows = r.load(P, 7 * 86400); "
                              "g = [r.group(rows, b) for b in ('model', 'day')]; s = r.summary(rows)",
}


def fill(paths: Paths, n: int) -> None:
    rand, now = random.Random(1), time.time()
    models = [f"model-{i:02d}" for i in range(20)]
    db = store.connect(paths.usage_db)
    batch = 100_000
    for start in range(0, n, batch):
        rows = [{"ts": now - rand.random() * 7 * 86400, "route": "/v1/chat/completions", "method": "POST",
                 "model": rand.choice(models), "status": 500 if rand.random() < 0.04 else 200,
                 "latency_ms": round(rand.lognormvariate(6, 1.5), 1) % 60000 + 5, "stream": 1,
                 "tokens_in": rand.randint(1, 4000), "tokens_out": rand.randint(1, 2000), "tokens_cached": 0,
                 "account": rand.choice(["a@x", "b@x", "c@x"])} for _ in range(min(batch, n - start))]
        store.insert(db, rows)
        with db:  # the ledger's: one usage-queue record per request, and the counters' hours
            db.execute("BEGIN IMMEDIATE")
            queued = [(r["ts"], r["account"], r["account"] + ".json", "codex", r["account"], 1, rand.choice(PRICED),
                       r["tokens_in"], r["tokens_out"], 0, int(r["status"] >= 400)) for r in rows]
            db.executemany("INSERT INTO account_requests (ts, auth_index, name, provider, label, oauth, model, tokens_in, "
                           "tokens_out, tokens_cached, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", queued)
            ledger._fold(db, queued)
    with db:
        db.execute("BEGIN IMMEDIATE")
        hour = int(now // 3600)
        db.executemany("INSERT INTO account_hourly VALUES (?, ?, 'codex', ?, ?, 1)",
                       [(h, a + ".json", a, n // (3 * 168)) for h in range(hour - 168, hour + 1) for a in ("a@x", "b@x", "c@x")])
    db.close()


def measure(home: Path, program: str) -> tuple[float, float]:
    """(seconds, peak MB) of `program` in a fresh interpreter (its own peak resident size)."""
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from tasks.base.paths import Paths; "
            f"P = Paths(root=__import__('pathlib').Path({str(ROOT)!r}), home=__import__('pathlib').Path({str(home)!r})); "
            f"t = time.perf_counter(); {program}; "
            # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report this (large) parent
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]; "
            "print(time.perf_counter() - t, int(hwm) / 1024)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        print(done.stderr[-500:], file=sys.stderr)
        return float("nan"), float("nan")
    seconds, peak = done.stdout.split()
    return float(seconds), float(peak)


def main() -> None:
    results = []
    for n in SIZES:
        with tempfile.TemporaryDirectory(prefix="flowgate-bench-usage-") as scratch:
            tmp = Path(KEEP, str(n)) if KEEP else Path(scratch)  # BENCH_KEEP: fill once, measure again later
            paths = Paths(root=ROOT, home=tmp)
            if not paths.usage_db.exists():
                began = time.perf_counter()
                fill(paths, n)
                print(f"{n:,} rows written in {time.perf_counter() - began:.0f} s "
                      f"({paths.usage_db.stat().st_size / 1e6:.0f} MB)", flush=True)
            for name, program in PROGRAMS.items():
                if name.startswith("former") and n > OLD_UP_TO:
                    continue
                seconds, peak = measure(Path(tmp), program)
                results.append({"rows": n, "what": name, "seconds": round(seconds, 2), "peak_mb": round(peak)})
                print(f"  {name:26s} {seconds:7.2f} s  peak {peak:6.0f} MB", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

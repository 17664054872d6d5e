"""The member keys' PostgreSQL store (issue 30, item 4) against the SQLite one: what a lookup costs on
the request path (the copy in the gateway process, whichever store), what the reader's check of the
store costs off it (every 0.25 s), and what `doit keys create` waits for a write. A real PostgreSQL
made and run by FlowGate's own code (tasks.services.postgres), 201 keys in each store.

    cd bench && uv run python keystore.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT

sys.path.insert(0, str(ROOT))
from tasks.base.paths import Paths  # noqa: E402
from tasks.gateway.keys.book import KeyBook  # noqa: E402
from tasks.gateway.keys.pgbook import PgKeyBook  # noqa: E402
from tasks.keys import manage  # noqa: E402
from tests.postgres_server import running  # noqa: E402


def p50_us(fn, n: int) -> float:
    times = []
    for _ in range(n):
        began = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - began)
    return statistics.median(times) / 1000


def measure(label: str, paths: Paths, store, book) -> None:
    for i in range(200):
        manage.create(paths, f"member{i}", rpm=10, store=store)
    key = manage.create(paths, "bench", store=store)
    if isinstance(book, PgKeyBook) and book.needs_read([key]):
        book.wait_fresh()
    assert book.find(key).name == "bench"
    names = iter(range(10**6))
    print(f"{label}: lookup p50 {p50_us(lambda: book.find(key), 20000):.2f} µs; "
          f"the store's check p50 {p50_us(book.refresh, 500):.1f} µs (off the request path for PostgreSQL); "
          f"a write (doit keys create, in process) p50 {p50_us(lambda: manage.create(paths, f'w{next(names)}', store=store), 200) / 1000:.2f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-keystore-") as home:
        paths = Paths(root=ROOT, home=Path(home))
        paths.router.mkdir(parents=True, mode=0o700)
        measure("sqlite", paths, None, KeyBook(paths.keys_db))
        with running(paths) as env:
            measure("postgres", paths, env, PgKeyBook(env))


if __name__ == "__main__":
    main()

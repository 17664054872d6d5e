"""`python -m tasks.pool --home H`: run the steward until SIGTERM (tasks.pool.steward).

Reports ready in the worker file the launcher names (FLOWGATE_WORKER_FILE), then loops: one pass
about every second; stack.json is read again when `doit config` rewrote it (a new profile's fallbacks).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path


def _stack(paths) -> tuple[dict | None, int]:
    try:
        info = paths.stack_json.stat()
        return json.loads(paths.stack_json.read_text(encoding="utf-8")), info.st_mtime_ns
    except (OSError, ValueError):
        return None, 0


def _ready(path: str | None) -> None:
    if not path:
        return
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "ready": True}) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.pool")
    parser.add_argument("--home", required=True)
    args = parser.parse_args(argv)
    from ..base.errors import FlowgateError
    from ..base.paths import ROOT, Paths
    from ..gateway.handoff import WORKER_FILE_ENV
    from .steward import POLL_SECONDS, Steward

    paths = Paths(root=ROOT, home=Path(args.home).resolve())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stack, seen = _stack(paths)
    if stack is None:
        print(f"steward: {paths.stack_json} is missing or unreadable: run `uv run doit config`", file=sys.stderr)
        return 2
    steward = None
    _ready(os.environ.get(WORKER_FILE_ENV))
    print(f"steward: running (pid {os.getpid()})", flush=True)
    while not stop.is_set():
        fresh, mtime = _stack(paths)
        if fresh is not None and mtime != seen:
            stack, seen = fresh, mtime
            if steward is not None:
                steward.set_stack(stack)
        try:
            if steward is None:
                from ..accounts.management import Management

                steward = Steward(paths, stack, Management.for_stack(paths, stack, timeout=5.0))
            steward.cycle()
        except FlowgateError as exc:  # no key yet, CLIProxyAPI's port held by another checkout: said, then again
            print(f"steward: {exc.one_line()}", file=sys.stderr, flush=True)
            stop.wait(5.0)
        except Exception:  # noqa: BLE001  (a bug in one pass must not end the steering: logged, then again)
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            stop.wait(5.0)
        stop.wait(POLL_SECONDS)
    print("steward: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

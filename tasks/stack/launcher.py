"""The launcher FlowGate runs each service through: `python -m tasks.stack.launcher ...`.

    supervise --home H --service S --ready worker|http://HOST:PORT/PATH|redis://HOST:PORT|postgresql://HOST:PORT -- ARGV...
        run ARGV as a child, restart it when it dies unexpectedly (tasks.stack.watch.supervisor)

The gateway (ARGV `python -m tasks.gateway ...`) runs in a forked child instead of a new
interpreter: this one is already up, which keeps LiteLLM's cold start as fast as `litellm --config`.

Kept to argparse and FlowGate's light modules: the supervisor lives as long as the service.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.stack.launcher")
    sub = parser.add_subparsers(dest="command", required=True)
    sup = sub.add_parser("supervise")
    sup.add_argument("--home", required=True)
    sup.add_argument("--service", required=True)
    sup.add_argument("--ready", required=True, help="worker, or the readiness URL to probe")
    sup.add_argument("--stop-signal", choices=("INT",), help="send the child this on a stop (PostgreSQL: its fast "
                     "shutdown; SIGTERM makes it wait for every client to leave)")
    sup.add_argument("argv", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ..base.paths import ROOT, Paths
    from .watch import supervisor

    child = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not child:
        print("launcher: nothing to supervise (give the command after --)", file=sys.stderr)
        return 2
    paths = Paths(root=ROOT, home=Path(args.home))
    keep = {}
    if args.ready == "worker":
        ready = supervisor.worker_ready(paths, args.service, os.getpid())
        if os.environ.get("CONFIG_FILE_PATH"):  # restarts boot what booted now, whatever is rendered later
            from .launch.launcher_files import keep_booted_config

            keep["CONFIG_FILE_PATH"] = keep_booted_config(paths, args.service, os.getpid(), os.environ["CONFIG_FILE_PATH"])
    elif args.ready.startswith("redis://"):  # the managed Redis: PING after AUTH
        from ..services.redis import answers
        from ..services.secrets import REDIS_PASSWORD

        url, meta = urlsplit(args.ready), {"password_file": str(paths.secret(REDIS_PASSWORD))}
        ready = lambda _child_pid: answers(url.hostname, url.port, meta, 0.5) == "PONG"  # noqa: E731
    elif args.ready.startswith("postgresql://"):  # the managed PostgreSQL: a login and SELECT 1
        from ..services.postgres import answers as pg_answers, probe_meta

        url, meta = urlsplit(args.ready), probe_meta(paths)
        ready = lambda _child_pid: pg_answers(url.hostname, url.port, meta, 0.5) == "ready"  # noqa: E731
    else:
        url = urlsplit(args.ready)
        ready = supervisor.http_ready(url.hostname, url.port, url.path or "/")
    in_process = None
    if child[1:3] == ["-m", "tasks.gateway"] and Path(child[0]).resolve() == Path(sys.executable).resolve():
        from ..gateway.litellm_server import main as gateway

        in_process = lambda: gateway(child[3:])  # noqa: E731  (a forked child: see the docstring)
    try:
        stop_signal = getattr(signal, f"SIG{args.stop_signal}") if args.stop_signal else None
        code = supervisor.Supervisor(paths, args.service, child, ready, in_process=in_process, env=keep,
                                     stop_signal=stop_signal).run()
    finally:
        if keep:
            from .launch.launcher_files import booted_config

            booted_config(paths, args.service, os.getpid()).unlink(missing_ok=True)
    return supervisor.exit_like(code)


if __name__ == "__main__":
    sys.exit(main())

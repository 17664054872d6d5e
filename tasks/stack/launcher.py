"""The launcher FlowGate runs each service through: `python -m tasks.stack.launcher ...`.

    supervise --home H --service S --ready worker|http://HOST:PORT/PATH|redis://HOST:PORT -- ARGV...
        run ARGV as a child, restart it when it dies unexpectedly (tasks.stack.supervisor)
    litellm --host H --port P --grace S [--shared]
        serve LiteLLM's proxy in this process on a port shared with SO_REUSEPORT (litellm_server)

Kept to argparse and FlowGate's light modules: the supervisor lives as long as the service.
"""

from __future__ import annotations

import argparse
import os
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
    sup.add_argument("argv", nargs=argparse.REMAINDER)
    lit = sub.add_parser("litellm")
    lit.add_argument("--host", required=True)
    lit.add_argument("--port", type=int, required=True)
    lit.add_argument("--grace", type=float, default=10.0)
    lit.add_argument("--shared", action="store_true", help="bind with SO_REUSEPORT (zero-downtime swaps)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "litellm":
        from .litellm_server import serve

        return serve(args.host, args.port, args.grace, args.shared)
    from ..base.paths import ROOT, Paths
    from . import supervisor

    child = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not child:
        print("launcher: nothing to supervise (give the command after --)", file=sys.stderr)
        return 2
    paths = Paths(root=ROOT, home=Path(args.home))
    keep = {}
    if args.ready == "worker":
        ready = supervisor.worker_ready(paths, args.service, os.getpid())
        if os.environ.get("CONFIG_FILE_PATH"):  # restarts boot what booted now, whatever is rendered later
            from .launcher_files import keep_booted_config

            keep["CONFIG_FILE_PATH"] = keep_booted_config(paths, args.service, os.getpid(), os.environ["CONFIG_FILE_PATH"])
    elif args.ready.startswith("redis://"):  # the managed Redis: PING after AUTH
        from ..services.redis import answers
        from ..services.secrets import REDIS_PASSWORD

        url, meta = urlsplit(args.ready), {"password_file": str(paths.secret(REDIS_PASSWORD))}
        ready = lambda _child_pid: answers(url.hostname, url.port, meta, 0.5) == "PONG"  # noqa: E731
    else:
        url = urlsplit(args.ready)
        ready = supervisor.http_ready(url.hostname, url.port, url.path or "/")
    # The launcher's own server (`-m tasks.stack.launcher litellm`) runs in a forked child: this
    # interpreter is already up, which keeps LiteLLM's cold start as fast as `litellm --config`.
    own = child[1:3] == ["-m", "tasks.stack.launcher"] and Path(child[0]).resolve() == Path(sys.executable).resolve()
    in_process = (lambda: main(child[3:])) if own else None
    try:
        code = supervisor.Supervisor(paths, args.service, child, ready, in_process=in_process, env=keep).run()
    finally:
        if keep:
            from .launcher_files import booted_config

            booted_config(paths, args.service, os.getpid()).unlink(missing_ok=True)
    return supervisor.exit_like(code)


if __name__ == "__main__":
    sys.exit(main())

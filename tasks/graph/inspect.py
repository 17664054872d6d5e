"""Tasks that inspect the stack and change nothing: status, logs, doctor."""

from __future__ import annotations

import json
import sys

from .common import JSON_FLAG, PATHS, command, flag, option, read_stack_or_none, service_choice


def show_status(json_output: bool):
    from ..inspect import status
    from ..base.errors import FlowgateError

    stack = read_stack_or_none()
    if stack is None:
        try:
            from ..config.load import load_stack

            stack = load_stack(PATHS)
        except FlowgateError:
            stack = None
    data = status.collect(PATHS, stack)
    print(json.dumps(data, indent=2) if json_output else status.table(data))
    sys.stdout.flush()
    problem = status.verdict(data)
    if problem is not None:
        raise problem


def task_status():
    """Show each service's state, pid, uptime, address, readiness, version and drift (exit 1 unless ready)."""
    return command(show_status, JSON_FLAG)


def show_logs(pos: list[str], lines: int, follow: bool) -> None:
    from ..stack import process

    from ..config.names import LITELLM, OPTIONAL, enabled_services
    from ..stack.swaps.replicas import recorded

    # LiteLLM's replicas each write their own log (litellm#2, ...): all of them under `litellm`
    steward = "steward"  # the account pool's steward (tasks.pool.service): no port, not in SERVICES
    chosen = service_choice([p for p in pos if p != steward]) if pos != [steward] else []
    enabled = enabled_services(read_stack_or_none())
    if not pos:  # Redis and PostgreSQL only when configured (or still running)
        chosen = [s for s in chosen if s not in OPTIONAL or s in enabled or PATHS.record(s).exists()]
    if steward in pos or (not pos and PATHS.log(steward).exists()):
        chosen.append(steward)
    services = [n for s in chosen for n in ([LITELLM, *(n for n in recorded(PATHS) if n != LITELLM)] if s == LITELLM else [s])]
    services = list(dict.fromkeys(services))
    for service in services:
        log = PATHS.log(service)
        print(f"==> {log} <==")
        for line in process.tail(log, lines) if log.exists() else ["(no log yet: the service has not been started)"]:
            print(line)
    if follow:
        _follow([PATHS.log(s) for s in services])


def _follow(logs) -> None:
    import time

    from ..stack.process import clean_log_line

    offsets = {log: (log.stat().st_size if log.exists() else 0) for log in logs}
    try:
        while True:
            for log in logs:
                if not log.exists():
                    continue
                size = log.stat().st_size
                if size < offsets[log]:
                    offsets[log] = 0  # rotated or truncated
                if size > offsets[log]:
                    with open(log, "rb") as fh:
                        fh.seek(offsets[log])
                        chunk = fh.read()
                    offsets[log] += len(chunk)
                    prefix = f"[{log.stem}] " if len(logs) > 1 else ""
                    for line in chunk.decode("utf-8", "replace").splitlines():
                        print(prefix + clean_log_line(line), flush=True)
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass


LOGS_PARAMS = [option("lines", "lines per log", int, 20, short="n"), flag("follow", "keep printing new lines", short="f")]


def task_logs():
    """Show the last lines of each service's log (`-n 50`, `-f` to follow, or name one service)."""
    from .posargs import with_options_anywhere

    return command(with_options_anywhere("logs", show_logs, LOGS_PARAMS), *LOGS_PARAMS, pos_arg="pos")


def run_doctor() -> None:
    from ..inspect.doctor import format_checks, run_checks
    from ..base.errors import FlowgateError

    checks = run_checks(PATHS)
    print(format_checks(checks))
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise FlowgateError(f"doctor found {len(failed)} problem(s): {', '.join(failed)}", "apply the fixes listed above")


def task_doctor():
    """Read-only health checks (config, litellm, binary, ports, secrets, disk), each with its fix."""
    return command(run_doctor)

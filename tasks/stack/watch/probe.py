"""Readiness probes (plain Python, knows nothing of doit).

Runs on every `doit up` / `doit status`, so it stays light: a raw socket, no HTTP library.
`wait_ready` polls all services in one loop, so they become ready in parallel, and gives up on a
service at once when its process exits.

Probe paths (`probe_path`): LiteLLM `GET /health/liveliness`, CLIProxyAPI `GET /healthz` on the
mainline and `GET /` on the Plus line, each 200. Never LiteLLM's `/health` (it calls every upstream
model and costs tokens), never `/v1/models` (needs an API key).
"""

from __future__ import annotations

import time
from collections import namedtuple
from typing import Callable, Iterable

from ...config.names import CLIPROXY, POSTGRES, REDIS, service_of
from ...services.common import probe_path


class Check(namedtuple("Check", "name host port path expected_status alive target ask recent_ok",
                       defaults=("/", 200, None, None, None, False))):
    """One service to wait for (a plain 6-tuple in this order works too).

    alive      () -> bool, or None: False means the process exited: fail at once
    target     () -> (host, port) or None: where to probe, when it is known only later (replicas)
    ask        (timeout) -> Answer, or None: a probe other than an HTTP GET (Redis: PING)
    recent_ok  an answer given moments ago in this process counts (answered_recently): only for a
               process not (re)started since, or the old one's answer would pass for its successor's
    """

    __slots__ = ()


class ReadyResult(namedtuple("ReadyResult", "name ready seconds reason status attempts exited",
                             defaults=(None, 0, False))):
    """seconds: until ready, or until we gave up; reason: "ready", "process exited before it was
    ready", "not ready after …: <last answer>"; status: the last HTTP status seen, if any;
    exited: the process died while we waited."""

    __slots__ = ()


class Answer(namedtuple("Answer", "status error")):
    """status: the HTTP status, None when nothing answered; error: why there was no (good) answer
    ("" when there was one)."""

    __slots__ = ()


# What answered in this process, and when: `doit up` asks each service once in its up-to-date check
# (is it hung?) and again for readiness a few milliseconds later; the second need not go out.
_ANSWERED: dict[tuple[str, int, str], tuple[float, int]] = {}
RECENT = 0.5  # seconds an answer counts for readiness


def answered_recently(host: str, port: int, path: str, status: int) -> bool:
    seen = _ANSWERED.get((host, port, path))
    return seen is not None and seen[1] == status and time.monotonic() - seen[0] < RECENT


def fetch(host: str, port: int, path: str = "/", timeout: float = 1.0) -> Answer:
    """GET http://host:port/path once; the status code, or why there was none. Never raises."""
    from ...base.localhttp import exchange

    try:
        status, _ = exchange(host, port, "GET", path, timeout=timeout, status_only=True)
        _ANSWERED[(host, port, path)] = (time.monotonic(), status)
    except ConnectionRefusedError:
        return Answer(None, "connection refused")
    except TimeoutError:
        return Answer(None, f"no answer within {timeout:.1f} s")
    except OSError as exc:
        return Answer(None, exc.strerror or str(exc) or type(exc).__name__)
    return Answer(status, "")


def send_early(paths) -> int:
    """Send every recorded HTTP service's probe now, to be collected by its `fetch` later in this
    process (tasks.localhttp.send_early): `doit up` and `doit status` call this while doit loads.
    Returns how many went out; never raises."""
    from ...base.localhttp import send_early as send
    from .. import process
    from ..swaps import replicas

    sent = 0
    litellm = replicas.recorded(paths)
    for name in litellm + [CLIPROXY]:
        record = process.read_record(paths.record(name))
        if record is None or "port" not in record.meta or not process.is_alive(record):
            continue  # nothing of ours there: whatever holds the port now is not asked
        # Replicas share the address: each is probed on its private port (health.hung_reason).
        where = replicas.probe_target(record) if len(litellm) > 1 and name in litellm \
            else (record.meta.get("host", "127.0.0.1"), record.meta["port"])
        if where is not None:
            sent += send(*where, probe_path(service_of(record.service), record.meta))
    return sent


def http_status(host: str, port: int, path: str = "/", timeout: float = 1.0) -> int | None:
    """The HTTP status of one GET, or None when nothing answered."""
    return fetch(host, port, path, timeout).status


def service_ok(service: str, host: str, port: int, path: str, meta: dict, timeout: float = 1.0) -> bool:
    """Whether `service` answers its readiness probe: HTTP, or PING after AUTH for the managed Redis."""
    if service == REDIS:
        from ...services.redis import answers

        return answers(host, port, meta, timeout) == "PONG"
    if service == POSTGRES:
        from ...services.postgres import answers as pg_answers

        return pg_answers(host, port, meta, timeout) == "ready"
    return http_ok(host, port, path, timeout=timeout)


def redis_answer(host: str, port: int, meta: dict, service: str = REDIS):
    """An `ask` for Check: the managed Redis's PING (PONG), or the managed PostgreSQL's `SELECT 1`
    over a real login ("ready"), as an Answer (200 when it answered so)."""
    if service == POSTGRES:
        from ...services.postgres import answers
        good = "ready"
    else:
        from ...services.redis import answers
        good = "PONG"

    def ask(timeout: float) -> Answer:
        said = answers(host, port, meta, timeout)
        return Answer(200, "") if said == good else Answer(None, said)

    return ask


def http_ok(host: str, port: int, path: str = "/", timeout: float = 1.0, expected: int = 200) -> bool:
    """True when one GET answers with `expected`."""
    return http_status(host, port, path, timeout) == expected


def wait_ready(
    checks: Iterable[Check | tuple],
    *,
    timeout: float,
    interval: float = 0.05,
    max_interval: float = 0.1,
    request_timeout: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    fetch: Callable[[str, int, str, float], Answer] = fetch,
) -> dict[str, ReadyResult]:
    """Poll every check in one loop until each is ready, its process died, or `timeout` passed.

    Returns a result per check name (in the order given). Raises nothing for expected failures:
    the caller turns not-ready results into a FlowgateError with the log tail.
    """
    checks = [c if isinstance(c, Check) else Check(*c) for c in checks]
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise ValueError(f"wait_ready: duplicate check names in {names}")
    start = clock()
    deadline = start + timeout
    results: dict[str, ReadyResult] = {
        c.name: ReadyResult(name=c.name, ready=False, seconds=0.0, reason="not probed") for c in checks
    }
    last: dict[str, str] = {c.name: "not probed yet" for c in checks}
    pending = list(checks)
    wait = interval

    def note(name: str, **changes) -> None:
        results[name] = results[name]._replace(**changes)

    while pending:
        still = []
        for check in pending:
            res = results[check.name]
            if check.alive is not None and not check.alive():
                note(check.name, exited=True, seconds=clock() - start, reason="process exited before it was ready")
                continue
            if check.recent_ok and res.attempts == 0 and answered_recently(check.host, check.port, check.path, check.expected_status):
                note(check.name, ready=True, seconds=clock() - start, reason="ready")
                continue
            remaining = deadline - clock()
            where = check.target() if check.target is not None else (check.host, check.port)
            wait_s = max(0.05, min(request_timeout, remaining))
            if check.ask is not None:
                answer = check.ask(wait_s)
            else:
                answer = fetch(where[0], where[1], check.path, wait_s) if where else Answer(None, "its probe port is not known yet")
            note(check.name, attempts=res.attempts + 1, status=res.status if answer.status is None else answer.status)
            if answer.status == check.expected_status:
                note(check.name, ready=True, seconds=clock() - start, reason="ready")
                continue
            last[check.name] = answer.error or f"answered {answer.status} (expected {check.expected_status})"
            still.append(check)
        pending = still
        if not pending:
            break
        now = clock()
        if now >= deadline:
            for check in pending:
                note(check.name, seconds=now - start, reason=f"not ready after {timeout:g} s: {last[check.name]}")
            break
        sleep(min(wait, deadline - now))
        wait = min(wait * 1.25, max_interval)
    return results


def not_ready(results: dict[str, ReadyResult]) -> list[ReadyResult]:
    """The results that are not ready, in order."""
    return [r for r in results.values() if not r.ready]

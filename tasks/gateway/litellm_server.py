"""LiteLLM's proxy served in this process: its ASGI app (`litellm.proxy.proxy_server:app`, which
reads its config from CONFIG_FILE_PATH) under uvicorn, on sockets this process bound itself.

Why not `litellm --config`: a zero-downtime swap needs the new instance to share the port with the
old one (SO_REUSEPORT) and to take connections only once it can answer them. uvicorn given a bound
socket calls listen() when it starts serving, which is after the app's startup finished; only then
does this process steer new connections to itself and report ready (the worker file). A second,
private socket on 127.0.0.1 lets FlowGate probe *this* instance while both share the public port.

On SIGTERM it lingers briefly when a swap replaced it (still accepting what the kernel had queued
for it before the new instance steered connections away), stops accepting, lets in-flight requests (streams included) finish within the grace period, and writes
how many it drained.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from pathlib import Path

from . import connlimits, gate, leanpath, reuseport
from .handoff import ACCESS_LOG_ENV, REPLICAS_ENV, WORKER_FILE_ENV, read_json

INSTANCE_HEADER = b"x-flowgate-instance"  # this process's pid on every response: which replica answered

LINGER = 0.5  # seconds: connections queued before the steering took effect are accepted, not reset,
# and every keep-alive client gets one more answer, marked `connection: close` (see _tagged)
_DRAINING = [False]  # set when this instance starts to shut down
BIND_FAILED = 98  # exit code when the address cannot be bound (EADDRINUSE's errno)


class Report:
    """This instance's line in its worker file: pid, probe port, ready, and what it drained."""

    def __init__(self, path: str | None, probe_port: int):
        self.path = path
        self.data = {"pid": os.getpid(), "probe_port": probe_port, "ready": False}

    def replaced(self) -> bool:
        """Whether a swap marked this instance as replaced (then it lingers before closing)."""
        return bool(self.path and (read_json(Path(self.path)) or {}).get("replaced"))

    def update(self, **changes) -> None:
        self.data.update(changes)
        if not self.path:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self.data) + "\n")
        os.replace(tmp, self.path)


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        def __init__(self, config, report: Report, shared_sock, address: str):
            super().__init__(config)
            self.report, self.shared_sock, self.address = report, shared_sock, address

        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)  # the app's startup, then listen()
            gc.enable()
            if not self.started:
                return
            gc.freeze()  # what the app built at startup lives as long as the process: never scan it again
            # Steer to the listener at index N (replicas): it exists only while a swap's new instance
            # listens beside the N current ones; otherwise the kernel spreads connections by its hash.
            replicas = int(os.environ.get(REPLICAS_ENV) or 1)
            steered = reuseport.steer_to(self.shared_sock, replicas) if self.shared_sock is not None else False
            if steered:  # detached once the old instance has closed: nobody may join at index N later
                threading.Thread(target=reuseport.release_when_alone, daemon=True, name="flowgate-steering",
                                 args=(self.shared_sock, replicas, self.config.timeout_graceful_shutdown + 30)).start()
            print(f"flowgate launcher: listening on {self.address} (probe port {self.report.data['probe_port']}"
                  f"{', new connections steered here' if steered else ''})", flush=True)
            self.report.update(ready=True, ready_at=time.time(), steered=steered)

        async def shutdown(self, sockets=None):
            began, total_before = time.monotonic(), self.server_state.total_requests
            in_flight = len(self.server_state.tasks)
            replaced = self.report.replaced()
            _DRAINING[0] = True
            self.report.update(draining=True, in_flight=in_flight)
            if replaced:  # a successor listens beside us: accept what was queued here before closing
                await asyncio.sleep(LINGER)
            await super().shutdown(sockets=sockets)
            drained = in_flight + self.server_state.total_requests - total_before
            print(f"flowgate launcher: drained {drained} request(s) in {time.monotonic() - began:.2f} s", flush=True)
            self.report.update(drained=drained, drain_s=round(time.monotonic() - began, 3))

    return Server


def _tagged(app):
    """`app` answering with INSTANCE_HEADER: tells replicas sharing the port apart, for a header's cost."""
    pid = str(os.getpid()).encode()

    async def tagged(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_tagged(message):
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (INSTANCE_HEADER, pid)]
                if _DRAINING[0]:
                    # A keep-alive client must not send its next request on a connection this instance
                    # is about to close (it would be reset): tell it to open a new one, which reaches
                    # the successor.
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        return await app(scope, receive, send_tagged)

    return tagged


def server_config(app, grace: float, environ=os.environ):
    """uvicorn's settings for the gateway: its HTTP protocol with FlowGate's connection limits
    (tasks.gateway.connlimits: deadlines for a request's head and on a body's silence, a connection cap)."""
    import uvicorn

    # No access line per request unless asked for (litellm.env): writing it through LiteLLM's
    # redaction filter took ~40% of the lean path's throughput; errors are still logged.
    return uvicorn.Config(app, lifespan="on", server_header=False, access_log=environ.get(ACCESS_LOG_ENV) == "1",
                          timeout_graceful_shutdown=grace,
                          http=connlimits.protocol_class(**connlimits.limits(environ)))


def serve(host: str, port: int, grace: float, shared: bool) -> int:
    try:
        public = reuseport.bind(host, port, shared)
    except OSError as exc:
        print(f"flowgate launcher: cannot bind {host}:{port}: {exc.strerror or exc}", flush=True)
        return BIND_FAILED
    private = reuseport.bind("127.0.0.1", 0, False)
    report = Report(os.environ.get(WORKER_FILE_ENV), private.getsockname()[1])
    report.update()
    # Importing LiteLLM creates millions of objects; the collector's full passes over them made
    # the boot 0.1-0.3 s slower, depending on what the process held before. None of it is garbage:
    # collect nothing until the app has started, then freeze what startup built.
    gc.disable()
    from uvicorn.importer import import_from_string

    from .served_models import wrap as with_served_models
    from .usage.recorder import record_usage
    from .dashboard.routes import with_dashboard

    app = import_from_string("litellm.proxy.proxy_server:app")  # what uvicorn.Config would import, now
    # Innermost the lean path: it forwards what needs none of LiteLLM's per-request work, the rest
    # reaches LiteLLM. In front of both the gate (the key from the headers before any body is read,
    # bodies no path may take: tasks.gateway.gate). Around it the gateway's model list and its answer
    # for an unserved id (tasks.catalog), then the usage recorder (off the request path: tasks.usage), so it sees what
    # either answered, and the dashboard (tasks.gateway.dashboard).
    app = with_dashboard(record_usage(with_served_models(gate.wrap(leanpath.wrap(app)))))
    config = server_config(_tagged(app), grace)
    server = _server_class()(config, report, public if shared else None, f"{host}:{port}")
    server.run(sockets=[public, private])
    return 0


def main(argv: list[str] | None = None) -> int:
    """The gateway process's one entry point: `python -m tasks.gateway --host H --port P --grace S [--shared]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tasks.gateway")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grace", type=float, default=10.0, help="seconds in-flight requests get at a stop")
    parser.add_argument("--shared", action="store_true", help="bind with SO_REUSEPORT (zero-downtime swaps)")
    args = parser.parse_args(argv)
    return serve(args.host, args.port, args.grace, args.shared)

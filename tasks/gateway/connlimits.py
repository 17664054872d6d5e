"""Limits on the gateway's connections where uvicorn sets none (issue 31, item 7: 20,200 connections
that sent nothing, or a body a byte at a time, filled the worker's 20,000 files; keyed requests then
got no answer, then a 500).

uvicorn closes a kept-alive connection that stays idle (`timeout_keep_alive`) but waits for ever for
a request's head and for its body. Here, as uvicorn's own HTTP protocol with three more rules:
- a deadline for the head: HEAD_TIMEOUT seconds from the connection (or from the end of the previous
  answer on a kept-alive one) to the end of the request's headers, else the connection is closed;
- a deadline on silence while a body is expected: BODY_SILENCE seconds without a byte, and the
  connection is closed (the app reads `http.disconnect`, as when a client leaves); never while the
  server itself stopped reading (flow control);
- a cap on connections, below the process's file limit with room for an upstream connection per
  client and the files the process holds: a connection beyond it closes the oldest connection still
  waiting for a request's head (idle ones included), or, when every connection is busy with a request,
  is closed itself. A keyed request therefore finds a file however many idle or slow connections came first.
The gate (tasks.gateway.gate) answers a request without the key before reading its body and closes its
connection, so an unauthenticated body holds nothing. Each limit can be set by an environment variable
(`litellm.env`): ENV below.
"""

from __future__ import annotations

import os
import resource

HEAD_TIMEOUT = 10.0  # seconds: a client sends its request's head at once
BODY_SILENCE = 30.0  # seconds without a byte of a body still expected
RESERVE = 256  # files kept for the process's own use (logs, the usage database, LiteLLM's clients)
ENV = {"max_connections": "FLOWGATE_MAX_CONNECTIONS", "head_timeout": "FLOWGATE_HEAD_TIMEOUT",
       "body_silence": "FLOWGATE_BODY_SILENCE"}


def default_cap() -> int:
    """Half of what the file limit leaves after RESERVE: each client may need an upstream connection."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, (soft - RESERVE) // 2)


def limits(environ=os.environ) -> dict:
    """The limits in force: the environment's, else the defaults."""
    out = {"max_connections": default_cap(), "head_timeout": HEAD_TIMEOUT, "body_silence": BODY_SILENCE}
    for key, name in ENV.items():
        try:
            value = float(environ[name])
        except (KeyError, ValueError):
            continue
        if value > 0:
            out[key] = int(value) if key == "max_connections" else value
    return out


def protocol_class(max_connections: int, head_timeout: float, body_silence: float):
    """uvicorn's h11 protocol with the deadlines and the cap of this module's docstring."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    waiting: dict = {}  # connections waiting for a request's head, oldest first (a dict keeps its order)

    class Limited(H11Protocol):
        timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                oldest = next(iter(waiting), None)
                if oldest is None:  # all busy with requests: this one waits for nothing
                    self.drop()
                    return
                oldest.drop()
            self.await_head()

        def await_head(self) -> None:
            waiting[self] = None
            self.arm(head_timeout)

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            super().data_received(data)
            if self.transport.get_protocol() is not self:  # upgraded to a WebSocket: its own protocol's rules
                waiting.pop(self, None)
                self.disarm()
                return
            if self.cycle is cycle and self in waiting:
                return  # still within the head's deadline (never extended by a byte)
            waiting.pop(self, None)
            if self.cycle is not None and self.cycle.more_body and not self.cycle.response_complete:
                self.arm(body_silence)  # a body is expected: each byte restarts the silence
            else:
                self.disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self.await_head()  # a kept-alive connection waits for its next request

        def connection_lost(self, exc) -> None:
            waiting.pop(self, None)
            self.disarm()
            super().connection_lost(exc)

        def arm(self, seconds: float) -> None:
            self.disarm()
            self.timer = self.loop.call_later(seconds, self.expired)

        def disarm(self) -> None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

        def expired(self) -> None:
            self.timer = None
            if self.flow is not None and self.flow.read_paused:  # the app is not reading: not the client's silence
                self.arm(body_silence)
                return
            if self in waiting or (self.cycle is not None and self.cycle.more_body):
                self.drop()

        def drop(self) -> None:
            waiting.pop(self, None)
            self.disarm()
            if not self.transport.is_closing():
                self.transport.close()

    Limited.waiting = waiting  # for tests
    return Limited

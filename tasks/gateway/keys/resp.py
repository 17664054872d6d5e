"""A small asyncio Redis client for the member keys' shared counters (tasks.gateway.keys.shared).

One connection per gateway process, pipelined: a command is written at once and its future queued;
replies come back in order and resolve the queue's head (asyncio.Protocol: no reader task, no pool).
Every call has a deadline (DEADLINE_S): past it the call fails, and the connection is dropped (its
late replies could not be told apart). After a failure the client says Down at once for RETRY_S
instead of trying again on every request (a stopped Redis would otherwise cost each request the
deadline), then connects again (AUTH, SCRIPT LOAD) on the next call.

Why not redis-py: its asyncio client takes a pooled connection per call and costs several times
the round trip on the request path (bench/gateway.py, `member key, shared counters`).
"""

from __future__ import annotations

import asyncio
import collections
import time

DEADLINE_S = 0.05  # one call, connection included: a Redis on the LAN answers in well under 1 ms
RETRY_S = 1.0  # after a failure, Down without trying for this long
MAX_REPLY = 1 << 20  # bytes buffered without a whole reply: a peer that is not Redis


class Down(Exception):
    """Redis cannot be used now (the message says why): the caller counts on its own."""


class ReplyError(Exception):
    """Redis answered with an error (`-ERR ...`)."""


def encode(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def parse(buf: bytes | bytearray, pos: int = 0):
    """(reply, next position) of the reply at `pos`, or None while it is incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line, after = buf[pos:pos + 1], bytes(buf[pos + 1:end]), end + 2
    if kind == b"+":
        return line.decode(), after
    if kind == b"-":
        return ReplyError(line.decode(errors="replace")), after
    if kind == b":":
        return int(line), after
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return None
        return bytes(buf[after:after + size]), after + size + 2
    if kind == b"*":
        count, items = int(line), []
        if count < 0:
            return None, after
        for _ in range(count):
            found = parse(buf, after)
            if found is None:
                return None
            item, after = found
            items.append(item)
        return items, after
    raise ValueError(f"not a Redis reply: {bytes(buf[pos:pos + 20])!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, lost, loop):
        self.buf, self.pending, self.transport, self.lost, self.loop = bytearray(), collections.deque(), None, lost, loop

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        pos = 0
        try:
            while self.pending:
                found = parse(self.buf, pos)
                if found is None:
                    break
                reply, pos = found
                fut = self.pending.popleft()
                if not fut.done():
                    if isinstance(reply, ReplyError):
                        fut.set_exception(reply)
                    else:
                        fut.set_result(reply)
        except ValueError as exc:
            return self.fail(Down(str(exc)))
        del self.buf[:pos]
        if len(self.buf) > MAX_REPLY or (self.buf and not self.pending):
            self.fail(Down("Redis sent more than was asked"))

    def connection_lost(self, exc):
        self.fail(Down(f"the connection to Redis closed ({exc or 'by the server'})"))

    def fail(self, why: Exception) -> None:
        while self.pending:
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_exception(why)
        if self.transport is not None:
            self.transport.abort()
        self.lost(self)


class Client:
    def __init__(self, host: str, port: int, password: str | None = None, tls: bool = False,
                 scripts: tuple[bytes, ...] = (), deadline: float = DEADLINE_S, clock=time.monotonic):
        self.host, self.port, self.password, self.tls = host, int(port), password, tls
        self.scripts, self.deadline, self.clock = scripts, deadline, clock
        self.proto: _Protocol | None = None
        self.connecting: asyncio.Future | None = None
        self.down_until = 0.0
        self.why: str | None = None  # the last failure, while Down

    async def call(self, *args):
        """The reply to one command; Down when Redis cannot answer within the deadline; ReplyError as sent."""
        loop, proto = asyncio.get_running_loop(), self.proto
        if proto is None or proto.loop is not loop:  # another loop's connection (tests, the bench) is not this one's
            proto = await self._connected()
        return await self._send(proto, encode(args))

    async def _send(self, proto: _Protocol, data: bytes):
        loop = proto.loop
        fut = loop.create_future()
        proto.pending.append(fut)
        proto.transport.write(data)
        timer = loop.call_later(self.deadline, self._late, proto, fut)
        try:
            return await fut
        except Down as exc:
            self._failed(str(exc))
            raise
        finally:
            timer.cancel()

    def _late(self, proto: _Protocol, fut) -> None:
        if not fut.done():
            proto.fail(Down(f"Redis did not answer within {self.deadline * 1000:g} ms"))

    def _failed(self, why: str) -> None:
        self.down_until, self.why = self.clock() + RETRY_S, why

    back_off = _failed  # for a caller that found the answers unusable (Down for RETRY_S)

    def _lost(self, proto: _Protocol) -> None:
        if self.proto is proto:
            self.proto = None

    async def _connected(self) -> _Protocol:
        if self.clock() < self.down_until:
            raise Down(self.why or "Redis is down")
        if self.connecting is None:  # one connection attempt shared by the requests that wait for it
            self.connecting = asyncio.ensure_future(self._connect())
        connecting = self.connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if self.connecting is connecting and connecting.done():
                self.connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.deadline):
                _, proto = await loop.create_connection(lambda: _Protocol(self._lost, loop), self.host, self.port,
                                                        ssl=self.tls or None)
                try:
                    if self.password:
                        await self._send(proto, encode(("AUTH", self.password)))
                    for script in self.scripts:
                        await self._send(proto, encode(("SCRIPT", "LOAD", script)))
                except BaseException:
                    proto.transport.abort()
                    raise
        except (OSError, TimeoutError, ReplyError) as exc:
            why = f"cannot reach Redis at {self.host}:{self.port} ({type(exc).__name__}: {exc})"
            self._failed(why)
            raise Down(why) from None
        self.proto, self.why = proto, None
        return proto

    def close(self) -> None:
        if self.proto is not None:
            self.proto.transport.abort()
            self.proto = None

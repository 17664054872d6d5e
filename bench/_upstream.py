"""An instant upstream for bench/gateway.py: OpenAI chat completions, Responses and Anthropic Messages,
streamed and not, with canned answers, on a raw asyncio protocol (uvloop when installed) so it is never
what a gateway bench measures (~20,000 answers/s on one core here).

    python _upstream.py PORT

HTTP/1.1 keep-alive with Content-Length requests only (what LiteLLM's clients, wrk and the bench's
own client send). A stream sends its first event at once and the rest STREAM_GAP later: a gateway
that buffers a stream shows that gap in its time to first byte.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

STREAM_GAP = float(os.environ.get("BENCH_STREAM_GAP", "0.005"))  # seconds between a stream's first event and the rest
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def _chat(stream: bool) -> list[bytes]:
    base = {"id": "chatcmpl-bench", "created": 1700000000, "model": "gpt-5"}
    if not stream:
        return [json.dumps({**base, "object": "chat.completion", "usage": USAGE, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}).encode()]
    chunk = {**base, "object": "chat.completion.chunk"}

    def data(delta, finish=None):
        return f"data: {json.dumps({**chunk, 'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]})}\n\n"
    return [data({"role": "assistant", "content": "o"}).encode(),
            (data({"content": "k"}) + data({}, "stop") + "data: [DONE]\n\n").encode()]


def _responses(stream: bool) -> list[bytes]:
    part = {"type": "output_text", "annotations": [], "text": "ok"}
    item = {"id": "msg_bench", "type": "message", "status": "completed", "role": "assistant", "content": [part]}
    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}

    def response(status):
        return {"id": "resp_bench", "object": "response", "created_at": 1700000000, "status": status,
                "model": "gpt-5", "output": [item] if status == "completed" else [], "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": [], "usage": usage if status == "completed" else None}
    if not stream:
        return [json.dumps(response("completed")).encode()]

    def event(kind, **payload):
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"
    where = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    return [event("response.created", sequence_number=0, response=response("in_progress")).encode(),
            (event("response.output_text.delta", sequence_number=1, delta="ok", **where)
             + event("response.output_item.done", sequence_number=2, output_index=0, item=item)
             + event("response.completed", sequence_number=3, response=response("completed"))).encode()]


def _messages(stream: bool) -> list[bytes]:
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5"}
    usage = {"input_tokens": 3, "output_tokens": 2}
    if not stream:
        return [json.dumps({**message, "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                            "stop_sequence": None, "usage": usage}).encode()]

    def event(kind, **payload):
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"
    return [event("message_start", message={**message, "content": [], "stop_reason": None, "usage": usage}).encode(),
            (event("content_block_start", index=0, content_block={"type": "text", "text": ""})
             + event("content_block_delta", index=0, delta={"type": "text_delta", "text": "ok"})
             + event("content_block_stop", index=0)
             + event("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": 2})
             + event("message_stop")).encode()]


def _answers() -> dict:
    out = {}
    for path, make in ((b"/v1/chat/completions", _chat), (b"/v1/responses", _responses), (b"/v1/messages", _messages)):
        body = make(False)[0]
        out[(path, False)] = [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                              % (len(body), body)]
        events = make(True)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
        out[(path, True)] = [head + chunks[0], b"".join(chunks[1:]) + b"0\r\n\r\n"]
    return out


ANSWERS = _answers()
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Upstream(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body, self.buf = self.buf[end + 4:end + 4 + length], self.buf[end + 4 + length:]
            path = head.split(b" ", 2)[1].split(b"?")[0]
            parts = ANSWERS.get((path, b'"stream":true' in body.replace(b" ", b"")))
            if parts is None:
                self.transport.write(NOT_FOUND)
            elif len(parts) == 1:
                self.transport.write(parts[0])
            else:  # a stream: first event now, the rest after the gap (answers stay in order per connection)
                self.transport.write(parts[0])
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(STREAM_GAP, self._finish, parts[1])
                return

    def _finish(self, rest):
        if not self.transport.is_closing():
            self.transport.write(rest)
            self.transport.resume_reading()
            if self.buf:
                self.data_received(b"")


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(int(sys.argv[1])))
    else:
        uvloop.run(serve(int(sys.argv[1])))

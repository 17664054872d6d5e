"""Model, tokens and a failure's message from the bodies the recorder kept (in its background thread).

The request body gives the model the client asked for. The response gives the tokens: a JSON
answer's `usage`, or for a stream the usage chunk / event near its end (OpenAI chat: the last chunk;
Responses: `response.completed`; Anthropic: `message_start` for the input, `message_delta` for the
output). The recorder keeps a bounded head and tail of each body, so a large body may come cut:
then the fields are searched for in what is there.
"""

from __future__ import annotations

import json
import re

MAX_TEXT = 300  # an error message, as stored
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_NUMBER = {key: re.compile(rb'"' + key.encode() + rb'"\s*:\s*(\d{1,12})') for key in (
    "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "cached_tokens", "cache_read_input_tokens")}


def _json(data: bytes):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def request_model(body: bytes, complete: bool) -> tuple[str | None, bool]:
    """(model, stream) of a request body."""
    data = _json(body) if complete else None
    if isinstance(data, dict):
        model = data.get("model")
        return (model[:200] if isinstance(model, str) else None), data.get("stream") is True
    found = _MODEL.search(body[:65536])
    return (found.group(1).decode("utf-8", "replace") if found else None), b'"stream":true' in body.replace(b" ", b"")[:65536]


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12 else None


class Tokens:
    """Counts gathered from every `usage` object seen; the largest of each kind wins (a stream's
    running totals only grow)."""

    def __init__(self):
        self.tokens_in = self.tokens_out = self.tokens_cached = None

    def _max(self, name: str, value) -> None:
        value = _count(value)
        if value is not None and (getattr(self, name) is None or value > getattr(self, name)):
            setattr(self, name, value)

    def add_usage(self, usage: dict) -> None:
        self._max("tokens_in", usage.get("prompt_tokens"))
        self._max("tokens_in", usage.get("input_tokens"))
        self._max("tokens_out", usage.get("completion_tokens"))
        self._max("tokens_out", usage.get("output_tokens"))
        self._max("tokens_cached", usage.get("cache_read_input_tokens"))
        for details in (usage.get("prompt_tokens_details"), usage.get("input_tokens_details")):
            if isinstance(details, dict):
                self._max("tokens_cached", details.get("cached_tokens"))

    def walk(self, data, depth: int = 0) -> None:
        """Every `usage` mapping in `data` (e.g. Responses' `response.usage`, Anthropic's `message.usage`)."""
        if depth > 4 or not isinstance(data, dict):
            return
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.add_usage(usage)
        for key in ("response", "message"):
            self.walk(data.get(key), depth + 1)

    def search(self, text: bytes) -> None:
        """The last resort for a cut body: the fields wherever they appear."""
        for key, pattern in _NUMBER.items():
            for found in pattern.finditer(text):
                name = {"prompt_tokens": "tokens_in", "input_tokens": "tokens_in", "completion_tokens": "tokens_out",
                        "output_tokens": "tokens_out"}.get(key, "tokens_cached")
                self._max(name, int(found.group(1)))

    def as_dict(self) -> dict:
        return {"tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "tokens_cached": self.tokens_cached}


def _events(text: bytes):
    """The JSON objects of an SSE body's `data:` lines."""
    for line in text.split(b"\n"):
        line = line.strip()
        if line.startswith(b"data:"):
            data = _json(line[5:].strip())
            if isinstance(data, dict):
                yield data


def response_fields(head: bytes, tail: bytes, complete: bool, stream: bool) -> dict:
    """tokens_in / tokens_out / tokens_cached (None when not found) and `error` (a stream's error
    event's message: its status was 200 already)."""
    tokens = Tokens()
    body = head + tail if complete else None
    error = None
    if stream:
        for part in ((body,) if complete else (head, tail)):
            for event in _events(part):
                tokens.walk(event)
                error = error or stream_error(event)
    elif complete:
        data = _json(body)
        if isinstance(data, dict):
            tokens.walk(data)
        else:
            tokens.search(body)
    else:
        tokens.search(tail)
    return {**tokens.as_dict(), "error": error}


def stream_error(event: dict) -> str | None:
    """The message of an error event in a stream (a 200 whose answer failed midway): OpenAI's and
    LiteLLM's `{"error": {...}}`, Anthropic's and Responses' `{"type": "error", ...}`."""
    error = event.get("error")
    if not error and event.get("type") != "error":
        return None
    for candidate in (error.get("message") if isinstance(error, dict) else error, event.get("message")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:MAX_TEXT]
    return "an error event in the stream"


def error_message(head: bytes) -> str:
    """What a failure said: `error.message` (OpenAI, Anthropic, LiteLLM), `detail`, or the body's start."""
    data = _json(head)
    if isinstance(data, dict):
        error = data.get("error")
        for candidate in ((error or {}).get("message") if isinstance(error, dict) else error, data.get("detail"),
                          data.get("message")):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()[:MAX_TEXT]
    return head[:MAX_TEXT].decode("utf-8", "replace").strip()

"""`doit smoke`: real requests through the running LiteLLM, for what the accounts serve.

One model per provider that has an account (the client slot's choice when it belongs to that
provider, else its first served id), or `--model NAME`: OpenAI-protocol ids on chat completions and
the Responses API (Codex), Claude ids on Anthropic Messages with Claude Code's headers, count_tokens
and chat; each streamed and not where the client streams; plus /v1/models, which must list every
served id. A failed check carries the upstream's own error text; each line is printed as it ends.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.view import cliproxy, litellm
from ..services.common import base_url
from ..services.secrets import LITELLM_MASTER_KEY

PROMPT = "Reply with the single word: ok"
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"}


@dataclass
class Check:
    name: str
    model: str | None
    ok: bool
    status: int | None
    ms: int
    detail: str = ""

    def line(self) -> str:
        """For a terminal: the model id, reply text and upstream errors are peers' text, escaped."""
        from ..base.terminal import printable

        status = str(self.status) if self.status is not None else "---"
        return printable(f"{'ok' if self.ok else 'FAIL':<5}{status:>4} {self.ms:>6} ms  {self.name:<22}"
                         f"{self.model or '':<28}{self.detail}").rstrip()


class Failure(Exception):
    def __init__(self, status: int | None, text: str):
        super().__init__(text)
        self.status, self.text = status, text


def models_to_check(paths: Paths, stack: dict, only: str | None) -> tuple[list[tuple[str, str]], list[str]]:
    """([(model, protocol)], every served id) for this run; FlowgateError when nothing is served."""
    from ..catalog import choose
    from ..catalog.discover import refresh
    from ..catalog.routes import protocol_of
    from ..services.litellm import protocol

    named = {m["name"]: m for m in stack["models"]}
    catalog = refresh(paths, stack)[0] if cliproxy(stack).enabled else None
    served = catalog.ids() if catalog else []
    if only:
        model = named.get(only)
        if model is not None:
            return [(only, protocol(model) if model["via"] == "cliproxy" else model["model"].split("/", 1)[0])], served
        return [(only, protocol_of(only))], served
    if not served:
        raise FlowgateError("no account serves a model: nothing to smoke-test",
                            "log in first: `uv run doit login:codex` or `uv run doit login:claude` "
                            "(or check a model of your own: `uv run doit smoke --model NAME`)")
    resolved = [choose.slots(stack, catalog, c) for c in ("codex", "claude")]
    preferred = [r["model"] for r in resolved] + [r["fast_model"] for r in resolved]  # main slots first
    chosen: dict[str, str] = {}
    for provider in sorted({p for m in catalog.models for p in m.providers}):
        own = [m.id for m in catalog.models if provider in m.providers]
        chosen[provider] = next((m for m in preferred if m in own), own[0])
    picked = list(dict.fromkeys(chosen.values()))
    return [(m, protocol_of(m)) for m in picked], served


def run(paths: Paths, stack: dict, models: list[tuple[str, str]], served: list[str], timeout: float = 60,
        base: str | None = None, key: str | None = None):
    """Yield each Check as it ends (a hanging upstream shows which request hangs).

    `base`, `key`: another server than the gateway (tasks.upgrade checks a new CLIProxyAPI directly)."""
    import httpx

    key = key or paths.secret(LITELLM_MASTER_KEY).read_text(encoding="utf-8").strip()
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key, **ANTHROPIC_HEADERS}
    with httpx.Client(base_url=base or base_url(litellm(stack)), headers=headers, timeout=timeout) as client:
        yield _timed("models", None, lambda: _models(client, [m for m, _ in models] + served))
        for model, proto in models:
            for name, probe in PROBES[proto]:
                yield _timed(name, model, lambda: probe(client, model))


def _timed(name: str, model: str | None, probe) -> Check:
    import httpx

    started = time.monotonic()
    try:
        status, detail, ok = *probe(), True
    except Failure as exc:
        status, detail, ok = exc.status, exc.text, False
    except httpx.HTTPError as exc:
        status, detail, ok = None, f"{type(exc).__name__}: {exc}", False
    except (ValueError, LookupError, TypeError, AttributeError) as exc:  # a reply of the wrong shape
        status, detail, ok = None, f"unexpected reply: {type(exc).__name__}: {exc}", False
    return Check(name, model, ok, status, round((time.monotonic() - started) * 1000), _short(detail))


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(response) -> str:
    """The upstream's message out of an error body (OpenAI, Anthropic or LiteLLM shape)."""
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)
    return str(error)


def _json(client, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    response = client.request(method, path, json=body)
    if response.status_code >= 400:
        raise Failure(response.status_code, error_text(response))
    return response.status_code, response.json()


def _events(client, path: str, body: dict):
    """POST a streaming request; yield each SSE data payload (parsed). The status comes first."""
    with client.stream("POST", path, json=body) as response:
        if response.status_code >= 400:
            response.read()
            raise Failure(response.status_code, error_text(response))
        yield response.status_code
        for line in response.iter_lines():
            if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
                yield json.loads(line[5:])


def _streamed(client, path: str, body: dict, text_of, done_of) -> tuple[int, str]:
    events = _events(client, path, body)
    status = next(events)
    text, done = "", False
    for event in events:
        text += text_of(event) or ""
        done = done or done_of(event)
    if not done:
        raise Failure(status, "the stream ended without its final event")
    return _replied(status, text)


def _replied(status: int, text) -> tuple[int, str]:
    if not text:
        raise Failure(status, "the reply holds no text")
    return status, text


def _models(client, expected: list[str]) -> tuple[int, str]:
    status, body = _json(client, "GET", "/v1/models")
    listed = {m.get("id") for m in body.get("data", [])}
    missing = list(dict.fromkeys(m for m in expected if m not in listed))
    if missing:
        raise Failure(status, f"not listed: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    return status, f"{len(listed)} models"


def _chat(client, model: str, stream: bool = False):
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    if stream:
        return _streamed(client, "/v1/chat/completions", body,
                         lambda e: ((e.get("choices") or [{}])[0].get("delta") or {}).get("content"),
                         lambda e: bool(e.get("choices")) and e["choices"][0].get("finish_reason") is not None)
    status, reply = _json(client, "POST", "/v1/chat/completions", body)
    return _replied(status, reply["choices"][0]["message"]["content"])


def _responses(client, model: str, stream: bool = False):
    body = {"model": model, "input": PROMPT, "stream": stream}
    if stream:
        return _streamed(client, "/v1/responses", body,
                         lambda e: e.get("delta") if e.get("type") == "response.output_text.delta" else None,
                         lambda e: e.get("type") == "response.completed")
    status, reply = _json(client, "POST", "/v1/responses", body)
    texts = [part.get("text", "") for item in reply.get("output", []) if item.get("type") == "message"
             for part in item.get("content", []) if part.get("type") == "output_text"]
    return _replied(status, "".join(texts))


def _messages(client, model: str, stream: bool = False):
    # Claude Code's own shape: ?beta=true, anthropic-version / anthropic-beta headers (set on the client).
    body = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    if stream:
        return _streamed(client, "/v1/messages?beta=true", body,
                         lambda e: (e.get("delta") or {}).get("text") if e.get("type") == "content_block_delta" else None,
                         lambda e: e.get("type") == "message_stop")
    status, reply = _json(client, "POST", "/v1/messages?beta=true", body)
    return _replied(status, "".join(b.get("text", "") for b in reply.get("content", []) if b.get("type") == "text"))


def _count_tokens(client, model: str):
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    status, reply = _json(client, "POST", "/v1/messages/count_tokens?beta=true", body)
    tokens = reply.get("input_tokens")
    if not isinstance(tokens, int) or tokens <= 0:
        raise Failure(status, f"no token count in the reply: {reply}")
    return status, f"{tokens} input tokens"


_OPENAI = (
    ("chat", _chat),
    ("chat (stream)", lambda c, m: _chat(c, m, stream=True)),
    ("responses", _responses),
    ("responses (stream)", lambda c, m: _responses(c, m, stream=True)),
)
# An OpenAI-protocol id's count would go to the upstream's /v1/responses/input_tokens, which
# CLIProxyAPI does not serve: count_tokens is Claude Code's, on Claude ids.
PROBES = {
    "openai": _OPENAI,
    "anthropic": (
        ("messages", _messages),
        ("messages (stream)", lambda c, m: _messages(c, m, stream=True)),
        ("count_tokens", _count_tokens),
        ("chat", _chat),
    ),
}


def summary(checks: list[Check]) -> str:
    if not checks:
        return "0 checks ran"
    passed = sum(c.ok for c in checks)
    return f"{passed} passed, {len(checks) - passed} failed"


def as_json(stack: dict, checks: list[Check]) -> str:
    passed = sum(c.ok for c in checks)
    return json.dumps({"base_url": base_url(litellm(stack)), "passed": passed, "failed": len(checks) - passed,
                       "checks": [asdict(c) for c in checks]}, indent=2)

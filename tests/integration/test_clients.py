"""Clients against the real stack (LiteLLM + the CLIProxyAPI double, logged in to codex and claude):
the official openai and anthropic SDKs, streaming included, and Claude Code's dated ids."""

from __future__ import annotations

import re

import anthropic
import openai
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")
BETA = {"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}


@pytest.fixture(scope="module")
def oai(stack):
    with openai.OpenAI(base_url=stack.litellm_url + "/v1", api_key=stack.master_key, max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def claude(stack):
    with anthropic.Anthropic(base_url=stack.litellm_url, api_key=stack.master_key, max_retries=0) as client:
        yield client


def upstream_paths(stack) -> list[str]:
    """The request paths the double (CLIProxyAPI) served, from its log."""
    return re.findall(r'\| POST +"([^"]+)"', stack.paths.log("cliproxy").read_text())


@pytest.mark.parametrize("model", ["gpt-5.5", "claude-sonnet-4-6"])
def test_openai_sdk_chat_and_responses(oai, model):
    chat = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello there"}])
    assert chat.choices[0].message.content == f"double({model}): hello there"
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in
                       oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "streamed chat"}],
                                                   stream=True) if chunk.choices)
    assert streamed == f"double({model}): streamed chat"
    response = oai.responses.create(model=model, input="codex style")
    assert response.output_text == f"double({model}): codex style"
    events = list(oai.responses.create(model=model, input="streamed responses", stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == f"double({model}): streamed responses"
    assert events[-1].type == "response.completed"


def test_anthropic_sdk_messages_reach_the_upstream_natively(stack, claude):
    before = len(upstream_paths(stack))
    message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, extra_headers=BETA,
                                     messages=[{"role": "user", "content": "hi from claude code"}])
    assert message.content[0].text == "double(claude-sonnet-4-6): hi from claude code"
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=64, extra_headers=BETA,
                                messages=[{"role": "user", "content": "streamed message"}]) as stream:
        assert "".join(stream.text_stream) == "double(claude-sonnet-4-6): streamed message"
    count = claude.messages.count_tokens(model="claude-sonnet-4-6", extra_headers=BETA,
                                         messages=[{"role": "user", "content": "four words right here"}])
    assert count.input_tokens == 4  # the double counts words: the upstream's own count came back
    # Claude models speak Anthropic to CLIProxyAPI: no translation to /v1/responses on the way.
    assert upstream_paths(stack)[before:] == ["/v1/messages", "/v1/messages", "/v1/messages/count_tokens"]


def test_claude_code_dated_ids_are_served(claude):
    message = claude.messages.create(model="claude-haiku-4-5-20251001", max_tokens=64,
                                     messages=[{"role": "user", "content": "background work"}])
    assert message.content[0].text == "double(claude-haiku-4-5-20251001): background work"
    with pytest.raises(anthropic.BadRequestError) as info:  # not served: a 400 naming the served snapshot
        claude.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert "nearest: claude-haiku-4-5-20251001" in str(info.value)

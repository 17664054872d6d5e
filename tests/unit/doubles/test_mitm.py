"""The MITM proxy that lets the real binary reach the provider stand-in's OAuth routes
(tests/fakes/mitm.py), checked with httpx over both protocols the binary speaks, so it works where
Go (and so the real binary) is missing. And the stand-in's subscriptions (tests/fakes/provider_quota.py)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.fakes.mitm import Mitm
from tests.fakes.provider import ProviderStandIn


@pytest.fixture
def chain(tmp_path):
    with ProviderStandIn(quota_step=50, quota_reset=60) as provider, \
            Mitm(provider._server.server_address[1], tmp_path / "mitm") as mitm:
        yield provider, mitm


@pytest.mark.parametrize("http2", [True, False])
def test_requests_reach_the_stand_in_through_the_proxy_with_the_test_ca(chain, http2):
    provider, mitm = chain
    trust = ssl.create_default_context(cafile=str(mitm.ca_file))
    with httpx.Client(proxy=mitm.url, verify=trust, http2=http2, timeout=10) as client:
        answer = client.post("https://chatgpt.com/backend-api/codex/responses", headers={"Authorization": "Bearer tok-a"},
                             json={"model": "gpt-5.5", "input": "hello", "stream": True})
        assert answer.status_code == 200 and answer.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert "response.completed" in answer.text
        usage = client.get("https://chatgpt.com/backend-api/wham/usage", headers={"Authorization": "Bearer tok-a"})
    assert usage.json()["rate_limit"]["primary_window"]["used_percent"] == 50
    assert provider.received[-1].path == "/backend-api/codex/responses"
    assert provider.received[-1].headers["x-mitm-host"] == "chatgpt.com"
    assert mitm.hosts == ["chatgpt.com"] and mitm.errors == []


def test_an_untrusted_client_is_refused_and_nothing_is_forwarded(chain):
    provider, mitm = chain
    with httpx.Client(proxy=mitm.url, timeout=10) as client, pytest.raises(httpx.ConnectError):
        client.get("https://api.anthropic.com/api/oauth/usage", headers={"Authorization": "Bearer sk-ant-oat01-x"})
    assert provider.total_requests == 0


def test_subscriptions_fill_per_token_and_refuse_in_each_providers_shape(chain):
    provider, mitm = chain
    trust = ssl.create_default_context(cafile=str(mitm.ca_file))
    with httpx.Client(proxy=mitm.url, verify=trust, timeout=10) as client:
        def claude(token):
            return client.post("https://api.anthropic.com/v1/messages", headers={"Authorization": f"Bearer {token}"},
                               json={"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]})

        assert [claude("sk-ant-oat01-a").status_code for _ in range(2)] == [200, 200]
        refused = claude("sk-ant-oat01-a")
        assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
        assert refused.headers["anthropic-ratelimit-unified-5h-status"] == "rejected"
        assert int(refused.headers["anthropic-ratelimit-unified-5h-reset"]) > 0
        assert claude("sk-ant-oat01-b").status_code == 200  # another token, another subscription
        windows = client.get("https://api.anthropic.com/api/oauth/usage", headers={"Authorization": "Bearer sk-ant-oat01-a"})
        assert windows.json()["five_hour"]["utilization"] == 100
        codex = [client.post("https://chatgpt.com/backend-api/codex/responses", headers={"Authorization": "Bearer c"},
                             json={"model": "gpt-5.5", "input": "x", "stream": True}) for _ in range(3)]
    assert [r.status_code for r in codex] == [200, 200, 429]
    error = codex[-1].json()["error"]
    assert error["type"] == "usage_limit_reached" and 0 < error["resets_in_seconds"] <= 60
    assert provider.oauth.served["sk-ant-oat01-a"] == 2 and provider.oauth.refused["sk-ant-oat01-a"] == 1

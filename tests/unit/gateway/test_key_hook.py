"""tasks.gateway.key_hook: LiteLLM's custom_auth takes the master key as admin and a member's key as
an internal user on the model routes only; anything else is a 401 (or the book's 503)."""

from __future__ import annotations

import asyncio
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM is imported here: no remote price map


class Request:
    def __init__(self, path: str, key: str):
        self.url = type("URL", (), {"path": path})()
        self.headers = {"authorization": f"Bearer {key}"}


@pytest.fixture
def hook(paths, monkeypatch):
    from litellm.proxy import proxy_server

    from tasks.gateway import gate, key_hook
    from tasks.gateway.keys.book import KeyBook

    monkeypatch.setattr(proxy_server, "master_key", "sk-master")
    monkeypatch.setattr(gate, "_BOOK", [KeyBook(paths.keys_db)])
    return lambda path, key: asyncio.run(key_hook.user_api_key_auth(Request(path, key), key))


def test_the_master_key_is_the_admin_and_a_member_key_a_user_of_the_model_routes(paths, hook):
    from litellm.proxy._types import LitellmUserRoles, ProxyException

    from tasks.keys import manage

    key = manage.create(paths, "ana")
    assert hook("/v1/chat/completions", "sk-master").user_role == LitellmUserRoles.PROXY_ADMIN
    auth = hook("/v1/chat/completions", key)
    assert auth.user_role == LitellmUserRoles.INTERNAL_USER and auth.key_alias == "ana" and key not in auth.api_key
    with pytest.raises(ProxyException) as refused:
        hook("/key/generate", key)
    assert refused.value.code == "403"
    with pytest.raises(ProxyException) as refused:
        hook("/v1/chat/completions", "fg-unknown")
    assert refused.value.code == "401" and "wrong gateway key" in refused.value.message

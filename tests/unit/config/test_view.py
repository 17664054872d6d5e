"""tasks.config.view: the validated stack read by name, one immutable settings object per service."""

from __future__ import annotations

import pytest

from tasks.config import view
from tasks.config.load import load_stack


def test_each_service_reads_by_name(paths):
    paths.local_config.write_text("litellm: {port: 4100, replicas: 2, env: {A: b}}\nredis: {managed: true}\n")
    stack = load_stack(paths)
    lite, cp, rd = view.litellm(stack), view.cliproxy(stack), view.redis(stack)
    assert (lite.host, lite.port, lite.replicas, lite.env) == ("127.0.0.1", 4100, 2, {"A": "b"})
    assert cp.enabled and cp.port == 8317 and cp.release["repo"] == "router-for-me/CLIProxyAPI"
    assert rd.managed and rd.port == 6399 and rd.host == "127.0.0.1"
    assert view.of(stack, "cliproxy") == cp


def test_the_views_are_read_only_and_follow_the_data(paths):
    stack = load_stack(paths)
    lite = view.litellm(stack)
    with pytest.raises(AttributeError):
        lite.port = 1
    stack["litellm"]["port"] = 4999  # the data stays plain JSON (hashed, sliced, written back)
    assert view.litellm(stack).port == 4999 and lite.port == 4000


def test_every_schema_key_is_a_field():
    from tasks.config.stackspec import _CLIPROXY, _LITELLM
    from tasks.config.teamspec import REDIS

    for cls, mapping in ((view.LiteLLM, _LITELLM), (view.CLIProxy, _CLIPROXY), (view.Redis, REDIS)):
        assert set(mapping.fields) <= set(cls._fields), cls.__name__

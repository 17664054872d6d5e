"""tasks.stack.lifecycle: drift detection around the binary's own config rewrite."""

from __future__ import annotations

from types import SimpleNamespace

from tasks.services.common import file_sha
from tasks.stack.lifecycle import config_drift

RENDERED = """# comment
host: "127.0.0.1"
port: 8317
remote-management:
  allow-remote: false
  secret-key: mgmt-plaintext
  disable-control-panel: true
request-retry: 3
"""


def setup(paths, running: str):
    paths.cliproxy_rendered.parent.mkdir(parents=True, exist_ok=True)
    paths.cliproxy_rendered.write_text(RENDERED)
    paths.cliproxy_config.write_text(running)
    return SimpleNamespace(meta={"rendered_sha": file_sha(paths.cliproxy_rendered)})


def test_hashed_management_key_is_not_drift(paths):
    record = setup(paths, RENDERED.replace("mgmt-plaintext", "$2a$10$abcdefghijklmnopqrstuv"))
    assert config_drift(paths, "cliproxy", record) is False


def test_reserialised_file_with_same_meaning_is_not_drift(paths):
    record = setup(paths, "host: 127.0.0.1\nport: 8317\nrequest-retry: 3\nremote-management:\n"
                          "  secret-key: '$2a$10$xyz'\n  allow-remote: false\n  disable-control-panel: true\n")
    assert config_drift(paths, "cliproxy", record) is False


def test_changed_setting_is_drift(paths):
    record = setup(paths, RENDERED.replace("request-retry: 3", "request-retry: 4"))
    assert config_drift(paths, "cliproxy", record) is True


def test_rendered_newer_than_delivered_is_drift(paths):
    record = setup(paths, RENDERED)
    record.meta["rendered_sha"] = "older"
    assert config_drift(paths, "cliproxy", record) is True


def test_litellm_drift_follows_rendered_file(paths):
    paths.litellm_config.parent.mkdir(parents=True)
    paths.litellm_config.write_text("a: 1\n")
    record = SimpleNamespace(meta={"config_sha": file_sha(paths.litellm_config)})
    assert config_drift(paths, "litellm", record) is False
    paths.litellm_config.write_text("a: 2\n")
    assert config_drift(paths, "litellm", record) is True
    assert config_drift(paths, "litellm", None) is None

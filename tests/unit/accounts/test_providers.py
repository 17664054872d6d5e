"""tasks.accounts.providers: one table, config entries over it, the installed binary line."""

from __future__ import annotations

import json

import pytest

from tasks.accounts.providers import (
    DEVICE,
    FLOWS,
    MAINLINE,
    PLUS,
    REDIRECT,
    TABLE,
    installed_line,
    provider_for_type,
    require_supported,
    resolve,
)
from tasks.config.load import load_stack
from tasks.base.errors import FlowgateError


def test_table_is_complete_and_consistent():
    assert set(TABLE) == {"codex", "claude", "copilot", "gemini", "qwen", "iflow", "antigravity", "kimi", "xai", "kiro"}
    for p in TABLE.values():
        assert p.route.endswith("-auth-url") and p.flow in FLOWS and p.type and p.login_flag, p
        assert set(p.lines) <= {MAINLINE, PLUS} and p.lines
        assert (p.flow == REDIRECT) == (p.callback is not None and p.callback_port is not None), p
    # the mainline line's built-in logins, per the reference sheet
    assert {n for n, p in TABLE.items() if MAINLINE in p.lines} == {"codex", "claude", "antigravity", "kimi", "xai"}
    assert {n for n, p in TABLE.items() if PLUS in p.lines} == set(TABLE) - {"xai"}
    assert TABLE["copilot"].type == "github-copilot" and TABLE["claude"].callback == "anthropic"


def test_config_entries_override_and_add_providers():
    stack = {"providers": ["github-copilot", {"name": "codex", "route": "/codex-v2-auth-url", "flow": "device"},
                           {"name": "acme", "route": "acme-auth-url", "flow": "device", "type": "acme"}]}
    assert resolve(stack, "copilot") == TABLE["copilot"]  # alias
    codex = resolve(stack, "codex")
    assert (codex.route, codex.flow, codex.type, codex.configured) == ("codex-v2-auth-url", DEVICE, "codex", True)
    acme = resolve(stack, "acme")
    assert (acme.route, acme.flow, acme.type) == ("acme-auth-url", DEVICE, "acme")
    assert provider_for_type("acme", stack) == "acme" and provider_for_type("github-copilot") == "copilot"
    with pytest.raises(FlowgateError) as err:
        resolve(stack, "claude")
    assert "not in `providers:`" in err.value.message and "config/local.yaml" in err.value.hint


def test_config_validation_of_provider_entries(home, paths):
    paths.local_config.write_text("providers:\n  - codex\n  - {name: acme}\n  - nope\n  - {name: kimi, flow: sideways}\n")
    with pytest.raises(FlowgateError) as err:
        load_stack(paths)
    text = "\n".join(err.value.details)
    assert "providers[1].route: missing: 'acme' is not a built-in provider" in text
    assert "providers[2]: unknown provider 'nope'" in text
    assert "providers[3].flow: expected one of redirect, device, kiro" in text
    paths.local_config.write_text("providers: [codex, {name: acme, route: acme-auth-url, flow: device}]\n")
    assert load_stack(paths)["providers"] == ["codex", {"name": "acme", "route": "acme-auth-url", "flow": "device"}]


def test_a_provider_the_installed_line_lacks_names_the_line_that_has_it():
    with pytest.raises(FlowgateError) as err:
        require_supported(TABLE["copilot"], MAINLINE)
    assert "copilot needs the CLIProxyAPIPlus line (installed: CLIProxyAPI, mainline)" in err.value.message
    assert "kaitranntt/CLIProxyAPIPlus" in err.value.hint
    with pytest.raises(FlowgateError) as err:
        require_supported(TABLE["xai"], PLUS)
    assert "router-for-me/CLIProxyAPI" in err.value.hint
    require_supported(TABLE["codex"], MAINLINE)
    require_supported(TABLE["copilot"], None)  # unknown line: the route decides
    require_supported(resolve({"providers": [{"name": "xai", "flow": "device"}]}, "xai"), PLUS)  # configured: trusted


@pytest.mark.parametrize("manifest, line", [
    ({"line": "mainline", "asset": "CLIProxyAPIPlus_6.8.16-0_linux_amd64.tar.gz"}, MAINLINE),
    ({"asset": "CLIProxyAPIPlus_6.8.16-0_linux_amd64.tar.gz"}, PLUS),
    ({"asset": "CLIProxyAPI_7.2.140_linux_aarch64.tar.gz"}, MAINLINE),
    ({"line": "other"}, None),
    ([], None),
    (None, None),
])
def test_installed_line_is_read_defensively(paths, manifest, line):
    if manifest is not None:
        paths.manifest.parent.mkdir(parents=True, exist_ok=True)
        paths.manifest.write_text(json.dumps(manifest))
    assert installed_line(paths) == line

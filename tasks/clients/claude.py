"""Claude Code: the gateway in $CLAUDE_CONFIG_DIR/settings.json (default ~/.claude/settings.json).

Sets the top-level `apiKeyHelper` and, in `env`, the base URL and the model slots. Every other key
stays, in its order, and the file keeps its indentation. A token for another gateway in `env`
would win over the helper, so it is removed (it stays in the backup).
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.paths import Paths
from .files import FileChange, parse_error, read_text
from .gateway import Gateway, client_models, gateway, picker_slots

OVERRIDING_TOKENS = ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")
_INDENT = re.compile(r'^([ \t]+)"', re.MULTILINE)


def settings_path(environ=None) -> Path:
    env = os.environ if environ is None else environ
    return Path(os.path.expanduser(env.get("CLAUDE_CONFIG_DIR") or "~/.claude")) / "settings.json"


def wanted_env(gw: Gateway, model: str, fast_model: str, slots: dict | None = None) -> dict:
    """slots: Claude Code's picker slots by family (gateway.picker_slots); without: all the model."""
    slots = slots or {"opus": model, "sonnet": model, "haiku": fast_model}
    return {
        "ANTHROPIC_BASE_URL": gw.root_url,  # no /v1: Claude Code appends /v1/messages itself
        "ANTHROPIC_MODEL": model,
        # The /model picker's Opus, Sonnet and Haiku entries: each the newest served id of its family.
        "ANTHROPIC_DEFAULT_OPUS_MODEL": slots["opus"],
        "ANTHROPIC_DEFAULT_SONNET_MODEL": slots["sonnet"],
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": slots["haiku"],  # background work
        # The model picker lists the gateway's /v1/models (the ids the accounts serve now).
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
    }


OWNED_ENV = ("ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
             "ANTHROPIC_DEFAULT_HAIKU_MODEL", "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY") + OVERRIDING_TOKENS


def _indent(text: str) -> str | int:
    match = _INDENT.search(text)
    if not match:
        return 2
    return "\t" if "\t" in match.group(1) else len(match.group(1))


def _load(text: str | None, path: Path) -> dict:
    if text is None or not text.strip():
        return {}
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise parse_error(path, exc.lineno, f"{exc.msg} (column {exc.colno})") from None
    except RecursionError:  # e.g. 100,000 nested arrays: not a settings file
        raise parse_error(path, 1, "nested too deeply to be a settings file") from None
    if not isinstance(settings, dict):
        raise parse_error(path, 1, "expected a JSON object at the top level")
    return settings


def merge_settings(text: str | None, path: Path, helper: str, env: dict) -> tuple[str, list[str]]:
    """`text` with the gateway settings merged in; returns (new text, notices)."""
    settings = _load(text, path)
    before = copy.deepcopy(settings)
    notices = []
    settings["apiKeyHelper"] = helper
    block = settings.setdefault("env", {})
    if not isinstance(block, dict):
        raise FlowgateError(f"{path}: `env` is not an object", "make it {\"NAME\": \"value\", ...}; nothing was written")
    for name in OVERRIDING_TOKENS:
        if name in block:
            del block[name]
            notices.append(f"{path}: removed env.{name}: it would override the gateway key "
                           "(the old file is in the backup)")
    block.update(env)
    if settings == before and text is not None:
        return text, notices  # nothing to change: keep the file exactly as it is
    ending = "\n" if text is None or text.endswith("\n") or not text.strip() else ""
    return json.dumps(settings, indent=_indent(text or ""), ensure_ascii=False) + ending, notices


def unmerge_settings(text: str, user: str, path: Path) -> str | None:
    """`text` without what FlowGate set (`apiKeyHelper`, its `env` entries), those keys as the user
    had them in `user` (a token apply removed comes back); every other key as it is now."""
    settings = _load(text, path)
    try:
        mine = json.loads(user) if user.strip() else {}
    except (ValueError, RecursionError):
        mine = {}
    mine = mine if isinstance(mine, dict) else {}
    their_env = mine.get("env") if isinstance(mine.get("env"), dict) else {}
    if "apiKeyHelper" in mine:
        settings["apiKeyHelper"] = mine["apiKeyHelper"]
    else:
        settings.pop("apiKeyHelper", None)
    block = settings.get("env")
    if isinstance(block, dict):
        for name in OWNED_ENV:
            if name in their_env:
                block[name] = their_env[name]
            else:
                block.pop(name, None)
        if not block and "env" not in mine:
            del settings["env"]
    if not settings:
        return None
    if user.strip() and settings == mine:
        return user  # nothing of the user's changed since: their file byte for byte
    ending = "\n" if text.endswith("\n") else ""
    return json.dumps(settings, indent=_indent(text), ensure_ascii=False) + ending


def plan(paths: Paths, stack: dict, environ=None, gw: Gateway | None = None) -> tuple[list[FileChange], list[str]]:
    """The change `integrate:claude --apply` would make, and notices; reads, never writes.
    `gw`: the gateway as wired (a member's key: gateway.member_gateway); the master key's by default."""
    model, fast_model = client_models(paths, stack, "claude")
    gw = gw or gateway(paths, stack)
    path = settings_path(environ)
    old = read_text(path)
    env = wanted_env(gw, model, fast_model, picker_slots(paths, stack, model, fast_model))
    new, notices = merge_settings(old, path, gw.key_shell_command, env)
    return [FileChange(path, old, new)], notices

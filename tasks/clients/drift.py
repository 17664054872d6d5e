"""What the clients will really use: the models their own settings files name now, and variables in
the user's environment that override FlowGate's wiring.

A client may rewrite its own settings after `integrate` (Codex's "Try new model" dialog sets
`model` in config.toml) and the catalog may retire a model: `doit status` and `doit doctor` read the
files `integrate` wrote (stdlib parsers only) and name a model no account serves, with the fix. A
variable exported in the shell wins over a settings file for some keys (Claude Code sends an
`ANTHROPIC_AUTH_TOKEN` instead of the key helper's): `integrate` and `doctor` name each one set.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import read_foreign

LIMIT = 1 << 20  # tasks.clients.files.SETTINGS_LIMIT
PROVIDER = "flowgate"  # tasks.clients.codex.PROVIDER (not imported: status reads this on its fast path)
CLAUDE_MODEL_VARS = ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
                     "ANTHROPIC_DEFAULT_HAIKU_MODEL")
# name -> what it does to the client wired by FlowGate when exported in the shell
OVERRIDES = {
    "claude": {
        "ANTHROPIC_AUTH_TOKEN": "Claude Code sends it instead of the gateway key (the gateway answers 401)",
        "ANTHROPIC_API_KEY": "Claude Code may send it instead of the gateway key (the gateway answers 401)",
        "ANTHROPIC_BASE_URL": "Claude Code may send its requests there instead of the gateway",
        "CLAUDE_CODE_USE_BEDROCK": "Claude Code talks to Bedrock, not the gateway",
        "CLAUDE_CODE_USE_VERTEX": "Claude Code talks to Vertex AI, not the gateway",
        **{name: "Claude Code may use that model instead of the one integrate chose" for name in CLAUDE_MODEL_VARS},
    },
    "codex": {
        "OPENAI_BASE_URL": "Codex's built-in openai provider and OpenAI SDKs send requests there, not to the gateway",
        "OPENAI_API_KEY": "OpenAI SDKs send it instead of the gateway key (`codex` with FlowGate's provider does not)",
        "CODEX_API_KEY": "`codex exec` may send it instead of the gateway key",
    },
}


def configured(client: str, files: list[str]) -> list[tuple[str, str, str]] | None:
    """[(file, setting, model)] the client's files name while they point at the gateway; None when
    none of them can be read (missing, or not parseable)."""
    out, read_any = [], False
    for name in files:
        try:  # a regular file of at most LIMIT bytes (a FIFO would block status), never read whole
            raw = read_foreign(Path(name), LIMIT, "")
            text = raw.decode("utf-8") if raw is not None else None
        except (FlowgateError, UnicodeDecodeError):
            continue
        if text is None:
            continue
        try:
            found = _codex(text) if client == "codex" else _claude(text)
        except ValueError:
            continue
        read_any = True
        out += [(name, setting, model) for setting, model in found]
    return out if read_any else None


def _codex(text: str) -> list[tuple[str, str]]:
    import tomllib

    data = tomllib.loads(text)
    model = data.get("model")
    return [("model", model)] if data.get("model_provider") == PROVIDER and isinstance(model, str) else []


def _claude(text: str) -> list[tuple[str, str]]:
    data = json.loads(text)
    env = data.get("env") if isinstance(data, dict) else None
    if not isinstance(env, dict) or "ANTHROPIC_BASE_URL" not in env:
        return []
    return [(name, env[name]) for name in CLAUDE_MODEL_VARS if isinstance(env.get(name), str) and env[name]]


def unserved(client: str, files: list[str], routable: set[str]) -> list[dict] | None:
    """The settings in the client's files naming a model nothing routes now, each with its fix;
    None when the files cannot be read."""
    found = configured(client, files)
    if found is None:
        return None
    return [{"client": client, "slot": setting, "model": model, "file": name,
             "command": f"uv run doit integrate:{client} --apply"}
            for name, setting, model in found if model.split("(")[0] not in routable]


def overriding_env(client: str, environ) -> list[str]:
    """One line per variable set in `environ` that overrides FlowGate's wiring of `client`."""
    return [f"{name} is set in your environment: {effect}; unset it (`unset {name}`) to use the gateway"
            for name, effect in OVERRIDES[client].items() if environ.get(name)]

"""`cliproxy.api_keys`: provider API keys served by CLIProxyAPI beside the OAuth accounts.

Each entry becomes one of the binary's own API-key providers (its config keys `codex-api-key`,
`claude-api-key`, `openai-compatibility`), so its registry, routing and management API treat the key
as an account. The key itself is never in a tracked file: `key_env` names an environment variable,
`key_file` a one-line file; FlowGate reads it when it renders CLIProxyAPI's config (0600).

    cliproxy:
      api_keys:
        - provider: codex            # OpenAI Responses (api.openai.com, or base_url)
          key_env: OPENAI_API_KEY
        - provider: claude           # Anthropic Messages
          key_file: ~/.config/anthropic.key
        - provider: openai           # any OpenAI-compatible chat endpoint
          name: acme
          base_url: https://llm.acme.example/v1
          key_env: ACME_KEY
          models: [acme-large]       # the ids it serves (required for openai)
"""

from __future__ import annotations

import hashlib
import os
from urllib.parse import urlsplit

from ..base.errors import FlowgateError
from ..base.paths import Paths
from .keyfiles import read_key_file
from .schema import ListOf, Mapping, Problem, Scalar
from .valuerules import ENV_NAME, MODEL_NAME

# FlowGate's provider name -> the binary's config key for that family of API keys
CONFIG_KEYS = {"codex": "codex-api-key", "claude": "claude-api-key", "openai": "openai-compatibility"}

API_KEYS = ListOf(Mapping({
    "provider": Scalar(str, required=True, choices=tuple(CONFIG_KEYS)),
    "name": Scalar(str, nullable=True, default=None, name=MODEL_NAME),
    "base_url": Scalar(str, nullable=True, default=None),
    "key_env": Scalar(str, nullable=True, default=None, name=ENV_NAME),
    "key_file": Scalar(str, nullable=True, default=None),
    "models": ListOf(Scalar(str, name=MODEL_NAME)),
}, complete=True))


def shape_problems(cliproxy: dict) -> list[Problem]:
    """What the schema cannot say about the entries: one key source, a URL, what openai needs."""
    out: list[Problem] = []
    settings = cliproxy.get("settings") or {}
    entries = cliproxy.get("api_keys") or []
    names: set[str] = set()
    for i, entry in enumerate(entries):
        where = ("cliproxy", "api_keys", i)
        if bool(entry["key_env"]) == bool(entry["key_file"]):
            out.append(Problem(where + ("key_env",), "give exactly one of key_env or key_file (the key is never "
                                                     "written in the config)"))
        url = entry["base_url"]
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                out.append(Problem(where + ("base_url",), f"{url!r} is not an http(s) URL"))
        if entry["provider"] == "openai":
            if not entry["name"]:
                out.append(Problem(where + ("name",), "missing: an openai entry needs a name (e.g. the company)"))
            elif entry["name"] in names:
                out.append(Problem(where + ("name",), f"duplicate openai provider name {entry['name']!r}"))
            names.add(entry["name"] or "")
            if not url:
                out.append(Problem(where + ("base_url",), "missing: an openai entry needs the endpoint's base_url"))
            if not entry["models"]:
                out.append(Problem(where + ("models",), "missing: list the ids this endpoint serves"))
    if entries:
        for key in set(CONFIG_KEYS.values()) & set(settings):
            out.append(Problem(("cliproxy", "settings", key), "is FlowGate's when cliproxy.api_keys is set; "
                                                              "declare the key under cliproxy.api_keys instead"))
    return out


def _key(paths: Paths, entry: dict, environ) -> str:
    if entry["key_env"]:
        value = environ.get(entry["key_env"], "").strip()
        if not value:
            raise FlowgateError(f"cliproxy.api_keys: environment variable {entry['key_env']} is not set",
                                f"export {entry['key_env']}=<your key> before `uv run doit up`")
        return value
    return read_key_file(paths.user_path(entry["key_file"]))


def rendered(paths: Paths, entries: list[dict], environ=None) -> dict[str, list[dict]]:
    """The binary's config keys for these entries, keys filled in (for the 0600 rendered config only)."""
    env = os.environ if environ is None else environ
    out: dict[str, list[dict]] = {}
    for entry in entries:
        key = _key(paths, entry, env)
        if entry["provider"] == "openai":
            item = {"name": entry["name"], "base-url": entry["base_url"], "api-key-entries": [{"api-key": key}],
                    "models": [{"name": m, "alias": m} for m in entry["models"]]}
        else:
            item = {"api-key": key, **({"base-url": entry["base_url"]} if entry["base_url"] else {})}
            if entry["models"]:  # only these ids, under their own names
                item["models"] = [{"name": m, "alias": m} for m in entry["models"]]
        out.setdefault(CONFIG_KEYS[entry["provider"]], []).append(item)
    return out


def key_files(paths: Paths, entries: list[dict]) -> list:
    return [paths.user_path(e["key_file"]) for e in entries if e["key_file"]]


def fingerprint(entries: list[dict], environ=None) -> str:
    """Changes when a key read from the environment changes (key files are the render's file deps):
    the render is redone without ever storing the key itself in doit's database."""
    env = os.environ if environ is None else environ
    digest = hashlib.sha256()
    for entry in entries:
        if entry["key_env"]:
            digest.update(entry["key_env"].encode() + b"\0" + env.get(entry["key_env"], "").encode() + b"\0")
    return digest.hexdigest()


def label(entry: dict) -> str:
    """How `doit accounts` names an entry: never the key, only where it comes from."""
    source = f"${entry['key_env']}" if entry["key_env"] else entry["key_file"]
    return f"{entry['name'] or entry['provider']} key ({source})"

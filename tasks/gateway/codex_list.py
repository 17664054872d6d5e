"""Inside LiteLLM's process: Codex CLI's model list, in the shape Codex decodes.

Codex asks its provider `GET /v1/models?client_version=<its version>` and decodes
`{"models": [ModelInfo, ...]}` (codex-rs `ModelsResponse`), not OpenAI's list: an OpenAI list makes it
log "failed to decode models response" on every start and fall back to the catalog built into its
binary, which offers models no account serves and whose "Try new model" dialog rewrites config.toml to
one of them. So a request recognised as Codex's (`client_version` in the query, or Codex's
User-Agent) gets exactly the Codex models the accounts serve (owned_by openai), each with the entry
CLIProxyAPI itself builds for Codex from its model registry (display name, description, context
window, reasoning levels, priority, instructions: `GET /v1/models?client_version=` on the binary,
mainline since v7.1.4). An `upgrade` naming a model not served is cleared. A served id the binary
gives no entry for (an older binary) gets LiteLLM's entry (Codex's bundled metadata for a slug it
knows, Codex's own fallback for one it does not). The body stays within Codex's 1 MiB limit, the
lowest-priority entries left out first (said in the log once per change, not per call).
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse

BODY_LIMIT = 1024 * 1024  # Codex drops a catalog over 1 MiB (MAX_MODEL_CATALOG_BYTES) and keeps its own
CODEX_OWNER = "openai"  # CLIProxyAPI's owned_by for the ids a Codex account serves
_UA = re.compile(rb"^codex[_-][a-z_-]*/(\d[0-9A-Za-z.+-]*)")  # codex_cli_rs/0.171.0 (...), codex-tui/0.171.0 ...
_said: dict = {"left_out": ()}
_cache: dict = {}  # client_version -> (monotonic time, body)


def asked_by_codex(scope) -> str | None:
    """The client version when this `GET /v1/models` is Codex's catalog request, else None."""
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if "client_version" in query:
        return query["client_version"][0] or "0"
    agent = next((v for k, v in scope.get("headers", ()) if k.lower() == b"user-agent"), b"")
    match = _UA.match(agent)
    return match.group(1).decode("ascii") if match else None


def without_client_version(query_string: bytes) -> bytes:
    """The query LiteLLM gets: without `client_version`, it lists (cheaply) instead of building its
    own Codex catalog from price-map ids (the "catalog cut at 1048576 bytes" warning per call)."""
    pairs = urllib.parse.parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return urllib.parse.urlencode([(k, v) for k, v in pairs if k != "client_version"]).encode("latin-1")


def entries(codex_ids: list[str], upstream: list | None) -> list[dict]:
    """The ModelInfo entries for `codex_ids`: CLIProxyAPI's where it gave one, LiteLLM's otherwise;
    sorted by priority, `upgrade` kept only when it names a listed id."""
    given = {e["slug"]: e for e in upstream or [] if isinstance(e, dict) and isinstance(e.get("slug"), str)}
    out = [dict(given[i]) for i in codex_ids if i in given]
    missing = [i for i in codex_ids if i not in given]
    if missing:
        last = max((e.get("priority", 0) for e in out if isinstance(e.get("priority"), int)), default=0)
        for rank, entry in enumerate(_litellm_entries(missing), 1):
            out.append({**entry, "priority": last + rank})
    listed = set(codex_ids)
    for entry in out:
        upgrade = entry.get("upgrade")
        if upgrade is not None and not (isinstance(upgrade, dict) and upgrade.get("model") in listed):
            entry["upgrade"] = None
    return sorted(out, key=lambda e: (e.get("priority") if isinstance(e.get("priority"), int) else 1 << 30, e["slug"]))


def _litellm_entries(ids: list[str]) -> list[dict]:
    try:
        from litellm.proxy.common_utils.codex_model_catalog import CodexCatalogRow, codex_models_response_json

        return json.loads(codex_models_response_json([CodexCatalogRow(id=i) for i in ids], byte_limit=None).json)["models"]
    except Exception as exc:  # another LiteLLM: the ids stay out of the list (Codex still drives them by name)
        print(f"flowgate: no Codex catalog entry for {', '.join(ids)}: {type(exc).__name__}: {exc}", flush=True)
        return []


def body_of(models: list[dict]) -> bytes:
    """`{"models": [...]}` within BODY_LIMIT: entries past it (lowest priority first) are left out."""
    parts = [json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode() for m in models]
    kept, left_out, size = [], [], len(b'{"models":[]}')
    for model, part in zip(models, parts):
        if size + len(part) + 1 <= BODY_LIMIT:
            kept.append(part)
            size += len(part) + 1
        else:
            left_out.append(model["slug"])
    left_out = tuple(left_out)
    if left_out != _said["left_out"]:
        _said["left_out"] = left_out
        if left_out:
            print(f"flowgate: Codex's model list is over 1 MiB: left out {', '.join(left_out)}", flush=True)
    return b'{"models":[' + b",".join(kept) + b"]}"


async def answer(client_version: str, served, ask, cache_s: float) -> bytes:
    """The body for Codex: `served()` gives [{id, owned_by}] (None: unknown), `ask(path)` asks
    CLIProxyAPI (parsed JSON or None)."""
    hit = _cache.get(client_version)
    if hit is not None and time.monotonic() - hit[0] < cache_s:
        return hit[1]
    live = await served() or []
    codex_ids = [m["id"] for m in live if m.get("owned_by") == CODEX_OWNER]
    upstream = None
    if codex_ids:
        data = await ask("/models?" + urllib.parse.urlencode({"client_version": client_version}))
        upstream = data.get("models") if isinstance(data, dict) and isinstance(data.get("models"), list) else None
    body = body_of(entries(codex_ids, upstream))
    _cache.clear()
    _cache[client_version] = (time.monotonic(), body)
    return body

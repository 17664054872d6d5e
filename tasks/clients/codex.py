"""Codex CLI: a `flowgate` provider in $CODEX_HOME (default ~/.codex).

`flowgate.config.toml` is FlowGate's own profile file (`codex --profile flowgate`). Unless
profile-only, the user's `config.toml` gets `model`, `model_provider` and the provider table too,
merged with tomlkit: every other setting, table, comment and blank line stays byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..base.paths import Paths
from .files import FileChange, parse_error, read_text
from .gateway import Gateway, client_models, gateway

PROVIDER = "flowgate"
PROFILE_FILE = f"{PROVIDER}.config.toml"
# Provider keys Codex refuses next to `auth` (and each would supply another key).
CONFLICTING_AUTH = ("env_key", "experimental_bearer_token", "requires_openai_auth")


def codex_home(environ=None) -> Path:
    env = os.environ if environ is None else environ
    return Path(os.path.expanduser(env.get("CODEX_HOME") or "~/.codex"))


def settings_files(environ=None) -> list[Path]:
    home = codex_home(environ)
    return [home / PROFILE_FILE, home / "config.toml"]


def provider_settings(gw: Gateway) -> dict:
    # model_catalog_url: Codex's model list is then the gateway's alone (the served Codex models,
    # tasks.gateway.codex_list), not merged with the catalog built into Codex.
    return {"name": "FlowGate", "base_url": gw.openai_url, "wire_api": "responses",
            "model_catalog_url": gw.openai_url + "/models",
            "auth": {"command": gw.key_argv[0], "args": gw.key_argv[1:]}}


def _plain(value):
    return value.unwrap() if hasattr(value, "unwrap") else value


def _set(container, key: str, value) -> None:
    """Assign only when different: an untouched value keeps its exact spelling and comment."""
    import tomlkit

    if key in container and _plain(container[key]) == value:
        return
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        value = table
    container[key] = value


def merge_config(text: str, path: Path, model: str, gw: Gateway) -> tuple[str, list[str]]:
    """`text` with the FlowGate provider selected; returns (new text, notices)."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        doc = tomlkit.parse(text)
    except ParseError as exc:
        raise parse_error(path, exc.line, str(exc)) from None
    notices = []
    _set(doc, "model_provider", PROVIDER)
    _set(doc, "model", model)
    providers = doc.get("model_providers")
    if providers is None:
        doc.add("model_providers", tomlkit.table(is_super_table=True))  # at the end of the file
        providers = doc["model_providers"]
    elif PROVIDER not in providers:
        # Goes after the user's other providers, maybe before another table: keep a blank line between.
        providers[PROVIDER] = _provider_table(gw, trailing_blank_line=True)
    if PROVIDER not in providers:
        providers[PROVIDER] = _provider_table(gw)
    table = providers[PROVIDER]
    for key in CONFLICTING_AUTH:
        if key in table:
            del table[key]
            notices.append(f"{path}: removed model_providers.{PROVIDER}.{key} (it conflicts with `auth`; "
                           "the old file is in the backup)")
    for key, value in provider_settings(gw).items():
        _set(table, key, value)
    if "profile" in doc:
        notices.append(f"{path}: the top-level `profile = {_plain(doc['profile'])!r}` is applied on top of these "
                       "settings; if that profile sets model or model_provider, it wins")
    return tomlkit.dumps(doc), notices


def unmerge_config(text: str, user: str, path: Path) -> str | None:
    """`text` without what FlowGate set (the provider table; `model_provider` and `model` while they
    select FlowGate), those keys as the user had them in `user`; everything else as it is now."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        doc = tomlkit.parse(text)
    except ParseError as exc:
        raise parse_error(path, exc.line, str(exc)) from None
    try:
        mine = tomlkit.parse(user)
    except ParseError:
        mine = tomlkit.document()
    if _plain(doc.get("model_provider")) == PROVIDER:
        for key in ("model_provider", "model"):
            if key in mine:
                doc[key] = mine.item(key)
            elif key in doc:
                del doc[key]
    providers = doc.get("model_providers")
    if providers is not None and PROVIDER in providers:
        del providers[PROVIDER]
        theirs = mine.get("model_providers") or {}
        if PROVIDER in theirs:
            providers[PROVIDER] = theirs[PROVIDER]
        elif not providers and "model_providers" not in mine:
            del doc["model_providers"]
    out = tomlkit.dumps(doc)
    header = set(profile_text("", None, header_only=True).splitlines(keepends=True))  # the profile file's own
    out = "".join(line for line in out.splitlines(keepends=True) if line not in header)
    if user.strip() and tomlkit.parse(out).unwrap() == mine.unwrap():
        return user  # nothing of the user's changed since: their file byte for byte
    return out if out.strip() else None


def profile_text(model: str, gw: Gateway | None, header_only: bool = False) -> str:
    """FlowGate's profile file: entirely generated, so rendered from scratch."""
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("Written by FlowGate (`uv run doit integrate:codex --apply`): `codex --profile flowgate`"))
    doc.add(tomlkit.comment("uses the local gateway. The key is read by the `auth` command, never stored here."))
    if header_only:
        return tomlkit.dumps(doc)
    doc.add("model_provider", PROVIDER)
    doc.add("model", model)
    doc.add(tomlkit.nl())
    doc.add("model_providers", tomlkit.table(is_super_table=True))
    doc["model_providers"][PROVIDER] = _provider_table(gw)
    return tomlkit.dumps(doc)


def _provider_table(gw: Gateway, trailing_blank_line: bool = False):
    import tomlkit

    table = tomlkit.table()
    for key, value in provider_settings(gw).items():
        _set(table, key, value)
    if trailing_blank_line:
        table.add(tomlkit.nl())
    return table


def plan(paths: Paths, stack: dict, profile_only: bool, environ=None, gw: Gateway | None = None,
         ) -> tuple[list[FileChange], list[str]]:
    """The file changes `integrate:codex --apply` would make, and notices; reads, never writes.
    `gw`: the gateway as wired (a member's key: gateway.member_gateway); the master key's by default."""
    model, _fast = client_models(paths, stack, "codex")  # Codex has no fast-model slot
    gw = gw or gateway(paths, stack)
    profile, config = settings_files(environ)
    changes = [FileChange(profile, read_text(profile), profile_text(model, gw))]
    notices: list[str] = []
    if not profile_only:
        old = read_text(config)
        new, notices = merge_config(old or "", config, model, gw)
        changes.append(FileChange(config, old, new))
    return changes, notices

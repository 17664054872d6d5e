"""What a client needs to know about the gateway: where it is, how to get the key, which models."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.view import litellm
from ..services.common import base_url
from ..services.secrets import LITELLM_MASTER_KEY

CLIENTS = ("codex", "claude")
WIRING = 2


# A member's kept key (tasks.keys.kept), printed by the helper; gone (revoked), it says so and fails.
MEMBER_HELPER = ('cat -- "$1" 2>/dev/null || { echo "flowgate: the key of member $2 is not kept here any more '
                 '(revoked?): ask for a new one, then run integrate again" >&2; exit 1; }')


@dataclass(frozen=True)
class Gateway:
    root_url: str  # LiteLLM's root: Anthropic clients append /v1/messages themselves
    key_path: Path
    member: str | None = None  # `integrate --key NAME`: a member's key instead of the master key

    @property
    def openai_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def key_argv(self) -> list[str]:
        """A command that prints the gateway key: clients run it instead of holding a copy."""
        if self.member:
            return ["sh", "-c", MEMBER_HELPER, "flowgate-key", str(self.key_path), self.member]
        return ["cat", str(self.key_path)]

    @property
    def key_shell_command(self) -> str:
        return shlex.join(self.key_argv)

    def fingerprint(self) -> dict:
        """What client settings depend on: when any of it changes they are stale. `wiring` is the
        version of what integrate writes (2: Codex's model_catalog_url, Claude Code's picker slots
        by family), so settings applied by an older FlowGate are named stale too."""
        found = {"url": self.root_url, "key_path": str(self.key_path), "wiring": WIRING}
        return {**found, "member": self.member} if self.member else found


def gateway(paths: Paths, stack: dict, member: str | None = None) -> Gateway:
    if member:
        from ..keys.kept import key_path

        return Gateway(base_url(litellm(stack)), key_path(paths, member), member)
    return Gateway(base_url(litellm(stack)), paths.secret(LITELLM_MASTER_KEY))


def member_gateway(paths: Paths, stack: dict, member: str) -> Gateway:
    """The gateway wired with `member`'s kept key (`integrate --key`); FlowgateError when there is none."""
    from ..keys import kept, manage

    manage.check_name(member)
    live = {row["name"]: row["state"] for row in manage.listing(paths)}
    if live.get(member) != "active":
        state = live.get(member)
        raise FlowgateError(f"no active member key named {member}" + (f" (it is {state})" if state else ""),
                            "`uv run doit keys list` shows them; `uv run doit keys create NAME --keep` makes one")
    if not kept.is_kept(paths, member):
        raise FlowgateError(f"the key of {member} is not kept for clients (FlowGate has only its hash)",
                            f"rotate it to wire a client: `uv run doit keys rotate {member} --keep`")
    return gateway(paths, stack, member)


def client_models(paths: Paths, stack: dict, client: str) -> tuple[str, str]:
    """The client's (model, fast_model): `clients:` as written, `auto` chosen from what the accounts
    serve (tasks.catalog.choose); a named id must be routable (served now, or a model of the config)."""
    from ..catalog import choose
    from ..catalog.discover import current

    catalog = current(paths, stack)
    resolved = choose.slots(stack, catalog, client)
    if not resolved["model"]:
        provider = "codex" if client == "codex" else "claude"
        why = "no model list was read from CLIProxyAPI yet" if catalog is None else f"no account serves a {client} model"
        raise FlowgateError(f"clients.{client}.model is auto, but {why}",
                            f"log in with `uv run doit login:{provider}` (with the stack up), then run this again; "
                            f"or name a model in config/local.yaml: clients: {{{client}: {{model: ...}}}}")
    if catalog is not None:
        from ..catalog.routes import protocol_of

        routable = [m["name"] for m in stack["models"]] + catalog.ids()
        native = "anthropic" if client == "claude" else "openai"
        fitting = [i for i in catalog.ids() if protocol_of(i) == native]
        for slot in ("model", "fast_model"):
            if resolved[slot] not in routable:
                raise FlowgateError(f"clients.{client}.{slot} names {resolved[slot]!r}, which no account serves now "
                                    f"(served for {client}: {', '.join(fitting[:12]) or 'nothing'})",
                                    "set it to `auto` or to a served id (`uv run doit models` lists them)")
    return resolved["model"], resolved["fast_model"]


def picker_slots(paths: Paths, stack: dict, model: str, fast_model: str) -> dict[str, str]:
    """Claude Code's Opus / Sonnet / Haiku slots: the model where it is of that family, else the
    newest served id of the family, else the model (Haiku: the fast model)."""
    from ..catalog import choose, store

    catalog = store.read(paths)
    newest = choose.claude_families(catalog.models if catalog else [])
    out = {}
    for family in ("opus", "sonnet", "haiku"):
        own = model if model.startswith(f"claude-{family}-") else fast_model if family == "haiku" else None
        out[family] = own or newest[family] or model
    return out


def choice_lines(paths: Paths, stack: dict, client: str) -> list[str]:
    """What `integrate` chose for `client`'s slots, and why (one line each)."""
    from ..catalog import choose, store

    catalog = store.read(paths)
    resolved = choose.slots(stack, catalog, client)
    lines = []
    for slot in ("model",) if client == "codex" else ("model", "fast_model"):
        if not resolved[slot]:
            continue
        if slot in resolved["auto"]:
            why = "auto: " + choose.why(client, slot, catalog.models if catalog else [], resolved[slot])
        else:
            why = f"named in clients.{client}.{slot}"
        lines.append(f"{client} {slot.replace('_', ' ')}: {resolved[slot]} ({why})")
    return lines

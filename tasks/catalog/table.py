"""`doit models`: what is routable now (served ids and the config's own models), with protocol,
who serves each, the client slots and profiles that use it, and when the catalog was read."""

from __future__ import annotations

import json
import time

from ..base.terminal import printable
from . import choose
from .store import Catalog


def _users(stack: dict, catalog: Catalog | None) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for client in ("codex", "claude"):
        resolved = choose.slots(stack, catalog, client)
        for slot in ("model", "fast_model"):
            if resolved[slot]:
                tag = f"{client} {slot.replace('_', ' ')}" + (" (auto)" if slot in resolved["auto"] else "")
                users.setdefault(resolved[slot], []).append(tag)
    for name, models in (stack.get("profile_models") or {}).items():  # what each profile's fallbacks name
        for model in models:
            users.setdefault(model, []).append(f"profile {name}")
    return users


def rows(stack: dict, catalog: Catalog | None) -> list[dict]:
    users = _users(stack, catalog)
    out = []
    for m in stack["models"]:
        cliproxy = m["via"] == "cliproxy"
        upstream = (m["model"] or m["name"]) if cliproxy else m["model"]
        out.append({"id": m["name"], "protocol": m["protocol"] or ("anthropic" if upstream.startswith("claude-") else "openai")
                    if cliproxy else m["model"].split("/", 1)[0],
                    "served_by": f"config ({m['via']}{': ' + upstream if upstream != m['name'] else ''})",
                    "providers": [], "accounts": [], "used_by": users.get(m["name"], [])})
    named = {m["name"] for m in stack["models"]}
    for m in catalog.models if catalog else []:
        if m.id in named:
            continue
        count = len(m.accounts)
        who = ", ".join(m.providers) + (f" ({count} account{'s' if count != 1 else ''})" if count else "")
        out.append({"id": m.id, "protocol": m.protocol, "served_by": who, "providers": m.providers,
                    "accounts": m.accounts, "used_by": users.get(m.id, [])})
    return out


def unserved_uses(stack: dict, catalog: Catalog | None) -> list[tuple[str, list[str]]]:
    """(model, [who names it]) for client slots and profiles naming an id nothing routes now. None
    before any account serves a model: the one "log in" line says it for all of them."""
    if catalog is None or not catalog.models:
        return []
    routable = {m["name"] for m in stack["models"]} | set(catalog.ids())
    return [(model, who) for model, who in _users(stack, catalog).items() if model not in routable]


def unserved_lines(stack: dict, catalog: Catalog | None) -> list[str]:
    """`unserved_uses` as the warnings `check` and `up` print."""
    return [f"warning: {printable(model)} is not served now (named by {', '.join(who)}; `uv run doit models` lists what is)"
            for model, who in unserved_uses(stack, catalog)]


def as_json(stack: dict, catalog: Catalog | None) -> str:
    slots = {c: choose.slots(stack, catalog, c) for c in ("codex", "claude")}
    return json.dumps({"read_at": catalog.read_at if catalog else None, "profile": stack["profile"],
                       "models": rows(stack, catalog), "clients": slots,
                       "accounts": catalog.accounts if catalog else [],
                       "unserved": [{"model": m, "used_by": who} for m, who in unserved_uses(stack, catalog)]},
                      indent=2)


def table(stack: dict, catalog: Catalog | None, login_hint: str) -> str:
    data = rows(stack, catalog)
    lines = []
    if data:
        head = ["model", "protocol", "served by", "used by"]
        body = [[printable(r["id"]), r["protocol"], printable(r["served_by"]), ", ".join(r["used_by"]) or "-"] for r in data]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *body]]
    if catalog is None:
        lines.append(f"no model list read yet: start the stack (`uv run doit up`), then log in with {login_hint}")
    elif not catalog.models:
        lines.append(f"no account serves a model: log in with {login_hint}")
    for model, who in unserved_uses(stack, catalog):
        lines.append(f"warning: {printable(model)} is not served now (named by {', '.join(who)})")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(catalog.read_at)) if catalog else "never"
    lines.append(f"catalog read: {when}; profile: {stack['profile']}")
    return "\n".join(lines)
